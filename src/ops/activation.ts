// gelu_new and SwiGLU, forward and backward (shaders/activation.wgsl).
import type { Call, Gpu, View } from '../gpu/runtime.ts';

const groups = (gpu: Gpu, n: number) => gpu.grid(Math.ceil(n / 256));

export async function geluForward(gpu: Gpu, x: { y: View; x: View; n: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'gelu_forward', ['u', 'r', 'w']);
  return [gpu.call(k, [gpu.uniform([x.n], k.name), x.x, x.y], groups(gpu, x.n))];
}

/** d holds dy and is overwritten with dx. */
export async function geluBackward(gpu: Gpu, x: { d: View; x: View; n: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'gelu_backward', ['u', 'r', 'w']);
  return [gpu.call(k, [gpu.uniform([x.n], k.name), x.x, x.d], groups(gpu, x.n))];
}

/** h[N, I] = silu(gu[:, :I]) * gu[:, I:] */
export async function swigluForward(gpu: Gpu, x: { h: View; gu: View; N: number; I: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'swiglu_forward', ['u', 'r', 'w']);
  const n = x.N * x.I;
  return [gpu.call(k, [gpu.uniform([n, x.I], k.name), x.gu, x.h], groups(gpu, n))];
}

export async function swigluBackward(gpu: Gpu, x: { dgu: View; dh: View; gu: View; N: number; I: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'swiglu_backward', ['u', 'r', 'r', 'w']);
  const n = x.N * x.I;
  return [gpu.call(k, [gpu.uniform([n, x.I], k.name), x.dh, x.gu, x.dgu], groups(gpu, n))];
}

/** y = dropout(x) with probability p; `seed` ([u32]) changes every step, `salt` tells call sites apart. */
export async function dropoutForward(gpu: Gpu, x: { y: View; x: View; seed: View; n: number; p: number; salt: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'dropout_forward', ['u', 'r', 'w', 'r']);
  return [gpu.call(k, [gpu.uniform([x.n, x.salt, x.p, 0], k.name, new Set([2])), x.x, x.y, x.seed], groups(gpu, x.n))];
}

/** d <- d * mask / (1 - p) with the mask the forward drew (same seed and salt). */
export async function dropoutBackward(gpu: Gpu, x: { d: View; seed: View; n: number; p: number; salt: number }): Promise<Call[]> {
  const k = await gpu.kernel('activation.wgsl', 'dropout_backward', ['u', 'w', 'r', 'r']);
  return [gpu.call(k, [gpu.uniform([x.n, x.salt, x.p, 0], k.name, new Set([2])), x.d, gpu.none, x.seed], groups(gpu, x.n))];
}
