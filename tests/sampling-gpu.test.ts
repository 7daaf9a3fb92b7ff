// Tokens drawn on the device (shaders/sampling.wgsl, src/ops/sampling.ts) against a float64 walk of the same
// definition: the id at which u z, less each exp((l - max) / T) in id order, falls below 0; greedy is the first id
// of the max; the entropy is the CPU sampler's; rows the CPU must define (NaN, +Inf, all masked) come back as -1.
import { describe, expect, it } from 'vitest';
import type { LogitChunk } from '../src/ops/crossentropy.ts';
import { drawScratch, drawTokens } from '../src/ops/sampling.ts';
import { entropyOf, Rng } from '../src/shared/sampling.ts';
import { run, testGpu, upload } from './helpers/gpu.ts';

/** The draw in float64, how close (as a share of z) the target falls to the nearest boundary between two tokens,
 *  and how far (the same way) the target lies outside token k's interval of the walk (0 inside it). */
function reference(row: Float32Array, T: number, u: number, k = -1): { id: number; margin: number; outside: number } {
  let m = -Infinity;
  for (const l of row) m = Math.max(m, l);
  const e = Array.from(row, (l) => Math.exp((l - m) / T));
  const z = e.reduce((a, b) => a + b, 0);
  const target = Math.fround(u) * z;
  let cum = 0,
    margin = Infinity,
    outside = Infinity,
    id = -1;
  for (let i = 0; i < e.length; i++) {
    if (!(e[i]! > 0)) continue;
    margin = Math.min(margin, Math.abs(cum - target) / z);
    if (i === k) outside = Math.max(0, cum - target, target - (cum + e[i]!)) / z;
    cum += e[i]!;
    if (id < 0 && cum > target) id = i;
  }
  if (id < 0) for (let i = e.length - 1; i >= 0; i--) if (e[i]! > 0) return { id: i, margin: 0, outside };
  return { id, margin, outside };
}

/** The rows drawn on the device, their logits given in vocabulary chunks of `split` columns (the last one the rest). */
async function drawn(rows: Float32Array[], T: number, us: number[], split = Infinity): Promise<Float32Array> {
  const gpu = await testGpu();
  const V = rows[0]!.length,
    N = rows.length;
  const chunks: LogitChunk[] = [];
  for (let v0 = 0; v0 < V; v0 += split) {
    const vn = Math.min(split, V - v0),
      flat = new Float32Array(N * vn);
    rows.forEach((r, i) => flat.set(r.subarray(v0, v0 + vn), i * vn));
    chunks.push({ v0, vn, view: upload(gpu, flat) });
  }
  const need = drawScratch(N, chunks.length);
  const u = upload(gpu, us),
    out = gpu.tensor(2 * N, 'out'),
    state = gpu.tensor(need.state, 'state'),
    masses = gpu.tensor(need.masses, 'masses');
  await run(gpu, drawTokens(gpu, { N, temperature: T }, { chunks, u, out, state, masses }));
  const r = await gpu.read(out);
  for (const v of [...chunks.map((c) => c.view), u, out, state, masses]) gpu.destroy(v.buf);
  return r;
}

const rng = new Rng(11);
const randomRow = (V: number, scale: number) => Float32Array.from({ length: V }, () => (rng.next() - 0.5) * 2 * scale);

describe('drawing on the device', () => {
  it.each([
    [1000, 1, 4, Infinity],
    [5003, 0.7, 8, Infinity],
    [5003, 0.7, 8, 2000], // three vocabulary chunks, as the LM head writes a large vocabulary's logits
    [300, 1.5, 3, Infinity],
    [300, 1, 3, 7], // 43 chunks of 7 columns: most threads of every chunk hold none
    [70, 1, 6, Infinity], // fewer columns than threads: most threads hold none
  ])('draws what the float64 walk draws (V %i, temperature %f, logits within +-%i, chunks of %f)', async (V, T, scale, split) => {
    const rows = Array.from({ length: 24 }, () => randomRow(V, scale));
    // the same row's u from 0 to just below 1, and random ones
    const us = rows.map((_, i) => (i < 3 ? [0, 0.5, 0.99999994][i]! : rng.next()));
    const out = await drawn(rows, T, us, split);
    let exact = 0;
    rows.forEach((row, i) => {
      const got = out[2 * i]!;
      expect(Number.isInteger(got) && got >= 0 && got < V).toBe(true);
      const want = reference(row, T, us[i]!, got);
      // where the target is not within 1e-5 z of a boundary the token is the walk's; else it is a token whose
      // interval reaches within 1e-4 z of the target (f32 sums of thousands of terms)
      if (want.margin >= 1e-5) (exact++, expect(got, `row ${i} u ${us[i]}`).toBe(want.id));
      expect(want.outside, `row ${i}: the target's distance from token ${got}'s interval`).toBeLessThan(1e-4);
      expect(out[2 * i + 1]!).toBeCloseTo(entropyOf(row), 4);
    });
    expect(exact).toBeGreaterThan(rows.length / 2);
  });

  it('never draws a masked token, and gives back -1 where the CPU must decide', async () => {
    const V = 600;
    const masked = randomRow(V, 3).map((l, i) => (i % 3 === 0 ? l : -Infinity));
    const nan = randomRow(V, 3);
    nan[417] = NaN;
    const inf = randomRow(V, 3);
    inf[5] = Infinity;
    const allMasked = new Float32Array(V).fill(-Infinity);
    const rows = [masked, masked, masked, nan, inf, allMasked];
    const us = [0, 0.3, 0.99999994, 0.5, 0.5, 0.5];
    for (const [T, split] of [
      [1, Infinity],
      [0, Infinity],
      [1, 250],
      [0, 250],
    ] as const) {
      const out = await drawn(rows, T, us, split);
      for (let i = 0; i < 3; i++) {
        expect(out[2 * i]! % 3, `row ${i} at T ${T}`).toBe(0);
        if (T === 1) expect(out[2 * i]!).toBe(reference(masked, 1, us[i]!).id);
      }
      expect([out[6], out[8], out[10]]).toEqual([-1, -1, -1]);
    }
  });

  it('greedy at temperature 0: the first id of the max, across threads', async () => {
    const V = 2000; // 8 columns a thread
    const row = randomRow(V, 2);
    row[1500] = 9;
    row[1501] = 9; // the same thread
    row[1700] = 9; // another thread
    const second = randomRow(V, 2);
    second[3] = 5;
    second[1999] = 5;
    for (const split of [Infinity, 1600, 1501]) {
      const out = await drawn([row, second], 0, [0.7, 0.2], split);
      expect([out[0], out[2]], `chunks of ${split}`).toEqual([1500, 3]);
      expect(out[1]!).toBeCloseTo(entropyOf(row), 4);
    }
  });

  it('draws each token about as often as its probability says (a 6-token row, 4800 draws)', async () => {
    const row = Float32Array.from([0, 1, -1, 2, -Infinity, 0.5]);
    const p = Array.from(row, (l) => Math.exp(l));
    const z = p.reduce((a, b) => a + b, 0);
    const n = 4800;
    const us = Array.from({ length: n }, () => rng.next());
    const out = await drawn(
      Array.from({ length: n }, () => row),
      1,
      us,
    );
    const counts = new Array(6).fill(0);
    for (let i = 0; i < n; i++) counts[out[2 * i]!]++;
    expect(counts[4]).toBe(0);
    for (let k = 0; k < 6; k++) expect(Math.abs(counts[k] / n - p[k]! / z), `token ${k}`).toBeLessThan(0.02);
  });
});
