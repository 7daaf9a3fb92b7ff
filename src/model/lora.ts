// LoRA adapters (Hu et al. 2021) in PEFT's layout: for an adapted linear layer W,
//   y = x W + (alpha / r) * dropout(x) A^T B^T,   A: [r, in] (lora_A.weight), B: [out, r] (lora_B.weight).
// A starts as PEFT's kaiming-uniform, B at zero, so a fresh adapter leaves the model unchanged. The
// adapter has its own parameter table (and gradients and AdamW moments); the base stays frozen and can
// be shared by several adapters (PPO's policy, reward and value roles on one base). Its forward and
// backward inside a plan: adapted-linear.ts.
import type { View } from '../gpu/runtime.ts';
import type { ProvenanceMeta } from '../io/export.ts';
import { peftAdapterFiles, readPeftAdapter, type LoraTensors } from '../io/peft.ts';
import { Rng } from '../shared/sampling.ts';
import { ParamTable } from './params.ts';
import type { Transformer } from './transformer.ts';

export interface LoraConfig {
  r: number; // rank
  alpha: number; // scale numerator: the update is scaled by alpha / r
  dropout: number; // on the adapter's input, training only
  targets: string[]; // module short names: c_attn, c_proj, c_fc (GPT-2); q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj (Llama)
}

// The adapted modules per architecture, with a typical rank-8 adapter (tests, benchmarks): one table, in the
// shared layer for the page too. A stage's adapter takes its rank, alpha and dropout from its config.
export { LORA_DEFAULTS } from '../shared/lora.ts';

export interface LoraModule {
  module: string; // canonical module path, e.g. 'h.0.attn.c_attn' or 'model.layers.0.self_attn.q_proj'
  In: number;
  Out: number;
}

export class LoraSet {
  readonly params: ParamTable;
  readonly modules = new Map<string, LoraModule>();
  readonly scale: number;
  /** [step seed] read by the dropout kernels; `setStep` changes it so every step draws a new mask. */
  readonly seed: View;
  private stepWord = 0;
  private dropoutOff = 0;

  constructor(
    readonly model: Transformer,
    readonly cfg: LoraConfig,
    opts: { optimizer?: boolean } = {},
  ) {
    if (!(Number.isInteger(cfg.r) && cfg.r >= 1)) throw new Error(`LoRA rank must be a positive integer, got ${cfg.r}`);
    if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new Error(`LoRA dropout must be in [0, 1), got ${cfg.dropout}`);
    const targets = new Set(cfg.targets);
    const gpt2 = model.cfg.arch === 'gpt2';
    const specs = [];
    for (const e of model.params.entries) {
      if (e.shape.length !== 2 || !e.name.endsWith('.weight') || /wte|wpe|embed_tokens|lm_head/.test(e.name)) continue;
      const module = e.name.slice(0, -'.weight'.length);
      if (!targets.has(module.split('.').pop()!)) continue;
      const [In, Out] = gpt2 ? [e.shape[0]!, e.shape[1]!] : [e.shape[1]!, e.shape[0]!];
      this.modules.set(module, { module, In, Out });
      specs.push({ name: `${module}.lora_A.weight`, shape: [cfg.r, In], decay: true }, { name: `${module}.lora_B.weight`, shape: [Out, cfg.r], decay: true });
    }
    if (this.modules.size === 0) throw new Error(`no module of this ${model.cfg.arch} model matches the LoRA targets ${cfg.targets.join(', ')}`);
    this.params = new ParamTable(model.gpu, specs, { optimizer: opts.optimizer, grads: opts.optimizer });
    this.scale = cfg.alpha / cfg.r;
    this.seed = model.gpu.tensor(4, 'lora_seed');
    this.setStep(0);
  }

  /** PEFT's initialisation: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming-uniform with a = sqrt 5), B = 0. */
  init(seed: number): void {
    const rng = new Rng(seed >>> 0);
    for (const m of this.modules.values()) {
      const bound = 1 / Math.sqrt(m.In);
      this.params.upload(
        `${m.module}.lora_A.weight`,
        Float32Array.from({ length: this.cfg.r * m.In }, () => (2 * rng.next() - 1) * bound),
      );
      this.params.upload(`${m.module}.lora_B.weight`, new Float32Array(m.Out * this.cfg.r));
    }
  }

