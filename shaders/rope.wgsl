// Rotary position embedding in the Hugging Face `rotate_half` layout, applied in place to the query and
// key heads of the fused qkv activation, forward and backward.
//   qkv: [BT, S] with S = (Hq + 2 Hkv) * D; heads 0 .. Hq + Hkv - 1 (queries then keys) are rotated.
//   cs:  [P, D/2, 2] = (cos, sin) of pos * inv_freq[i], computed on the host in float64.
//   forward:  (x1, x2) <- (x1 cos - x2 sin, x2 cos + x1 sin)   with x1 = x[i], x2 = x[i + D/2]
//   backward: the inverse rotation (sin -> -sin), applied to the gradient in place.
// One thread per rotated pair, its index the prelude's flat (shaders/prelude.wgsl).

struct Params { BT: u32, S: u32, H: u32, D: u32, sign: f32, _a: u32, _b: u32, _c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pos: array<u32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;
@group(0) @binding(3) var<storage, read_write> qkv: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let half = p.D / 2u;
  let i = flat(wid, nwg, lid);
  if (i >= p.BT * p.H * half) { return; }
  let k = i % half;
  let h = (i / half) % p.H;
  let bt = i / (half * p.H);
  let t = pos[bt];
  let c = cs[(t * half + k) * 2u];
  let s = p.sign * cs[(t * half + k) * 2u + 1u];
  let a = bt * p.S + h * p.D + k;
  let x1 = qkv[a];
  let x2 = qkv[a + half];
  qkv[a] = x1 * c - x2 * s;
  qkv[a + half] = x2 * c + x1 * s;
}
