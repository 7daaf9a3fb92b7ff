// GRPO / RLOO math against hand-computed values (TRL's semantics), and each loss's gradient against
// central differences of the loss itself.
import { describe, expect, it } from 'vitest';
import {
  combineRewards,
  grpoAdvantages,
  grpoLoss,
  LOSS_TYPES,
  nanMean,
  nanStd,
  rlooAdvantages,
  rlooLoss,
  rlooRewards,
  type GrpoLossConfig,
  type PgRow,
} from '../src/train/grpo-math.ts';
import { Rng } from '../src/shared/sampling.ts';

const close = (a: number[], b: number[], tol = 1e-9) => {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(Math.abs(x - b[i]!), `entry ${i}: ${x} vs ${b[i]}`).toBeLessThan(tol));
};

describe('rewards', () => {
  it('weights each function and skips the nulls; a sample no function scored is NaN', () => {
    const r = combineRewards(
      [
        [1, null, 2, null],
        [0.5, 3, null, null],
      ],
      [2, -1],
    );
    close(r.slice(0, 3), [2 * 1 - 0.5, -3, 4]);
    expect(r[3]).toBeNaN();
    close(
      combineRewards([
        [1, 2],
        [3, 4],
      ]),
      [4, 6],
    );
    expect(() => combineRewards([[1]], [1, 2])).toThrow(/reward_weights has 2 entries for 1/);
  });
  it('nanMean and the Bessel-corrected nanStd ignore NaN', () => {
    expect(nanMean([1, NaN, 3])).toBe(2);
    expect(nanStd([1, NaN, 3])).toBeCloseTo(Math.SQRT2, 12);
    expect(nanStd([5])).toBeNaN();
  });
});

describe('GRPO advantages (scale_rewards)', () => {
  const r = [1, 0, 0, 0, 2, 2, 2, 2];
  it('group: (r - group mean) / (group std + 1e-4); an all-equal group is 0 and counted in frac_reward_zero_std', () => {
    const a = grpoAdvantages(r, 4, 'group');
    close(a.advantages, [1.4997000599880024, -0.4999000199960008, -0.4999000199960008, -0.4999000199960008, 0, 0, 0, 0], 1e-12);
    expect(a.fracZeroStd).toBe(0.5);
    close(a.mean, [0.25, 0.25, 0.25, 0.25, 2, 2, 2, 2]);
    close(a.std.slice(0, 1), [0.5]);
  });
  it('batch: (r - group mean) / (batch std + 1e-4)', () => {
    close(grpoAdvantages(r, 4, 'batch').advantages, [0.7567111127326008, -0.25223703757753363, -0.25223703757753363, -0.25223703757753363, 0, 0, 0, 0], 1e-12);
  });
  it('none (Dr. GRPO): r - group mean', () => {
    close(grpoAdvantages(r, 4, 'none').advantages, [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0]);
  });
  it('a NaN reward takes no part in its group and gets advantage 0', () => {
    const a = grpoAdvantages([1, NaN, 3, 2], 4, 'none');
    close(a.advantages, [-1, 0, 1, 0]);
  });
  it('refuses rewards that do not make whole groups', () => {
    expect(() => grpoAdvantages([1, 2, 3], 2, 'group')).toThrow(/3 rewards do not make groups of 2/);
  });
});

describe('RLOO advantages', () => {
  it('reward minus the mean of the other samples of the prompt', () => {
    close(rlooAdvantages([1, 0, 0, 0, 2, 2, 2, 2], 4, false), [1, -1 / 3, -1 / 3, -1 / 3, 0, 0, 0, 0]);
    close(rlooAdvantages([3, 1], 2, false), [2, -2]); // "which of these two is better"
  });
  it('normalize_advantages whitens over the batch', () => {
    close(
      rlooAdvantages([1, 0, 0, 0, 2, 2, 2, 2], 4, true),
      [2.290762967742976, -0.7635876559143252, -0.7635876559143252, -0.7635876559143252, 0, 0, 0, 0],
      1e-12,
    );
  });
  it('folds beta x the sequence KL (old - ref, summed) into the rewards', () => {
    const { rewards, kl } = rlooRewards([1, 2], [[-1, -2], [-0.5]], [[-1.5, -2.5], [-1]], 0.05);
    close(kl, [1, 0.5]);
    close(rewards, [1 - 0.05, 2 - 0.025]);
  });
});

const cfg = (loss_type: GrpoLossConfig['lossType'], extra: Partial<GrpoLossConfig> = {}): GrpoLossConfig => ({
  lossType: loss_type,
  epsilon: 0.2,
  epsilonHigh: 0.2,
  beta: 0,
  maxCompletionLength: 4,
  ...extra,
});

