// Generation with a KV cache on the GPU: K samples of a prompt (or of several prompts) decoded side by
// side in one batch.
// Prefill runs the prompt for all K rows at once; then one token per step, reading back only each
// row's last logits for sampling on the CPU, or, for a large vocabulary, only the token drawn on the device
// (src/ops/sampling.ts). Tokens stream out through `onToken` as they are drawn.
import type { Call } from '../gpu/runtime.ts';
import { drawScratch, drawTokens } from '../ops/sampling.ts';
import type { LoraSet } from '../model/lora.ts';
import { KVCache, type Plan, type Transformer } from '../model/transformer.ts';
import { checkFits, estimateMemory } from '../shared/memory.ts';
import { Rng, sampleToken, type SamplingConfig } from '../shared/sampling.ts';
import { GENERATE_OPTION_DEFAULTS } from '../shared/schema.ts';

export interface GenerateConfig extends SamplingConfig {
  maxNewTokens: number;
  numSamples: number; // K
  seed: number;
  /** Generation of a sample ends at any of these ids (EOS), which is kept as its last token. */
  stopTokenIds: number[];
  /** Extra stop rule, e.g. a stop string in the decoded text; called after each token of a sample. */
  stopWhen?: (sample: number, ids: number[]) => boolean;
  /** Checked between decode steps: true ends the whole generation at once, `interrupted` set (a caller
   *  that yields to more urgent work; with the same seed a rerun draws the same tokens). */
  interrupt?: () => boolean;
  /** The most positions (prompt + new tokens) any call of this generator will need, e.g. a stage's
   *  sequence length: the KV cache is planned for that many once, instead of for each call's length
   *  rounded up to PLAN_BUCKET. A call that needs more plans more. */
  planLength?: number;
}

/** The generation options' defaults (src/train/schema.ts: GENERATE_OPTIONS), no stop ids. */
export const GENERATE_DEFAULTS: GenerateConfig = { ...GENERATE_OPTION_DEFAULTS, stopTokenIds: [] };

/** 'interrupted': `interrupt` ended the generation before this sample ended */
export type FinishReason = 'eos' | 'stop' | 'length' | 'interrupted';

export interface Generation {
  ids: number[][]; // new tokens of each sample
  finish: FinishReason[];
  /** entropy (nats) of the model's next-token distribution at each drawn token, before sampling filters */
  entropy: number[][];
  /** `interrupt` ended it early: the samples not ended by then are cut short ('interrupted') */
  interrupted?: boolean;
}

/**
 * Vocabularies at least this large draw their tokens on the device (temperature sampling or greedy; top-k and
 * top-p stay on the CPU): a row of Qwen's 151,936 logits is 594 KB to read back and took 3.4 ms to draw in
 * Node, more than a decode step on a GPU. Smaller ones keep the CPU's draw in float64 over the sorted
 * distribution (sampleToken), on which the built-in model's experiment figures rest. The device draws in id
 * order in f32 (shaders/sampling.wgsl), so the same seed gives other samples than the CPU's would.
 */
export const DEVICE_SAMPLING_VOCAB = 32768;

/** An Rng that gives one fixed draw: a row the device handed back to the CPU draws with the u it already took. */
class OneDraw extends Rng {
  constructor(private readonly u: number) {
    super(0);
  }
  override next(): number {
    return this.u;
  }
}

/** Positions a KV cache is planned for are rounded up to a multiple of this, so calls whose lengths
 *  differ a little share one cache and step plan. */
export const PLAN_BUCKET = 32;
/** Prefill plans kept besides the one that owns their buffers (a prompt length each; the oldest goes). */
const MAX_PREFILLS = 8;

/**
 * Keeps one KV cache and one step plan per batch of rows and maximum length (the length rounded up to
 * PLAN_BUCKET, or the caller's `planLength`), and reuses them for any call that fits: PPO's and GRPO's
 * prompts differ in length every step, and re-planning allocated a cache and two plans each time.
 * The prefill runs exactly the shortest prompt's length, as before (so the samples are the same tokens):
 * its plans for different lengths share the buffers of the longest one planned so far (kept while a
 * longer prompt does not come), so a new prompt length costs bind groups, not memory.
 */
