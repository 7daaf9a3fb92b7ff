// Generation with a KV cache on the GPU: one prompt, K samples decoded side by side in one batch.
// Prefill runs the prompt for all K rows at once; then one token per step, reading back only each
// row's last logits for sampling on the CPU. Tokens stream out through `onToken` as they are drawn.
import type { Call } from '../gpu/runtime.ts';
import type { LoraSet } from '../model/lora.ts';
import { KVCache, type Plan, type Transformer } from '../model/transformer.ts';
import { Rng, sampleToken, type SamplingConfig } from './sampling.ts';

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
}

export const GENERATE_DEFAULTS: GenerateConfig = {
  maxNewTokens: 64, numSamples: 1, seed: 0, temperature: 1, topK: 0, topP: 1, stopTokenIds: [],
};

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

/** Entropy of softmax(logits) in nats, stable for large logits. */
export function entropyOf(logits: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]!);
  let z = 0, s = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i]! - m);
    z += e;
    s += e * (logits[i]! - m);
  }
  return Math.log(z) - s / z;
}

/** Keeps the plans and cache of the last shape, so repeated generations allocate nothing. */
export class Generator {
  private shape = '';
  private cache?: KVCache;
  private prefill?: Plan;
  private step?: Plan;

  /** `lora`: generate from the base with this adapter (PPO's policy); the base alone is the reference. */
  constructor(readonly model: Transformer, readonly lora?: LoraSet) {}

  private async prepare(K: number, P: number, L: number): Promise<void> {
    const key = `${K}x${P}x${L}`;
    if (key === this.shape) return;
    this.destroy();
    this.cache = new KVCache(this.model, K, L);
    this.prefill = await this.model.plan(K, P, { cache: this.cache, lora: this.lora });
    this.step = await this.model.plan(K, 1, { cache: this.cache, lora: this.lora });
    this.shape = key;
  }

  async generate(prompt: number[], cfg: GenerateConfig, onToken?: (sample: number, id: number) => void): Promise<Generation> {
    const gpu = this.model.gpu;
    const K = cfg.numSamples, P = prompt.length;
    if (!(K >= 1)) throw new Error('numSamples must be at least 1');
    if (P < 1) throw new Error('the prompt is empty');
    const L = P + cfg.maxNewTokens;
    if (L > this.model.cfg.maxPositions) {
      throw new Error(`prompt (${P} tokens) + ${cfg.maxNewTokens} new tokens exceed the model's ${this.model.cfg.maxPositions} positions`);
    }
    await this.prepare(K, P, L);
    const rngs = Array.from({ length: K }, (_, i) => Rng.forSample(cfg.seed, i));
    const out: number[][] = Array.from({ length: K }, () => []);
    const entropy: number[][] = Array.from({ length: K }, () => []);
    const finish: (FinishReason | undefined)[] = new Array(K).fill(undefined);
    const V = this.model.cfg.vocabSize;
    const run = async (plan: Plan, ids: number[], pos0: number): Promise<Float32Array> => {
      plan.setTokens(ids, pos0);
      await gpu.check('generate', () => gpu.run(plan.forward as Call[], 'generate'));
      return gpu.read(plan.logits);
    };
    let logits = await run(this.prefill!, Array.from({ length: K }, () => prompt).flat(), 0);
    for (let t = 0; t < cfg.maxNewTokens; t++) {
      const next: number[] = [];
      for (let k = 0; k < K; k++) {
        if (finish[k]) {
          next.push(out[k]![out[k]!.length - 1] ?? 0); // finished rows keep decoding a filler; it is ignored
          continue;
        }
        const row = logits.subarray(k * V, (k + 1) * V);
        const id = sampleToken(row, cfg, rngs[k]!);
        out[k]!.push(id);
        entropy[k]!.push(entropyOf(row));
        next.push(id);
        onToken?.(k, id);
        if (cfg.stopTokenIds.includes(id)) finish[k] = 'eos';
        else if (cfg.stopWhen?.(k, out[k]!)) finish[k] = 'stop';
      }
      if (finish.every((f) => f) || t === cfg.maxNewTokens - 1) break;
      if (cfg.interrupt?.()) return { ids: out, finish: finish.map((f) => f ?? 'interrupted'), entropy, interrupted: true };
      logits = await run(this.step!, next, P + t);
    }
    return { ids: out, finish: finish.map((f) => f ?? 'length'), entropy };
  }

  destroy(): void {
    this.prefill?.destroy();
    this.step?.destroy();
    this.cache?.destroy();
    this.prefill = this.step = this.cache = undefined;
    this.shape = '';
  }
}
