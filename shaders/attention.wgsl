// Causal multi-head self-attention with grouped-query attention, flash style: scores are never stored.
//   qkv:  [B*T, S], S = (Hq + 2 Hkv) * HD; columns: Hq query heads | Hkv key heads | Hkv value heads
//   o:    [B*T, Hq * HD];  lse: [B, Hq, T] log-sum-exp of each row's scaled scores (saved for backward)
//   query head h reads key/value head h / (Hq / Hkv).
// Defines: HD (head size, any value), so per-thread rows live in registers. One thread owns one row
// (a query in forward and dQ, a key in dK/dV); tiles of TK rows of the other side are staged in
// workgroup memory and consumed with an online softmax (running max m, running sum l). Rows are vec4s, HD4 of
// them (zeros past HD, so any head size works): a vec4 load from workgroup memory feeds four multiply-adds
// where a scalar one fed one. Against the same loops over scalars, on llvmpipe at 8 x 128 tokens, 4 heads of
// 64 (timed alternately in one process): forward 1.3x, dQ 1.35x, dK/dV 2.5x faster. Products sum in dot()'s
// order, four terms at a time, so results differ from the scalar loops' in the last bits.
// In forward and dQ the scores of a tile are summed d outer, the tile's keys inner: a thread's rows (q, acc,
// ...) do not fit in registers on CPU adapters, and key-outer loops read them from the stack once per key; d
// outer reads each once per tile (with scalars: forward 1.5x faster; with vec4s the two orders ran alike at 64
// heads' dims and d outer 1.2x faster at 128; TK = 32 was slower, TK = 8 the same). The weighted sums over the
// tile's keys (acc, dq) run keys outer: d outer, Mesa's first compile of forward and dQ at head sizes 20-24 took
// 9-21 s (2-3 s as it is) for the same speed. dK/dV keeps query-outer loops: written d outer its first compile at
// HD 20 took 35 s with scalars (1.4 s as it is), for a 1.1x gain. Every sum keeps its order whichever loop is
// outer, so these orders give the same bits.
// Backward (FlashAttention-2): Dsum[b,h,t] = dO . O;  P = exp(s - lse);  dS = P (dO . v - Dsum);
//   dQ = scale * sum_j dS K_j;  dK = scale * sum_i dS Q_i;  dV = sum_i P dO_i. dK/dV sum over the
//   query heads of their group inside one thread, so no atomics and a fixed summation order.
// Bindings: one name for one tensor at one slot (slot 0 is `p` everywhere). WGSL gives a global one access mode,
// so a tensor one entry point writes and a later one reads has a read-only twin, the same name + `_in`:
//   entry point      1       2       3          4          5
//   forward          qkv     o       lse
//   backward_dsum    o_in    dO      dsum
//   backward_dq      qkv     dO      lse_in     dsum_in    dqkv
//   backward_dkv     qkv     dO      lse_in     dsum_in    dqkv
//   kv_append        qkv     kvmeta  kcache     vcache
//   decode           qkv     kvmeta  kcache_in  vcache_in  o_decode
// (o_decode: decode's output, the same [B*T, Hq * HD] rows as forward's o, at the slot after the caches.)
// The workgroup reductions of decode are the prelude's wg_reduce (shaders/prelude.wgsl): subgroup operations
// where the device has them (its workgroup memory then 512 bytes smaller), else a tree; each deterministic on one
// device, not bit-equal to the other. forward and backward reduce nothing across threads (a thread owns a row),
// so they compile to the same shader on both paths.

// Rows of the grid are (batch, head) pairs from bh0 on: the host splits long work over several dispatches.
struct Params { B: u32, T: u32, Hq: u32, Hkv: u32, S: u32, scale: f32, bh0: u32, L: u32 }

const BQ = 64u;
const TK = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;

// forward and backward_dq stage keys and values of TK key rows, as vec4s (HD4 of them a row, zero past HD)
const HD4 = (HD + 3u) / 4u;
var<workgroup> Ks: array<vec4<f32>, TK * HD4>;
var<workgroup> Vs: array<vec4<f32>, TK * HD4>;