export class Generator {
  private cache?: KVCache;
  private step?: Plan;
  /** The prefill plan whose buffers the others share (the longest prompt so far), and the plans by prompt length. */
  private base?: Plan;
  private prefills = new Map<number, Plan>();
  /** Plans built so far (KV-cache step and prefill plans): what reuse saves, for tests and benchmarks. */
  plansBuilt = 0;
  /** Where tokens are drawn: 'auto' = on the device for vocabularies of DEVICE_SAMPLING_VOCAB or more (where the
   *  sampling config allows: no top-k, no top-p); true = there whenever the config allows (tests, benchmarks). */
  deviceSampling: 'auto' | boolean = 'auto';
  /** Tokens drawn on the device so far (tests, benchmarks). */
  deviceDraws = 0;

  /** `lora`: generate from the base with this adapter (PPO's policy); the base alone is the reference. */
  constructor(
    readonly model: Transformer,
    readonly lora?: LoraSet,
  ) {}

  /** The KV cache's positions now (0 before the first generation). */
  get plannedLength(): number {
    return this.cache?.L ?? 0;
  }

  /** The prefill plan for R rows of P prompt tokens, with a cache of at least L positions (`hint`: plan for that many). */
  private async prepare(R: number, P: number, L: number, hint?: number): Promise<Plan> {
    const { cfg, gpu } = this.model,
      maxPos = cfg.maxPositions;
    const replan = !this.cache || this.cache.B !== R || this.cache.L < L;
    const Lp = !replan ? this.cache!.L : Math.min(maxPos, hint !== undefined && hint >= L ? hint : Math.ceil(L / PLAN_BUCKET) * PLAN_BUCKET);
    if (replan || !this.prefills.has(P)) {
      // refused before anything is allocated (or the plans in hand dropped) when a buffer cannot exist on this
      // adapter: the prefill's activations and the KV cache's layers, as the memory estimate counts them
      const limits = { maxBufferSize: gpu.maxBuffer, maxStorageBufferBindingSize: gpu.maxBinding };
      checkFits({ ...estimateMemory(cfg, 'inference', { batch: R, seqLen: P, kvCache: true }), use: `generation of ${R} x ${P} prompt tokens` }, limits);
      const kvLayer = R * Lp * cfg.kvHeads * cfg.headDim * 4;
      checkFits({ use: `a KV cache of ${R} x ${Lp} positions`, bytes: { total: 0 }, largestBuffer: kvLayer, largestBinding: kvLayer }, limits);
    }
    try {
      if (replan) {
        this.destroy();
        await gpu.check(`a KV cache of ${R} x ${Lp} positions`, () => (this.cache = new KVCache(this.model, R, Lp)));
        this.step = await this.build(1);
      }
      const known = this.prefills.get(P);
      if (known) {
        this.prefills.delete(P); // most recently used last
        this.prefills.set(P, known);
        return known;
      }
      if (!this.base || this.base.T < P) {
        for (const p of this.prefills.values()) if (p !== this.base) p.destroy();
        this.base?.destroy();
        this.prefills.clear();
        this.base = undefined;
        this.base = await this.build(P); // the longest prompt so far: a prefill needs no more memory than before
      }
      const plan = this.base.T === P ? this.base : await this.build(P, this.base);
      this.prefills.set(P, plan);
      for (const [n, p] of this.prefills) {
        if (this.prefills.size <= MAX_PREFILLS) break;
        if (p === this.base) continue;
        p.destroy();
        this.prefills.delete(n);
      }
      return plan;
    } catch (e) {
      this.destroy(); // out of memory: nothing half-made is kept, and the next call starts clean
      throw e;
    }
  }

  private async build(T: number, share?: Plan): Promise<Plan> {
    const plan = await this.model.plan(this.cache!.B, T, { cache: this.cache, lora: this.lora, share });
    this.plansBuilt++;
    return plan;
  }