describe('GRPO loss (loss_type)', () => {
  // on-policy: ratio 1, per-token loss -A; two rows of 2 and 1 tokens with advantages 1 and -1
  const rows: PgRow[] = [
    { logp: [-1, -2], old: [-1, -2], advantage: 1 },
    { logp: [-0.5], old: [-0.5], advantage: -1 },
  ];
  it('grpo: each sequence averaged over its tokens, then over sequences', () => {
    const l = grpoLoss(rows, cfg('grpo'));
    expect(l.loss).toBeCloseTo(0, 12);
    close(l.dlogp.flat(), [-0.25, -0.25, 0.5]);
  });
  it("bnpo and dapo: the sum over the batch's tokens", () => {
    for (const t of ['bnpo', 'dapo'] as const) {
      const l = grpoLoss(rows, cfg(t));
      expect(l.loss).toBeCloseTo(-1 / 3, 12);
      close(l.dlogp.flat(), [-1 / 3, -1 / 3, 1 / 3]);
    }
  });
  it('dr_grpo: the sum over rows x max_completion_length', () => {
    const l = grpoLoss(rows, cfg('dr_grpo'));
    expect(l.loss).toBeCloseTo(-1 / 8, 12);
    close(l.dlogp.flat(), [-1 / 8, -1 / 8, 1 / 8]);
  });
  it('clips the ratio at 1 - epsilon and 1 + epsilon_high, and counts the clipped tokens as TRL does', () => {
    const up = Math.log(1.5),
      down = Math.log(0.5);
    const l = grpoLoss(
      [
        { logp: [up], old: [0], advantage: 1 }, // 1.5 > 1.3 with A > 0: clipped high, no gradient
        { logp: [up], old: [0], advantage: -1 }, // A < 0: min picks 1.5 A, unclipped
        { logp: [down], old: [0], advantage: -1 }, // 0.5 < 0.8 with A < 0: clipped low
        { logp: [down], old: [0], advantage: 1 }, // A > 0: min picks 0.5 A
      ],
      cfg('bnpo', { epsilonHigh: 0.3 }),
    );
    close(l.dlogp.flat(), [0, 1.5 / 4, 0, -0.5 / 4]);
    expect(l.loss).toBeCloseTo((-1.3 + 1.5 + 0.8 - 0.5) / 4, 12);
    expect([l.clipLow, l.clipHigh, l.clipRegion]).toEqual([0.25, 0.25, 0.5]);
  });
  it('beta adds the k3 estimator of KL to the reference, with its gradient beta (1 - ref / pi)', () => {
    const l = grpoLoss([{ logp: [-1], old: [-1], ref: [-1 + Math.log(2)], advantage: 0 }], cfg('grpo', { beta: 0.1 }));
    expect(l.kl).toBeCloseTo(1 - Math.log(2), 12);
    expect(l.loss).toBeCloseTo(0.1 * (1 - Math.log(2)), 12);
    close(l.dlogp.flat(), [0.1 * (1 - 2)]);
  });
});

describe('RLOO loss', () => {
  it("clips the sequence ratio; every token of a row gets the row's gradient", () => {
    const l = rlooLoss(
      [
        { logp: [-1, -2], old: [-1, -2], advantage: 2 }, // ratio 1: loss -2, d = -2 / rows
        { logp: [Math.log(0.25), 0], old: [0, 0], advantage: -1 }, // ratio 0.25 < 0.8, A < 0: clipped low
      ],
      { epsilon: 0.2, epsilonHigh: 0.2 },
    );
    expect(l.loss).toBeCloseTo((-2 + 0.8) / 2, 12);
    close(l.dlogp.flat(), [-1, -1, 0, 0]);
    expect(l.clipLow).toBe(0.5);
  });
});

describe("every loss's gradient matches central differences of the loss", () => {
  const rng = new Rng(7);
  const u = () => rng.next() * 2 - 1;
  const rows: PgRow[] = [3, 1, 5, 2].map((n) => ({
    logp: Array.from({ length: n }, () => -1 + 0.3 * u()),
    old: Array.from({ length: n }, () => -1 + 0.3 * u()),
    ref: Array.from({ length: n }, () => -1 + 0.3 * u()),
    advantage: 2 * u(),
  }));
  const check = (f: (rs: PgRow[]) => { loss: number; dlogp: number[][] }) => {
    const g = f(rows).dlogp;
    const h = 1e-6;
    rows.forEach((r, i) =>
      r.logp.forEach((x, t) => {
        const at = (v: number) => f(rows.map((q, j) => (j === i ? { ...q, logp: q.logp.map((y, s) => (s === t ? v : y)) } : q))).loss;
        expect(g[i]![t]!).toBeCloseTo((at(x + h) - at(x - h)) / (2 * h), 6);
      }),
    );
  };
  for (const t of LOSS_TYPES) it(`GRPO ${t}, beta 0.04`, () => check((rs) => grpoLoss(rs, cfg(t, { beta: 0.04, epsilonHigh: 0.28 }))));
  it('RLOO', () => check((rs) => rlooLoss(rs, { epsilon: 0.2, epsilonHigh: 0.2 })));
});
