// Tiled matmul with optional bias, in every transpose the models need.
//   C[M,N] (= or +=) op(A)[M,K] @ op(B)[K,N] (+ bias[N])
//   A is [M,K] with row stride lda, or [K,M] when TRANS_A; B is [K,N] (ldb), or [N,K] when TRANS_B.
//   C has row stride ldc and every operand an element offset (aoff, boff, coff), so a call may read or
//   write a column slice of a wider matrix (q | k | v, gate | up).
// Defines (prepended by the runtime): TRANS_A, TRANS_B, HAS_BIAS, ACCUM (C += result; parameter grads).
// A workgroup computes a 64x64 tile of C with 16x16 threads; each thread owns 4x4 outputs strided by 16
// so that workgroup-memory reads are conflict-free and global stores coalesce. K advances in slabs of 16.
// Rows start at `row0` so the host can split a large M into several dispatches (browser watchdogs).

struct Params { M: u32, N: u32, K: u32, lda: u32, ldb: u32, ldc: u32, row0: u32, aoff: u32, boff: u32, coff: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

const BM = 64u;
const BN = 64u;
const BK = 16u;

var<workgroup> As: array<array<f32, 68>, 16>; // [k][m], padded
var<workgroup> Bs: array<array<f32, 68>, 16>; // [k][n], padded

fn loadA(m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  if (TRANS_A) { return A[p.aoff + k * p.lda + m]; }
  return A[p.aoff + m * p.lda + k];
}

fn loadB(k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  if (TRANS_B) { return B[p.boff + n * p.ldb + k]; }
  return B[p.boff + k * p.ldb + n];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tx = lid.x;
  let ty = lid.y;
  let t = ty * 16u + tx;
  let m0 = p.row0 + wid.y * BM;
  let n0 = wid.x * BN;
  var c0 = vec4<f32>(0.0);
  var c1 = vec4<f32>(0.0);
  var c2 = vec4<f32>(0.0);
  var c3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    // 64x16 elements of each operand, 4 per thread. The fast-moving index follows memory order.
    for (var i = 0u; i < 4u; i++) {
      let e = t + i * 256u;
      if (TRANS_A) { let mm = e % BM; let kk = e / BM; As[kk][mm] = loadA(m0 + mm, k0 + kk); }
      else { let kk = e % BK; let mm = e / BK; As[kk][mm] = loadA(m0 + mm, k0 + kk); }
      if (TRANS_B) { let kk = e % BK; let nn = e / BK; Bs[kk][nn] = loadB(k0 + kk, n0 + nn); }
      else { let nn = e % BN; let kk = e / BN; Bs[kk][nn] = loadB(k0 + kk, n0 + nn); }
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let a = vec4<f32>(As[k][ty], As[k][ty + 16u], As[k][ty + 32u], As[k][ty + 48u]);
      let b = vec4<f32>(Bs[k][tx], Bs[k][tx + 16u], Bs[k][tx + 32u], Bs[k][tx + 48u]);
      c0 += a.x * b;
      c1 += a.y * b;
      c2 += a.z * b;
      c3 += a.w * b;
    }
    workgroupBarrier();
  }
  let rows = array<vec4<f32>, 4>(c0, c1, c2, c3);
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty + 16u * i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx + 16u * j;
      if (n >= p.N) { continue; }
      var v = rows[i][j];
      if (HAS_BIAS) { v += bias[n]; }
      let at = p.coff + m * p.ldc + n;
      if (ACCUM) { v += C[at]; }
      C[at] = v;
    }
  }
}

// Column sums of dY[M,N] (row stride ldc) into dbias[N] (+=): the bias gradient. One thread per column,
// rows summed in a fixed order, so results are deterministic.
@compute @workgroup_size(64)
fn bias_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n >= p.N) { return; }
  var s = 0.0;
  for (var m = 0u; m < p.M; m++) { s += A[p.aoff + m * p.lda + n]; }
  C[n] += s;
}