  async generate(prompt: number[], cfg: GenerateConfig, onToken?: (sample: number, id: number) => void): Promise<Generation> {
    const [g] = await this.generateMany([{ prompt, seed: cfg.seed }], cfg, onToken && ((_, k, id) => onToken(k, id)));
    return g!;
  }

  /**
   * K samples of each of several prompts, decoded side by side in one batch of (prompts x K) rows: a
   * step costs about the same for 32 rows as for 4, so a batch of prompts costs about what one did.
   * Prompts may differ in length: the prefill runs the shortest one's length for every row, and the
   * decode steps that follow feed each longer prompt's remaining tokens to its rows (read, not drawn)
   * until its own samples begin. Row k of prompt j draws with Rng.forSample(seed_j, k), so a sample is
   * the same as generate(prompt_j) with seed_j would draw (up to float rounding of the prompt's tail).
   */
  async generateMany(
    requests: { prompt: number[]; seed: number; maxNewTokens?: number }[],
    cfg: GenerateConfig,
    onToken?: (request: number, sample: number, id: number) => void,
  ): Promise<Generation[]> {
    const gpu = this.model.gpu;
    const K = cfg.numSamples,
      J = requests.length;
    if (!(K >= 1)) throw new Error('numSamples must be at least 1');
    if (J < 1) return [];
    const lengths = requests.map((r) => r.prompt.length),
      maxNew = requests.map((r) => r.maxNewTokens ?? cfg.maxNewTokens);
    if (Math.min(...lengths) < 1) throw new Error('the prompt is empty');
    if (!(Math.max(...maxNew) >= 1))
      return requests.map(() => ({
        ids: Array.from({ length: K }, () => []),
        finish: new Array(K).fill('length'),
        entropy: Array.from({ length: K }, () => []),
      }));
    const P0 = Math.min(...lengths),
      ends = lengths.map((n, j) => n + maxNew[j]!),
      L = Math.max(...ends);
    if (L > this.model.cfg.maxPositions) {
      const j = ends.indexOf(L);
      throw new Error(`prompt (${lengths[j]} tokens) + ${maxNew[j]} new tokens exceed the model's ${this.model.cfg.maxPositions} positions`);
    }
    const R = J * K; // row j*K + k: sample k of request j
    const prefill = await this.prepare(R, P0, L, cfg.planLength);
    const rngs = Array.from({ length: R }, (_, r) => Rng.forSample(requests[Math.floor(r / K)]!.seed, r % K));
    const out: number[][] = Array.from({ length: R }, () => []);
    const entropy: number[][] = Array.from({ length: R }, () => []);
    // a request with no new tokens to draw is finished before it starts
    const finish: (FinishReason | undefined)[] = Array.from({ length: R }, (_, r) => (maxNew[Math.floor(r / K)]! < 1 ? 'length' : undefined));
    const V = this.model.cfg.vocabSize;
    const onDevice =
      (this.deviceSampling === true || (this.deviceSampling === 'auto' && V >= DEVICE_SAMPLING_VOCAB)) && (cfg.topK <= 0 || cfg.topK >= V) && cfg.topP >= 1;
    // the device's draws: each drawing row's u (taken from its Rng as the CPU's draw would take it), and (id, entropy) back
    const scratch = drawScratch(R, Math.max(prefill.logitChunks.length, this.step!.logitChunks.length));
    const device = onDevice
      ? {
          u: gpu.tensor(R, 'draw u'),
          out: gpu.tensor(2 * R, 'draws'),
          state: gpu.tensor(scratch.state, 'draw state'),
          masses: gpu.tensor(scratch.masses, 'draw masses'),
          calls: new Map<Plan, Call[]>(),
        }
      : undefined;
    const us = new Float64Array(R); // kept in float64: a row handed back to the CPU draws exactly as the CPU path would
    const drawing = (r: number, q: number) => q >= requests[Math.floor(r / K)]!.prompt.length && !finish[r];
    type Step = { plan: Plan; logits?: Float32Array; drawn?: Float32Array };
    /** Runs `plan` on `ids` from position pos0; its logits predict position q, whose tokens come back drawn (device) or as logits. */
    const run = async (plan: Plan, ids: number[], pos0: number, q: number): Promise<Step> => {
      plan.setTokens(ids, pos0);
      if (!device) {
        await gpu.check('generate', () => gpu.run(plan.forward as Call[], 'generate'));
        return { plan, logits: await plan.readLogits() };
      }
      if (cfg.temperature > 0) {
        for (let r = 0; r < R; r++) us[r] = drawing(r, q) ? rngs[r]!.next() : 0;
        gpu.write(device.u, Float32Array.from(us));
      }
      let draw = device.calls.get(plan);
      if (!draw) device.calls.set(plan, (draw = await drawTokens(gpu, { N: R, temperature: cfg.temperature }, { ...device, chunks: plan.logitChunks })));
      await gpu.check('generate', () => gpu.run([...(plan.forward as Call[]), ...draw], 'generate'));
      return { plan, drawn: await gpu.read(device.out) };
    };
    const result = (interrupted: boolean): Generation[] =>
      requests.map((_, j) => {
        const rows = Array.from({ length: K }, (_, k) => j * K + k);
        const g: Generation = {
          ids: rows.map((r) => out[r]!),
          finish: rows.map((r) => finish[r] ?? (interrupted ? 'interrupted' : 'length')),
          entropy: rows.map((r) => entropy[r]!),
        };
        if (interrupted) g.interrupted = true;
        return g;
      });
    try {
      let step = await run(prefill, Array.from({ length: R }, (_, r) => requests[Math.floor(r / K)]!.prompt.slice(0, P0)).flat(), 0, P0);
      // `pos`: the position whose token the logits just computed predict
      for (let pos = P0; ; pos++) {
        const next: number[] = [];
        for (let r = 0; r < R; r++) {
          const j = Math.floor(r / K),
            prompt = requests[j]!.prompt,
            k = r % K;
          if (pos < prompt.length) {
            next.push(prompt[pos]!); // this prompt is longer than the prefill: its next token is read, not drawn
            continue;
          }
          if (finish[r]) {
            next.push(out[r]![out[r]!.length - 1] ?? 0); // finished rows keep decoding a filler; it is ignored
            continue;
          }
          const drawn = { entropy: 0 };
          let id: number;
          if (step.drawn && step.drawn[2 * r]! >= 0) {
            id = step.drawn[2 * r]!;
            drawn.entropy = step.drawn[2 * r + 1]!;
            this.deviceDraws++;
          } else if (step.drawn) {
            // NaN, +Inf or every token masked: the CPU's sampler defines the draw, with the u this row took
            id = sampleToken(await step.plan.readLogits(r, 1), cfg, new OneDraw(us[r]!), drawn);
          } else {
            id = sampleToken(step.logits!.subarray(r * V, (r + 1) * V), cfg, rngs[r]!, drawn);
          }
          out[r]!.push(id);
          entropy[r]!.push(drawn.entropy);
          next.push(id);
          onToken?.(j, k, id);
          if (cfg.stopTokenIds.includes(id)) finish[r] = 'eos';
          else if (cfg.stopWhen?.(k, out[r]!)) finish[r] = 'stop';
          else if (out[r]!.length >= maxNew[j]!) finish[r] = 'length';
        }
        if (finish.every((f) => f)) break;
        if (cfg.interrupt?.()) return result(true);
        step = await run(this.step!, next, pos, pos + 1);
      }
    } finally {
      if (device) {
        for (const calls of device.calls.values()) gpu.release(calls);
        for (const v of [device.u, device.out, device.state, device.masses]) gpu.destroy(v.buf);
      }
    }
    return result(false);
  }

  destroy(): void {
    for (const p of this.prefills.values()) if (p !== this.base) p.destroy();
    this.base?.destroy();
    this.step?.destroy();
    this.cache?.destroy();
    this.prefills.clear();
    this.base = this.step = this.cache = undefined;
  }
}
