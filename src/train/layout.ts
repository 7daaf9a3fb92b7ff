// One rule for putting sequences into a batch, used by every trainer: (prompt, completion) pairs one per
// row of a B x T batch, prompt then completion, cut at T, right-padded with the pad id. The targets are
// the completion's tokens at the positions that predict them (position t predicts token t + 1), -1
// elsewhere, so the loss, log-probabilities and their weights cover the completion only; `last` is each
// placed row's last position (where a reward model reads its score). A laid-out batch also reads and
// writes per-token values at its completions' positions (`read`, `place`): log-probabilities and values
// out of a plan, cross-entropy weights and score gradients into it.

export interface Sequence {
  prompt: readonly number[];
  completion: readonly number[];
}

export interface Rows {
  ids: Int32Array;
  targets: Int32Array;
  /** flat index (row * T + t) of each sequence's last token, in the order given */
  last: number[];
  /** targets set: the completion tokens that fit */
  count: number;
  /** Each sequence's values of `x` (B x T, this layout's) at the positions that predict its completion tokens that fit, in the order given. */
  read(x: ArrayLike<number>): number[][];
  /** B x T, 0 but for `values[i][k]` at the position that predicts completion token k of sequence i (a shorter `values[i]` leaves the rest 0). */
  place(values: readonly (readonly number[])[]): Float32Array;
}

/** Lays `seqs` out, sequence i in row `rowOf(i)` (default i). */
export function layoutRows(seqs: readonly Sequence[], B: number, T: number, padId: number, rowOf: (i: number) => number = (i) => i): Rows {
  const ids = new Int32Array(B * T).fill(padId),
    targets = new Int32Array(B * T).fill(-1),
    last: number[] = [];
  // sequence i's completion token k is predicted at start[i] + k, for k < fits[i]
  const start: number[] = [],
    fits: number[] = [];
  let count = 0;
  seqs.forEach((s, i) => {
    const row = rowOf(i);
    if (!(row >= 0 && row < B)) throw new Error(`sequence ${i} goes to row ${row} of a batch of ${B}`);
    const seq = [...s.prompt, ...s.completion].slice(0, T);
    seq.forEach((id, t) => (ids[row * T + t] = id));
    for (let t = Math.max(0, s.prompt.length - 1); t + 1 < seq.length; t++) {
      targets[row * T + t] = seq[t + 1]!;
      count++;
    }
    last.push(row * T + seq.length - 1);
    start.push(row * T + s.prompt.length - 1);
    fits.push(Math.max(0, seq.length - s.prompt.length));
  });
  return {
    ids,
    targets,
    last,
    count,
    read: (x) => start.map((at, i) => Array.from({ length: fits[i]! }, (_, k) => x[at + k]!)),
    place(values) {
      const out = new Float32Array(B * T);
      values.forEach((v, i) => {
        for (let k = 0; k < Math.min(v.length, fits[i]!); k++) out[start[i]! + k] = v[k]!;
      });
      return out;
    },
  };
}

/** `weight` (1) where a position has a target, 0 elsewhere. */
export const targetWeights = (targets: Int32Array, weight = 1): Float32Array => Float32Array.from(targets, (t) => (t >= 0 ? weight : 0));

/** Tokens a sequence fills of a row of T (prompt then completion, cut at T): what its plan must hold. */
export const rowLength = (s: Sequence, T: number): number => Math.min(T, s.prompt.length + s.completion.length);

/**
 * Each row's span in a laid-out batch: the positions up to and including its last target, all a causal
 * model computes the row's loss from (0 for a row without targets).
 */
export function targetSpans(targets: Int32Array, B: number, T: number): number[] {
  return Array.from({ length: B }, (_, r) => {
    for (let t = T - 1; t >= 0; t--) if (targets[r * T + t]! >= 0) return t + 1;
    return 0;
  });
}

/** A B x T batch's rows cut to their first `T2` positions (B x T2). */
export function narrowRows<A extends Int32Array | Float32Array>(x: A, B: number, T: number, T2: number): A {
  if (T2 === T) return x;
  if (T2 > T) throw new Error(`rows of ${T} cannot widen to ${T2}`);
  const out = new (x.constructor as new (n: number) => A)(B * T2);
  for (let r = 0; r < B; r++) out.set(x.subarray(r * T, r * T + T2), r * T2);
  return out;
}
