// Pearson's chi-square of drawn counts against a distribution: the `top` likeliest tokens one bin each, and
// every other token together in one more bin (so `top` degrees of freedom).

/** `ids` and `probs`: the distribution, likeliest first (samplingDistribution's); `counts`: draws per token, `n` in all. */
export function chiSquareTop(ids: number[], probs: number[], counts: Map<number, number>, n: number, top: number): number {
  let chi = 0,
    restP = 1,
    restC = n;
  for (let i = 0; i < top; i++) {
    const e = probs[i]! * n,
      o = counts.get(ids[i]!) ?? 0;
    chi += (o - e) ** 2 / e;
    restP -= probs[i]!;
    restC -= o;
  }
  return chi + (restC - restP * n) ** 2 / (restP * n);
}
