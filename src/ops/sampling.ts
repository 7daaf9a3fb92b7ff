// A token drawn per row on the device (shaders/sampling.wgsl): temperature sampling over the whole vocabulary, or
// greedy at temperature 0, from the logits in the LM head's vocabulary chunks; each row gives back (token id, entropy).
import type { Call, Gpu, View } from '../gpu/runtime.ts';
import type { LogitChunk } from './crossentropy.ts';

/** The scratch drawTokens needs for N rows of logits in C chunks: `state` and `masses` floats. */
export const drawScratch = (N: number, C: number): { state: number; masses: number } => ({ state: N * (C * 5 + 4), masses: N * C * 256 });

/**
 * out[2 r] = the token drawn for row r with u[r] (id order: the id at which u z, less each exp((l - max) / T),
 * falls below 0; at temperature 0 the first id of the max), out[2 r + 1] = the entropy of softmax(logits[r]); the id
 * is -1 where the row holds NaN or +Inf or only -Inf (the caller draws it on the CPU). `temperature` is fixed in the
 * calls' parameters; `state` and `masses` are scratch of drawScratch's sizes.
 */
export async function drawTokens(
  gpu: Gpu,
  s: { N: number; temperature: number },
  x: { chunks: LogitChunk[]; u: View; out: View; state: View; masses: View },
): Promise<Call[]> {
  const C = x.chunks.length,
    need = drawScratch(s.N, C);
  if (!C || x.u.n < s.N || x.out.n < 2 * s.N || x.state.n < need.state || x.masses.n < need.masses)
    throw new Error(`drawTokens: views too small for ${s.N} rows in ${C} chunks`);
  const [kMax, kMass, kPick, kWalk] = await Promise.all(['chunk_max', 'chunk_mass', 'pick', 'walk'].map((e) => gpu.kernel('sampling.wgsl', e)));
  const calls: Call[] = [];
  const perChunk = (k: typeof kMax) =>
    x.chunks.forEach(({ v0, vn, view }, c) => {
      // rows per dispatch: about 2^27 logits of work, so no dispatch trips a watchdog
      const rowsPer = Math.max(1, Math.floor(2 ** 27 / vn));
      for (let r0 = 0; r0 < s.N; r0 += rowsPer) {
        const n = Math.min(rowsPer, s.N - r0);
        const params = gpu.params(k!, { N: s.N, vn, v0, c, C, r0, n, temp: s.temperature });
        calls.push(gpu.call(k!, [params, view, x.u, x.state, x.masses, x.out].slice(0, k!.kinds.length), gpu.grid(n)));
      }
    });
  perChunk(kMax);
  perChunk(kMass);
  calls.push(
    gpu.call(
      kPick!,
      [gpu.params(kPick!, { N: s.N, vn: 0, v0: 0, c: 0, C, r0: 0, n: s.N, temp: s.temperature }), gpu.none, x.u, x.state, x.masses, x.out],
      [Math.ceil(s.N / 64)],
    ),
  );
  if (s.temperature > 0) perChunk(kWalk);
  return calls;
}
