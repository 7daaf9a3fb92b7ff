// Residual add, in-place accumulate, and zeroing (shaders/residual.wgsl).
import type { Call, Gpu, View } from '../gpu/runtime.ts';

export async function add(gpu: Gpu, x: { y: View; a: View; b: View; n: number }): Promise<Call[]> {
  const k = await gpu.kernel('residual.wgsl', 'add');
  return [gpu.call(k, [gpu.params(k, { n: x.n }), x.a, x.b, x.y], gpu.elementGrid(x.n))];
}

export async function accumulate(gpu: Gpu, x: { acc: View; src: View; n: number }): Promise<Call[]> {
  const k = await gpu.kernel('residual.wgsl', 'accumulate');
  return [gpu.call(k, [gpu.params(k, { n: x.n }), x.acc, x.src], gpu.elementGrid(x.n))];
}

/** Zeroes a view, in pieces no larger than one storage binding. */
export async function zero(gpu: Gpu, v: View): Promise<Call[]> {
  const k = await gpu.kernel('residual.wgsl', 'zero');
  const calls: Call[] = [];
  const step = Math.floor(gpu.maxBinding / 4 / 64) * 64;
  for (let i = 0; i < v.n; i += step) {
    const n = Math.min(step, v.n - i);
    calls.push(gpu.call(k, [gpu.params(k, { n }), { buf: v.buf, off: v.off + i * 4, n }], gpu.elementGrid(n)));
  }
  return calls;
}