fn qoff(b: u32, t: u32, h: u32) -> u32 { return (b * p.T + t) * p.S + h * HD; }
fn koff(b: u32, t: u32, hk: u32) -> u32 { return (b * p.T + t) * p.S + (p.Hq + hk) * HD; }
fn voff(b: u32, t: u32, hk: u32) -> u32 { return (b * p.T + t) * p.S + (p.Hq + p.Hkv + hk) * HD; }
fn ooff(b: u32, t: u32, h: u32) -> u32 { return (b * p.T + t) * p.Hq * HD + h * HD; }

// The query row a thread owns: (batch, query head, its key/value head, position). Workgroups run over
// (block of BQ queries, (batch, head) pair from bh0 on).
fn query_row(wid: vec3<u32>, lid: u32) -> vec4<u32> {
  let bh = wid.y + p.bh0;
  let h = bh % p.Hq;
  return vec4<u32>(bh / p.Hq, h, h / (p.Hq / p.Hkv), wid.x * BQ + lid);
}

// Values 4 d4 .. 4 d4 + 3 of the qkv row part (a head's q, k or v) at `at`, zeros from HD on.
fn load4(at: u32, d4: u32) -> vec4<f32> {
  var r = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) { if (4u * d4 + c < HD) { r[c] = qkv[at + 4u * d4 + c]; } }
  return r;
}

// Stages keys and values j0 .. j0+TK-1 of kv head hk (zeros past T).
fn stage_kv(b: u32, hk: u32, j0: u32, lid: u32) {
  for (var e = lid; e < TK * HD4; e += BQ) {
    let j = j0 + e / HD4;
    let d4 = e % HD4;
    var kv = vec4<f32>(0.0);
    var vv = vec4<f32>(0.0);
    if (j < p.T) { kv = load4(koff(b, j, hk), d4); vv = load4(voff(b, j, hk), d4); }
    Ks[e] = kv;
    Vs[e] = vv;
  }
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = query_row(wid, lid);
  let b = r.x; let h = r.y; let hk = r.z; let t = r.w;
  let valid = t < p.T;
  var q: array<vec4<f32>, HD4>;
  var acc: array<vec4<f32>, HD4>;
  if (valid) { for (var d4 = 0u; d4 < HD4; d4++) { q[d4] = load4(qoff(b, t, h), d4) * p.scale; acc[d4] = vec4<f32>(0.0); } }
  var m = -1e30;
  var l = 0.0;
  let kend = min(p.T, wid.x * BQ + BQ);
  for (var j0 = 0u; j0 < kend; j0 += TK) {
    stage_kv(b, hk, j0, lid);
    workgroupBarrier();
    if (valid && j0 <= t) {
      // Keys past t (causal, jj > lim) are scored but left out of the max; their weight is 0, so they add
      // nothing to the sum or acc (select, not a product: their exp may overflow).
      let lim = t - j0; // key jj is visible when jj <= lim
      var s: array<f32, TK>;
      for (var jj = 0u; jj < TK; jj++) { s[jj] = 0.0; }
      for (var d4 = 0u; d4 < HD4; d4++) {
        let qd = q[d4];
        for (var jj = 0u; jj < TK; jj++) { s[jj] += dot(qd, Ks[jj * HD4 + d4]); }
      }
      var mt = m;
      for (var jj = 0u; jj < TK; jj++) {
        if (jj <= lim) { mt = max(mt, s[jj]); }
      }
      let corr = exp(m - mt);
      l *= corr;
      for (var jj = 0u; jj < TK; jj++) {
        s[jj] = select(0.0, exp(s[jj] - mt), jj <= lim); // now the key's weight
        l += s[jj];
      }
      for (var d4 = 0u; d4 < HD4; d4++) { acc[d4] *= corr; }
      for (var jj = 0u; jj < TK; jj++) {
        let w = s[jj];
        for (var d4 = 0u; d4 < HD4; d4++) { acc[d4] += w * Vs[jj * HD4 + d4]; }
      }
      m = mt;
    }
    workgroupBarrier();
  }
  if (valid) {
    let inv = 1.0 / l;
    for (var d4 = 0u; d4 < HD4; d4++) {
      let a = acc[d4] * inv;
      for (var c = 0u; c < 4u; c++) { if (4u * d4 + c < HD) { o[ooff(b, t, h) + 4u * d4 + c] = a[c]; } }
    }
    lse[(b * p.Hq + h) * p.T + t] = m + log(l);
  }
}

