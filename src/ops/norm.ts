// LayerNorm and RMSNorm, forward and backward (shaders/norm.wgsl). stats is [N, 2] = (mean, rstd).
import type { Call, Gpu, Kernel, View } from '../gpu/runtime.ts';

export interface NormShape {
  N: number;
  C: number;
  eps: number;
  rms: boolean;
  /** Rows inside wider rows: `group` rows of C side by side at element `off` of every `ld`-wide row (default: [N, C] contiguous). */
  rows?: { group: number; ld: number; off: number };
}

const uniformOf = (gpu: Gpu, s: NormShape, k: Kernel) => {
  const { group, ld, off } = s.rows ?? { group: 1, ld: s.C, off: 0 };
  if (group * s.C + off > ld || s.N % group !== 0) throw new Error(`norm: ${group} rows of ${s.C} at ${off} do not fit rows of ${ld} (N = ${s.N})`);
  return gpu.params(k, { N: s.N, C: s.C, eps: s.eps, G: group, ld, off });
};

export async function normForward(gpu: Gpu, s: NormShape, x: { y: View; stats: View; x: View; w: View; b?: View }): Promise<Call[]> {
  const k = await gpu.kernel('norm.wgsl', 'forward', { RMS: s.rms, ACCUM: false });
  const u = uniformOf(gpu, s, k);
  return [gpu.call(k, [u, x.x, x.w, x.b ?? gpu.none, x.y, x.stats], gpu.grid(s.N))];
}

/** dx (= or += when accum) from dy; dw, db accumulate (+=), skipped when dw is absent (a frozen norm). */
export async function normBackward(
  gpu: Gpu,
  s: NormShape,
  x: { dx: View; dw?: View; db?: View; dy: View; x: View; w: View; stats: View; accum: boolean },
): Promise<Call[]> {
  const ki = await gpu.kernel('norm.wgsl', 'backward_input', { RMS: s.rms, ACCUM: x.accum });
  const kp = await gpu.kernel('norm.wgsl', 'backward_params', { RMS: s.rms, ACCUM: false });
  const u = uniformOf(gpu, s, ki);
  return [
    ...(x.dw ? [gpu.call(kp, [u, x.dy, x.x, x.stats, x.dw, x.db ?? gpu.none], [Math.ceil(s.C / 64)])] : []),
    gpu.call(ki, [u, x.dy, x.x, x.w, x.stats, x.dx], gpu.grid(s.N)),
  ];
}
