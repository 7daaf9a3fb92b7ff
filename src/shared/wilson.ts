// The Wilson score interval for a win rate, shared by the Compare view (src/ui/compare-math.ts, which says
// why Wilson) and the experiment's statistics (src/experiment/stats.ts).

/** z for a two-sided 95% interval. */
export const Z95 = 1.959963984540054;

export interface Interval {
  low: number;
  high: number;
}

/**
 * The Wilson score interval for `successes` out of `n` trials (successes may be fractional: ties count
 * half, src/ui/compare-math.ts); undefined when n is 0. Bounds lie in [0, 1].
 */
export function wilson(successes: number, n: number, z = Z95): Interval | undefined {
  if (!(n > 0)) return undefined;
  if (!(successes >= 0 && successes <= n)) throw new RangeError(`wilson: successes must be in 0..${n}, got ${successes}`);
  const p = successes / n,
    z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // exactly 0 and 1 at the ends, where rounding would leave 1e-17 or 0.9999999999999999
  return { low: successes === 0 ? 0 : Math.max(0, center - half), high: successes === n ? 1 : Math.min(1, center + half) };
}
