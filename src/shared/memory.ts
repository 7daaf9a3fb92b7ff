// GPU memory, planned before anything is allocated: the same buffers `Plan` and `KVCache` create,
// counted from the config, so the playground can refuse a model the adapter cannot hold with a clear
// message instead of failing halfway through a download or a step.
import { ALIGN, alignUp, rowAlign } from './align.ts';
import { paramSpecs, type ModelConfig } from './model-config.ts';
import { buffersBytes, kvCacheBuffers, planBuffers } from './plan-buffers.ts';
import type { Stage, TrainConfig } from './config.ts';
import { isHalfWeight } from './half.ts';
import { LORA_DEFAULTS } from './lora.ts';

export type Use = 'inference' | 'lora' | 'full';

export interface MemoryEstimate {
  use: Use;
  parameters: number;
  trainable: number;
  bytes: { weights: number; gradients: number; optimizer: number; activations: number; kvCache: number; total: number };
  /** The largest single buffer, which must fit the adapter's maxBufferSize (the vocabulary tables and
   *  the logits are split over buffers as the adapter needs, so they do not count whole). */
  largestBuffer: number;
  /** The largest buffer bound whole to a kernel, which must fit maxStorageBufferBindingSize. */
  largestBinding: number;
}

export interface EstimateOptions {
  batch: number;
  seqLen: number;
  /** generation: KV cache for batch x seqLen positions (inference only) */
  kvCache?: boolean;
  loraRank?: number;
  loraDropout?: number;
  /** module short names LoRA adapts (default: every attention and MLP projection) */
  loraTargets?: string[];
  /** the frozen linear weights stored as f16 (isHalfWeight; a frozen model on a device with 'shader-f16': Transformer's
   *  frozenF16): 2 bytes a value. Inference and LoRA only: full fine-tuning trains them in f32. */
  f16Weights?: boolean;
}

const buf = (floats: number) => Math.max(16, alignUp(floats * 4, 16));

export function estimateMemory(cfg: ModelConfig, use: Use, o: EstimateOptions): MemoryEstimate {
  const specs = paramSpecs(cfg);
  const half = !!o.f16Weights && use !== 'full';
  const tensorBytes = specs.map((s) => alignUp(s.shape.reduce((a, b) => a * b, 1) * (half && isHalfWeight(s) ? 2 : 4), ALIGN));
  const parameters = specs.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const paramBytes = tensorBytes.reduce((a, b) => a + b, 0);
  // + Llama's rotary cos/sin table, uploaded once with the weights
  let weights = paramBytes + (cfg.arch === 'llama' ? buf(cfg.maxPositions * cfg.headDim) : 0);
  const { batch: B, seqLen: T } = o;
  const BT = B * T,
    C = cfg.hidden,
    I = cfg.intermediate,
    Hq = cfg.heads,
    Hkv = cfg.kvHeads,
    D = cfg.headDim;
  const S = (Hq + 2 * Hkv) * D,
    llama = cfg.arch === 'llama';
  const training = use !== 'inference';
  const kv = !training && !!o.kvCache;
  const logitRows = kv ? B : BT;
  // every buffer of the plan, from the list `Plan` allocates (plan-buffers.ts); the logits in one vocabulary
  // chunk (one buffer: where the adapter's binding needs several, they add a little alignment)
  const r = o.loraRank ?? 8,
    targets = new Set(o.loraTargets ?? (llama ? ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] : ['c_attn', 'c_proj', 'c_fc']));
  const adapted =
    use === 'lora'
      ? specs
          .filter((s) => {
            const mod = s.name.split('.').slice(-2, -1)[0]!;
            return s.shape.length === 2 && s.name.endsWith('.weight') && targets.has(mod) && !/wte|wpe|embed|lm_head/.test(s.name);
          })
          .map((s) => ({ module: s.name.slice(0, -'.weight'.length), In: llama ? s.shape[1]! : s.shape[0]!, Out: llama ? s.shape[0]! : s.shape[1]! }))
      : [];
  const plan = planBuffers(cfg, B, T, { training, kvCache: kv, lora: use === 'lora' ? { r, dropout: o.loraDropout ?? 0, modules: adapted } : undefined });
  let activations = buffersBytes(plan.io) + buffersBytes(plan.body);
  const kvPerLayer = B * T * Hkv * D;
  const kvCache = kv ? buffersBytes(kvCacheBuffers(cfg, B, T)) : 0;
  let trainable = 0,
    gradients = 0,
    optimizer = 0;
  if (use === 'full') {
    trainable = parameters;
    gradients = paramBytes; // all f32 (half is off)
    optimizer = 2 * paramBytes;
  } else if (use === 'lora') {
    // The adapter's own table (A, B per module: weights, gradients, moments); its saved activations and
    // backward scratch are in the plan's list, and its dropout seed (4 words) beside it.
    let adapterBytes = 0;
    for (const { In, Out } of adapted) {
      trainable += r * (In + Out);
      adapterBytes += alignUp(r * In * 4, ALIGN) + alignUp(Out * r * 4, ALIGN);
    }
    activations += buf(4);
    gradients = adapterBytes;
    optimizer = 2 * adapterBytes;
    weights += adapterBytes;
  }
  // Parameter arenas are cut at the adapter's maxBufferSize, and the vocabulary tables split in row parts
  // where one is larger, so only the other tensors have to fit one buffer each. The logits come in vocabulary
  // chunks as narrow as the binding needs: at least one aligned group of columns must fit it.
  const vocab = /wte|embed_tokens|lm_head/;
  const others = specs.filter((s) => !vocab.test(s.name)).map((s) => buf(s.shape.reduce((a, b) => a * b, 1)));
  const acts = [buf(BT * (llama ? 2 * I : I)), buf(BT * S), kv ? buf(kvPerLayer) : 0, buf(logitRows * rowAlign(C)), llama ? buf(cfg.maxPositions * D) : 0];
  const largestBuffer = Math.max(...others, ...acts);
  const largestBinding = Math.max(...others, ...acts);
  const total = weights + gradients + optimizer + activations + kvCache;
  return { use, parameters, trainable, bytes: { weights, gradients, optimizer, activations, kvCache, total }, largestBuffer, largestBinding };
}

