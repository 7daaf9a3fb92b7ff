// Global gradient norm (clipping + non-finite detection) and AdamW (shaders/optim.wgsl).
import type { Call, Gpu, View } from '../gpu/runtime.ts';

const PER_GROUP = 4096;

/** Pieces of a view that each fit one binding, aligned to whole norm workgroups. */
function pieces(gpu: Gpu, v: View): View[] {
  const step = Math.floor(gpu.maxBinding / 4 / PER_GROUP) * PER_GROUP;
  const out: View[] = [];
  for (let i = 0; i < v.n; i += step) out.push({ buf: v.buf, off: v.off + i * 4, n: Math.min(step, v.n - i) });
  return out;
}

export function normPartials(grads: View[]): number {
  return grads.reduce((s, g) => s + Math.ceil(g.n / PER_GROUP) + 1, 0);
}

/** clip = [norm, scale, bad] over all `grads`; maxNorm 0 disables clipping (scale 1). partials: 2 * normPartials(grads). */
export async function gradNorm(gpu: Gpu, x: { clip: View; partials: View; grads: View[]; maxNorm: number }): Promise<Call[]> {
  const ks = await gpu.kernel('optim.wgsl', 'sumsq');
  const kf = await gpu.kernel('optim.wgsl', 'finalize');
  const calls: Call[] = [];
  let pofs = 0;
  for (const g of x.grads) {
    for (const piece of pieces(gpu, g)) {
      const groups = Math.ceil(piece.n / PER_GROUP);
      calls.push(gpu.call(ks, [gpu.params(ks, { n: piece.n, pofs, maxnorm: 0 }), piece, x.partials], gpu.grid(groups)));
      pofs += groups;
    }
  }
  calls.push(gpu.call(kf, [gpu.params(kf, { n: pofs, pofs: 0, maxnorm: x.maxNorm }), x.partials, x.clip], [1]));
  return calls;
}

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** One AdamW update of `param` from `grad`; `set(step, lr)` rewrites the uniforms before a submit (no allocation). */
export async function adamw(
  gpu: Gpu,
  x: { param: View; grad: View; m: View; v: View; clip: View; hyper: AdamHyper },
): Promise<{ calls: Call[]; set: (step: number, lr: number) => void }> {
  const k = await gpu.kernel('optim.wgsl', 'adamw');
  const h = x.hyper;
  const parts = [pieces(gpu, x.param), pieces(gpu, x.grad), pieces(gpu, x.m), pieces(gpu, x.v)];
  const uniforms: { u: GPUBuffer; n: number }[] = [];
  const calls = parts[0]!.map((p, i) => {
    const u = gpu.params(k, { n: p.n, lr: h.lr, b1: h.beta1, b2: h.beta2, eps: h.eps, wd: h.weightDecay, bc1: 1, bc2: 1 });
    uniforms.push({ u, n: p.n });
    return gpu.call(k, [u, p, parts[1]![i]!, parts[2]![i]!, parts[3]![i]!, x.clip], gpu.elementGrid(p.n));
  });
  const set = (step: number, lr: number) => {
    for (const { u, n } of uniforms) {
      gpu.writeParams(u, k, { n, lr, b1: h.beta1, b2: h.beta2, eps: h.eps, wd: h.weightDecay, bc1: 1 - h.beta1 ** step, bc2: 1 - h.beta2 ** step });
    }
  };
  return { calls, set };
}
