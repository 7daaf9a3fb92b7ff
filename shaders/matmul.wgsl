// Tiled matmul with optional bias, in every transpose the models need.
//   C[M,N] (= or +=) alpha * op(A)[M,K] @ op(B)[K,N] (+ bias[N])
//   A is [M,K] with row stride lda, or [K,M] when TRANS_A; B is [K,N] (ldb), or [N,K] when TRANS_B.
//   C has row stride ldc and every operand an element offset (aoff, boff, coff), so a call may read or
//   write a column slice of a wider matrix (q | k | v, gate | up).
// Defines (prepended by the runtime): TRANS_A, TRANS_B: they shape the inner loop's loads, so each is a
// pipeline of its own. The epilogue's choices are uniform flags instead (p.flags: FLAG_BIAS adds bias[n],
// FLAG_ACCUM makes C += result, for parameter grads): a branch per stored element that every thread takes
// the same way, where defines would compile four pipelines per transpose (a shader compile costs seconds
// on CPU adapters and on first use in a browser; the branch costs nothing next to the K loop).
// A workgroup computes a 128x128 tile of C with 16x16 threads; thread (tx, ty) owns an 8x8 block: rows
// 4ty.. and 64+4ty.., columns 4tx.. and 64+4tx... K advances in slabs of 16: both operands are staged in
// workgroup memory as vec4s along M and N (16 KiB, WebGPU's default limit), so the inner step is four vec4
// loads and sixty-four multiply-adds (the 64x128 tiles with 4x8 blocks that came before did thirty-two for
// three loads; on llvmpipe, where each load of a value that differs per lane costs a branch per lane, the
// 8x8 blocks ran the bench's matmuls about 1.3x faster at every shape, and a 64x128 tile of 128 threads with
// 8x8 blocks was between the two). Global loads are bounds-checked with select (no branches: edge tiles cost
// the same as inner ones).
// Rows start at `row0` so the host can split a large M into several dispatches (browser watchdogs).
// B_F16 (a define, true only where the device has 'shader-f16'): B is an array<f16>, a frozen weight stored in
// half the bytes (src/model/params.ts); every load converts it to f32, and products and sums stay f32. The
// `//#if B_F16` parts are kept or dropped by the runtime (a constant cannot change a binding's type), so
// without it the shader is the f32 one, unchanged: f32() of an f32 is no operation.
//#if B_F16
enable f16;
//#endif