// Dsum[b, h, t] = dO[b, t, h, :] . O[b, t, h, :]
@group(0) @binding(1) var<storage, read> o_in: array<f32>;
@group(0) @binding(2) var<storage, read> dO: array<f32>;
@group(0) @binding(3) var<storage, read_write> dsum: array<f32>;

@compute @workgroup_size(64)
fn backward_dsum(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x; // (b * Hq + h) * T + t
  if (i >= p.B * p.Hq * p.T) { return; }
  let t = i % p.T;
  let h = (i / p.T) % p.Hq;
  let b = i / (p.T * p.Hq);
  var s = 0.0;
  for (var d = 0u; d < HD; d++) { s += dO[ooff(b, t, h) + d] * o_in[ooff(b, t, h) + d]; }
  dsum[i] = s;
}

@group(0) @binding(3) var<storage, read> lse_in: array<f32>;
@group(0) @binding(4) var<storage, read> dsum_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> dqkv: array<f32>;

// Values 4 d4 .. 4 d4 + 3 of dO's row part at `at`, zeros from HD on; and the store into dqkv's (from HD on: none).
fn grad4(at: u32, d4: u32) -> vec4<f32> {
  var r = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) { if (4u * d4 + c < HD) { r[c] = dO[at + 4u * d4 + c]; } }
  return r;
}
fn put_dqkv(at: u32, d4: u32, v: vec4<f32>) {
  for (var c = 0u; c < 4u; c++) { if (4u * d4 + c < HD) { dqkv[at + 4u * d4 + c] = v[c]; } }
}

@compute @workgroup_size(64)
fn backward_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = query_row(wid, lid);
  let b = r.x; let h = r.y; let hk = r.z; let t = r.w;
  let valid = t < p.T;
  var q: array<vec4<f32>, HD4>;
  var go: array<vec4<f32>, HD4>;
  var dq: array<vec4<f32>, HD4>;
  var Li = 0.0;
  var Di = 0.0;
  if (valid) {
    for (var d4 = 0u; d4 < HD4; d4++) {
      q[d4] = load4(qoff(b, t, h), d4);
      go[d4] = grad4(ooff(b, t, h), d4);
      dq[d4] = vec4<f32>(0.0);
    }
    Li = lse_in[(b * p.Hq + h) * p.T + t];
    Di = dsum_in[(b * p.Hq + h) * p.T + t];
  }
  let kend = min(p.T, wid.x * BQ + BQ);
  for (var j0 = 0u; j0 < kend; j0 += TK) {
    stage_kv(b, hk, j0, lid);
    workgroupBarrier();
    if (valid && j0 <= t) {
      let lim = t - j0;
      var s: array<f32, TK>;
      var dp: array<f32, TK>;
      for (var jj = 0u; jj < TK; jj++) { s[jj] = 0.0; dp[jj] = 0.0; }
      for (var d4 = 0u; d4 < HD4; d4++) {
        let qd = q[d4];
        let gd = go[d4];
        for (var jj = 0u; jj < TK; jj++) { s[jj] += dot(qd, Ks[jj * HD4 + d4]); dp[jj] += dot(gd, Vs[jj * HD4 + d4]); }
      }
      for (var jj = 0u; jj < TK; jj++) {
        let pr = exp(s[jj] * p.scale - Li);
        s[jj] = select(0.0, pr * (dp[jj] - Di), jj <= lim); // now dS; 0 for keys past t, as in forward
      }
      for (var jj = 0u; jj < TK; jj++) {
        let w = s[jj];
        for (var d4 = 0u; d4 < HD4; d4++) { dq[d4] += w * Ks[jj * HD4 + d4]; }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    for (var d4 = 0u; d4 < HD4; d4++) { put_dqkv(qoff(b, t, h), d4, dq[d4] * p.scale); }
  }
}

// backward_dkv stages queries, output gradients (as vec4s), lse and Dsum of TK query rows
var<workgroup> Qs: array<vec4<f32>, TK * HD4>;
var<workgroup> Gs: array<vec4<f32>, TK * HD4>;
var<workgroup> Ls: array<f32, TK>;
var<workgroup> Ds: array<f32, TK>;

@compute @workgroup_size(64)
fn backward_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y + p.bh0;
  let b = bh / p.Hkv;
  let hk = bh % p.Hkv;
  let G = p.Hq / p.Hkv;
  let j = wid.x * BQ + lid;
  let valid = j < p.T;
  var k: array<vec4<f32>, HD4>;
  var v: array<vec4<f32>, HD4>;
  var dk: array<vec4<f32>, HD4>;
  var dv: array<vec4<f32>, HD4>;
  if (valid) {
    for (var d4 = 0u; d4 < HD4; d4++) {
      k[d4] = load4(koff(b, j, hk), d4); v[d4] = load4(voff(b, j, hk), d4); dk[d4] = vec4<f32>(0.0); dv[d4] = vec4<f32>(0.0);
    }
  }
  for (var hg = 0u; hg < G; hg++) {
    let h = hk * G + hg;
    for (var i0 = wid.x * BQ; i0 < p.T; i0 += TK) {
      for (var e = lid; e < TK * HD4; e += BQ) {
        let i = i0 + e / HD4;
        let d4 = e % HD4;
        var qv = vec4<f32>(0.0);
        var gv = vec4<f32>(0.0);
        if (i < p.T) { qv = load4(qoff(b, i, h), d4); gv = grad4(ooff(b, i, h), d4); }
        Qs[e] = qv;
        Gs[e] = gv;
      }
      if (lid < TK) {
        let i = i0 + lid;
        var li = 0.0;
        var di = 0.0;
        if (i < p.T) { li = lse_in[(b * p.Hq + h) * p.T + i]; di = dsum_in[(b * p.Hq + h) * p.T + i]; }
        Ls[lid] = li;
        Ds[lid] = di;
      }
      workgroupBarrier();
      if (valid) {
        for (var ii = 0u; ii < TK; ii++) {
          let i = i0 + ii;
          if (i >= p.T) { break; }
          if (i < j) { continue; }
          var s = 0.0;
          var dp = 0.0;
          for (var d4 = 0u; d4 < HD4; d4++) { s += dot(Qs[ii * HD4 + d4], k[d4]); dp += dot(Gs[ii * HD4 + d4], v[d4]); }
          let pr = exp(s * p.scale - Ls[ii]);
          let ds = pr * (dp - Ds[ii]);
          for (var d4 = 0u; d4 < HD4; d4++) { dv[d4] += pr * Gs[ii * HD4 + d4]; dk[d4] += ds * Qs[ii * HD4 + d4]; }
        }
      }
      workgroupBarrier();
    }
  }
  if (valid) {
    for (var d4 = 0u; d4 < HD4; d4++) { put_dqkv(koff(b, j, hk), d4, dk[d4] * p.scale); put_dqkv(voff(b, j, hk), d4, dv[d4]); }
  }
}

