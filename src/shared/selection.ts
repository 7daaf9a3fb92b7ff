// What a reward model is least sure of, from its scores of a prompt's samples: the rule the Rank tab's
// active selection (src/ui/active-selection.ts) and the experiment's `--select uncertain` share.
// Identical completions are no comparison: their pairs are left out.

/** The pair of distinct completions the scores put closest (first such pair on a tie); undefined when all are the same. */
export function leastSurePair(texts: readonly string[], scores: readonly number[]): { pair: [number, number]; margin: number } | undefined {
  let best: { pair: [number, number]; margin: number } | undefined;
  for (let a = 0; a < texts.length; a++) {
    for (let b = a + 1; b < texts.length; b++) {
      if (texts[a] === texts[b]) continue;
      const margin = Math.abs(scores[a]! - scores[b]!);
      if (!best || margin < best.margin) best = { pair: [a, b], margin };
    }
  }
  return best;
}

/** The mean |score difference| over the pairs of distinct completions; undefined when all are the same (nothing to compare). */
export function meanMargin(texts: readonly string[], scores: readonly number[]): number | undefined {
  let sum = 0,
    pairs = 0;
  for (let a = 0; a < texts.length; a++) {
    for (let b = a + 1; b < texts.length; b++) {
      if (texts[a] === texts[b]) continue;
      sum += Math.abs(scores[a]! - scores[b]!);
      pairs++;
    }
  }
  return pairs ? sum / pairs : undefined;
}