struct Params { M: u32, N: u32, K: u32, lda: u32, ldb: u32, ldc: u32, row0: u32, aoff: u32, boff: u32, coff: u32, alpha: f32, flags: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
//#if B_F16
@group(0) @binding(2) var<storage, read> B: array<f16>;
//#else
@group(0) @binding(2) var<storage, read> B: array<f32>;
//#endif
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

const BM = 128u;
const BN = 128u;
const BK = 16u;

var<workgroup> As: array<vec4<f32>, 512>; // [k][m / 4]: As[k * 32 + i] holds rows 4i .. 4i+3 of column k
var<workgroup> Bs: array<vec4<f32>, 512>; // [k][n / 4]

fn loadA(m: u32, k: u32) -> f32 {
  let ok = m < p.M && k < p.K;
  var i = p.aoff + m * p.lda + k;
  if (TRANS_A) { i = p.aoff + k * p.lda + m; }
  return select(0.0, A[select(0u, i, ok)], ok);
}

fn loadB(k: u32, n: u32) -> f32 {
  let ok = k < p.K && n < p.N;
  var i = p.boff + k * p.ldb + n;
  if (TRANS_B) { i = p.boff + n * p.ldb + k; }
  return select(0.0, f32(B[select(0u, i, ok)]), ok);
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tx = lid.x;
  let ty = lid.y;
  let t = ty * 16u + tx;
  let m0 = p.row0 + wid.y * BM;
  let n0 = wid.x * BN;
  // c: columns 4tx.., d: columns 64+4tx..; the first digit: rows 4ty.. (0) or 64+4ty.. (1); the second: the row
  var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0); var c02 = vec4<f32>(0.0); var c03 = vec4<f32>(0.0);
  var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0); var c12 = vec4<f32>(0.0); var c13 = vec4<f32>(0.0);
  var d00 = vec4<f32>(0.0); var d01 = vec4<f32>(0.0); var d02 = vec4<f32>(0.0); var d03 = vec4<f32>(0.0);
  var d10 = vec4<f32>(0.0); var d11 = vec4<f32>(0.0); var d12 = vec4<f32>(0.0); var d13 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    // Each thread stages two vec4s of each operand (4 rows of A / 4 columns of B at one k). The element
    // order follows memory order of the source so neighbouring threads read neighbouring words.
    for (var h = 0u; h < 2u; h++) {
      let e = t + h * 256u;
      if (TRANS_A) {
        let mm = (e % 32u) * 4u; let kk = e / 32u; // A is [K, M]: m fastest
        As[kk * 32u + mm / 4u] = vec4<f32>(loadA(m0 + mm, k0 + kk), loadA(m0 + mm + 1u, k0 + kk), loadA(m0 + mm + 2u, k0 + kk), loadA(m0 + mm + 3u, k0 + kk));
      } else {
        let kk = e % 16u; let mm = (e / 16u) * 4u; // A is [M, K]: k fastest
        As[kk * 32u + mm / 4u] = vec4<f32>(loadA(m0 + mm, k0 + kk), loadA(m0 + mm + 1u, k0 + kk), loadA(m0 + mm + 2u, k0 + kk), loadA(m0 + mm + 3u, k0 + kk));
      }
      if (TRANS_B) {
        let kk = e % 16u; let nn = (e / 16u) * 4u; // B is [N, K]: k fastest
        Bs[kk * 32u + nn / 4u] = vec4<f32>(loadB(k0 + kk, n0 + nn), loadB(k0 + kk, n0 + nn + 1u), loadB(k0 + kk, n0 + nn + 2u), loadB(k0 + kk, n0 + nn + 3u));
      } else {
        let nn = (e % 32u) * 4u; let kk = e / 32u; // B is [K, N]: n fastest
        Bs[kk * 32u + nn / 4u] = vec4<f32>(loadB(k0 + kk, n0 + nn), loadB(k0 + kk, n0 + nn + 1u), loadB(k0 + kk, n0 + nn + 2u), loadB(k0 + kk, n0 + nn + 3u));
      }
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let a = As[k * 32u + ty];
      let a2 = As[k * 32u + 16u + ty];
      let b = Bs[k * 32u + tx];
      let e = Bs[k * 32u + 16u + tx];
      c00 += a.x * b; c01 += a.y * b; c02 += a.z * b; c03 += a.w * b;
      d00 += a.x * e; d01 += a.y * e; d02 += a.z * e; d03 += a.w * e;
      c10 += a2.x * b; c11 += a2.y * b; c12 += a2.z * b; c13 += a2.w * b;
      d10 += a2.x * e; d11 += a2.y * e; d12 += a2.z * e; d13 += a2.w * e;
    }
    workgroupBarrier();
  }
  let rows = array<vec4<f32>, 16>(c00, c01, c02, c03, d00, d01, d02, d03, c10, c11, c12, c13, d10, d11, d12, d13);
  for (var hm = 0u; hm < 2u; hm++) {
    for (var i = 0u; i < 4u; i++) {
      let m = m0 + hm * 64u + ty * 4u + i;
      if (m >= p.M) { continue; }
      for (var j = 0u; j < 8u; j++) {
        let n = n0 + (j / 4u) * 64u + tx * 4u + (j % 4u);
        if (n >= p.N) { continue; }
        store(m, n, rows[hm * 8u + i + (j / 4u) * 4u][j % 4u]);
      }
    }
  }
}