/** The uses the Model tab shows for a model: sampling 4 x seqLen with the KV cache, LoRA r=8 and full
 *  fine-tuning on 8 x seqLen, with seqLen 256 (or the model's positions when fewer). `f16Weights`: the frozen
 *  model keeps its linear weights in f16 (sampling and LoRA; the device has 'shader-f16'). */
export function playgroundMemory(
  cfg: ModelConfig,
  f16Weights = false,
): { seqLen: number; inference: MemoryEstimate; lora: MemoryEstimate; full: MemoryEstimate } {
  const seqLen = Math.min(256, cfg.maxPositions);
  return {
    seqLen,
    inference: estimateMemory(cfg, 'inference', { batch: 4, seqLen, kvCache: true, f16Weights }),
    lora: estimateMemory(cfg, 'lora', { batch: 8, seqLen, loraRank: 8, f16Weights }),
    full: estimateMemory(cfg, 'full', { batch: 8, seqLen }),
  };
}

export class MemoryError extends Error {}

const mib = (b: number) => (b < 2 ** 20 ? `${(b / 2 ** 10).toFixed(0)} KiB` : `${(b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 1 : 0)} MiB`);

/** Throws a MemoryError saying what does not fit and what to change. `budget`: total bytes the user allows (optional). */
export function checkFits(
  e: { use: string; largestBuffer: number; largestBinding: number; bytes: { total: number } },
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number },
  budget?: number,
): void {
  if (e.largestBuffer > limits.maxBufferSize) {
    throw new MemoryError(`${e.use}: needs a ${mib(e.largestBuffer)} buffer, over this adapter's maxBufferSize of ${mib(limits.maxBufferSize)}`);
  }
  if (e.largestBinding > limits.maxStorageBufferBindingSize) {
    throw new MemoryError(
      `${e.use}: needs ${mib(e.largestBinding)} in one storage binding, over this adapter's ${mib(limits.maxStorageBufferBindingSize)}: use a smaller batch or sequence length`,
    );
  }
  if (budget !== undefined && e.bytes.total > budget) {
    throw new MemoryError(`${e.use}: needs about ${mib(e.bytes.total)} of GPU memory, more than the ${mib(budget)} available`);
  }
}

/** What a training stage holds on the GPU, for the estimate before it starts (see stageMemory). */
export interface StageMemoryInput {
  stage: 'sft' | 'rm' | 'dpo' | 'ppo' | 'grpo' | 'rloo';
  batch: number; // examples / rankings / pairs / prompts per step
  seqLen: number;
  samples: number; // completions per prompt (online stages) or per ranking (rm)
  loraRank: number; // 0 = full fine-tuning
  loraTargets?: string[];
  loraDropout?: number;
  beta: number; // GRPO: a reference pass only when > 0
  rewardModel: boolean; // GRPO/RLOO: a reward model scores beside the functions
  /** online stages: the longest prompt in tokens, which the rollouts' prefill holds for every row (default seqLen, a bound) */
  promptLen?: number;
  /** with LoRA: the frozen base keeps its linear weights in f16 (Transformer.f16Weights): 2 bytes a value */
  f16Weights?: boolean;
}

/**
 * GPU bytes a stage's run holds, from the same per-plan counts as estimateMemory: the frozen base, the
 * trained weights (an adapter, or a model of its own with its gradients and moments), every plan a step
 * uses, and for the online stages the rollouts' KV cache (prompts x G rows, decoded together) and the other roles: PPO's value model
 * (trained) and reward model, GRPO's and RLOO's reference (when beta > 0) and reward model (when given).
 * Score heads count their weight and their scores. `bytes` by part; `total` their sum.
 */
