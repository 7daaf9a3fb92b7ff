// Intervals the experiment reports: over seeds (Student's t), and for pooled judgments (Wilson).
import { wilson } from '../shared/wilson.ts';

export interface Interval {
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

// two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069,
  2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** Mean and 95% t-interval of per-seed values (one value: the interval is the value itself). */
export function interval(xs: number[]): Interval {
  const n = xs.length,
    mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, n);
  if (n < 2) return { mean, lo: mean, hi: mean, n };
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  const h = (T975[Math.min(n - 2, T975.length - 1)]! * sd) / Math.sqrt(n);
  return { mean, lo: mean - h, hi: mean + h, n };
}

/** Pooled judgments (ties half a win) with the Compare tab's Wilson interval. */
export function pooled(wins: number, n: number): Interval {
  const w = wilson(wins, n);
  return { mean: n ? wins / n : NaN, lo: w?.low ?? 0, hi: w?.high ?? 1, n };
}
