// A step costs the tokens it holds. A trainer's plan is built for its longest sequences (seq_len, 256 by
// default), but a batch of ranked completions of about 50 tokens fills a fifth of that: computing every
// padded position made a reward-model step five times the work it needed. A PlanSet holds the full plan
// and, built when first needed, plans for shorter lengths (the buckets: 16, 24, 32, 48, 64, 96, 128, ...,
// each at most 1.5x the one before, then seq_len itself); each batch runs on the shortest that holds its
// longest row. Rows are right-padded and attention is causal, so a position's result does not depend on
// the padding after it: the shorter plan computes the same numbers for the real tokens. The shorter
// plans use the full plan's buffers (Plan's `share`), so they cost no memory beyond it; a trainer uses
// one of them at a time, which is what makes that safe.
import type { Plan, PlanOptions, Transformer } from './transformer.ts';

/** The lengths a batch is rounded up to, for rows of at most `maxT` tokens: 16, 24, 32, 48, ... below maxT, then maxT. */
export function bucketLengths(maxT: number): number[] {
  const out: number[] = [];
  for (let p = 16; p < maxT; p *= 2) {
    out.push(p);
    if (p * 1.5 < maxT) out.push(p * 1.5);
  }
  out.push(maxT);
  return out;
}

/** Positions computed and real tokens held, summed over the batches a PlanSet ran. */
export interface PlanUse {
  batches: number;
  positions: number;
  tokens: number;
}

export class PlanSet {
  /** Off: every batch runs at the full length, as before plan sets (for measuring what they save). */
  static bucketing = true;
  readonly buckets: number[];
  private readonly plans = new Map<number, Plan>();
  private readonly building = new Map<number, Promise<Plan>>();
  readonly use: PlanUse = { batches: 0, positions: 0, tokens: 0 };

  private constructor(
    readonly full: Plan,
    private readonly opts: Omit<PlanOptions, 'share'>,
  ) {
    this.buckets = PlanSet.bucketing ? bucketLengths(full.T) : [full.T];
    this.plans.set(full.T, full);
  }

  /** The full plan (B x maxT, the memory a run needs) is built now; shorter ones when a batch first needs them. */
  static async create(model: Transformer, B: number, maxT: number, opts: Omit<PlanOptions, 'share' | 'cache'> = {}): Promise<PlanSet> {
    return new PlanSet(await model.plan(B, maxT, opts), opts);
  }

  get B(): number {
    return this.full.B;
  }

  get maxT(): number {
    return this.full.T;
  }

  /** The bucket that holds `len` tokens. */
  lengthFor(len: number): number {
    if (!(len <= this.maxT)) throw new Error(`a row of ${len} tokens is longer than the plan's ${this.maxT}`);
    return this.buckets.find((b) => b >= len)!;
  }

  /**
   * The plan for a batch whose rows hold `lengths` tokens (each already cut to maxT): the shortest
   * bucket that holds the longest. Counts the positions it computes and the tokens it holds.
   */
  async fit(lengths: readonly number[]): Promise<Plan> {
    const longest = lengths.reduce((m, n) => Math.max(m, n), 1);
    const T = this.lengthFor(longest);
    const plan = this.plans.get(T) ?? (await this.build(T));
    this.use.batches++;
    this.use.positions += plan.BT;
    this.use.tokens += lengths.reduce((s, n) => s + n, 0);
    return plan;
  }

  private build(T: number): Promise<Plan> {
    let p = this.building.get(T);
    if (!p) {
      p = this.full.model.plan(this.B, T, { ...this.opts, share: this.full }).then((plan) => {
        this.plans.set(T, plan);
        this.building.delete(T);
        return plan;
      });
      this.building.set(T, p);
    }
    return p;
  }

  destroy(): void {
    for (const [T, p] of this.plans) if (T !== this.full.T) p.destroy();
    this.full.destroy();
    this.plans.clear();
  }
}

/** The plan use of several plan sets (or of trainers that hold some) together: a PPO step runs four. */
export function totalUse(sets: readonly ({ use: PlanUse } | { planUse: PlanUse } | undefined)[]): PlanUse {
  const out: PlanUse = { batches: 0, positions: 0, tokens: 0 };
  for (const s of sets) {
    if (!s) continue;
    const u = 'use' in s ? s.use : s.planUse;
    for (const k of ['batches', 'positions', 'tokens'] as const) out[k] += u[k];
  }
  return out;
}
