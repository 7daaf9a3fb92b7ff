// GRPO and RLOO math on plain arrays, no GPU: rewards from several reward functions, group-relative
// advantages, and the clipped surrogate losses with their gradients with respect to each token's log p.
// Names and semantics follow TRL's GRPOTrainer and RLOOTrainer (GRPOConfig / RLOOConfig fields):
//
//  - rewards: r_i = sum_f w_f r_f,i over the reward functions that scored sample i (a function returns
//    null for samples it does not apply to); a sample no function scored has reward NaN and advantage 0.
//  - GRPO advantages: A_i = r_i - mean(group of i), divided by std(group) + 1e-4 (`scale_rewards:
//    "group"`), by the std of the whole batch + 1e-4 ("batch"), or not at all ("none", Dr. GRPO). The
//    stds are Bessel-corrected, as torch's.
//  - RLOO advantages: A_i = r_i - mean of the other samples of the prompt (leave-one-out), the rewards
//    having the sequence KL folded in first (r_i - beta * sum_t (old_t - ref_t)); optionally whitened
//    over the batch (`normalize_advantages`).
//  - GRPO loss per token: -min(rho A, clip(rho, 1 - epsilon, 1 + epsilon_high) A) + beta k3, with
//    rho = exp(logp - old_logp) and k3 = exp(ref - logp) - (ref - logp) - 1 (Schulman's estimator of
//    KL(pi || ref)); then normalised by `loss_type`: "grpo" averages each sequence over its tokens and
//    the sequences; "bnpo" and "dapo" divide the sum by the batch's tokens; "dr_grpo" by rows x
//    max_completion_length (a constant, so long and short answers weigh alike).
//  - RLOO loss per sequence: the same clipped surrogate on the sequence's ratio exp(sum_t logp - sum_t
//    old), averaged over sequences.
//
// Convention: one row per sampled completion, rows of one prompt adjacent (G = num_generations rows per
// group); per-token arrays hold the completion's tokens only.

import type { LossType, ScaleRewards } from '../shared/schema.ts';
// The options' values are the schema's (src/shared/schema.ts), which the page reads without this file.
export { LOSS_TYPES, SCALE_REWARDS, type LossType, type ScaleRewards } from '../shared/schema.ts';

/** Mean of the finite entries (NaN when there are none). */
export function nanMean(xs: ArrayLike<number>): number {
  let s = 0,
    n = 0;
  for (let i = 0; i < xs.length; i++)
    if (!Number.isNaN(xs[i]!)) {
      s += xs[i]!;
      n++;
    }
  return n ? s / n : NaN;
}

/** Bessel-corrected standard deviation of the non-NaN entries (NaN for fewer than two). */
export function nanStd(xs: ArrayLike<number>): number {
  const m = nanMean(xs);
  let s = 0,
    n = 0;
  for (let i = 0; i < xs.length; i++)
    if (!Number.isNaN(xs[i]!)) {
      s += (xs[i]! - m) ** 2;
      n++;
    }
  return n > 1 ? Math.sqrt(s / (n - 1)) : NaN;
}

/**
 * The weighted sum of the reward functions' scores per sample. `scores[f][i]` is function f's score of
 * sample i, or null where f does not apply; weights default to 1 each. A sample no function scored is NaN.
 */
export function combineRewards(scores: (number | null)[][], weights?: number[]): number[] {
  if (!scores.length) throw new Error('combineRewards: no reward functions');
  const n = scores[0]!.length;
  if (weights && weights.length !== scores.length) throw new Error(`reward_weights has ${weights.length} entries for ${scores.length} reward functions`);
  return Array.from({ length: n }, (_, i) => {
    let s = 0,
      any = false;
    scores.forEach((fn, f) => {
      const x = fn[i];
      if (x === null || x === undefined || Number.isNaN(x)) return;
      s += (weights?.[f] ?? 1) * x;
      any = true;
    });
    return any ? s : NaN;
  });
}

