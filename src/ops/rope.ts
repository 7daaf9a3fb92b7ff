// Rotary position embedding on the query and key heads of a fused qkv activation (shaders/rope.wgsl).
import type { Call, Gpu, View } from '../gpu/runtime.ts';

/** cos/sin table [P, D/2, 2] in float64 on the host, as Hugging Face's default rope: inv_freq[i] = theta^(-2i/D). */
export function ropeTable(P: number, D: number, theta: number): Float32Array {
  const half = D / 2;
  const t = new Float32Array(P * half * 2);
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < half; i++) {
      // HF computes inv_freq in float32; match that rounding, then the angle in float64.
      const invFreq = Math.fround(1 / Math.fround(theta ** ((2 * i) / D)));
      const a = p * invFreq;
      t[(p * half + i) * 2] = Math.cos(a);
      t[(p * half + i) * 2 + 1] = Math.sin(a);
    }
  }
  return t;
}

export interface RopeShape {
  BT: number;
  Hq: number;
  Hkv: number;
  D: number;
}

/** Rotates (forward) or un-rotates (backward, on gradients) heads 0 .. Hq+Hkv-1 of qkv in place. */
export async function rope(gpu: Gpu, s: RopeShape, x: { qkv: View; pos: View; table: View; backward: boolean }): Promise<Call[]> {
  const k = await gpu.kernel('rope.wgsl', 'main');
  const H = s.Hq + s.Hkv;
  const S = (s.Hq + 2 * s.Hkv) * s.D;
  const u = gpu.params(k, { BT: s.BT, S, H, D: s.D, sign: x.backward ? -1 : 1 });
  return [gpu.call(k, [u, x.pos, x.table, x.qkv], gpu.grid(Math.ceil((s.BT * H * s.D) / 2 / 256)))];
}
