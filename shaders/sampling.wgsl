// Drawing one token per row on the device (src/ops/sampling.ts), so that decoding reads back two numbers a row
// instead of the row's logits: temperature sampling over the whole vocabulary, or greedy at temperature 0. A large
// vocabulary's row is big (Qwen's 151,936 logits are 594 KB) and a draw on the CPU took 3.4 ms a row.
//   logits: [N, V] (one vocabulary chunk holding every column); u: [N] uniform draws in [0, 1)
//   out:    [N, 2] = (token id, entropy in nats of softmax(logits), before temperature); id -1 where the row holds
//           NaN or +Inf, or every logit is -Inf: the caller draws that row on the CPU (its sampler defines those)
// One workgroup of 256 threads per row; thread t owns the contiguous columns [t C, (t + 1) C), C = ceil(V / 256).
// The draw: with m the row's max and e_i = exp((l_i - m) / T), thread t sums its columns' e_i in order (its mass);
// thread 0 adds the 256 masses in order into prefixes P_t (P_0 = 0, P_t+1 = P_t + mass_t, z = P_256); the goal
// is u z, and the one thread with P_t <= goal < P_t+1 (or the last thread with mass, where rounding puts the
// goal at z) walks its columns, adding e_i to P_t until the sum passes the goal: the token is where it does
// (or its last column with e_i > 0, where rounding leaves the sum short). So the token is the one at which u z,
// less each e_i in id order, falls below 0, in f32: a draw within about 1e-6 of z of a boundary between two tokens
// may pick the neighbour. Greedy: the first id of the max, as the CPU's. The caller passes one u per row whether
// it draws or not (greedy reads none).

struct Params { N: u32, V: u32, r0: u32, n: u32, temp: f32, _a: u32, _b: u32, _c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> prefix: array<f32, 257>;
var<workgroup> last_heavy: u32;

// +Inf or NaN (an exponent of all ones), but not -Inf (a masked token): read from the bits, which no compiler may
// assume away as it may a comparison of a NaN
fn undefined_logit(l: f32) -> bool {
  let b = bitcast<u32>(l);
  return (b & 0x7f800000u) == 0x7f800000u && b != 0xff800000u;
}

@compute @workgroup_size(256)
fn draw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = p.r0 + group_index(wid, nwg);
  if (row >= p.r0 + p.n || row >= p.N) { return; }
  let base = row * p.V;
  let C = (p.V + 255u) / 256u;
  let a = min(lid * C, p.V);
  let b = min(a + C, p.V);
  var m = -3.0e38;
  var bad = 0.0;
  for (var i = a; i < b; i++) {
    let l = logits[base + i];
    if (undefined_logit(l)) { bad = 1.0; } else { m = max(m, l); }
  }
  m = wg_reduce(m, lid, 256u, true);
  bad = wg_reduce(bad, lid, 256u, true);
  // the entropy of softmax(logits): log z1 - sum e (l - m) / z1, e = exp(l - m), the terms with e > 0 (as the CPU's)
  var z1 = 0.0;
  var s1 = 0.0;
  var first = -1.0e9; // minus the first column of this thread's holding the max (greedy)
  var mass = 0.0;
  for (var i = a; i < b; i++) {
    let l = logits[base + i];
    let e = exp(l - m);
    if (e > 0.0) {
      z1 += e;
      s1 += e * (l - m);
    }
    if (l == m && first == -1.0e9) { first = -f32(i); }
    if (p.temp > 0.0) { mass += exp((l - m) / p.temp); }
  }
  z1 = wg_reduce(z1, lid, 256u, false);
  s1 = wg_reduce(s1, lid, 256u, false);
  let entropy = log(z1) - s1 / z1;
  if (p.temp <= 0.0) {
    first = wg_reduce(first, lid, 256u, true);
    if (lid == 0u) {
      out[2u * row] = select(-first, -1.0, bad > 0.0 || !(z1 > 0.0) || first == -1.0e9);
      out[2u * row + 1u] = entropy;
    }
    return;
  }
  prefix[lid + 1u] = mass;
  workgroupBarrier();
  if (lid == 0u) {
    var acc = 0.0;
    var heavy = 0u;
    for (var t = 0u; t < 256u; t++) {
      let w = prefix[t + 1u];
      prefix[t] = acc; // P_t (slot t + 1 is read before slot t + 1 is written)
      acc += w;
      if (w > 0.0) { heavy = t; }
    }
    prefix[256] = acc;
    last_heavy = heavy;
    if (bad > 0.0 || !(acc > 0.0)) {
      out[2u * row] = -1.0;
      out[2u * row + 1u] = entropy;
    }
  }
  workgroupBarrier();
  let z = prefix[256];
  if (bad > 0.0 || !(z > 0.0)) { return; }
  let goal = u[row] * z;
  let lo = prefix[lid];
  let hi = prefix[lid + 1u];
  if (!(mass > 0.0 && lo <= goal && (goal < hi || lid == last_heavy))) { return; }
  var id = a;
  var cum = lo;
  for (var i = a; i < b; i++) {
    let e = exp((logits[base + i] - m) / p.temp);
    if (e > 0.0) {
      id = i;
      cum += e;
      if (cum > goal) { break; }
    }
  }
  out[2u * row] = f32(id);
  out[2u * row + 1u] = entropy;
}
