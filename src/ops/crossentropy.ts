// Softmax cross-entropy over the vocabulary with per-token weights (shaders/crossentropy.wgsl).
import type { Call, Gpu, View } from '../gpu/runtime.ts';

/**
 * losses[i] = weights[i] * CE(logits[i], targets[i]); with `fused`, logits are overwritten by their gradient.
 * Rows are processed in chunks that fit one storage binding.
 */
export async function crossEntropy(
  gpu: Gpu, s: { N: number; V: number }, x: { logits: View; targets: View; weights: View; losses: View; fused: boolean },
): Promise<Call[]> {
  const k = await gpu.kernel('crossentropy.wgsl', 'forward', ['u', 'w', 'r', 'r', 'w'], { FUSED: x.fused });
  // Rows per dispatch: within one binding, and about 2^27 logits of work (a few passes each) per dispatch.
  const rowsPer = Math.max(64, Math.floor(Math.min(gpu.maxBinding / 4, 2 ** 27) / s.V / 64) * 64);
  const calls: Call[] = [];
  for (let r0 = 0; r0 < s.N; r0 += rowsPer) {
    const n = Math.min(rowsPer, s.N - r0);
    const at = (v: View, w: number) => ({ buf: v.buf, off: v.off + r0 * w * 4, n: n * w });
    calls.push(gpu.call(k, [gpu.uniform([n, s.V], k.name), at(x.logits, s.V), at(x.targets, 1), at(x.weights, 1), at(x.losses, 1)], gpu.grid(n)));
  }
  return calls;
}
