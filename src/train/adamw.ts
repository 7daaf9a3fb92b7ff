// The optimizer step over the whole parameter table: global gradient norm (with clipping and the
// non-finite check) then AdamW per arena, decayed and non-decayed apart. All on the GPU, no readback:
// the clip scale and the "bad step" flag stay in a small buffer the AdamW kernel reads.
import type { Call, Gpu, View } from '../gpu/runtime.ts';
import type { ParamTable } from '../model/params.ts';
import { adamw, gradNorm, normPartials } from '../ops/optim.ts';

export interface AdamWConfig {
  lr: number; // peak learning rate
  beta1: number; // 0.9
  beta2: number; // 0.95 (GPT-3 / InstructGPT)
  eps: number; // 1e-8
  weightDecay: number; // 0.1 on matrices; biases, norms and nothing else decay-free
  maxGradNorm: number; // 1.0; 0 disables clipping
}

/** A parameter table, or one with its own learning-rate multiplier. */
export type TableGroup = ParamTable | { table: ParamTable; lrScale: number };

export const ADAMW_DEFAULTS: AdamWConfig = { lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1.0 };

export class AdamW {
  /** [norm, clip scale, bad] after the norm pass. */
  readonly clip: View;
  private constructor(
    readonly calls: Call[],
    private readonly setters: ((step: number, lr: number) => void)[],
    clip: View,
    private readonly gpu: Gpu,
    private readonly scratch: View[],
  ) {
    this.clip = clip;
  }

  /**
   * One optimizer over one or more parameter tables (e.g. an adapter and its score head): one global norm.
   * A table given as `{ table, lrScale }` steps at lrScale x the learning rate (a head that learns faster).
   */
  static async create(gpu: Gpu, tables: TableGroup | TableGroup[], cfg: AdamWConfig): Promise<AdamW> {
    const list = (Array.isArray(tables) ? tables : [tables]).map((t) => ('table' in t ? t : { table: t, lrScale: 1 }));
    const views = (slot: 'param' | 'grad' | 'm' | 'v') => list.flatMap(({ table, lrScale }) => table.arenaViews(slot).map((a) => ({ ...a, lrScale })));
    const grads = views('grad');
    const clip = gpu.tensor(4, 'clip');
    const partials = gpu.tensor(2 * normPartials(grads.map((g) => g.view)), 'norm_partials');
    const calls = await gradNorm(gpu, { clip, partials, grads: grads.map((g) => g.view), maxNorm: cfg.maxGradNorm });
    const setters: ((step: number, lr: number) => void)[] = [];
    const [p, m, v] = [views('param'), views('m'), views('v')];
    for (let i = 0; i < grads.length; i++) {
      const a = await adamw(gpu, {
        param: p[i]!.view,
        grad: grads[i]!.view,
        m: m[i]!.view,
        v: v[i]!.view,
        clip,
        hyper: { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: grads[i]!.decay ? cfg.weightDecay : 0 },
      });
      calls.push(...a.calls);
      const scale = grads[i]!.lrScale;
      setters.push(scale === 1 ? a.set : (step, lr) => a.set(step, lr * scale));
    }
    return new AdamW(calls, setters, clip, gpu, [clip, partials]);
  }

  /** Sets the step number (from 1, for bias correction) and learning rate of the next `calls`. */
  prepare(step: number, lr: number): void {
    for (const s of this.setters) s(step, lr);
  }

  /** Frees what it allocated (its norm scratch and uniforms); the tables' moments are theirs. */
  destroy(): void {
    this.gpu.release(this.calls.splice(0));
    for (const v of this.scratch.splice(0)) this.gpu.destroy(v.buf);
  }

  /** Reads [grad norm, clip scale, whether the step was skipped for a NaN/Inf]. */
  async status(): Promise<{ gradNorm: number; scale: number; skipped: boolean }> {
    const c = await this.gpu.read(this.clip);
    return { gradNorm: c[0]!, scale: c[1]!, skipped: c[2] !== 0 };
  }
}