// Column sums of dY[M,N] (row stride lda, offset aoff) into dbias[N] (+=): the bias gradient. One
// thread per column, rows summed in a fixed order, so results are deterministic.
@compute @workgroup_size(64)
fn bias_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n >= p.N) { return; }
  var s = 0.0;
  for (var m = 0u; m < p.M; m++) { s += A[p.aoff + m * p.lda + n]; }
  C[n] += s;
}

// ---- Matrix-vector products for decoding (M <= 8 rows, A not transposed) ----
// The 64-row tiles above would do 64x the work for one row. gemv_nn (B is [K, N]): one thread per output
// column, reading a row of B per k (coalesced across threads). gemv_nt (B is [N, K], the Hub's Linear
// layout): one workgroup per output column (the prelude's group_index), threads stride over K (coalesced) and
// reduce at the end, all GM rows at once (not the prelude's one-value wg_reduce). Like wg_reduce in two versions
// (the runtime compiles one: Gpu.reductions): with subgroups, each subgroup sums its rows with subgroupAdd and its
// first thread writes them to slot lid / c (c = its thread count; aligned blocks, as the runtime's probe found),
// one barrier, then thread m adds row m's slots in slot order (deterministic on one device; 512 bytes of
// workgroup memory); without, one tree over the 64 threads for all rows, sharing its barriers (2 KiB).
// GR (a define: 1, 2, 4 or 8, the next power of two >= M; up to 32 for gemv4 below): the rows both kernels are
// compiled for. Their loops
// over rows have that constant bound, so each thread's row sums are registers: with the runtime M as the bound,
// the array was indexed dynamically and compilers keep such an array in memory (lavapipe; local memory on
// NVIDIA), which made 8 rows cost 8x one (measured on llvmpipe: batch-8 decoding 1.7x faster with it). Rows
// past M read row M - 1 again (no reads out of bounds) and are not stored.
const GM = 8u;

const FLAG_BIAS = 1u;
const FLAG_ACCUM = 2u;

// C[m, n] (= or +=) alpha * acc (+ bias[n]): the epilogue of every matmul kernel here.
fn store(m: u32, n: u32, acc: f32) {
  var v = p.alpha * acc;
  if ((p.flags & FLAG_BIAS) != 0u) { v += bias[n]; }
  let at = p.coff + m * p.ldc + n;
  if ((p.flags & FLAG_ACCUM) != 0u) { v += C[at]; }
  C[at] = v;
}

@compute @workgroup_size(64)
fn gemv_nn(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n >= p.N) { return; }
  var acc: array<f32, GR>;
  for (var k = 0u; k < p.K; k++) {
    let w = f32(B[p.boff + k * p.ldb + n]);
    for (var m = 0u; m < GR; m++) { acc[m] += A[p.aoff + min(m, p.M - 1u) * p.lda + k] * w; }
  }
  for (var m = 0u; m < GR; m++) { if (m < p.M) { store(m, n, acc[m]); } }
}

//#if subgroups
var<workgroup> part: array<array<f32, 16>, GM>; // 64 threads in subgroups of 4 or more
//#else
var<workgroup> part: array<array<f32, 64>, GM>;
//#endif

@compute @workgroup_size(64)
fn gemv_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = group_index(wid, nwg);
  if (n >= p.N) { return; } // uniform across the workgroup
  var acc: array<f32, GR>;
  for (var k = lid; k < p.K; k += 64u) {
    let w = f32(B[p.boff + n * p.ldb + k]);
    for (var m = 0u; m < GR; m++) { acc[m] += A[p.aoff + min(m, p.M - 1u) * p.lda + k] * w; }
  }
//#if subgroups
  let c = subgroupAdd(1u);
  for (var m = 0u; m < GR; m++) {
    let r = subgroupAdd(acc[m]);
    if (lid % c == 0u) { part[m][lid / c] = r; }
  }
  workgroupBarrier();
  if (lid < p.M) {
    var t = part[lid][0];
    for (var i = 1u; i < 64u / c; i++) { t += part[lid][i]; }
    store(lid, n, t);
  }