export function stageMemory(cfg: ModelConfig, s: StageMemoryInput): StageMemory {
  const lora = s.loraRank > 0,
    T = s.seqLen;
  let largestBuffer = 0,
    largestBinding = 0;
  const estimate = (use: Use, o: Parameters<typeof estimateMemory>[2]) => {
    const e = estimateMemory(cfg, use, o);
    largestBuffer = Math.max(largestBuffer, e.largestBuffer);
    largestBinding = Math.max(largestBinding, e.largestBinding);
    return e;
  };
  const online = s.stage === 'ppo' || s.stage === 'grpo' || s.stage === 'rloo';
  const rows = online ? s.batch * s.samples : s.stage === 'rm' ? s.batch * s.samples : s.stage === 'dpo' ? 2 * s.batch : s.batch;
  const f16Weights = lora && !!s.f16Weights;
  const base = estimate('inference', { batch: 1, seqLen: 1, f16Weights }).bytes.weights;
  const opts = { seqLen: T, loraRank: s.loraRank, loraTargets: s.loraTargets, loraDropout: s.loraDropout, f16Weights };
  /** A trained role: its own weights (adapter, or the whole model under full fine-tuning), gradients, moments and training plan. */
  const trained = (batch: number) => {
    const e = estimate(lora ? 'lora' : 'full', { ...opts, batch });
    return e.bytes.weights - (lora ? base : 0) + e.bytes.gradients + e.bytes.optimizer + e.bytes.activations;
  };
  /** A frozen role's forward plan (and, with LoRA, its adapter; a model of its own otherwise). */
  const frozen = (batch: number, ownWeights: boolean) => {
    const plan = estimate('inference', { batch, seqLen: T }).bytes.activations;
    if (!ownWeights) return plan;
    return plan + (lora ? estimate('lora', { ...opts, batch: 1, seqLen: 1 }).bytes.weights - base : base);
  };
  // a score head's plan has its weight and scores in place of the LM head's logits: the role it scores for
  // drops its logits (noLogits) and the head counts what it adds, so every part stays >= 0
  const head = (batch: number, training: boolean) => buf(cfg.hidden) * (training ? 4 : 1) + buf(batch * T) * (training ? 2 : 1);
  const noLogits = (batch: number) => -buf(batch * T * cfg.vocabSize) - buf(3 * batch * T);
  // every prompt of a step decodes in one batch: a cache of rows x T, and the prefill's plan of rows x the prompt
  const kv = () =>
    estimate('inference', { batch: rows, seqLen: T, kvCache: true }).bytes.kvCache +
    estimate('inference', { batch: rows, seqLen: Math.min(T, s.promptLen ?? T), kvCache: true }).bytes.activations;
  const parts: Record<string, number> = { base, policy: trained(rows) };
  if (s.stage === 'rm') Object.assign(parts, { policy: parts.policy + noLogits(rows), head: head(rows, true) });
  if (s.stage === 'dpo') parts.reference = frozen(rows, false);
  if (s.stage === 'ppo')
    Object.assign(parts, {
      value: trained(rows) + noLogits(rows) + head(rows, true),
      reference: frozen(rows, false),
      reward: frozen(rows, true) + noLogits(rows) + head(rows, false),
    });
  if (s.stage === 'grpo' || s.stage === 'rloo') {
    if (s.beta > 0) parts.reference = frozen(rows, false);
    if (s.rewardModel) parts.reward = frozen(rows, true) + noLogits(rows) + head(rows, false);
  }
  if (online) parts.rollouts = kv();
  return { total: Object.values(parts).reduce((a, b) => a + b, 0), parts, largestBuffer, largestBinding };
}

export interface StageMemory {
  total: number;
  parts: Record<string, number>;
  /** the largest single buffer and the largest whole binding of any plan the stage builds */
  largestBuffer: number;
  largestBinding: number;
}

/** A stage's memory from its resolved config: what the worker shows and every path that builds a stage checks.
 *  `f16Weights`: the base the stage runs on keeps its linear weights in f16 (counted with LoRA only). */
export function stageMemoryOf(cfg: ModelConfig, stage: Stage, c: TrainConfig, rewardModel: boolean, f16Weights = false): StageMemory {
  return stageMemory(cfg, {
    stage,
    batch: c.batchSize,
    seqLen: c.seqLen,
    samples: c.numSamples,
    loraRank: c.loraRank,
    loraDropout: c.loraDropout,
    loraTargets: c.loraRank > 0 ? [...LORA_DEFAULTS[cfg.arch].targets] : undefined,
    beta: c.beta,
    rewardModel,
    f16Weights,
  });
}

/** Throws a MemoryError, before anything is allocated, when a stage's buffers cannot exist on this adapter. */
export function checkStageFits(stage: string, e: StageMemory, limits: { maxBufferSize: number; maxStorageBufferBindingSize: number }): void {
  checkFits({ use: `${stage.toUpperCase()} run`, bytes: { total: e.total }, largestBuffer: e.largestBuffer, largestBinding: e.largestBinding }, limits);
}
