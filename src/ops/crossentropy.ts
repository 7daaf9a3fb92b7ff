// Softmax cross-entropy over the vocabulary with per-token weights (shaders/crossentropy.wgsl).
import type { Call, Gpu, View } from '../gpu/runtime.ts';

/** The logits of vocabulary columns [v0, v0 + vn): a buffer of their own, [N, vn]. */
export interface LogitChunk {
  v0: number;
  vn: number;
  view: View;
}

/**
 * losses[i] = weights[i] * CE(logits[i], targets[i]), the logits given as vocabulary chunks in order; with
 * `fused`, every chunk is overwritten by its gradient. `stats` is scratch of 3N floats.
 */
export async function crossEntropy(
  gpu: Gpu,
  s: { N: number },
  x: { chunks: LogitChunk[]; targets: View; weights: View; stats: View; losses: View; fused: boolean },
): Promise<Call[]> {
  const [ks, kf, kg] = await Promise.all(['chunk_stats', 'finalize', 'grad'].map((e) => gpu.kernel('crossentropy.wgsl', e)));
  const calls: Call[] = [];
  const dispatches = (kernel: typeof ks, c: LogitChunk) => {
    // rows per dispatch: about 2^27 logits of work (a few passes each), so no dispatch trips a watchdog
    const rowsPer = Math.max(1, Math.floor(2 ** 27 / c.vn));
    for (let r0 = 0; r0 < s.N; r0 += rowsPer) {
      const n = Math.min(rowsPer, s.N - r0);
      calls.push(gpu.call(kernel!, [gpu.params(kernel!, { N: s.N, vn: c.vn, v0: c.v0, r0, n }), c.view, x.targets, x.weights, x.stats], gpu.grid(n)));
    }
  };
  for (const c of x.chunks) dispatches(ks, c);
  calls.push(
    gpu.call(kf!, [gpu.params(kf!, { N: s.N, vn: 0, v0: 0, r0: 0, n: s.N }), gpu.none, x.targets, x.weights, x.stats, x.losses], [Math.ceil(s.N / 256)]),
  );
  if (x.fused) for (const c of x.chunks) dispatches(kg, c);
  return calls;
}