function groups(n: number, G: number, who: string): number {
  if (!(Number.isInteger(G) && G >= 1)) throw new Error(`${who}: num_generations ${G} is not an integer >= 1`);
  if (n % G) throw new Error(`${who}: ${n} rewards do not make groups of ${G}`);
  return n / G;
}

export interface GroupStats {
  advantages: number[];
  /** Per sample: the mean and std of its group's rewards (TRL logs their means as reward and reward_std). */
  mean: number[];
  std: number[];
  /** Share of groups whose rewards are all equal (they teach nothing: every advantage is 0). */
  fracZeroStd: number;
}

/** GRPO's group-relative advantages (TRL's scale_rewards). NaN rewards get advantage 0. */
export function grpoAdvantages(rewards: number[], G: number, scale: ScaleRewards): GroupStats {
  const P = groups(rewards.length, G, 'grpoAdvantages');
  const mean: number[] = [],
    std: number[] = [];
  let zero = 0;
  for (let p = 0; p < P; p++) {
    const g = rewards.slice(p * G, (p + 1) * G);
    const m = nanMean(g),
      s = nanStd(g);
    // torch.isclose(std, 0) with its default tolerances; a group of one (or one finite reward) has no spread
    if (!(Math.abs(s) > 1e-8)) zero++;
    for (let k = 0; k < G; k++) {
      mean.push(m);
      std.push(s);
    }
  }
  const batchStd = nanStd(rewards);
  const advantages = rewards.map((r, i) => {
    if (Number.isNaN(r)) return 0;
    const a = r - mean[i]!;
    const d = scale === 'group' ? std[i]! : scale === 'batch' ? batchStd : 1;
    if (scale === 'none') return a;
    return Number.isNaN(d) ? 0 : a / (d + 1e-4);
  });
  return { advantages, mean, std, fracZeroStd: zero / P };
}

/**
 * RLOO's leave-one-out advantages: each sample's reward minus the mean of the other samples of its
 * prompt (NaN rewards take no part and get advantage 0); with `normalize`, whitened over the batch
 * ((A - mean) / (std + 1e-4)). G = 1 has no baseline: the advantage is the reward itself.
 */
export function rlooAdvantages(rewards: number[], G: number, normalize: boolean): number[] {
  const P = groups(rewards.length, G, 'rlooAdvantages');
  const adv = new Array<number>(rewards.length).fill(0);
  for (let p = 0; p < P; p++) {
    const idx = Array.from({ length: G }, (_, k) => p * G + k).filter((i) => !Number.isNaN(rewards[i]!));
    const sum = idx.reduce((s, i) => s + rewards[i]!, 0);
    for (const i of idx) adv[i] = idx.length > 1 ? rewards[i]! - (sum - rewards[i]!) / (idx.length - 1) : rewards[i]!;
  }
  if (!normalize) return adv;
  const m = adv.reduce((a, b) => a + b, 0) / adv.length,
    s = nanStd(adv);
  return adv.map((a) => (a - m) / ((Number.isNaN(s) ? 0 : s) + 1e-4));
}

/** One sampled completion as the losses see it: log p of each token now, when sampled, and under the reference. */
export interface PgRow {
  logp: number[];
  old: number[];
  ref?: number[]; // needed when beta > 0
  advantage: number;
}

export interface GrpoLossConfig {
  lossType: LossType;
  epsilon: number; // 0.2: the ratio's lower clip is 1 - epsilon
  epsilonHigh: number; // the upper clip is 1 + epsilon_high (= epsilon unless set; DAPO's 0.28)
  beta: number; // KL coefficient; 0 = no KL term (and no reference needed)
  maxCompletionLength: number; // dr_grpo's constant denominator
}

export interface PgLoss {
  loss: number;
  /** d loss / d logp for each token of each row. */
  dlogp: number[][];
  /** Mean per-token k3 KL to the reference (0 without one). */
  kl: number;
  /** Shares of the completion tokens (GRPO) or sequences (RLOO) whose ratio was clipped (TRL's clip_ratio/*). */
  clipLow: number;
  clipHigh: number;
  clipRegion: number;
}

