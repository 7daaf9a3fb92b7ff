// Residual stream: y = a + b, and the in-place form acc += b (used for gradients that meet at a fork).
// Four elements a thread, their indices the prelude's nth (shaders/prelude.wgsl; launched by Gpu.elementGrid).

struct Params { n: u32, _a: u32, _b: u32, _c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < 4u; k++) {
    let i = nth(wid, nwg, lid, k);
    if (i >= p.n) { return; }
    y[i] = a[i] + b[i];
  }
}

@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;

@compute @workgroup_size(256)
fn accumulate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < 4u; k++) {
    let i = nth(wid, nwg, lid, k);
    if (i >= p.n) { return; }
    acc[i] += src[i];
  }
}

// acc = 0 (zeroing gradients; one dispatch per buffer range instead of a copy from a zero buffer)
@compute @workgroup_size(256)
fn zero(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < 4u; k++) {
    let i = nth(wid, nwg, lid, k);
    if (i >= p.n) { return; }
    acc[i] = 0.0;
  }
}
