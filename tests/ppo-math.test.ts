// PPO math on plain arrays: hand-computed examples, finite-difference gradients, clip fractions, KL control.
import { describe, expect, it } from 'vitest';
import { AdaptiveKl, FixedKl, emaUpdate, entropyFromLogits, gae, klPenalizedRewards, policyLoss, valueLoss, whiten } from '../src/train/ppo-math.ts';

const close = (a: number[], b: number[], digits = 10) => {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(x).toBeCloseTo(b[i], digits));
};

/** Central finite differences of f at x, one coordinate at a time. */
function numericGrad(f: (x: number[]) => number, x: number[], h = 1e-6): number[] {
  return x.map((_, i) => {
    const p = x.slice();
    const m = x.slice();
    p[i] += h;
    m[i] -= h;
    return (f(p) - f(m)) / (2 * h);
  });
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const popVar = (xs: number[]) => {
  const m = mean(xs);
  return mean(xs.map((x) => (x - m) ** 2));
};

describe('klPenalizedRewards', () => {
  it('penalizes each token by beta * kl and adds the score only at the last token', () => {
    const { rewards, kl } = klPenalizedRewards(2, [-1, -2, -0.5], [-1.5, -2, -1], 0.1);
    close(kl, [0.5, 0, 0.5]);
    close(rewards, [-0.05, 0, 1.95]);
  });

  it('with equal log-probs the reward is the score at the last token and zero elsewhere', () => {
    const lp = [-0.3, -1.2, -0.7, -2];
    const { rewards, kl } = klPenalizedRewards(-1.5, lp, lp.slice(), 0.2);
    close(kl, [0, 0, 0, 0]);
    close(rewards, [0, 0, 0, -1.5]);
  });

  it('rejects mismatched lengths and empty responses', () => {
    expect(() => klPenalizedRewards(1, [0, 0], [0], 0.1)).toThrow();
    expect(() => klPenalizedRewards(1, [], [], 0.1)).toThrow();
  });
});

describe('gae', () => {
  const rewards = [1, 0, 2];
  const values = [0.5, 1, 1.5];

  it('matches a hand-computed example (gamma 1, lam 0.95)', () => {
    // deltas: [1 + 1 - 0.5, 0 + 1.5 - 1, 2 + 0 - 1.5] = [1.5, 0.5, 0.5]
    // A2 = 0.5, A1 = 0.5 + 0.95 * 0.5 = 0.975, A0 = 1.5 + 0.95 * 0.975 = 2.42625
    const { advantages, returns } = gae(rewards, values, 1, 0.95);
    close(advantages, [2.42625, 0.975, 0.5]);
    close(returns, [2.92625, 1.975, 2]);
  });

  it('with lam 1 gives reward-to-go minus values (gamma 1 and gamma 0.9)', () => {
    const g1 = gae(rewards, values, 1, 1);
    close(g1.returns, [3, 2, 2]);
    close(g1.advantages, [2.5, 1, 0.5]);
    const g = 0.9;
    const rtg = [1 + g * 0 + g * g * 2, 0 + g * 2, 2];
    const g09 = gae(rewards, values, g, 1);
    close(g09.returns, rtg);
    close(
      g09.advantages,
      rtg.map((r, i) => r - values[i]),
    );
  });

  it('with lam 0 gives the one-step TD errors', () => {
    const { advantages } = gae(rewards, values, 1, 0);
    close(advantages, [1.5, 0.5, 0.5]);
  });
});

describe('whiten', () => {
  const xs = [1, 2, 3, 4, 10, -3];

  it('gives mean 0 and variance 1', () => {
    const w = whiten(xs);
    expect(mean(w)).toBeCloseTo(0, 10);
    expect(popVar(w)).toBeCloseTo(1, 6);
    // Hand check on [1, 2, 3, 4]: mean 2.5, variance 1.25.
    close(
      whiten([1, 2, 3, 4]),
      [-1.5, -0.5, 0.5, 1.5].map((d) => d / Math.sqrt(1.25 + 1e-8)),
    );
  });

  it('shiftMean=false keeps the mean and scales to variance 1', () => {
    const w = whiten(xs, false);
    expect(mean(w)).toBeCloseTo(mean(xs), 10);
    expect(popVar(w)).toBeCloseTo(1, 6);
  });

  it('is finite for constant input and empty for empty input', () => {
    close(whiten([3, 3, 3]), [0, 0, 0]);
    close(whiten([3, 3, 3], false), [3, 3, 3]);
    expect(whiten([])).toEqual([]);
  });
});

describe('policyLoss', () => {
  const clip = 0.2;

  it('gradient matches central finite differences in the unclipped region', () => {
    const old = [-1, -2, -0.5, -3, -1.5];
    const logp = [-0.95, -2.1, -0.52, -2.9, -1.5];
    const adv = [1.2, -0.7, 0.3, -1.5, 2];
    const out = policyLoss(logp, old, adv, clip);
    expect(out.clipFrac).toBe(0);
    const num = numericGrad((lp) => policyLoss(lp, old, adv, clip).loss, logp);
    close(out.dlogp, num, 7);
    // Unclipped loss is the plain surrogate -mean(A r).
    expect(out.loss).toBeCloseTo(mean(adv.map((a, i) => -a * Math.exp(logp[i] - old[i]))), 12);
  });

  it('has zero gradient where the clipped branch is active and counts clip fraction', () => {
    const old = [0, 0, 0, 0];
    // A > 0, r = e^0.5 > 1.2: clipped. A < 0, r = e^-0.5 < 0.8: clipped.
    // A > 0, r < 0.8 and A < 0, r > 1.2: the pessimistic max keeps the unclipped branch.
    const logp = [0.5, -0.5, -0.5, 0.5];
    const adv = [1, -1, 2, -0.5];
    const out = policyLoss(logp, old, adv, clip);
    expect(out.clipFrac).toBe(0.5);
    expect(out.dlogp[0]).toBe(0);
    expect(out.dlogp[1]).toBe(0);
    expect(out.dlogp[2]).not.toBe(0);
    expect(out.dlogp[3]).not.toBe(0);
    const num = numericGrad((lp) => policyLoss(lp, old, adv, clip).loss, logp);
    close(out.dlogp, num, 7);
    expect(num[0]).toBeCloseTo(0, 9);
    expect(num[1]).toBeCloseTo(0, 9);
    // Hand-computed loss: [-1 * 1.2, 1 * 0.8, -2 e^-0.5, 0.5 e^0.5] / 4
    const expected = (-1.2 + 0.8 - 2 * Math.exp(-0.5) + 0.5 * Math.exp(0.5)) / 4;
    expect(out.loss).toBeCloseTo(expected, 12);
  });

  it('approx KL (both estimators) is zero when the policies are equal and positive otherwise', () => {
    const lp = [-1, -2, -0.5];
    const eq = policyLoss(lp, lp.slice(), [1, -1, 0.5], clip);
    expect(eq.approxKl).toBe(0);
    expect(eq.approxKlK3).toBe(0);
    expect(eq.clipFrac).toBe(0);
    expect(eq.loss).toBeCloseTo(-mean([1, -1, 0.5]), 12);
    const ne = policyLoss([-0.9, -2.2, -0.5], lp, [1, -1, 0.5], clip);
    expect(ne.approxKl).toBeCloseTo((0.5 * (0.01 + 0.04)) / 3, 12);
    const k3 = mean([0.1, -0.2, 0].map((d) => Math.exp(d) - 1 - d));
    expect(ne.approxKlK3).toBeCloseTo(k3, 12);
    expect(ne.approxKlK3).toBeGreaterThan(0);
  });
});

describe('valueLoss', () => {
  const clip = 0.2;

  it('matches a hand-computed example with gradient zero where clipped', () => {
    const values = [1, 2, 0.5, 3];
    const old = [1.1, 1.5, 0.5, 2];
    const rets = [0.8, 2.5, 1, 2];
    // t0: inside the clip range, (0.2)^2. t1: clipped to 1.7, (1.7 - 2.5)^2 = 0.64 > 0.25: clipped branch.
    // t2: (0.5)^2. t3: clipped to 2.2, (0.2)^2 < 1: unclipped branch.
    const out = valueLoss(values, old, rets, clip);
    expect(out.loss).toBeCloseTo((0.5 * (0.04 + 0.64 + 0.25 + 1)) / 4, 12);
    expect(out.clipFrac).toBe(0.25);
    close(out.dvalues, [0.2 / 4, 0, -0.5 / 4, 1 / 4]);
    const num = numericGrad((v) => valueLoss(v, old, rets, clip).loss, values);
    close(out.dvalues, num, 7);
  });

  it('gradient matches central finite differences in the unclipped region', () => {
    const values = [0.3, -1.2, 2.05, 0.7];
    const old = [0.25, -1.1, 2.1, 0.7];
    const rets = [1, -2, 0.5, 0.1];
    const out = valueLoss(values, old, rets, clip);
    expect(out.clipFrac).toBe(0);
    const num = numericGrad((v) => valueLoss(v, old, rets, clip).loss, values);
    close(out.dvalues, num, 7);
    close(
      out.dvalues,
      values.map((v, i) => (v - rets[i]) / 4),
    );
  });
});

describe('entropyFromLogits', () => {
  it('is log V for uniform logits', () => {
    expect(entropyFromLogits(new Float32Array(10))).toBeCloseTo(Math.log(10), 10);
    expect(entropyFromLogits([3, 3, 3, 3, 3])).toBeCloseTo(Math.log(5), 10);
  });

  it('is near 0 for a one-hot-ish distribution, finite for large logits', () => {
    const h = entropyFromLogits([100, 0, 0, 0]);
    expect(h).toBeGreaterThanOrEqual(0);
    expect(h).toBeLessThan(1e-30);
    const big = entropyFromLogits(Float32Array.from([1e4, 1e4 - 1, -1e4, 5e3]));
    expect(Number.isFinite(big)).toBe(true);
    // Same as the two-way distribution softmax([0, -1]).
    const p = 1 / (1 + Math.exp(-1));
    expect(big).toBeCloseTo(-(p * Math.log(p) + (1 - p) * Math.log(1 - p)), 10);
  });

  it('matches the direct formula and ignores -Infinity logits', () => {
    const z = [0.5, -1, 2, 0.1, -0.3];
    const s = z.reduce((a, x) => a + Math.exp(x), 0);
    const direct = -z.reduce((a, x) => a + (Math.exp(x) / s) * (x - Math.log(s)), 0);
    expect(entropyFromLogits(z)).toBeCloseTo(direct, 12);
    expect(entropyFromLogits([...z, -Infinity])).toBeCloseTo(direct, 12);
  });
});

describe('KL controllers', () => {
  it('AdaptiveKl raises beta above target and lowers it below', () => {
    const c = new AdaptiveKl(0.1, 6, 10000);
    c.update(12, 256); // error clipped to +0.2
    expect(c.value).toBeCloseTo(0.1 * (1 + (0.2 * 256) / 10000), 14);
    const d = new AdaptiveKl(0.1, 6, 10000);
    d.update(6.6, 100); // error 0.1
    expect(d.value).toBeCloseTo(0.1 * (1 + (0.1 * 100) / 10000), 14);
    const e = new AdaptiveKl(0.1, 6, 10000);
    e.update(0, 256); // error clipped to -0.2
    expect(e.value).toBeCloseTo(0.1 * (1 - (0.2 * 256) / 10000), 14);
    expect(e.value).toBeLessThan(0.1);
    const f = new AdaptiveKl(0.1, 6, 10000);
    f.update(6, 256);
    expect(f.value).toBe(0.1);
  });

  it('FixedKl leaves beta unchanged', () => {
    const c = new FixedKl(0.05);
    c.update(100, 256);
    c.update(0, 256);
    expect(c.value).toBe(0.05);
  });
});

describe('emaUpdate', () => {
  it('updates in place element-wise and converges to constant weights', () => {
    const ema = Float32Array.from([1, 2, -4]);
    const w = Float32Array.from([3, 6, 0]);
    emaUpdate(ema, w, 0.5);
    close(Array.from(ema), [2, 4, -2], 6);
    for (let i = 0; i < 5000; i++) emaUpdate(ema, w, 0.992);
    close(Array.from(ema), [3, 6, 0], 4);
    emaUpdate(ema, Float32Array.from([10, 10, 10]), 0.992);
    close(Array.from(ema), [3 + 0.008 * 7, 6 + 0.008 * 4, 0.08], 4);
    expect(() => emaUpdate(ema, new Float32Array(2), 0.9)).toThrow();
  });
});