const surrogate = (rho: number, a: number, lo: number, hi: number) => {
  const clipped = Math.min(hi, Math.max(lo, rho));
  // -min(rho a, clip(rho) a): where the unclipped term is the smaller, its gradient is -a rho d(log rho)
  const unclippedWins = rho * a <= clipped * a;
  return { loss: -Math.min(rho * a, clipped * a), dlog: unclippedWins ? -a * rho : 0, low: rho < lo && a < 0, high: rho > hi && a > 0 };
};

/** GRPO's loss over a batch of rows (TRL's per-token loss and loss_type normalisations). */
export function grpoLoss(rows: PgRow[], c: GrpoLossConfig): PgLoss {
  const lo = 1 - c.epsilon,
    hi = 1 + c.epsilonHigh;
  const tokens = rows.reduce((n, r) => n + r.logp.length, 0);
  let loss = 0,
    kl = 0,
    low = 0,
    high = 0;
  const dlogp = rows.map((r) => {
    const n = r.logp.length;
    if (r.old.length !== n || (c.beta > 0 && r.ref?.length !== n)) throw new Error("grpoLoss: a row's log-prob arrays differ in length");
    // what one token's loss is divided by
    const denom = c.lossType === 'grpo' ? Math.max(1, n) * rows.length : c.lossType === 'dr_grpo' ? rows.length * c.maxCompletionLength : Math.max(1, tokens);
    return r.logp.map((lp, t) => {
      const s = surrogate(Math.exp(lp - r.old[t]!), r.advantage, lo, hi);
      let l = s.loss,
        d = s.dlog;
      if (s.low) low++;
      if (s.high) high++;
      if (c.beta > 0) {
        const x = r.ref![t]! - lp; // log(ref / pi)
        const k3 = Math.exp(x) - x - 1;
        kl += k3;
        l += c.beta * k3;
        d += c.beta * (1 - Math.exp(x));
      }
      loss += l / denom;
      return d / denom;
    });
  });
  const T = Math.max(1, tokens);
  return { loss, dlogp, kl: kl / T, clipLow: low / T, clipHigh: high / T, clipRegion: (low + high) / T };
}

/**
 * RLOO's loss: the clipped surrogate on each sequence's ratio exp(sum logp - sum old), averaged over the
 * rows; every token of a row gets the same gradient (d sum logp / d logp_t = 1). The KL is in the rewards.
 */
export function rlooLoss(rows: PgRow[], c: { epsilon: number; epsilonHigh: number }): PgLoss {
  const lo = 1 - c.epsilon,
    hi = 1 + c.epsilonHigh,
    R = Math.max(1, rows.length);
  let loss = 0,
    low = 0,
    high = 0;
  const dlogp = rows.map((r) => {
    if (r.old.length !== r.logp.length) throw new Error("rlooLoss: a row's log-prob arrays differ in length");
    const logRatio = r.logp.reduce((s, x, t) => s + x - r.old[t]!, 0);
    const s = surrogate(Math.exp(logRatio), r.advantage, lo, hi);
    loss += s.loss / R;
    if (s.low) low++;
    if (s.high) high++;
    return r.logp.map(() => s.dlog / R);
  });
  return { loss, dlogp, kl: 0, clipLow: low / R, clipHigh: high / R, clipRegion: (low + high) / R };
}

/** RLOO's rewards with the KL folded in: r_i - beta * sum_t (old_t - ref_t); returns them and each row's KL. */
export function rlooRewards(rewards: number[], old: number[][], ref: number[][] | undefined, beta: number): { rewards: number[]; kl: number[] } {
  const kl = old.map((o, i) => (ref ? o.reduce((s, x, t) => s + x - ref[i]![t]!, 0) : 0));
  return { rewards: rewards.map((r, i) => r - beta * kl[i]!), kl };
}