// ---- Generation with a KV cache ----
//   kcache, vcache: [B, L, Hkv, HD]; kvmeta[0] = pos0, the absolute position of the first of this call's T tokens.
//   kv_append: writes the keys and values of qkv's T tokens into the cache at pos0 .. pos0+T-1.
//   decode:    o_decode[b, t, h] = attention of query (b, t, h) over cached keys 0 .. pos0+t (causal).
// decode runs one workgroup per (query, batch, key/value head), for the GQ query heads that share it: threads split
// the keys to score them, then the head dimensions to sum the values; keys are taken in chunks with an online softmax.
// Both read and write the cache in vec4s, HD4 of them a row (zeros past HD). Where the host says HD is a multiple
// of 4 (the define KV4: every model's head size is), the caches' bindings are arrays of vec4 (the same names, as
// matmul's B_F16 changes B's type), so one load or store moves four values; else f32 arrays, four scalars at a time.
// kv_append's thread moves one vec4 of a key and of a value (it moved one value of each). decode's threads score
// a key each with HD4 dot()s, then sum the values in vec4s: thread lid takes vec4 lid % W of every GV-th key (W =
// min(HD4, 64), GV = 64 / W key groups; at head size 64, 16 vec4s x 4 groups, where each thread summed one value
// over every key), the groups joined in a fixed order at the end. Against the scalar loops before, on llvmpipe
// (the bench's GPT, 4 heads of 64, after 32 tokens, timed alternately in one process): decode 1.35x faster at 8
// rows, 1.2x at 1; kv_append runs at llvmpipe's cost of a dispatch either way. Sums differ from the scalar
// loops' in the last bits (dot()'s order; the key groups).

