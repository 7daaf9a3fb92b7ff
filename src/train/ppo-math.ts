// PPO math for the RLHF stage (InstructGPT / Ziegler et al. 2019), on plain number arrays, no GPU.
//
// Conventions: every per-sequence array is indexed by response token t = 0..n-1 of one sample (the prompt
// tokens are not included). Batch-level functions (whiten, policyLoss, valueLoss) take the tokens of a whole
// minibatch concatenated into one flat array of length N; their means are over those N tokens.

function checkSameLength(name: string, n: number, ...arrays: ArrayLike<number>[]): void {
  for (const a of arrays) {
    if (a.length !== n) throw new Error(`${name}: array lengths differ (${a.length} vs ${n})`);
  }
}

/**
 * Per-token reward: r_t = -beta * (logp_t - ref_logp_t), plus the reward-model score added at the last token
 * (InstructGPT / Ziegler et al.). Returns rewards and the per-token KL estimate kl_t = logp_t - ref_logp_t.
 *
 * Shapes: logp[n], refLogp[n] (log-probs of the sampled response tokens under the policy that sampled them
 * and under the frozen reference/SFT model); returns rewards[n], kl[n]. n must be >= 1 (the score needs a
 * token to sit on).
 */
export function klPenalizedRewards(score: number, logp: number[], refLogp: number[], beta: number): { rewards: number[]; kl: number[] } {
  const n = logp.length;
  checkSameLength('klPenalizedRewards', n, refLogp);
  if (n === 0) throw new Error('klPenalizedRewards: empty response (no token to carry the score)');
  const kl = new Array<number>(n);
  const rewards = new Array<number>(n);
  for (let t = 0; t < n; t++) {
    kl[t] = logp[t] - refLogp[t];
    rewards[t] = -beta * kl[t];
  }
  rewards[n - 1] += score;
  return { rewards, kl };
}

/**
 * GAE (Schulman et al. 2016): delta_t = r_t + gamma V_{t+1} - V_t (V_n = 0, the episode ends after the last
 * response token), A_t = sum_l (gamma lam)^l delta_{t+l}; returns advantages and returns = A + V.
 *
 * Shapes: rewards[n], values[n] (value head outputs at each response token); returns advantages[n], returns[n].
 */
export function gae(rewards: number[], values: number[], gamma: number, lam: number): { advantages: number[]; returns: number[] } {
  const n = rewards.length;
  checkSameLength('gae', n, values);
  const advantages = new Array<number>(n);
  const returns = new Array<number>(n);
  let last = 0;
  for (let t = n - 1; t >= 0; t--) {
    const nextV = t + 1 < n ? values[t + 1] : 0;
    const delta = rewards[t] + gamma * nextV - values[t];
    last = delta + gamma * lam * last;
    advantages[t] = last;
    returns[t] = last + values[t];
  }
  return { advantages, returns };
}

/**
 * Whitening over all tokens of a batch: (x - mean) / sqrt(var + 1e-8), optionally keeping the mean
 * (shiftMean=false, as TRL does for rewards, adds the mean back after scaling). The variance is the population
 * variance (divide by N), so the result has mean 0 and variance ~1 exactly.
 *
 * Shapes: xs[N] (all tokens of the batch, flattened); returns a new array [N]. Empty input gives [].
 */
export function whiten(xs: number[], shiftMean = true): number[] {
  const n = xs.length;
  if (n === 0) return [];
  let mean = 0;
  for (const x of xs) mean += x;
  mean /= n;
  let variance = 0;
  for (const x of xs) variance += (x - mean) * (x - mean);
  variance /= n;
  const inv = 1 / Math.sqrt(variance + 1e-8);
  const add = shiftMean ? 0 : mean;
  return xs.map((x) => (x - mean) * inv + add);
}

/**
 * Clipped surrogate (PPO): per token loss = max(-A r, -A clip(r, 1-eps, 1+eps)), r = exp(logp - oldLogp);
 * returns the mean loss, d loss / d logp per token (0 where the clipped branch is active), the clip fraction,
 * approx KL = mean(0.5 (logp - oldLogp)^2) and the k3 estimator mean((r - 1) - log r) as approxKlK3.
 *
 * Shapes: logp[N] (current policy), oldLogp[N] (policy at rollout time), adv[N] (advantages, usually
 * whitened); all over the N tokens of a minibatch. dlogp[N] is the gradient of the *mean* loss, i.e. it already
 * contains the 1/N factor: where the unclipped branch is active dlogp_t = -A_t r_t / N.
 * clipFrac is the fraction of tokens where the clipped branch is strictly larger (the gradient is cut),
 * as TRL computes it. N = 0 gives all zeros.
 */