//#else
  for (var m = 0u; m < GR; m++) { part[m][lid] = acc[m]; }
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) { for (var m = 0u; m < GR; m++) { part[m][lid] += part[m][lid + s]; } }
    workgroupBarrier();
  }
  if (lid < p.M) { store(lid, n, part[lid][0]); }
//#endif
}

// ---- The same products with vec4 loads (gemv4_nn, gemv4_nt) ----
// Where K and the row strides and offsets of A and B are multiples of 4 (the host checks; every model's widths
// are), A and B are read as vec4s: A4 and B4 are the same bindings as A and B (one entry point uses one or the
// other), so a thread loads four values per load. A thread owns four adjacent columns and all GR rows: gemv4_nn
// reads a vec4 of B along n (adjacent threads read adjacent 16 bytes: coalesced), gemv4_nt reads a vec4 along k
// from each of its four rows of B and transposes the 4x4 block in registers. Either way one vec4 of A (four k of
// a row, the same for every thread) serves sixteen multiply-adds, where the scalar kernels above load a value of
// A for each one; on llvmpipe, where a load costs a branch per lane, the bench's GPT's LM head (8192 x 256) took
// 0.9-1.5 ms against gemv_nt's 9-12 at one row, 3-6 against 21 at eight (each timed alone), and decoding ran 2.3-2.5x
// as many tokens/s (bench/results/lavapipe-generate.json against lavapipe-generate-before-gemv4.json).
// They take up to 32 rows (src/ops/matmul.ts: GEMV4_ROWS): a batch of rollouts decodes 16, where a 128-row tile
// computed 8x the rows (4-7x slower on llvmpipe). Each column sums its products in k order, one at a time, as
// gemv_nn and the tiles do, so gemv4_nn and gemv4_nt give their results to the bit; gemv_nt's order was a strided
// tree. gemv4_nt's lanes read different rows (16 bytes each): right for a CPU adapter's SIMD lanes, not coalesced on
// a GPU, where gemv4_nt_lanes (below) runs instead.
// Columns past N (the last thread's, when N is not a multiple of 4) read a row that exists (nt: row N - 1; nn:
// the next vec4 of the buffer, clamped by robust access at its end) and are not stored.
@group(0) @binding(1) var<storage, read> A4: array<vec4<f32>>;
//#if B_F16
@group(0) @binding(2) var<storage, read> B4: array<vec4<f16>>;
//#else
@group(0) @binding(2) var<storage, read> B4: array<vec4<f32>>;
//#endif

// s + a.x w0 + a.y w1 + a.z w2 + a.w w3, added one term at a time (each column's sum keeps k order)
fn madd4(s: vec4<f32>, a: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
  var r = s;
  r += a.x * w0;
  r += a.y * w1;
  r += a.z * w2;
  r += a.w * w3;
  return r;
}

// Where rows n .. n + 3 of a B stored [N, K] start, as vec4 indexes; rows past N read row N - 1.
fn rows4(n: u32) -> vec4<u32> {
  return p.boff / 4u + min(vec4<u32>(n) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.N - 1u)) * (p.ldb / 4u);
}

// C[m, n .. n + 3] from v; columns past N are not stored.
fn store4(m: u32, n: u32, v: vec4<f32>) {
  for (var j = 0u; j < 4u; j++) { if (n + j < p.N) { store(m, n + j, v[j]); } }
}