@group(0) @binding(2) var<storage, read> kvmeta: array<u32>;
//#if KV4
@group(0) @binding(3) var<storage, read_write> kcache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> vcache: array<vec4<f32>>;
//#else
@group(0) @binding(3) var<storage, read_write> kcache: array<f32>;
@group(0) @binding(4) var<storage, read_write> vcache: array<f32>;
//#endif

// vec4 d4 of the cache's key and value rows that start at element `at` (a multiple of HD)
fn put_kv(at: u32, d4: u32, k: vec4<f32>, v: vec4<f32>) {
//#if KV4
  kcache[at / 4u + d4] = k;
  vcache[at / 4u + d4] = v;
//#else
  for (var c = 0u; c < 4u; c++) {
    if (4u * d4 + c < HD) { kcache[at + 4u * d4 + c] = k[c]; vcache[at + 4u * d4 + c] = v[c]; }
  }
//#endif
}

// One thread per vec4 of a new token's key and value rows: ((b * T + t) * Hkv + hk) * HD4 + d4, over a 2-D grid.
@compute @workgroup_size(64)
fn kv_append(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = group_index(wid, nwg) * 64u + lid;
  if (i >= p.B * p.T * p.Hkv * HD4) { return; }
  let d4 = i % HD4;
  let hk = (i / HD4) % p.Hkv;
  let bt = i / (HD4 * p.Hkv);
  let b = bt / p.T;
  let t = bt % p.T;
  put_kv(((b * p.L + kvmeta[0] + t) * p.Hkv + hk) * HD, d4, load4(bt * p.S + (p.Hq + hk) * HD, d4), load4(bt * p.S + (p.Hq + p.Hkv + hk) * HD, d4));
}

//#if KV4
@group(0) @binding(3) var<storage, read> kcache_in: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> vcache_in: array<vec4<f32>>;
//#else
@group(0) @binding(3) var<storage, read> kcache_in: array<f32>;
@group(0) @binding(4) var<storage, read> vcache_in: array<f32>;
//#endif
@group(0) @binding(5) var<storage, read_write> o_decode: array<f32>;

// Values 4 d4 .. 4 d4 + 3 of the cached key (kload4) or value (vload4) row that starts at element `at`, zeros from HD on.
fn kload4(at: u32, d4: u32) -> vec4<f32> {
//#if KV4
  return kcache_in[at / 4u + d4];
//#else
  var r = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) { if (4u * d4 + c < HD) { r[c] = kcache_in[at + 4u * d4 + c]; } }
  return r;
//#endif
}
fn vload4(at: u32, d4: u32) -> vec4<f32> {
//#if KV4
  return vcache_in[at / 4u + d4];
//#else
  var r = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) { if (4u * d4 + c < HD) { r[c] = vcache_in[at + 4u * d4 + c]; } }
  return r;
//#endif
}

// decode's workgroup serves GQ query heads of one key/value head (a define: the host picks a divisor of Hq / Hkv,
// all of them but for very wide groups, and a key/value head's G = Hq / Hkv query heads take G / GQ workgroups): each
// key and value is loaded once for its GQ heads, and each head's scores, softmax and sums are the same operations in
// the same order as a workgroup of its own would run. Scores are taken in chunks of CHG keys per head (CH in all).
const CH = 1024u;
const CHG = CH / GQ;
// The weighted sum of values: thread lid takes vec4 lid % W (and + 64, + 128, ... past 64 of them: NV) of the
// keys j = g, g + GV, ... of a chunk, g = lid / W; the GV groups' partial sums are joined in group order at the end.
const W = min(HD4, 64u);
const GV = 64u / W;
const NV = (HD4 + 63u) / 64u;
var<workgroup> sc: array<f32, CH>; // head q's scores of a chunk at q * CHG ..
var<workgroup> qs: array<vec4<f32>, GQ * HD4>;
var<workgroup> part4: array<vec4<f32>, 64>;
var<workgroup> wpos: u32;

