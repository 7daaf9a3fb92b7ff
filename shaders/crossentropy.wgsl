// Softmax cross-entropy over a vocabulary held in column chunks, with a per-token weight (the mask and the
// mean's 1/count). The LM head writes each vocabulary chunk's logits [N, vn] to a buffer of its own, so
// no binding holds more than one chunk however large the vocabulary (Qwen's 151,936 columns are 594 KB a row).
//   targets: [N] i32, < 0 = ignored; weights: [N]; stats: [N, 3] = (max, sum of exp, target logit), then (lse, ., .)
//   stats:    per chunk in vocabulary order: folds the chunk's row max and sum of exp into stats (the online
//             softmax: the running sum is rescaled to the new max), and the target's logit when it is in the chunk
//   finalize: losses[i] = weight[i] * (logsumexp - logits[i, target[i]])  (0 for ignored rows); stats[i].x = logsumexp
//   grad:     per chunk: logits overwritten with d(sum losses)/d logits = weight * (softmax - onehot)
// One workgroup per row (threads over the chunk's columns; finalize: one thread per row); rows r0 .. r0 + n of
// N per dispatch. The max is subtracted before exp, so large logits and -inf masks stay finite. A row's max and
// sum of exp over the 256 threads are the prelude's wg_reduce, its row the prelude's group_index (+ r0). wg_reduce
// uses subgroup operations where the device has them (512 bytes of workgroup memory instead of the tree's 1 KiB):
// the max is the same on both paths, the sum of exp is deterministic on one device but not bit-equal across paths.

struct Params { N: u32, vn: u32, v0: u32, r0: u32, n: u32, _a: u32, _b: u32, _c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> losses: array<f32>;

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return p.r0 + group_index(wid, nwg); }

@compute @workgroup_size(256)
fn chunk_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= p.r0 + p.n || row >= p.N) { return; }
  let base = row * p.vn;
  var m = -3.0e38;
  for (var c = lid; c < p.vn; c += 256u) { m = max(m, logits[base + c]); }
  m = wg_reduce(m, lid, 256u, true);
  var s = 0.0;
  for (var c = lid; c < p.vn; c += 256u) { s += exp(logits[base + c] - m); }
  s = wg_reduce(s, lid, 256u, false);
  if (lid == 0u) {
    let tg = targets[row];
    let here = tg >= i32(p.v0) && tg < i32(p.v0 + p.vn);
    if (p.v0 == 0u) {
      stats[3u * row] = m;
      stats[3u * row + 1u] = s;
      stats[3u * row + 2u] = 0.0;
    } else {
      let m0 = stats[3u * row];
      let m1 = max(m0, m);
      stats[3u * row] = m1;
      stats[3u * row + 1u] = stats[3u * row + 1u] * exp(m0 - m1) + s * exp(m - m1);
    }
    if (here) { stats[3u * row + 2u] = logits[base + u32(tg) - p.v0]; }
  }
}

@compute @workgroup_size(256)
fn finalize(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = p.r0 + gid.x;
  if (row >= p.r0 + p.n || row >= p.N) { return; }
  let lse = stats[3u * row] + log(stats[3u * row + 1u]);
  let tg = targets[row];
  var loss = 0.0;
  if (tg >= 0) { loss = weights[row] * (lse - stats[3u * row + 2u]); }
  losses[row] = loss;
  stats[3u * row] = lse;
}

@compute @workgroup_size(256)
fn grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= p.r0 + p.n || row >= p.N) { return; }
  let base = row * p.vn;
  let lse = stats[3u * row];
  let tg = targets[row];
  let w = select(0.0, weights[row], tg >= 0);
  for (var c = lid; c < p.vn; c += 256u) {
    let onehot = select(0.0, 1.0, i32(p.v0 + c) == tg);
    logits[base + c] = w * (exp(logits[base + c] - lse) - onehot);
  }
}