export function policyLoss(
  logp: number[],
  oldLogp: number[],
  adv: number[],
  clip: number,
): { loss: number; dlogp: number[]; clipFrac: number; approxKl: number; approxKlK3: number } {
  const n = logp.length;
  checkSameLength('policyLoss', n, oldLogp, adv);
  const dlogp = new Array<number>(n).fill(0);
  if (n === 0) return { loss: 0, dlogp, clipFrac: 0, approxKl: 0, approxKlK3: 0 };
  let loss = 0;
  let clipped = 0;
  let kl = 0;
  let k3 = 0;
  const lo = 1 - clip;
  const hi = 1 + clip;
  for (let t = 0; t < n; t++) {
    const logRatio = logp[t] - oldLogp[t];
    const r = Math.exp(logRatio);
    const rc = Math.min(hi, Math.max(lo, r));
    const l1 = -adv[t] * r;
    const l2 = -adv[t] * rc;
    if (l2 > l1) {
      // Clipped branch: constant in logp, no gradient.
      loss += l2;
      clipped++;
    } else {
      loss += l1;
      dlogp[t] = (-adv[t] * r) / n;
    }
    kl += 0.5 * logRatio * logRatio;
    k3 += r - 1 - logRatio;
  }
  return { loss: loss / n, dlogp, clipFrac: clipped / n, approxKl: kl / n, approxKlK3: k3 / n };
}

/**
 * Clipped value loss (PPO2): 0.5 * mean(max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)); returns the
 * loss, dV per token, and the value clip fraction.
 *
 * Shapes: values[N] (current value head), oldValues[N] (value head at rollout time), returns[N] (GAE returns);
 * all over the N tokens of a minibatch. dvalues[N] is the gradient of the mean loss (contains 1/N):
 * (V - R) / N where the unclipped term is the max, 0 where the clipped term is strictly larger (V is then
 * outside the clip range, so clip(V) is constant in V). clipFrac is the fraction of tokens where the clipped
 * term is strictly larger (TRL's vf_clipfrac). N = 0 gives all zeros.
 */
export function valueLoss(values: number[], oldValues: number[], returns: number[], clip: number): { loss: number; dvalues: number[]; clipFrac: number } {
  const n = values.length;
  checkSameLength('valueLoss', n, oldValues, returns);
  const dvalues = new Array<number>(n).fill(0);
  if (n === 0) return { loss: 0, dvalues, clipFrac: 0 };
  let loss = 0;
  let clipped = 0;
  for (let t = 0; t < n; t++) {
    const v = values[t];
    const vc = Math.min(oldValues[t] + clip, Math.max(oldValues[t] - clip, v));
    const e1 = v - returns[t];
    const e2 = vc - returns[t];
    const l1 = e1 * e1;
    const l2 = e2 * e2;
    if (l2 > l1) {
      loss += l2;
      clipped++;
    } else {
      loss += l1;
      dvalues[t] = e1 / n;
    }
  }
  return { loss: (0.5 * loss) / n, dvalues, clipFrac: clipped / n };
}

/**
 * Entropy of a categorical distribution from logits (natural log), for the entropy metric.
 * Shape: logits[V] over the vocabulary. Numerically stable (max-shifted); -Infinity logits (masked tokens)
 * contribute 0. Returns H = -sum_i p_i log p_i in nats.
 */
export function entropyFromLogits(logits: ArrayLike<number>): number {
  const v = logits.length;
  if (v === 0) return 0;
  let m = -Infinity;
  for (let i = 0; i < v; i++) if (logits[i] > m) m = logits[i];
  if (m === -Infinity) return 0;
  let s = 0;
  let sz = 0; // sum_i e^{z_i - m} (z_i - m)
  for (let i = 0; i < v; i++) {
    const z = logits[i] - m;
    if (z === -Infinity) continue;
    const e = Math.exp(z);
    s += e;
    sz += e * z;
  }
  // log p_i = z_i - m - log s, so H = log s - sum_i p_i (z_i - m).
  return Math.max(0, Math.log(s) - sz / s);
}

/** Common interface of the KL coefficient controllers. */
export interface KlController {
  value: number;
  update(currentKl: number, nSteps: number): void;
}

/**
 * Adaptive KL controller (Ziegler et al. 2019): beta <- beta * (1 + clip((kl - target) / target, -0.2, 0.2)
 * * nSteps / horizon). currentKl is the mean per-sequence KL of the last batch (sum over response tokens of
 * kl_t, averaged over samples); nSteps is the number of samples (episodes) in that batch.
 */
export class AdaptiveKl implements KlController {
  value: number;
  constructor(
    beta: number,
    readonly target: number,
    readonly horizon: number,
  ) {
    if (!(target > 0)) throw new Error('AdaptiveKl: target must be > 0');
    if (!(horizon > 0)) throw new Error('AdaptiveKl: horizon must be > 0');
    this.value = beta;
  }

  update(currentKl: number, nSteps: number): void {
    const err = Math.min(0.2, Math.max(-0.2, (currentKl - this.target) / this.target));
    this.value *= 1 + (err * nSteps) / this.horizon;
  }
}

/** Fixed KL controller: update() leaves beta unchanged (InstructGPT used a fixed beta). */
export class FixedKl implements KlController {
  constructor(public value: number) {}
  update(_currentKl: number, _nSteps: number): void {}
}

/**
 * EMA of weights (the paper used 0.992): ema <- decay * ema + (1 - decay) * w, element-wise in place.
 * Shapes: ema[P], w[P] (flat parameter buffers of equal length).
 */
export function emaUpdate(ema: Float32Array, w: Float32Array, decay: number): void {
  checkSameLength('emaUpdate', ema.length, w);
  const a = 1 - decay;
  for (let i = 0; i < ema.length; i++) ema[i] = decay * ema[i] + a * w[i];
}
