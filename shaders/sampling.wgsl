// Drawing one token per row on the device (src/ops/sampling.ts), so that decoding reads back two numbers a row
// instead of the row's logits: temperature sampling over the whole vocabulary, or greedy at temperature 0. A large
// vocabulary's row is big (Qwen's 151,936 logits are 594 KB) and a draw on the CPU took 3.4 ms a row.
// The logits come as the LM head writes them: C vocabulary chunks in order, chunk c holding columns [v0, v0 + vn)
// of every row in a buffer of its own (the entries below that read logits run once per chunk).
//   u:      [N] uniform draws in [0, 1)
//   state:  per row, C x 5 (the chunk's max, whether it holds NaN or +Inf, sum of e, sum of e (l - m), minus the
//           first id of the max) then 4 (the claimed chunk and thread, the sum before them, the goal)
//   masses: per row, C x 256: each thread's sum of exp((l - m) / T) over its columns
//   out:    [N, 2] = (token id, entropy in nats of softmax(logits), before temperature); id -1 where the row holds
//           NaN or +Inf, or every logit is -Inf: the caller draws that row on the CPU (its sampler defines those)
// One workgroup of 256 threads per row (pick: one thread per row); in a chunk, thread t owns the contiguous columns
// [t K, (t + 1) K), K = ceil(vn / 256). The draw: m the row's max, e_i = exp((l_i - m) / T); the chunks' threads in
// order hold masses whose running sum P (in that order, by one thread: pick) ends at z; the goal is u z, and the
// first thread (in that order) with mass whose interval [P, P + mass) holds the goal, or the last one with mass
// where rounding puts the goal at z, walks its columns adding e_i to P until the sum passes the goal: the token is
// where it does (or its last column with e_i > 0, where rounding leaves the sum short). So the token is the one at
// which u z, less each e_i in id order, falls below 0, in f32: a draw within about 1e-6 of z of a boundary between
// two tokens may pick the neighbour. Greedy: the first id of the max, as the CPU's.

