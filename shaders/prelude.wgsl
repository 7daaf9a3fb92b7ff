// The prelude: helpers shared by every shader. The runtime (Gpu.shaderText in src/gpu/runtime.ts) prepends
// this file once to every shader it compiles, after the shader's directives (`enable ...`) and the defines, so
// a shader calls these without declaring them; no shader may declare these names itself, and this file holds
// no directives, defines, structs or bindings (tests/shader-layout.test.ts checks all of it). WGSL compiles
// only what an entry point uses: a shader that calls none of these pays nothing for them. A part between
// `//#if subgroups` and `//#else` (or `//#endif`) uses subgroup operations: the runtime keeps it, and puts
// `enable subgroups;` among the shader's directives, when it compiles a shader that calls a function declared
// there on a device whose reductions use subgroups; otherwise it keeps the `//#else` part (preludeFor).

// The index of this workgroup in a 2-D dispatch: Gpu.grid splits a count of workgroups over x and y when it
// is over the per-dimension limit (65535), and the shader rebuilds it as y * x_count + x.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.y * nwg.x + wid.x; }

// The element a thread owns in a 2-D dispatch of 256-thread workgroups (@workgroup_size(256)): one element
// per thread, workgroups in group_index order.
fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return group_index(wid, nwg) * 256u + lid; }

// Element k (0 .. 3) of the four a thread owns in an element-wise kernel of 256-thread workgroups launched by
// Gpu.elementGrid (a quarter of the threads flat would need): thread t takes t, t + s, t + 2 s, t + 3 s, s the
// dispatch's thread count, so a step of k reads adjacent elements across adjacent threads (coalesced on a GPU,
// one vector load on a CPU's SIMD lanes). On llvmpipe, where each invocation has a fixed cost, GELU's forward over
// 1M elements took 3.5 ms instead of 5.8.
fn nth(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, k: u32) -> u32 { return flat(wid, nwg, lid) + k * nwg.x * nwg.y * 256u; }

// wg_reduce(v, lid, n, is_max): a reduction across a workgroup of `n` threads (its thread count, a power of
// two, at most 256, the same in every thread; lid its local_invocation_index): each thread passes its value and
// gets back the sum of all of them, or the maximum when is_max, the same bits in every thread. Call it from
// uniform control flow (it holds a barrier, after which every write made before the call is visible to the
// whole workgroup); it may be called again at once. Two versions; the runtime compiles one (composeShader: the
// lines between `//#if subgroups`, `//#else` and `//#endif`), so one place decides (Gpu.reductions):
//#if subgroups
// With subgroups (the device has the feature, and the runtime's probe found the subgroups of 1-D workgroups
// to be aligned blocks of local_invocation_index whose size divides the workgroup's: every driver we know lays
// them out so, but WGSL does not promise it): each subgroup reduces its values with subgroupAdd or subgroupMax,
// and its first thread writes the result to slot lid / c, c = the subgroup's thread count (subgroupAdd(1u): no
// size is assumed; 4 to 128 all work, at most 64 slots, and a subgroup larger than the workgroup is one partial
// subgroup, c = n); one barrier; then every subgroup combines the n / c slots the same way: lane l takes slots
// l, l + c, ... in order, and one more subgroupAdd or subgroupMax joins the lanes, so every subgroup computes the
// same thing from the same values (a thread reads n / c^2 slots, not n / c: with llvmpipe's 8-lane subgroups a
// 256-thread reduction read 32 slots a thread; the gradient norm's kernel went from 53 to 16 ms a step, the
// norms' forward from 41 to 24 ms). Calls alternate
// between two banks of slots, so a call may follow another without a second barrier (a call writes a bank only
// after every thread has passed the barrier of the call between, so after the reads of the call before).
// Deterministic on one device and driver (a subgroup's own order is fixed by the compiled pipeline, the slots
// are combined in one order), not bit-equal to the tree below (another summation order). Workgroup memory: 128
// floats (512 bytes) instead of the tree's 256 (1 KiB).
var<workgroup> wg_red: array<f32, 128>;
var<private> wg_bank: u32;

fn wg_reduce(v: f32, lid: u32, n: u32, is_max: bool) -> f32 {
  var r: f32;
  if (is_max) { r = subgroupMax(v); } else { r = subgroupAdd(v); }
  let c = subgroupAdd(1u);
  let base = wg_bank * 64u;
  wg_bank ^= 1u;
  if (lid % c == 0u) { wg_red[base + lid / c] = r; }
  workgroupBarrier();
  // every subgroup combines the n / c slots alike: lane l takes slots l, l + c, ..., then one subgroup operation
  var t = select(0.0, wg_red[base], is_max);
  for (var i = lid % c; i < n / c; i += c) {
    if (is_max) { t = max(t, wg_red[base + i]); } else { t += wg_red[base + i]; }
  }
  if (is_max) { return subgroupMax(t); }
  return subgroupAdd(t);
}
//#else
// Without subgroups: a tree. The order is fixed (thread i adds i + s for s = n/2, n/4, .., 1), so the
// result is deterministic; log2(n) barrier rounds, and the barrier before it returns lets it be called
// again at once.
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
//#endif
