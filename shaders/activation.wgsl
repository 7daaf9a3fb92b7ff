// Element-wise activations, forward and backward.
//   gelu_new (GPT-2, tanh form): y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
//     forward: y = gelu(x);  backward (in place): d <- d * gelu'(x)
//   SwiGLU (Llama MLP): gu [N, 2I] holds gate | up side by side (one matmul writes both halves),
//     forward: h[N, I] = silu(gate) * up;  backward: dgu = (dh * up * silu'(gate) | dh * silu(gate))
// tanh's argument is clamped: some drivers return NaN for |u| > ~88, and tanh(15) is already 1 in f32.
// Four elements a thread, their indices the prelude's nth (shaders/prelude.wgsl; launched by Gpu.elementGrid).

struct Params { n: u32, I: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const K0 = 0.7978845608028654; // sqrt(2/pi)
const K1 = 0.044715;

fn tanh_safe(u: f32) -> f32 { return tanh(clamp(u, -15.0, 15.0)); }

@compute @workgroup_size(256)
fn gelu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < 4u; k++) {
    let i = nth(wid, nwg, lid, k);
    if (i >= p.n) { return; }
    let v = x[i];
    y[i] = 0.5 * v * (1.0 + tanh_safe(K0 * (v + K1 * v * v * v)));
  }
}

// y holds dy on entry and dx on exit.
@compute @workgroup_size(256)
fn gelu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < 4u; k++) {
    let i = nth(wid, nwg, lid, k);
    if (i >= p.n) { return; }
    let v = x[i];
    let t = tanh_safe(K0 * (v + K1 * v * v * v));
    let dudx = K0 * (1.0 + 3.0 * K1 * v * v);
    y[i] *= 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * dudx;
  }
}

fn sigmoid(g: f32) -> f32 { return 1.0 / (1.0 + exp(-clamp(g, -80.0, 80.0))); }

// n = N * I outputs
@compute @workgroup_size(256)
fn swiglu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < 4u; k++) {
    let i = nth(wid, nwg, lid, k);
    if (i >= p.n) { return; }
    let r = i / p.I;
    let c = i % p.I;
    let g = x[r * 2u * p.I + c];
    let u = x[r * 2u * p.I + p.I + c];
    y[i] = g * sigmoid(g) * u;
  }
}

@group(0) @binding(1) var<storage, read> dh: array<f32>;
@group(0) @binding(2) var<storage, read> gu: array<f32>;
@group(0) @binding(3) var<storage, read_write> dgu: array<f32>;

@compute @workgroup_size(256)
fn swiglu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < 4u; k++) {
    let i = nth(wid, nwg, lid, k);
    if (i >= p.n) { return; }
    let r = i / p.I;
    let c = i % p.I;
    let gi = r * 2u * p.I + c;
    let g = gu[gi];
    let u = gu[gi + p.I];
    let s = sigmoid(g);
    let d = dh[i];
    dgu[gi] = d * u * s * (1.0 + g * (1.0 - s));
    dgu[gi + p.I] = d * g * s;
  }
}

// Dropout (LoRA's input dropout): y = x * keep / (1 - p), keep ~ Bernoulli(1 - p) drawn from a hash of
// (element, call-site salt, step seed), so the backward redraws the same mask instead of storing it.
// seed[1] != 0 turns it off (PyTorch's eval mode) without another plan: scoring with a training plan.
struct DropParams { n: u32, salt: u32, p: f32, _a: u32 }

@group(0) @binding(0) var<uniform> dp: DropParams;
@group(0) @binding(3) var<storage, read> seed: array<u32>;

fn keep(i: u32) -> f32 {
  if (seed[1] != 0u) { return 1.0; }
  var h = (i * 0x9E3779B1u) ^ (seed[0] + dp.salt * 0x85EBCA77u);
  h ^= h >> 16u;
  h *= 0x7FEB352Du;
  h ^= h >> 15u;
  h *= 0x846CA68Bu;
  h ^= h >> 16u;
  let u = f32(h >> 8u) * (1.0 / 16777216.0);
  return select(0.0, 1.0 / (1.0 - dp.p), u >= dp.p);
}

@compute @workgroup_size(256)
fn dropout_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < 4u; k++) {
    let i = nth(wid, nwg, lid, k);
    if (i >= dp.n) { return; }
    y[i] = x[i] * keep(i);
  }
}

@group(0) @binding(1) var<storage, read_write> dd: array<f32>;

// dd holds dy on entry and dx on exit
@compute @workgroup_size(256)
fn dropout_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < 4u; k++) {
    let i = nth(wid, nwg, lid, k);
    if (i >= dp.n) { return; }
    dd[i] *= keep(i);
  }
}