struct Params { N: u32, vn: u32, v0: u32, c: u32, C: u32, r0: u32, n: u32, temp: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> masses: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const NONE = -1.0e9; // "no column holds the max" in the minus-first-id slot

fn slot(row: u32, c: u32, k: u32) -> u32 { return row * (p.C * 5u + 4u) + c * 5u + k; }
fn claim_slot(row: u32, k: u32) -> u32 { return row * (p.C * 5u + 4u) + p.C * 5u + k; }

// +Inf or NaN (an exponent of all ones), but not -Inf (a masked token): read from the bits, which no compiler may
// assume away as it may a comparison of a NaN
fn undefined_logit(l: f32) -> bool {
  let b = bitcast<u32>(l);
  return (b & 0x7f800000u) == 0x7f800000u && b != 0xff800000u;
}

// the row's max over every chunk (each chunk_max wrote its own)
fn row_max(row: u32) -> f32 {
  var m = -3.0e38;
  for (var k = 0u; k < p.C; k++) { m = max(m, state[slot(row, k, 0u)]); }
  return m;
}

fn the_row(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return p.r0 + group_index(wid, nwg); }
// whether `row` is among this dispatch's rows
fn live(row: u32) -> bool { return row < p.r0 + p.n && row < p.N; }
// the columns [x, y) of the chunk thread `lid` owns: K = ceil(vn / 256) contiguous ones
fn span(lid: u32) -> vec2<u32> {
  let K = (p.vn + 255u) / 256u;
  let a = min(lid * K, p.vn);
  return vec2<u32>(a, min(a + K, p.vn));
}

@compute @workgroup_size(256)
fn chunk_max(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = the_row(wid, nwg);
  if (!live(row)) { return; }
  let base = row * p.vn;
  let cols = span(lid);
  var m = -3.0e38;
  var bad = 0.0;
  for (var i = cols.x; i < cols.y; i++) {
    let l = logits[base + i];
    if (undefined_logit(l)) { bad = 1.0; } else { m = max(m, l); }
  }
  m = wg_reduce(m, lid, 256u, true);
  bad = wg_reduce(bad, lid, 256u, true);
  if (lid == 0u) {
    state[slot(row, p.c, 0u)] = m;
    state[slot(row, p.c, 1u)] = bad;
  }
}

@compute @workgroup_size(256)
fn chunk_mass(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = the_row(wid, nwg);
  if (!live(row)) { return; }
  let base = row * p.vn;
  let cols = span(lid);
  let m = row_max(row);
  var z1 = 0.0;
  var s1 = 0.0;
  var first = NONE;
  var mass = 0.0;
  for (var i = cols.x; i < cols.y; i++) {
    let l = logits[base + i];
    let e = exp(l - m);
    if (e > 0.0) {
      z1 += e;
      s1 += e * (l - m);
    }
    if (l == m && first == NONE) { first = -f32(p.v0 + i); }
    if (p.temp == 1.0) { mass += e; } else if (p.temp > 0.0) { mass += exp((l - m) / p.temp); } // (l - m) / 1 is l - m: the walk's e
  }
  masses[(row * p.C + p.c) * 256u + lid] = mass;
  z1 = wg_reduce(z1, lid, 256u, false);
  s1 = wg_reduce(s1, lid, 256u, false);
  first = wg_reduce(first, lid, 256u, true);
  if (lid == 0u) {
    state[slot(row, p.c, 2u)] = z1;
    state[slot(row, p.c, 3u)] = s1;
    state[slot(row, p.c, 4u)] = first;
  }
}

// one thread per row: the entropy, greedy's token, and for a draw the thread that walks (claim_slot), from every chunk's state
@compute @workgroup_size(64)
fn pick(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = p.r0 + gid.x;
  if (!live(row)) { return; }
  var bad = 0.0;
  var z1 = 0.0;
  var s1 = 0.0;
  var first = NONE;
  for (var k = 0u; k < p.C; k++) {
    bad = max(bad, state[slot(row, k, 1u)]);
    z1 += state[slot(row, k, 2u)];
    s1 += state[slot(row, k, 3u)];
    first = max(first, state[slot(row, k, 4u)]);
  }
  out[2u * row + 1u] = log(z1) - s1 / z1;
  out[2u * row] = -1.0;
  state[claim_slot(row, 0u)] = f32(p.C); // no chunk's: nothing walks unless a thread is claimed below
  if (bad > 0.0 || !(z1 > 0.0)) { return; }
  if (p.temp <= 0.0) {
    if (first != NONE) { out[2u * row] = -first; }
    return;
  }
  let n = p.C * 256u;
  let at = row * n;
  var z = 0.0;
  for (var k = 0u; k < n; k++) { z += masses[at + k]; }
  let goal = u[row] * z;
  var acc = 0.0;
  var found = false;
  var pick_k = 0u;
  var pick_lo = 0.0;
  var last_k = 0u;
  var last_lo = 0.0;
  for (var k = 0u; k < n; k++) {
    let w = masses[at + k];
    let next = acc + w;
    if (w > 0.0) {
      last_k = k;
      last_lo = acc;
      if (!found && acc <= goal && goal < next) {
        found = true;
        pick_k = k;
        pick_lo = acc;
      }
    }
    acc = next;
  }
  if (!found) {
    pick_k = last_k;
    pick_lo = last_lo;
  }
  state[claim_slot(row, 0u)] = f32(pick_k / 256u);
  state[claim_slot(row, 1u)] = f32(pick_k % 256u);
  state[claim_slot(row, 2u)] = pick_lo;
  state[claim_slot(row, 3u)] = goal;
}

// the thread pick chose walks its columns (a draw at temperature > 0 only)
@compute @workgroup_size(256)
fn walk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = the_row(wid, nwg);
  if (!live(row)) { return; }
  if (u32(state[claim_slot(row, 0u)]) != p.c || u32(state[claim_slot(row, 1u)]) != lid) { return; }
  let base = row * p.vn;
  let cols = span(lid);
  let m = row_max(row);
  let goal = state[claim_slot(row, 3u)];
  var cum = state[claim_slot(row, 2u)];
  var id = cols.x;
  for (var i = cols.x; i < cols.y; i++) {
    let e = exp((logits[base + i] - m) / p.temp);
    if (e > 0.0) {
      id = i;
      cum += e;
      if (cum > goal) { break; }
    }
  }
  out[2u * row] = f32(p.v0 + id);
}
