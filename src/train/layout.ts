// One rule for putting sequences into a batch, used by every trainer: (prompt, completion) pairs one per
// row of a B x T batch, prompt then completion, cut at T, right-padded with the pad id. The targets are
// the completion's tokens at the positions that predict them (position t predicts token t + 1), -1
// elsewhere, so the loss, log-probabilities and their weights cover the completion only; `last` is each
// placed row's last position (where a reward model reads its score).

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
}

/** Lays `seqs` out, sequence i in row `rowOf(i)` (default i). */
export function layoutRows(seqs: readonly Sequence[], B: number, T: number, padId: number, rowOf: (i: number) => number = (i) => i): Rows {
  const ids = new Int32Array(B * T).fill(padId), targets = new Int32Array(B * T).fill(-1), last: number[] = [];
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
  });
  return { ids, targets, last, count };
}

/** Weight 1 where a row has a target, 0 elsewhere. */
export const targetWeights = (targets: Int32Array): Float32Array => Float32Array.from(targets, (t) => (t >= 0 ? 1 : 0));

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
