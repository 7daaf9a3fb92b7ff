// gelu_new and SwiGLU, forward and backward (shaders/activation.wgsl).
import type { Call, Gpu, View } from '../gpu/runtime.ts';

const groups = (gpu: Gpu, n: number) => gpu.elementGrid(n);

export async function geluForward(gpu: Gpu, x: { y: View; x: View; n: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'gelu_forward');
  return [gpu.call(k, [gpu.params(k, { n: x.n, I: 0 }), x.x, x.y], groups(gpu, x.n))];
}

/** d holds dy and is overwritten with dx. */
export async function geluBackward(gpu: Gpu, x: { d: View; x: View; n: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'gelu_backward');
  return [gpu.call(k, [gpu.params(k, { n: x.n, I: 0 }), x.x, x.d], groups(gpu, x.n))];
}

/** h[N, I] = silu(gu[:, :I]) * gu[:, I:] */
export async function swigluForward(gpu: Gpu, x: { h: View; gu: View; N: number; I: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'swiglu_forward');
  const n = x.N * x.I;
  return [gpu.call(k, [gpu.params(k, { n, I: x.I }), x.gu, x.h], groups(gpu, n))];
}

export async function swigluBackward(gpu: Gpu, x: { dgu: View; dh: View; gu: View; N: number; I: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'swiglu_backward');
  const n = x.N * x.I;
  return [gpu.call(k, [gpu.params(k, { n, I: x.I }), x.dh, x.gu, x.dgu], groups(gpu, n))];
}

/** y = dropout(x) with probability p; `seed` ([u32]) changes every step, `salt` tells call sites apart. */
export async function dropoutForward(gpu: Gpu, x: { y: View; x: View; seed: View; n: number; p: number; salt: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'dropout_forward');
  return [gpu.call(k, [gpu.params(k, { n: x.n, salt: x.salt, p: x.p }), x.x, x.y, x.seed], groups(gpu, x.n))];
}

/** d <- d * mask / (1 - p) with the mask the forward drew (same seed and salt). */
export async function dropoutBackward(gpu: Gpu, x: { d: View; seed: View; n: number; p: number; salt: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'dropout_backward');
  return [gpu.call(k, [gpu.params(k, { n: x.n, salt: x.salt, p: x.p }), x.d, gpu.none, x.seed], groups(gpu, x.n))];
}
