// Causal grouped-query attention, flash style (shaders/attention.wgsl).
import type { Call, Gpu, Kernel, View } from '../gpu/runtime.ts';
import { MAX_DISPATCH_FLOPS } from './matmul.ts';

export interface AttentionShape {
  B: number;
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  scale?: number;
  /** per dispatch (tests lower it) */ maxFlops?: number;
}

/** Most query heads a decode workgroup serves, and most bytes of their queries it stages in workgroup memory. */
const DECODE_HEADS = 8,
  DECODE_QUERY_BYTES = 8192;

/** Every attention kernel's defines: the head size, and GQ, the query heads a decode workgroup serves (the shader
 *  sizes its arrays by it): the largest divisor of the group's Hq / Hkv within DECODE_HEADS and DECODE_QUERY_BYTES
 *  (every family the playground loads has groups of 1 to 8 heads: one workgroup a group). */
function defines(s: AttentionShape): { HD: number; GQ: number } {
  return { HD: s.D, GQ: decodeGroup(s) };
}

/** GQ of `defines`: the query heads a decode workgroup serves. */
export function decodeGroup(s: Pick<AttentionShape, 'Hq' | 'Hkv' | 'D'>): number {
  if (s.Hq % s.Hkv !== 0) throw new Error(`attention: ${s.Hq} query heads are not a multiple of ${s.Hkv} key/value heads`);
  const G = s.Hq / s.Hkv,
    most = Math.max(1, Math.min(DECODE_HEADS, Math.floor(DECODE_QUERY_BYTES / (16 * Math.ceil(s.D / 4)))));
  let GQ = Math.min(G, most);
  while (G % GQ !== 0) GQ--;
  return GQ;
}
/** The cache kernels': KV4 binds the caches as vec4 arrays, where every row starts on a vec4 (the cache views start
 *  on WebGPU's binding offset alignment, 256 bytes by default). */
const cacheDefines = (s: AttentionShape) => ({ ...defines(s), KV4: s.D % 4 === 0 });

function params(gpu: Gpu, s: AttentionShape, k: Kernel, bh0 = 0, L = 0): GPUBuffer {
  const S = (s.Hq + 2 * s.Hkv) * s.D;
  return gpu.params(k, { B: s.B, T: s.T, Hq: s.Hq, Hkv: s.Hkv, S, scale: s.scale ?? 1 / Math.sqrt(s.D), bh0, L });
}

/** Dispatches over `rows` (batch, head) pairs, each one at most MAX_DISPATCH_FLOPS of causal attention. */
function split(gpu: Gpu, s: AttentionShape, k: Kernel, rows: number, perRowFlops: number, bind: (u: GPUBuffer) => (View | GPUBuffer)[]): Call[] {
  const per = Math.max(1, Math.floor((s.maxFlops ?? MAX_DISPATCH_FLOPS) / Math.max(1, perRowFlops)));
  const calls: Call[] = [];
  for (let bh0 = 0; bh0 < rows; bh0 += per) {
    calls.push(gpu.call(k, bind(params(gpu, s, k, bh0)), [Math.ceil(s.T / 64), Math.min(per, rows - bh0)]));
  }
  return calls;
}

/** out [B*T, Hq*D] and lse [B, Hq, T] from qkv [B*T, (Hq + 2 Hkv) * D]. */
export async function attentionForward(gpu: Gpu, s: AttentionShape, x: { out: View; lse: View; qkv: View }): Promise<Call[]> {
  const k = await gpu.kernel('attention.wgsl', 'forward', defines(s));
  return split(gpu, s, k, s.B * s.Hq, 2 * s.T * s.T * s.D, (u) => [u, x.qkv, x.out, x.lse]);
}

/** dqkv (all of it is written) from dout; dsum [B, Hq, T] is scratch. */
export async function attentionBackward(
  gpu: Gpu,
  s: AttentionShape,
  x: { dqkv: View; dsum: View; dout: View; out: View; lse: View; qkv: View },
): Promise<Call[]> {
  const kd = await gpu.kernel('attention.wgsl', 'backward_dsum', defines(s));
  const kq = await gpu.kernel('attention.wgsl', 'backward_dq', defines(s));
  const kkv = await gpu.kernel('attention.wgsl', 'backward_dkv', defines(s));
  const G = s.Hq / s.Hkv;
  return [
    gpu.call(kd, [params(gpu, s, kd), x.out, x.dout, x.dsum], [Math.ceil((s.B * s.Hq * s.T) / 64)]),
    ...split(gpu, s, kq, s.B * s.Hq, 3 * s.T * s.T * s.D, (u) => [u, x.qkv, x.dout, x.lse, x.dsum, x.dqkv]),
    ...split(gpu, s, kkv, s.B * s.Hkv, 4 * G * s.T * s.T * s.D, (u) => [u, x.qkv, x.dout, x.lse, x.dsum, x.dqkv]),
  ];
}

/** KV cache of one layer: keys and values [B, L, Hkv, D]; meta[0] holds pos0 of the tokens being added. */
export interface LayerCache {
  k: View;
  v: View;
  meta: View;
  L: number;
}

/** Appends the new tokens' keys and values (from qkv [B*T, S]) to the cache at pos0 .. pos0+T-1. */
export async function kvAppend(gpu: Gpu, s: AttentionShape, x: { qkv: View; cache: LayerCache }): Promise<Call[]> {
  const k = await gpu.kernel('attention.wgsl', 'kv_append', cacheDefines(s));
  const n = s.B * s.T * s.Hkv * Math.ceil(s.D / 4); // a thread per vec4 of a key and a value row
  return [gpu.call(k, [params(gpu, s, k, 0, x.cache.L), x.qkv, x.cache.meta, x.cache.k, x.cache.v], gpu.grid(Math.ceil(n / 64)))];
}

/** out [B*T, Hq*D]: the new tokens' queries attend to cached keys 0 .. pos0+t. */
export async function attentionCached(gpu: Gpu, s: AttentionShape, x: { out: View; qkv: View; cache: LayerCache }): Promise<Call[]> {
  // a workgroup per new token and (batch, key/value head, GQ of its query heads): they share each key and value loaded
  const d = cacheDefines(s);
  const k = await gpu.kernel('attention.wgsl', 'decode', d);
  const per = Math.max(1, Math.floor((s.maxFlops ?? MAX_DISPATCH_FLOPS) / Math.max(1, 4 * d.GQ * s.T * x.cache.L * s.D)));
  const rows = (s.B * s.Hq) / d.GQ;
  const calls: Call[] = [];
  for (let bh0 = 0; bh0 < rows; bh0 += per) {
    const u = params(gpu, s, k, bh0, x.cache.L);
    calls.push(gpu.call(k, [u, x.qkv, x.cache.meta, x.cache.k, x.cache.v, x.out], [s.T, Math.min(per, rows - bh0)]));
  }
  return calls;
}
