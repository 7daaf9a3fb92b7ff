// A token drawn per row on the device (shaders/sampling.wgsl): temperature sampling over the whole vocabulary, or
// greedy at temperature 0, from one vocabulary chunk of logits; each row gives back (token id, entropy).
import type { Call, Gpu, View } from '../gpu/runtime.ts';

/**
 * out[2 r] = the token drawn for row r with u[r] (id order: the id at which u z, less each exp((l - max) / T),
 * falls below 0; at temperature 0 the first id of the max), out[2 r + 1] = the entropy of softmax(logits[r]); the id
 * is -1 where the row holds NaN or +Inf or only -Inf (the caller draws it on the CPU). `temperature` is fixed in the
 * calls' parameters.
 */
export async function drawTokens(gpu: Gpu, s: { N: number; V: number; temperature: number }, x: { logits: View; u: View; out: View }): Promise<Call[]> {
  if (x.logits.n < s.N * s.V || x.u.n < s.N || x.out.n < 2 * s.N) throw new Error(`drawTokens: views too small for ${s.N} rows of ${s.V}`);
  const k = await gpu.kernel('sampling.wgsl', 'draw');
  // rows per dispatch: about 2^27 logits of work, so no dispatch trips a watchdog
  const rowsPer = Math.max(1, Math.floor(2 ** 27 / s.V));
  const calls: Call[] = [];
  for (let r0 = 0; r0 < s.N; r0 += rowsPer) {
    const n = Math.min(rowsPer, s.N - r0);
    calls.push(gpu.call(k, [gpu.params(k, { N: s.N, V: s.V, r0, n, temp: s.temperature }), x.logits, x.u, x.out], gpu.grid(n)));
  }
  return calls;
}