@compute @workgroup_size(64)
fn decode(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x;
  let G = p.Hq / p.Hkv;
  let parts = G / GQ;
  let row = wid.y + p.bh0; // (batch, key/value head, part of its query heads)
  let bk = row / parts;
  let b = bk / p.Hkv;
  let hk = bk % p.Hkv;
  let h0 = hk * G + (row % parts) * GQ; // its query heads: h0 .. h0 + GQ - 1
  if (lid == 0u) { wpos = kvmeta[0]; }
  let pos0 = workgroupUniformLoad(&wpos);
  let kend = pos0 + t + 1u;
  for (var e = lid; e < GQ * HD4; e += 64u) { qs[e] = load4(qoff(b, t, h0 + e / HD4), e % HD4) * p.scale; }
  workgroupBarrier();
  let g = lid / W;
  var acc: array<vec4<f32>, GQ * NV>; // head q's vec4 i at q * NV + i
  for (var i = 0u; i < GQ * NV; i++) { acc[i] = vec4<f32>(0.0); }
  var m: array<f32, GQ>;
  var l: array<f32, GQ>;
  for (var q = 0u; q < GQ; q++) { m[q] = -1e30; l[q] = 0.0; }
  for (var c0 = 0u; c0 < kend; c0 += CHG) {
    let cn = min(CHG, kend - c0);
    var mloc: array<f32, GQ>;
    for (var q = 0u; q < GQ; q++) { mloc[q] = -1e30; }
    for (var j = lid; j < cn; j += 64u) {
      let kb = ((b * p.L + c0 + j) * p.Hkv + hk) * HD;
      var s: array<f32, GQ>;
      for (var q = 0u; q < GQ; q++) { s[q] = 0.0; }
      for (var d4 = 0u; d4 < HD4; d4++) {
        let k4 = kload4(kb, d4);
        for (var q = 0u; q < GQ; q++) { s[q] += dot(qs[q * HD4 + d4], k4); }
      }
      for (var q = 0u; q < GQ; q++) { sc[q * CHG + j] = s[q]; mloc[q] = max(mloc[q], s[q]); }
    }
    var mn: array<f32, GQ>;
    var corr: array<f32, GQ>;
    for (var q = 0u; q < GQ; q++) {
      mn[q] = max(m[q], wg_reduce(mloc[q], lid, 64u, true));
      corr[q] = exp(m[q] - mn[q]);
    }
    var sloc: array<f32, GQ>;
    for (var q = 0u; q < GQ; q++) { sloc[q] = 0.0; }
    for (var j = lid; j < cn; j += 64u) {
      for (var q = 0u; q < GQ; q++) { let e = exp(sc[q * CHG + j] - mn[q]); sc[q * CHG + j] = e; sloc[q] += e; }
    }
    // the first reduction's barrier (either path has one) also publishes sc
    for (var q = 0u; q < GQ; q++) { l[q] = l[q] * corr[q] + wg_reduce(sloc[q], lid, 64u, false); }
    if (g < GV) {
      for (var i = 0u; i < NV; i++) {
        let d4 = lid % W + 64u * i;
        if (d4 < HD4) {
          var a: array<vec4<f32>, GQ>;
          for (var q = 0u; q < GQ; q++) { a[q] = acc[q * NV + i] * corr[q]; }
          for (var j = g; j < cn; j += GV) {
            let v4 = vload4(((b * p.L + c0 + j) * p.Hkv + hk) * HD, d4);
            for (var q = 0u; q < GQ; q++) { a[q] += sc[q * CHG + j] * v4; }
          }
          for (var q = 0u; q < GQ; q++) { acc[q * NV + i] = a[q]; }
        }
      }
    }
    for (var q = 0u; q < GQ; q++) { m[q] = mn[q]; }
    workgroupBarrier(); // sc is rewritten by the next chunk
  }
  for (var q = 0u; q < GQ; q++) {
    let ob = (b * p.T + t) * p.Hq * HD + (h0 + q) * HD;
    if (GV > 1u) {
      // NV is 1 here: join the groups' parts of vec4 lid (lid < W = HD4)
      part4[lid] = acc[q];
      workgroupBarrier();
      if (lid < W) {
        var r = part4[lid];
        for (var k = 1u; k < GV; k++) { r += part4[k * W + lid]; }
        put_decode(ob, lid, r / l[q]);
      }
      workgroupBarrier(); // part4 is rewritten for the next head
    } else {
      for (var i = 0u; i < NV; i++) {
        let d4 = lid + 64u * i;
        if (d4 < HD4) { put_decode(ob, d4, acc[q * NV + i] / l[q]); }
      }
    }
  }
}

fn put_decode(at: u32, d4: u32, v: vec4<f32>) {
  for (var c = 0u; c < 4u; c++) { if (4u * d4 + c < HD) { o_decode[at + 4u * d4 + c] = v[c]; } }
}
