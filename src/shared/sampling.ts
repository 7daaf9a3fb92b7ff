// Token sampling: temperature, top-k, top-p (nucleus), greedy at temperature 0, with a seeded RNG per
// sample so that a sample's text depends only on (seed, sample index), not on how many were drawn.

/** A small, fast, seedable generator (mulberry32); `state` is kept for checkpoints. */
export class Rng {
  constructor(public state: number) {}

  static forSample(seed: number, index: number): Rng {
    // splitmix-style mixing of (seed, index) into a 32-bit state
    let x = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
    x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
    x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
    return new Rng((x ^ (x >>> 16)) >>> 0);
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

export interface SamplingConfig {
  temperature: number; // 0 = greedy
  topK: number; // 0 = off
  topP: number; // 1 = off
}

/** The distribution sampling draws from (after temperature, top-k, top-p), as (token, probability) pairs. */
export function samplingDistribution(logits: ArrayLike<number>, cfg: SamplingConfig): { ids: number[]; probs: number[] } {
  const V = logits.length;
  let ids = Array.from({ length: V }, (_, i) => i);
  ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (cfg.topK > 0 && cfg.topK < V) ids = ids.slice(0, cfg.topK);
  const t = cfg.temperature;
  const m = logits[ids[0]!]!;
  let probs = ids.map((i) => Math.exp((logits[i]! - m) / t));
  let z = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / z);
  if (cfg.topP < 1) {
    let cum = 0;
    let keep = 0;
    while (keep < probs.length && (keep === 0 || cum < cfg.topP)) cum += probs[keep++]!;
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
    z = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / z);
  }
  return { ids, probs };
}

export function sampleToken(logits: ArrayLike<number>, cfg: SamplingConfig, rng: Rng): number {
  if (cfg.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  const { ids, probs } = samplingDistribution(logits, cfg);
  let u = rng.next();
  for (let i = 0; i < ids.length; i++) {
    u -= probs[i]!;
    if (u < 0) return ids[i]!;
  }
  return ids[ids.length - 1]!;
}
