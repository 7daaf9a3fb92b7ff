// The prelude: helpers shared by every shader. The runtime (Gpu.shaderText in src/gpu/runtime.ts) prepends
// this file once to every shader it compiles, after the shader's directives (`enable ...`) and the defines, so
// a shader calls these without declaring them; no shader may declare these names itself, and this file holds
// no directives, defines, structs or bindings (tests/shader-layout.test.ts checks all of it). WGSL compiles
// only what an entry point uses: a shader that calls none of these pays nothing for them.

// The index of this workgroup in a 2-D dispatch: Gpu.grid splits a count of workgroups over x and y when it
// is over the per-dimension limit (65535), and the shader rebuilds it as y * x_count + x.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.y * nwg.x + wid.x; }

// The element a thread owns in a 2-D dispatch of 256-thread workgroups (@workgroup_size(256)): one element
// per thread, workgroups in group_index order.
fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return group_index(wid, nwg) * 256u + lid; }

// Tree reduction across a workgroup of `n` threads (a power of two, at most 256, the same in every thread):
// each thread passes its value and gets back the sum of all of them, or the maximum when is_max. The order
// is fixed (thread i adds i + s for s = n/2, n/4, .., 1), so the result is deterministic. Call it from
// uniform control flow (it holds barriers); the barrier before it returns lets it be called again at once.
var<workgroup> wg_red: array<f32, 256>;

fn wg_reduce(v: f32, lid: u32, n: u32, is_max: bool) -> f32 {
  wg_red[lid] = v;
  workgroupBarrier();
  for (var s = n / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      if (is_max) { wg_red[lid] = max(wg_red[lid], wg_red[lid + s]); } else { wg_red[lid] += wg_red[lid + s]; }
    }
    workgroupBarrier();
  }
  let r = wg_red[0];
  workgroupBarrier();
  return r;
}
