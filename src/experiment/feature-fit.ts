// How well could a reward model do at best, from these rankings? A Bradley-Terry model over exactly the
// features the labeler judges by (its weights unknown, fitted to the same noisy rankings the reward model
// trains on), scored on the same held-out pairs against the labeler's noise-free order. The reward model
// has to find those features in the text on its own; this one is handed them. So its accuracy is the
// reference the reward model's is read against: where it is below a target, no reward model trained on
// that many comparisons of that labeler can be expected to reach it; where the reward model falls far
// below it, the reward model (not the data) is what loses accuracy.
import { rankingPairs, type Record as DataRecord } from '../io/datasets.ts';
import type { Labeler } from './labeler.ts';

type Ranked = { prompt: string; completions: string[]; ranks?: number[] };

/** The (better, worse) pairs of a ranking, as texts: ties give none (rankingPairs, the reward model's own rule). */
const pairs = (r: Ranked): [string, string][] => rankingPairs(r.completions.length, r.ranks).map(([w, l]) => [r.completions[w]!, r.completions[l]!]);

const rankedOf = (rs: DataRecord[]): Ranked[] => rs.flatMap((r) => (r.kind === 'ranking' ? [r] : []));

/** Solves A x = b (A symmetric positive definite, small) by Gaussian elimination with partial pivoting. */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length,
    M = A.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = M[r]![c]! / M[c]![c]!;
      for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= M[r]![k]! * x[k]!;
    x[r] = s / M[r]![r]!;
  }
  return x;
}

export interface FeatureFit {
  /** Pairs of the held-out rankings the fitted model orders as the labeler's noise-free score does. */
  heldout_accuracy: number;
  heldout_pairs: number;
  /** The fitted weights, per feature, in the labeler's score units (noise x the Bradley-Terry weight). */
  weights: Record<string, number>;
  train_pairs: number;
}

/**
 * Fits w to maximise sum over training pairs of log sigmoid(w . (f(better) - f(worse))), with a small
 * ridge (`l2` per pair, so separable data still gives finite weights), by Newton's method; then counts
 * the held-out pairs it orders right (a tie in the fitted score counts as wrong, as in the reward model's
 * accuracy).
 */
export function featureFit(l: Labeler, train: DataRecord[], heldTrue: DataRecord[], l2 = 1e-3): FeatureFit {
  const names = Object.keys(l.features),
    fs = Object.values(l.features);
  const f = (p: string, c: string) => fs.map((x) => x.of(p, c));
  const diff = (p: string, [w, lo]: [string, string]) => {
    const a = f(p, w),
      b = f(p, lo);
    return a.map((x, i) => x - b[i]!);
  };
  const X = rankedOf(train).flatMap((r) => pairs(r).map((pr) => diff(r.prompt, pr)));
  const d = names.length,
    lam = l2 * Math.max(1, X.length);
  let w = new Array<number>(d).fill(0);
  for (let it = 0; it < 50; it++) {
    const g = w.map((x) => -lam * x),
      H = w.map((_, i) => w.map((__, j) => (i === j ? lam : 0)));
    for (const x of X) {
      const z = x.reduce((s, v, i) => s + v * w[i]!, 0),
        p = 1 / (1 + Math.exp(-z));
      for (let i = 0; i < d; i++) {
        g[i]! += (1 - p) * x[i]!;
        for (let j = 0; j < d; j++) H[i]![j]! += p * (1 - p) * x[i]! * x[j]!;
      }
    }
    const step = solve(H, g);
    w = w.map((x, i) => x + step[i]!);
    if (Math.max(...step.map(Math.abs)) < 1e-10) break;
  }
  let right = 0,
    n = 0;
  for (const r of rankedOf(heldTrue)) {
    for (const pr of pairs(r)) {
      right += diff(r.prompt, pr).reduce((s, v, i) => s + v * w[i]!, 0) > 0 ? 1 : 0;
      n++;
    }
  }
  return {
    heldout_accuracy: n ? right / n : NaN,
    heldout_pairs: n,
    weights: Object.fromEntries(names.map((k, i) => [k, w[i]! * l.noise])),
    train_pairs: X.length,
  };
}

/** The reward model's held-out accuracy on the pairs a feature of the labeler's tells apart. */
export interface FeatureAccuracy {
  /** Pairs whose two completions differ in this feature (and in the labeler's score), and the share the reward model orders right. */
  pairs: number;
  accuracy: number;
  /** Pairs that differ in this feature alone: what the reward model makes of it without the others' help. */
  alone_pairs: number;
  alone_accuracy: number;
}

/**
 * Where a reward model's held-out errors lie, by the labeler's features: for each feature, its accuracy (against
 * the labeler's noise-free order) on the pairs that differ in that feature, and on those that differ in it alone.
 * `scores[i][k]` is the reward model's score of completion k of the i-th ranking of `heldTrue`. A feature the
 * reward model has not learned shows as accuracy near 0.5 on the pairs it alone decides.
 */
export function accuracyByFeature(l: Labeler, heldTrue: DataRecord[], scores: number[][]): Record<string, FeatureAccuracy> {
  const names = Object.keys(l.features),
    fs = Object.values(l.features);
  const count = names.map(() => ({ pairs: 0, right: 0, alone: 0, aloneRight: 0 }));
  rankedOf(heldTrue).forEach((r, i) => {
    const s = scores[i]!;
    if (s.length !== r.completions.length) throw new Error(`ranking ${i}: ${s.length} scores for ${r.completions.length} completions`);
    const f = r.completions.map((c) => fs.map((x) => x.of(r.prompt, c)));
    for (const [a, b] of rankingPairs(r.completions.length, r.ranks)) {
      const right = s[a]! > s[b]! ? 1 : 0;
      const differ = names.flatMap((_, k) => (f[a]![k] !== f[b]![k] ? [k] : []));
      for (const k of differ) {
        count[k]!.pairs++;
        count[k]!.right += right;
        if (differ.length === 1) (count[k]!.alone++, (count[k]!.aloneRight += right));
      }
    }
  });
  return Object.fromEntries(
    names.map((n, k) => {
      const c = count[k]!;
      return [n, { pairs: c.pairs, accuracy: c.pairs ? c.right / c.pairs : NaN, alone_pairs: c.alone, alone_accuracy: c.alone ? c.aloneRight / c.alone : NaN }];
    }),
  );
}