  setStep(step: number): void {
    this.stepWord = (Math.imul(step + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0;
    this.model.gpu.write(this.seed, Uint32Array.of(this.stepWord, this.dropoutOff, 0, 0));
  }

  /**
   * Dropout on (training, the default) or off (PyTorch's eval mode) in every plan of this set, from the
   * next submit on: a training plan then scores what the trained weights say, not one draw of a mask.
   */
  setDropout(on: boolean): void {
    this.dropoutOff = on ? 0 : 1;
    this.model.gpu.write(this.seed, Uint32Array.of(this.stepWord, this.dropoutOff, 0, 0));
  }

  destroy(): void {
    this.params.destroy();
    this.model.gpu.destroy(this.seed.buf);
  }
}

/** PEFT module path of a canonical module (GPT2LMHeadModel keeps its `transformer.` prefix). */
const peftModule = (set: LoraSet, module: string) => (set.model.cfg.arch === 'gpt2' ? `transformer.${module}` : module);

/** The adapter as a PEFT folder (adapter_config.json + adapter_model.safetensors). */
export async function exportAdapterFiles(
  set: LoraSet,
  x: { baseModel: string; baseRevision?: string | null; meta: ProvenanceMeta; head?: ParamTable },
): Promise<Map<string, Uint8Array>> {
  const loras: LoraTensors[] = [];
  for (const m of set.modules.values()) {
    loras.push({
      module: peftModule(set, m.module),
      inFeatures: m.In,
      outFeatures: m.Out,
      A: await set.params.download(`${m.module}.lora_A.weight`),
      B: await set.params.download(`${m.module}.lora_B.weight`),
    });
  }
  return peftAdapterFiles({
    baseModel: x.baseModel,
    baseRevision: x.baseRevision,
    r: set.cfg.r,
    alpha: set.cfg.alpha,
    dropout: set.cfg.dropout,
    targetModules: set.cfg.targets,
    fanInFanOut: set.model.cfg.arch === 'gpt2',
    loras,
    meta: x.meta,
    // a reward or value model: PEFT's SEQ_CLS task (the base loads as *ForSequenceClassification), its score head as modules_to_save
    ...(x.head
      ? {
          taskType: 'SEQ_CLS' as const,
          modulesToSave: ['score'],
          extraTensors: [{ name: 'score.weight', shape: [1, set.model.cfg.hidden], data: await x.head.download('score.weight') }],
        }
      : {}),
  });
}

/** Reads a PEFT adapter folder onto `model`: every module it names must exist with the same shape. */
export function loadAdapter(model: Transformer, files: Map<string, Uint8Array>, file: string, opts: { optimizer?: boolean } = {}): LoraSet {
  return loadAdapterWithHead(model, files, file, opts).lora;
}

/** An adapter and, when it carries one (modules_to_save ["score"]), its score head weights and metadata. */
export function loadAdapterWithHead(
  model: Transformer,
  files: Map<string, Uint8Array>,
  file: string,
  opts: { optimizer?: boolean } = {},
): { lora: LoraSet; score?: Float32Array; metadata: Record<string, string> } {
  const a = readPeftAdapter(files, file);
  const unknown = a.extraTensors.filter((t) => !/(^|\.)score\.weight$/.test(t.name));
  if (unknown.length) throw new Error(`${file}: modules_to_save tensors ${unknown.map((t) => t.name).join(', ')} are not supported`);
  const score = a.extraTensors.find((t) => /(^|\.)score\.weight$/.test(t.name))?.data;
  const set = new LoraSet(model, { r: a.config.r, alpha: a.config.alpha, dropout: a.config.dropout, targets: a.config.targetModules }, opts);
  const byPeft = new Map([...set.modules.values()].map((m) => [peftModule(set, m.module), m]));
  for (const l of a.loras) {
    const m = byPeft.get(l.module);
    if (!m) throw new Error(`${file}/adapter_model.safetensors: module "${l.module}" is not a ${model.cfg.arch} module this adapter can target`);
    if (m.In !== l.inFeatures || m.Out !== l.outFeatures)
      throw new Error(`${file}/adapter_model.safetensors: module "${l.module}" is ${l.inFeatures} -> ${l.outFeatures}, the model's is ${m.In} -> ${m.Out}`);
    set.params.upload(`${m.module}.lora_A.weight`, l.A);
    set.params.upload(`${m.module}.lora_B.weight`, l.B);
    byPeft.delete(l.module);
  }
  if (byPeft.size) {
    set.destroy();
    throw new Error(
      `${file}/adapter_model.safetensors: no weights for ${[...byPeft.keys()].slice(0, 3).join(', ')}${byPeft.size > 3 ? ` and ${byPeft.size - 3} more` : ''}`,
    );
  }
  return { lora: set, score, metadata: a.metadata };
}

/**
 * Folds the adapter into its model's weights, W += (alpha / r) B A in the base's layout ([in, out] for
 * GPT-2's Conv1D, [out, in] for a Linear), so the model alone computes what model + adapter computed
 * (up to float rounding). Returns the changed weights as they were: `restoreWeights` puts them back
 * exactly (subtracting the update again would drift).
 */
export async function mergeLora(set: LoraSet): Promise<Map<string, Float32Array>> {
  const model = set.model,
    gpt2 = model.cfg.arch === 'gpt2',
    r = set.cfg.r;
  const saved = new Map<string, Float32Array>();
  for (const m of set.modules.values()) {
    const name = `${m.module}.weight`;
    const [W, A, B] = await Promise.all([
      model.params.download(name),
      set.params.download(`${m.module}.lora_A.weight`),
      set.params.download(`${m.module}.lora_B.weight`),
    ]);
    saved.set(name, W.slice());
    const { In, Out } = m;
    for (let o = 0; o < Out; o++) {
      for (let i = 0; i < In; i++) {
        let d = 0;
        for (let k = 0; k < r; k++) d += B[o * r + k]! * A[k * In + i]!;
        W[gpt2 ? i * Out + o : o * In + i]! += set.scale * d;
      }
    }
    model.params.upload(name, W);
  }
  return saved;
}

/** Puts back weights saved by `mergeLora` (or any name -> tensor map of the model's parameters). */
export function restoreWeights(model: Transformer, saved: Map<string, Float32Array>): void {
  for (const [name, w] of saved) model.params.upload(name, w);
}

/** Copies every weight of `from` into `to` (two models of one config). */
export async function copyWeights(from: Transformer, to: Transformer): Promise<void> {
  for (const e of to.params.entries) to.params.upload(e.name, await from.params.download(e.name));
}
