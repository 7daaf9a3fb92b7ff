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

/** The distribution sampling draws from (after temperature, top-k, top-p), as (token, probability) pairs,
 *  likeliest first (ties: the lower id first). The definition sampleToken follows; it sorts the whole vocabulary. */
export function samplingDistribution(logits: ArrayLike<number>, cfg: SamplingConfig): { ids: number[]; probs: number[] } {
  const V = logits.length;
  const ids = Array.from({ length: V }, (_, i) => i);
  ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
  return distributionOf(logits, cfg.topK > 0 && cfg.topK < V ? ids.slice(0, cfg.topK) : ids, cfg);
}

/** Temperature and top-p over `ids` (the candidates, likeliest first). */
function distributionOf(logits: ArrayLike<number>, ids: number[], cfg: SamplingConfig): { ids: number[]; probs: number[] } {
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

/** The token at which u, less each probability in turn, falls below 0 (the last one if rounding leaves it above):
 *  with samplingDistribution's pairs, the definition of a draw (what sampleToken did by sorting, and must equal). */
export function draw({ ids, probs }: { ids: number[]; probs: number[] }, u: number): number {
  for (let i = 0; i < ids.length; i++) {
    u -= probs[i]!;
    if (u < 0) return ids[i]!;
  }
  return ids[ids.length - 1]!;
}

/**
 * One token drawn from samplingDistribution(logits, cfg) with one rng.next() (none when greedy): the same
 * token as walking that sorted distribution, without sorting the vocabulary. Sorting 49,152 logits took about
 * 20 ms per sample per token in Node (SmolLM2; 70 ms for Qwen's 151,936), more than a decode step on a GPU.
 * Instead the logits fall into BINS bins by value (bin 0 holds the largest); a bin precedes every lower one in
 * the sorted order, so a walk adds whole bins' mass and sorts only the bin where the walk stops (and, for top-k,
 * only the bins that hold the k largest). Sums are taken in another order than the sort's, so a draw within about
 * 1e-15 of a boundary between two tokens may pick the neighbour: as likely as any other rounding.
 * -Infinity (a masked token) is a logit like any other; NaN and +Infinity take the sorting path, which defines
 * what they do.
 */
export function sampleToken(logits: ArrayLike<number>, cfg: SamplingConfig, rng: Rng, stats?: { entropy: number }): number {
  const V = logits.length;
  // the entropy (of softmax(logits), before temperature and filters) comes from the draw's own pass over the
  // logits where that pass computes its terms (temperature 1, no top-k); else from a pass of its own
  let entropyDone = false;
  const withEntropy = (id: number) => {
    if (stats && !entropyDone) stats.entropy = entropyOf(logits);
    return id;
  };
  if (cfg.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i]! > logits[best]!) best = i;
    return withEntropy(best);
  }
  let hi = -Infinity,
    lo = Infinity,
    defined = true;
  for (let i = 0; i < V; i++) {
    const l = logits[i]!;
    if (Number.isNaN(l) || l === Infinity) defined = false;
    if (l > hi) hi = l;
    if (l < lo) lo = l;
  }
  if (!defined || hi === -Infinity || V < 2 * BINS) return withEntropy(draw(samplingDistribution(logits, cfg), rng.next()));
  const t = cfg.temperature;
  if (scratchBins.length < V) scratchBins = new Uint16Array(V);
  const bins = scratchBins;
  // bins over the top SPAN nats of (logit - max) / T (all of them when they span less)
  const span = Math.min(hi - lo, SPAN * t);
  const k = span > 0 ? BINS / span : 0;
  if (cfg.topK > 0 && cfg.topK < V) {
    // the top k: whole bins from the top until they hold k, sorted; then exactly samplingDistribution's arithmetic
    const count = scratchCount.fill(0);
    for (let i = 0; i < V; i++) count[(bins[i] = Math.min(BINS - 1, Math.floor((hi - logits[i]!) * k)))]!++;
    let last = 0;
    for (let n = count[0]!; n < cfg.topK; n += count[++last]!);
    const ids: number[] = [];
    for (let i = 0; i < V; i++) if (bins[i]! <= last) ids.push(i);
    return withEntropy(draw(distributionOf(logits, bySize(logits, ids).slice(0, cfg.topK), cfg), rng.next()));
  }
  // every token: p_i = exp((l_i - max) / T) / z, as samplingDistribution computes it; the bins' masses
  if (scratchP.length < V) scratchP = new Float64Array(V);
  const p = scratchP;
  const mass = scratchMass.fill(0);
  let z = 0,
    s = 0; // sum of e (l - hi): the entropy's, at temperature 1
  for (let i = 0; i < V; i++) {
    const l = logits[i]!;
    const b = (bins[i] = Math.min(BINS - 1, Math.floor((hi - l) * k)));
    const e = (p[i] = Math.exp((l - hi) / t));
    mass[b] += e;
    z += e;
    if (e > 0) s += e * (l - hi);
  }
  for (let b = 0; b < BINS; b++) mass[b] /= z;
  if (t === 1) {
    if (stats) stats.entropy = Math.log(z) - s / z; // entropyOf's sums, in its order
    entropyDone = true;
  }
  const w: Walk = { logits, bins, p, z, mass };
  // top-p: the nucleus ends at the first token, likeliest first, where the mass so far reaches topP (the first
  // token at least); where rounding never reaches it, every token is kept. Its probabilities are p / kept.
  const end = cfg.topP < 1 ? walk(w, (cum) => cum >= cfg.topP) : undefined;
  let kept = 1;
  if (end) {
    kept = 0; // samplingDistribution sums the nucleus in sorted order: the same value up to rounding
    for (let b = 0; b < end.bin; b++) kept += mass[b]!;
    for (let j = 0; j <= end.j; j++) kept += p[end.members[j]!]! / z;
  }
  const u = rng.next();
  const hit = walk(w, (cum) => cum / kept > u, end);
  if (hit) return withEntropy(hit.members[hit.j]!);
  // rounding left u above the whole mass: the last token walked, as draw() does
  if (end) return withEntropy(end.members[end.j]!);
  let last = 0;
  for (let i = 1; i < V; i++) if (logits[i]! <= logits[last]!) last = i;
  return withEntropy(last);
}

