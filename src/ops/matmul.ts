// C (= or +=) op(A) @ op(B) (+ bias): the hot path. See shaders/matmul.wgsl for layouts.
import { GpuError, type Call, type Defines, type Gpu, type View } from '../gpu/runtime.ts';

export interface MatmulArgs {
  c: View;
  a: View;
  b: View;
  bias?: View;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** Scales the product (LoRA's alpha / r). */
  alpha?: number;
  /** C += result (parameter gradients accumulate). */
  accum?: boolean;
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** Element offsets of the operands inside their views (column slices of wider matrices). */
  aOff?: number;
  bOff?: number;
  cOff?: number;
  /** Upper bound of FLOPs per dispatch (tests lower it to exercise the splits). */
  maxFlops?: number;
  /** B is f16 (a frozen weight stored in half the bytes: its view's n counts 32-bit words, two values each, and
   *  bOff / ldb count f16 values); products and sums stay f32. Needs the device's 'shader-f16'. */
  bF16?: boolean;
}

/** Work per dispatch stays below this many FLOPs so no single dispatch trips a browser's GPU watchdog. */
export const MAX_DISPATCH_FLOPS = 2 ** 31;
const TILE = 128;
const TILE_N = 128;
/** The epilogue's flags (Params.flags in shaders/matmul.wgsl). */
const FLAG_BIAS = 1,
  FLAG_ACCUM = 2;
/** Products with at most this many rows use the matrix-vector kernels... */
export const GEMV_ROWS = 8;
/** ...and up to this many where they can read vec4s (gemv4_nn, gemv4_nt): a batch of rollouts decodes 16 rows
 *  (4 prompts x 4 samples), where a 128-row tile computed 8x the rows; measured on llvmpipe, 16 and 32 rows ran
 *  4-7x faster this way than tiled at the bench's decode shapes. */
export const GEMV4_ROWS = 32;

export async function matmul(gpu: Gpu, x: MatmulArgs): Promise<Call[]> {
  const { M, N, K } = x;
  const transA = !!x.transA;
  const transB = !!x.transB;
  const lda = x.lda ?? (transA ? M : K);
  const ldb = x.ldb ?? (transB ? K : N);
  const ldc = x.ldc ?? N;
  const maxFlops = x.maxFlops ?? MAX_DISPATCH_FLOPS;
  // the transposes are compiled in; bias and accumulation are uniform flags (shaders/matmul.wgsl)
  if (x.bF16 && !gpu.features.has('shader-f16')) throw new GpuError("an f16 matmul operand on a device without 'shader-f16'");
  // (B_F16 only when set: the f32 kernels keep their names and cache keys)
  const defines: Defines = x.bF16 ? { TRANS_A: transA, TRANS_B: transB, B_F16: true } : { TRANS_A: transA, TRANS_B: transB };
  // GR: the rows a matrix-vector kernel is compiled for (a power of two >= M): its loops over rows have a
  // constant bound, so their per-row sums stay in registers (an array indexed by a runtime bound is kept in memory)
  const rowsFor = (m: number) => 2 ** Math.ceil(Math.log2(Math.max(1, m)));
  const flags = (bias: boolean, accum: boolean) => (bias ? FLAG_BIAS : 0) | (accum ? FLAG_ACCUM : 0);
  // decoding: a matrix-vector kernel (the tiles would compute 128 rows for these few); with vec4 loads where
  // K and A's and B's strides and offsets are multiples of 4, four columns per thread
  const vec4 = [K, lda, ldb, x.aOff ?? 0, x.bOff ?? 0].every((v) => v % 4 === 0);
  if (M <= (vec4 ? GEMV4_ROWS : GEMV_ROWS) && !transA && K > 0) {
    // B stored [N, K] on a GPU with subgroups: a subgroup's lanes split K (Gpu.matvecLanes: S lanes per 4 columns)
    if (vec4 && transB) await gpu.reductions(); // decided once per runtime, before any kernel compiles
    const lanes = vec4 && transB ? gpu.matvecLanes : 0;
    const entry = lanes ? 'gemv4_nt_lanes' : `gemv${vec4 ? '4' : ''}_${transB ? 'nt' : 'nn'}`;
    const kernel = await gpu.kernel('matmul.wgsl', entry, { ...defines, GR: rowsFor(M) });
    const u = gpu.params(kernel, {
      M,
      N,
      K,
      lda,
      ldb,
      ldc,
      row0: 0,
      aoff: x.aOff ?? 0,
      boff: x.bOff ?? 0,
      coff: x.cOff ?? 0,
      alpha: x.alpha ?? 1,
      flags: flags(!!x.bias, !!x.accum),
    });
    const grid = lanes
      ? gpu.grid(Math.ceil(N / ((4 * 64) / lanes)))
      : vec4
        ? gpu.grid(Math.ceil(N / 256))
        : transB
          ? gpu.grid(N)
          : ([Math.ceil(N / 64)] as [number]);
    return [gpu.call(kernel, [u, x.a, x.b, x.bias ?? gpu.none, x.c], grid)];
  }
  const calls: Call[] = [];
  // dW-style products (A transposed, K = tokens) are split along K: each slab accumulates into C.
  const kSplit = transA && !transB ? Math.max(TILE, Math.floor(maxFlops / (2 * M * N) / TILE) * TILE) : K;
  const mSplit = Math.max(TILE, Math.floor(maxFlops / (2 * N * Math.min(K, kSplit)) / TILE) * TILE);
  for (let k0 = 0; k0 < K || (K === 0 && k0 === 0); k0 += kSplit) {
    const kn = Math.min(kSplit, K - k0);
    const kernel = await gpu.kernel('matmul.wgsl', 'main', { ...defines, GR: GEMV_ROWS });
    const f = flags(!!x.bias && k0 === 0, !!x.accum || k0 > 0);
    const aOff = (x.aOff ?? 0) + k0 * lda; // A is [K, M] here: slab k0 starts k0 rows in
    const bOff = (x.bOff ?? 0) + k0 * ldb;
    for (let row0 = 0; row0 < M; row0 += mSplit) {
      const rows = Math.min(mSplit, M - row0);
      const u = gpu.params(kernel, { M, N, K: kn, lda, ldb, ldc, row0, aoff: aOff, boff: bOff, coff: x.cOff ?? 0, alpha: x.alpha ?? 1, flags: f });
      calls.push(gpu.call(kernel, [u, x.a, x.b, x.bias ?? gpu.none, x.c], [Math.ceil(N / TILE_N), Math.ceil(rows / TILE)]));
    }
    if (K === 0) break;
  }
  return calls;
}

/** dbias[N] += column sums of dy[M, N] (row stride ldy). */
export async function biasBackward(gpu: Gpu, x: { dbias: View; dy: View; M: number; N: number; ldy?: number; dyOff?: number }): Promise<Call[]> {
  const kernel = await gpu.kernel('matmul.wgsl', 'bias_backward', { TRANS_A: false, TRANS_B: false, GR: GEMV_ROWS });
  const u = gpu.params(kernel, { M: x.M, N: x.N, K: 0, lda: x.ldy ?? x.N, ldb: 0, ldc: 0, row0: 0, aoff: x.dyOff ?? 0, boff: 0, coff: 0, alpha: 0, flags: 0 });
  return [gpu.call(kernel, [u, x.dy, gpu.none, gpu.none, x.dbias], [Math.ceil(x.N / 64)])];
}
