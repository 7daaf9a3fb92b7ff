// Token + learned position embedding, and its backward.
//   forward:  out[bt, c] = wte[ids[bt], c] + (HAS_POS ? wpe[pos[bt], c] : 0)         out [BT, C]
//   backward: dwte[v, c] += sum over tokens with id v of dout[bt, c]                   (deterministic)
//             dwpe[t, c] += sum over b of dout[b*T + t, c]                             (training positions are 0..T-1)
// wte may be bound in row chunks [v0, v0 + vn) when it is larger than one storage binding.
// The token backward uses buckets built on the host from the ids (no float atomics, fixed order):
//   bucket = [U, uniq[BT], start[BT + 1], order[BT]]: U distinct ids, their tokens listed in `order`.
// One thread per output element, its index the prelude's flat (shaders/prelude.wgsl).

struct Params { BT: u32, C: u32, T: u32, B: u32, v0: u32, vn: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> pos: array<u32>;
@group(0) @binding(3) var<storage, read> wte: array<f32>;
@group(0) @binding(4) var<storage, read> wpe: array<f32>;
@group(0) @binding(5) var<storage, read_write> outp: array<f32>;

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= p.BT * p.C) { return; }
  let bt = i / p.C;
  let c = i % p.C;
  let id = ids[bt];
  if (id < p.v0 || id >= p.v0 + p.vn) { return; }
  var v = wte[(id - p.v0) * p.C + c];
  if (HAS_POS) { v += wpe[pos[bt] * p.C + c]; }
  outp[i] = v;
}

@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> bucket: array<u32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

@compute @workgroup_size(256)
fn backward_tokens(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  let u = i / p.C;
  let c = i % p.C;
  if (u >= bucket[0]) { return; }
  let id = bucket[1u + u];
  if (id < p.v0 || id >= p.v0 + p.vn) { return; }
  let starts = 1u + p.BT;
  let order = starts + p.BT + 1u;
  var s = 0.0;
  for (var k = bucket[starts + u]; k < bucket[starts + u + 1u]; k++) {
    s += dout[bucket[order + k] * p.C + c];
  }
  dw[(id - p.v0) * p.C + c] += s;
}

@compute @workgroup_size(256)
fn backward_positions(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= p.T * p.C) { return; }
  var s = 0.0;
  for (var b = 0u; b < p.B; b++) { s += dout[b * p.T * p.C + i]; }
  dw[i] += s;
}