/** Entropy of softmax(logits) in nats, stable for large logits; masked tokens (-Infinity) add nothing. */
export function entropyOf(logits: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]!);
  let z = 0,
    s = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i]! - m);
    z += e;
    if (e > 0) s += e * (logits[i]! - m);
  }
  return Math.log(z) - s / z;
}

/** Value bins a sampler walks (see sampleToken), over the top SPAN nats of (logit - max) / temperature at most:
 *  a token below that has a probability under e^-64 (1.6e-28) of the largest's, and all such share the last bin
 *  (-Infinity too). Bin 0 holds the largest logit. */
const BINS = 1024;
const SPAN = 64;
let scratchP = new Float64Array(0);
let scratchBins = new Uint16Array(0);
// per-draw scratch, reused: a draw runs once per row per decoded token and need not allocate its bins anew
const scratchMass = new Float64Array(BINS);
const scratchCount = new Uint32Array(BINS);

/** ids sorted likeliest first (ties: the lower id first), in place. */
function bySize(logits: ArrayLike<number>, ids: number[]): number[] {
  return ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
}

/** A walk's inputs: each token's bin and unnormalised probability (p / z), and each bin's probability. */
type Walk = { logits: ArrayLike<number>; bins: Uint16Array; p: Float64Array; z: number; mass: Float64Array };
type Stop = { bin: number; members: number[]; j: number };

/**
 * Walks the tokens likeliest first, adding their probabilities, to the first where `stop(sum so far, itself
 * included)` holds: a bin whose whole mass would not stop it is added as a whole (bins of no mass are skipped:
 * bin 0 holds the largest logit and so never is one), and only the bin where it stops is sorted. With `end`, the
 * walk ends at that token (a nucleus's last). Undefined where rounding never stops it.
 */
function walk({ logits, bins, p, z, mass }: Walk, stop: (cum: number) => boolean, end?: Stop): Stop | undefined {
  let cum = 0;
  const lastBin = end ? end.bin : BINS - 1;
  for (let b = 0; b <= lastBin; b++) {
    let members: number[];
    if (b === end?.bin) members = end.members.slice(0, end.j + 1);
    else {
      const whole = mass[b]!;
      if (whole === 0) continue;
      if (!stop(cum + whole)) {
        cum += whole;
        continue;
      }
      members = [];
      for (let i = 0; i < logits.length; i++) if (bins[i] === b) members.push(i);
      bySize(logits, members);
    }
    for (let j = 0; j < members.length; j++) {
      cum += p[members[j]!]! / z;
      if (stop(cum)) return { bin: b, members, j };
    }
  }
  return undefined;
}
