// Causal grouped-query attention, flash style (shaders/attention.wgsl).
import type { Call, Gpu, View } from '../gpu/runtime.ts';

export interface AttentionShape { B: number; T: number; Hq: number; Hkv: number; D: number; scale?: number }

function params(gpu: Gpu, s: AttentionShape, name: string): GPUBuffer {
  if (s.Hq % s.Hkv !== 0) throw new Error(`attention: ${s.Hq} query heads are not a multiple of ${s.Hkv} key/value heads`);
  const S = (s.Hq + 2 * s.Hkv) * s.D;
  return gpu.uniform([s.B, s.T, s.Hq, s.Hkv, S, s.scale ?? 1 / Math.sqrt(s.D)], name, new Set([5]));
}

/** out [B*T, Hq*D] and lse [B, Hq, T] from qkv [B*T, (Hq + 2 Hkv) * D]. */
export async function attentionForward(gpu: Gpu, s: AttentionShape, x: { out: View; lse: View; qkv: View }): Promise<Call[]> {
  const k = await gpu.kernel('attention.wgsl', 'forward', ['u', 'r', 'w', 'w'], { HD: s.D });
  return [gpu.call(k, [params(gpu, s, k.name), x.qkv, x.out, x.lse], [Math.ceil(s.T / 64), s.B * s.Hq])];
}

/** dqkv (all of it is written) from dout; dsum [B, Hq, T] is scratch. */
export async function attentionBackward(
  gpu: Gpu, s: AttentionShape, x: { dqkv: View; dsum: View; dout: View; out: View; lse: View; qkv: View },
): Promise<Call[]> {
  const kd = await gpu.kernel('attention.wgsl', 'backward_dsum', ['u', 'r', 'r', 'w'], { HD: s.D });
  const kq = await gpu.kernel('attention.wgsl', 'backward_dq', ['u', 'r', 'r', 'r', 'r', 'w'], { HD: s.D });
  const kkv = await gpu.kernel('attention.wgsl', 'backward_dkv', ['u', 'r', 'r', 'r', 'r', 'w'], { HD: s.D });
  const u = params(gpu, s, kd.name);
  return [
    gpu.call(kd, [u, x.dout, x.out, x.dsum], [Math.ceil((s.B * s.Hq * s.T) / 64)]),
    gpu.call(kq, [u, x.qkv, x.dout, x.lse, x.dsum, x.dqkv], [Math.ceil(s.T / 64), s.B * s.Hq]),
    gpu.call(kkv, [u, x.qkv, x.dout, x.lse, x.dsum, x.dqkv], [Math.ceil(s.T / 64), s.B * s.Hkv]),
  ];
}
