// Softmax cross-entropy fused over the vocabulary, with a per-token weight (the mask and the mean's 1/count).
//   logits: [N, V] (row stride V); targets: [N] i32, < 0 = ignored; weights: [N]
//   forward: losses[i] = weight[i] * (logsumexp(logits[i]) - logits[i, target[i]])  (0 for ignored rows)
//   fused:   the same, and logits[i] is overwritten with d(sum losses)/d logits[i] = weight[i] * (softmax - onehot).
// One workgroup per row; the max is subtracted before exp, so large logits and -inf masks stay finite.

struct Params { N: u32, V: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> losses: array<f32>;

var<workgroup> red: array<f32, 256>;

fn reduce(v: f32, lid: u32, is_max: bool) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) {
      if (is_max) { red[lid] = max(red[lid], red[lid + s]); } else { red[lid] += red[lid + s]; }
    }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn row_lse(base: u32, lid: u32) -> f32 {
  var m = -3.0e38;
  for (var c = lid; c < p.V; c += 256u) { m = max(m, logits[base + c]); }
  m = reduce(m, lid, true);
  var s = 0.0;
  for (var c = lid; c < p.V; c += 256u) { s += exp(logits[base + c] - m); }
  return m + log(reduce(s, lid, false));
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.N) { return; }
  let base = row * p.V;
  let lse = row_lse(base, lid);
  if (lid == 0u) {
    let tg = targets[row];
    var loss = 0.0;
    if (tg >= 0) { loss = weights[row] * (lse - logits[base + u32(tg)]); }
    losses[row] = loss;
  }
  if (FUSED) {
    workgroupBarrier(); // the target's logit is read above before it is overwritten below
    let tg = targets[row];
    let w = select(0.0, weights[row], tg >= 0);
    for (var c = lid; c < p.V; c += 256u) {
      let onehot = select(0.0, 1.0, i32(c) == tg);
      logits[base + c] = w * (exp(logits[base + c] - lse) - onehot);
    }
  }
}
