// sampleToken draws without sorting the vocabulary: it must pick the same token as walking the sorted
// distribution (samplingDistribution, the definition) with the same random number, for every kind of logits.
import { describe, expect, it } from 'vitest';
import { chiSquareTop } from './helpers/chi-square.ts';
import { draw, entropyOf, Rng, sampleToken, samplingDistribution, type SamplingConfig } from '../src/shared/sampling.ts';

/** The definition: the sorted distribution, walked with one random number. */
const bySorting = (logits: Float32Array, cfg: SamplingConfig, rng: Rng, dist = samplingDistribution(logits, cfg)) => draw(dist, rng.next());

function gaussian(r: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - r.next())) * Math.cos(2 * Math.PI * r.next());
}

/** Logits of several shapes: spread, peaked, coarse (many ties), with a far tail and masked tokens, all alike. */
function logitsOf(kind: string, V: number, seed: number): Float32Array {
  const r = new Rng(seed);
  const l = new Float32Array(V);
  for (let i = 0; i < V; i++) {
    const g = gaussian(r);
    l[i] =
      kind === 'spread'
        ? 3 * g
        : kind === 'peaked'
          ? g
          : kind === 'coarse'
            ? Math.round(g * 2) / 2
            : kind === 'tail'
              ? i % 11 === 0
                ? -Infinity
                : i % 7 === 0
                  ? -1e4
                  : 2 * g
              : 0.25;
  }
  if (kind === 'peaked') l[(seed * 977) % V] = 14; // one token holds almost all the mass
  return l;
}

describe('sampleToken', () => {
  const configs: SamplingConfig[] = [
    { temperature: 1, topK: 0, topP: 1 },
    { temperature: 0.7, topK: 0, topP: 1 },
    { temperature: 1.3, topK: 0, topP: 0.9 },
    { temperature: 1, topK: 0, topP: 0.3 },
    { temperature: 1, topK: 0, topP: 0 },
    { temperature: 0.8, topK: 50, topP: 1 },
    { temperature: 1, topK: 40, topP: 0.95 },
    { temperature: 1, topK: 1, topP: 1 },
  ];
  for (const kind of ['spread', 'peaked', 'coarse', 'tail', 'flat'])
    it(`draws the token the sorted distribution gives, ${kind} logits`, () => {
      let differ = 0,
        draws = 0;
      const seen = new Set<number>();
      for (const V of [2048, 8192, 49152]) {
        const logits = logitsOf(kind, V, V + kind.length);
        for (const cfg of configs) {
          const a = new Rng(V * 31 + cfg.topK),
            b = new Rng(V * 31 + cfg.topK);
          const dist = samplingDistribution(logits, cfg);
          for (let i = 0; i < 60; i++) {
            const got = sampleToken(logits, cfg, a),
              want = bySorting(logits, cfg, b, dist);
            if (got !== want) differ++;
            draws++;
            seen.add(got);
          }
          expect(a.state).toBe(b.state); // one random number per draw, as before
        }
      }
      // a draw within rounding of a boundary may pick the neighbour: none in these thousands
      expect(differ, `${differ} of ${draws} draws differ`).toBe(0);
      expect(seen.size).toBeGreaterThan(kind === 'peaked' ? 1 : 50); // the draws are not all one token
    });

  it('greedy at temperature 0; masked tokens (-Infinity) are never drawn', () => {
    const logits = logitsOf('spread', 4096, 3);
    let best = 0;
    for (let i = 0; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    expect(sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, new Rng(1))).toBe(best);
    logits[5] = -Infinity;
    logits[9] = -Infinity;
    const cfg = { temperature: 1, topK: 0, topP: 0.9 };
    const a = new Rng(4),
      b = new Rng(4);
    for (let i = 0; i < 50; i++) {
      const got = sampleToken(logits, cfg, a);
      expect(got).toBe(bySorting(logits, cfg, b));
      expect(got === 5 || got === 9).toBe(false);
    }
  });

  it("reports the entropy of softmax(logits), the draw's own sums where it has them, whatever the settings", () => {
    for (const kind of ['spread', 'peaked', 'tail', 'flat'])
      for (const V of [64, 8192]) {
        const logits = logitsOf(kind, V, 5);
        // the definition, in float64 from the probabilities (terms of masked tokens are 0)
        let m = -Infinity;
        for (const l of logits) m = Math.max(m, l);
        const e = Array.from(logits, (l) => Math.exp(l - m));
        const z = e.reduce((a, b) => a + b, 0);
        const want = -e.reduce((a, x) => (x > 0 ? a + (x / z) * Math.log(x / z) : a), 0);
        expect(entropyOf(logits)).toBeCloseTo(want, 9);
        for (const cfg of [...configs, { temperature: 0, topK: 0, topP: 1 }]) {
          const stats = { entropy: NaN };
          sampleToken(logits, cfg, new Rng(3), stats);
          expect(stats.entropy).toBe(entropyOf(logits)); // to the bit, fused into the draw's pass or not
        }
      }
  });

  it('follows the distribution: the likeliest tokens drawn as often as their probability says', () => {
    const logits = logitsOf('spread', 8192, 7);
    const cfg = { temperature: 0.5, topK: 0, topP: 0.95 };
    const { ids, probs } = samplingDistribution(logits, cfg);
    const counts = new Map<number, number>();
    const rng = new Rng(99),
      n = 10000;
    for (let i = 0; i < n; i++) {
      const t = sampleToken(logits, cfg, rng);
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    const support = new Set(ids);
    for (const t of counts.keys()) expect(support.has(t)).toBe(true); // nothing outside the nucleus
    // chi-square over the 10 likeliest tokens and the rest (10 degrees of freedom, p = 0.001: 29.6)
    const chi = chiSquareTop(ids, probs, counts, n, 10);
    expect(chi).toBeLessThan(29.6);
  });
});