@compute @workgroup_size(64)
fn gemv4_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = 4u * (group_index(wid, nwg) * 64u + lid); // columns n .. n + 3
  if (n >= p.N) { return; }
  let lda = p.lda / 4u;
  let ldb = p.ldb / 4u;
  let a0 = p.aoff / 4u;
  let b0 = p.boff / 4u + n / 4u;
  var acc: array<vec4<f32>, GR>;
  for (var k = 0u; k < p.K / 4u; k++) {
    let r = b0 + 4u * k * ldb; // row 4k of B at column n
    let w0 = vec4<f32>(B4[r]);
    let w1 = vec4<f32>(B4[r + ldb]);
    let w2 = vec4<f32>(B4[r + 2u * ldb]);
    let w3 = vec4<f32>(B4[r + 3u * ldb]);
    for (var m = 0u; m < GR; m++) { acc[m] = madd4(acc[m], A4[a0 + min(m, p.M - 1u) * lda + k], w0, w1, w2, w3); }
  }
  for (var m = 0u; m < GR; m++) { if (m < p.M) { store4(m, n, acc[m]); } }
}

@compute @workgroup_size(64)
fn gemv4_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = 4u * (group_index(wid, nwg) * 64u + lid); // columns n .. n + 3: rows n .. n + 3 of B
  if (n >= p.N) { return; }
  let lda = p.lda / 4u;
  let a0 = p.aoff / 4u;
  let r = rows4(n);
  var acc: array<vec4<f32>, GR>;
  for (var k = 0u; k < p.K / 4u; k++) {
    // t[i]: element 4k + i of the four rows
    let t = transpose(mat4x4<f32>(vec4<f32>(B4[r.x + k]), vec4<f32>(B4[r.y + k]), vec4<f32>(B4[r.z + k]), vec4<f32>(B4[r.w + k])));
    for (var m = 0u; m < GR; m++) { acc[m] = madd4(acc[m], A4[a0 + min(m, p.M - 1u) * lda + k], t[0], t[1], t[2], t[3]); }
  }
  for (var m = 0u; m < GR; m++) { if (m < p.M) { store4(m, n, acc[m]); } }
}

//#if subgroups
// gemv4_nt for GPUs (the host picks it: Gpu.matvecLanes): the S lanes of a subgroup share four columns and split K,
// lane j reading vec4 j, j + S, ... of each of the four rows of B, so a subgroup's loads are adjacent (one row's
// 16 S bytes at a time: coalesced), then one subgroupAdd per row of A sums the lanes' parts. A 64-thread workgroup
// covers 4 * 64 / S columns (subgroups are aligned blocks of its threads: the runtime's probe). Its sums are the
// lanes' k-strided parts added by the subgroup, not k order: close to gemv4_nt's, not the same bits. On llvmpipe,
// whose "lanes" are one CPU thread's SIMD lanes, it ran like gemv4_nt at one row and 1.8x slower at eight.
@compute @workgroup_size(64)
fn gemv4_nt_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                  @builtin(subgroup_size) S: u32, @builtin(subgroup_invocation_id) j: u32) {
  let n = 4u * (group_index(wid, nwg) * (64u / S) + lid / S); // columns n .. n + 3, the same in the whole subgroup
  let lda = p.lda / 4u;
  let a0 = p.aoff / 4u;
  // rows past N read row N - 1 and are not stored (no early return: subgroupAdd needs the whole subgroup)
  let r = rows4(n);
  var acc: array<vec4<f32>, GR>;
  for (var k = j; k < p.K / 4u; k += S) {
    let w0 = vec4<f32>(B4[r.x + k]);
    let w1 = vec4<f32>(B4[r.y + k]);
    let w2 = vec4<f32>(B4[r.z + k]);
    let w3 = vec4<f32>(B4[r.w + k]);
    for (var m = 0u; m < GR; m++) {
      let a = A4[a0 + min(m, p.M - 1u) * lda + k];
      acc[m] += vec4<f32>(dot(a, w0), dot(a, w1), dot(a, w2), dot(a, w3));
    }
  }
  for (var m = 0u; m < GR; m++) {
    let s = subgroupAdd(acc[m]);
    if (j == 0u && m < p.M) { store4(m, n, s); }
  }
}
//#endif
