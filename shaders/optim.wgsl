// Optimizer kernels: global gradient norm (for clipping and non-finite detection) and AdamW.
//   sumsq:    partials[2 * (pofs + wg)] = sum of g^2 over the workgroup's 4096 elements,
//             partials[2 * (pofs + wg) + 1] = how many of them are NaN or Inf (tested on the bits, since
//             WGSL compilers may assume floats are finite).
//   finalize: clip = [norm, scale, bad] with scale = maxnorm / (norm + 1e-6) when norm > maxnorm > 0, else 1,
//             bad = 1 when any gradient (or the norm itself) is not finite.
//   adamw:    torch.optim.AdamW: p -= lr * wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
//             p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), with g = scale * grad.
//             Nothing is written when clip.bad is set: a non-finite step never touches the weights.
// sumsq and finalize sum over their 256 threads with the prelude's wg_reduce (shaders/prelude.wgsl), the squares
// and the non-finite counts one after the other: subgroup operations where the device has them (512 bytes of
// workgroup memory instead of 1 KiB), else a tree. The norm is deterministic on one device, not bit-equal across
// the paths; the counts are whole numbers, exact on both, so a step is skipped on both or neither. adamw takes four
// elements a thread, from the prelude's nth.

struct NormParams { n: u32, pofs: u32, maxnorm: f32, _a: u32 }

@group(0) @binding(0) var<uniform> np: NormParams;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

fn finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }

@compute @workgroup_size(256)
fn sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = group_index(wid, nwg);
  var s = 0.0;
  var bad = 0.0;
  for (var k = 0u; k < 16u; k++) {
    let i = w * 4096u + k * 256u + lid;
    if (i < np.n) {
      let x = g[i];
      if (finite(x)) { s += x * x; } else { bad += 1.0; }
    }
  }
  let ss = wg_reduce(s, lid, 256u, false);
  let nbad = wg_reduce(bad, lid, 256u, false);
  if (lid == 0u) { partials[2u * (np.pofs + w)] = ss; partials[2u * (np.pofs + w) + 1u] = nbad; }
}

@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> clip: array<f32>;

// n = number of partials
@compute @workgroup_size(256)
fn finalize(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  var bad = 0.0;
  for (var i = lid; i < np.n; i += 256u) { s += parts[2u * i]; bad += parts[2u * i + 1u]; }
  let ss = wg_reduce(s, lid, 256u, false);
  let nbad = wg_reduce(bad, lid, 256u, false);
  if (lid == 0u) {
    let norm = sqrt(ss);
    var scale = 1.0;
    if (np.maxnorm > 0.0 && norm > np.maxnorm) { scale = np.maxnorm / (norm + 1e-6); }
    clip[0] = norm;
    clip[1] = scale;
    clip[2] = select(0.0, 1.0, nbad > 0.0 || !finite(norm));
  }
}

struct AdamParams { n: u32, lr: f32, b1: f32, b2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32 }

@group(0) @binding(0) var<uniform> ap: AdamParams;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m1: array<f32>;
@group(0) @binding(4) var<storage, read_write> m2: array<f32>;
@group(0) @binding(5) var<storage, read> cl: array<f32>;

@compute @workgroup_size(256)
fn adamw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  if (cl[2] != 0.0) { return; }
  for (var k = 0u; k < 4u; k++) {
    let i = nth(wid, nwg, lid, k);
    if (i >= ap.n) { return; }
    let gi = grad[i] * cl[1];
    var pi = param[i] * (1.0 - ap.lr * ap.wd);
    let mi = ap.b1 * m1[i] + (1.0 - ap.b1) * gi;
    let vi = ap.b2 * m2[i] + (1.0 - ap.b2) * gi * gi;
    pi -= (ap.lr / ap.bc1) * mi / (sqrt(vi) / sqrt(ap.bc2) + ap.eps);
    m1[i] = mi;
    m2[i] = vi;
    param[i] = pi;
  }
}
