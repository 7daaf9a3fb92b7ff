// LayerNorm (GPT-2) and RMSNorm (Llama) over the last dimension, forward and backward.
//   x, y, dy, dx: [N, C]; w, b, dw, db: [C]; stats: [N, 2] = (mean, rstd) saved by forward for backward.
//   LayerNorm: y = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + eps) (biased variance).
//   RMSNorm:   y = x * rstd * w,              rstd = 1 / sqrt(mean(x^2) + eps); mean is stored as 0.
// Rows need not be contiguous: row r starts at off + (r / G) * ld + (r % G) * C, so the per-head q/k norms of
// Qwen3 run over the heads inside the fused qkv rows (G heads per token, token stride ld); G = 1, ld = C, off = 0
// is the plain [N, C] layout. stats stay [N, 2], contiguous.
// Defines: RMS (RMSNorm instead of LayerNorm), ACCUM (backward adds dx into the residual gradient).
// One workgroup of 64 threads per row (the prelude's group_index) with the prelude's reduction over them
// (wg_reduce, shaders/prelude.wgsl: subgroup operations where the device has them, 512 bytes of workgroup memory,
// else a tree in 1 KiB; each deterministic on one device, the two not bit-equal: they add in different orders);
// parameter grads one thread per channel, rows summed in order (deterministic, the same on both paths).

struct Params { N: u32, C: u32, eps: f32, G: u32, ld: u32, off: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

const WG = 64u; // threads per row: enough for C up to a few thousand, few barrier rounds

fn base_of(row: u32) -> u32 { return p.off + (row / p.G) * p.ld + (row % p.G) * p.C; }

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = group_index(wid, nwg);
  if (row >= p.N) { return; } // uniform across the workgroup
  let base = base_of(row);
  let fc = f32(p.C);
  var mean = 0.0;
  if (!RMS) {
    var s = 0.0;
    for (var c = lid; c < p.C; c += WG) { s += x[base + c]; }
    mean = wg_reduce(s, lid, WG, false) / fc;
  }
  var s2 = 0.0;
  for (var c = lid; c < p.C; c += WG) { let d = x[base + c] - mean; s2 += d * d; }
  let rstd = inverseSqrt(wg_reduce(s2, lid, WG, false) / fc + p.eps);
  for (var c = lid; c < p.C; c += WG) {
    var v = (x[base + c] - mean) * rstd * w[c];
    if (!RMS) { v += b[c]; }
    y[base + c] = v;
  }
  if (lid == 0u) { stats[2u * row] = mean; stats[2u * row + 1u] = rstd; }
}

@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> gx: array<f32>;
@group(0) @binding(3) var<storage, read> gw: array<f32>;
@group(0) @binding(4) var<storage, read> gst: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w   (RMSNorm: no mean(g) term)
@compute @workgroup_size(64)
fn backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = group_index(wid, nwg);
  if (row >= p.N) { return; }
  let base = base_of(row);
  let fc = f32(p.C);
  let mean = gst[2u * row];
  let rstd = gst[2u * row + 1u];
  var sg = 0.0;
  var sgx = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let g = gy[base + c] * gw[c];
    sg += g;
    sgx += g * (gx[base + c] - mean) * rstd;
  }
  var mg = wg_reduce(sg, lid, WG, false) / fc;
  if (RMS) { mg = 0.0; }
  let mgx = wg_reduce(sgx, lid, WG, false) / fc;
  for (var c = lid; c < p.C; c += WG) {
    let xhat = (gx[base + c] - mean) * rstd;
    var v = rstd * (gy[base + c] * gw[c] - mg - xhat * mgx);
    if (ACCUM) { v += dx[base + c]; }
    dx[base + c] = v;
  }
}

@group(0) @binding(3) var<storage, read> pst: array<f32>;
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;
@group(0) @binding(5) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(64)
fn backward_params(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.C) { return; }
  var sw = 0.0;
  var sb = 0.0;
  for (var r = 0u; r < p.N; r++) {
    let i = base_of(r) + c;
    let g = gy[i];
    sw += g * (gx[i] - pst[2u * r]) * pst[2u * r + 1u];
    sb += g;
  }
  dw[c] += sw;
  if (!RMS) { db[c] += sb; }
}
