// Causal multi-head self-attention with grouped-query attention, flash style: scores are never stored.
//   qkv:  [B*T, S], S = (Hq + 2 Hkv) * HD; columns: Hq query heads | Hkv key heads | Hkv value heads
//   o:    [B*T, Hq * HD];  lse: [B, Hq, T] log-sum-exp of each row's scaled scores (saved for backward)
//   query head h reads key/value head h / (Hq / Hkv).
// Defines: HD (head size, any value), so per-thread rows live in registers. One thread owns one row
// (a query in forward and dQ, a key in dK/dV); tiles of TK rows of the other side are staged in
// workgroup memory and consumed with an online softmax (running max m, running sum l). In forward and dQ the
// loops over a tile run d outer, the tile's keys inner: a thread's rows (q, acc, ...: HD values each) do not fit
// in registers on CPU adapters, and key-outer loops read them from the stack once per key; d outer reads each
// once per tile, and every sum keeps its order (bit-equal results). Measured on llvmpipe at 8 x 128 tokens, 4
// heads of 64: forward 1.5x faster, dQ as before (within noise); and Mesa's first compile of forward at HD 20 fell from 17 s
// to 0.6 s (at odd head sizes the loops are unrolled whole). dK/dV keeps query-outer loops: written d outer its
// first compile at HD 20 took 35 s (1.4 s as it is), for a 1.1x gain.
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

// forward and backward_dq stage keys and values of TK key rows
var<workgroup> Ks: array<f32, TK * HD>;
var<workgroup> Vs: array<f32, TK * HD>;

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

// Stages keys and values j0 .. j0+TK-1 of kv head hk (zeros past T).
fn stage_kv(b: u32, hk: u32, j0: u32, lid: u32) {
  for (var e = lid; e < TK * HD; e += BQ) {
    let j = j0 + e / HD;
    let d = e % HD;
    var kv = 0.0;
    var vv = 0.0;
    if (j < p.T) { kv = qkv[koff(b, j, hk) + d]; vv = qkv[voff(b, j, hk) + d]; }
    Ks[e] = kv;
    Vs[e] = vv;
  }
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = query_row(wid, lid);
  let b = r.x; let h = r.y; let hk = r.z; let t = r.w;
  let valid = t < p.T;
  var q: array<f32, HD>;
  var acc: array<f32, HD>;
  if (valid) { for (var d = 0u; d < HD; d++) { q[d] = qkv[qoff(b, t, h) + d] * p.scale; acc[d] = 0.0; } }
  var m = -1e30;
  var l = 0.0;
  let kend = min(p.T, wid.x * BQ + BQ);
  for (var j0 = 0u; j0 < kend; j0 += TK) {
    stage_kv(b, hk, j0, lid);
    workgroupBarrier();
    if (valid && j0 <= t) {
      // the tile's scores, d outer: each q[d] is read once per tile, not once per key (see the file's head);
      // each score still sums over d in order. Keys past t (causal, jj > lim) are scored but left out of the
      // max, the sum and acc.
      let lim = t - j0; // key jj is visible when jj <= lim
      var s: array<f32, TK>;
      for (var jj = 0u; jj < TK; jj++) { s[jj] = 0.0; }
      for (var d = 0u; d < HD; d++) {
        let qd = q[d];
        for (var jj = 0u; jj < TK; jj++) { s[jj] += qd * Ks[jj * HD + d]; }
      }
      var mt = m;
      for (var jj = 0u; jj < TK; jj++) {
        if (jj <= lim) { mt = max(mt, s[jj]); }
      }
      let corr = exp(m - mt);
      l *= corr;
      for (var jj = 0u; jj < TK; jj++) {
        s[jj] = exp(s[jj] - mt); // now the key's weight
        if (jj <= lim) { l += s[jj]; }
      }
      for (var d = 0u; d < HD; d++) {
        var a = acc[d] * corr;
        for (var jj = 0u; jj < TK; jj++) { a = select(a, a + s[jj] * Vs[jj * HD + d], jj <= lim); }
        acc[d] = a;
      }
      m = mt;
    }
    workgroupBarrier();
  }
  if (valid) {
    let inv = 1.0 / l;
    for (var d = 0u; d < HD; d++) { o[ooff(b, t, h) + d] = acc[d] * inv; }
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

@compute @workgroup_size(64)
fn backward_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = query_row(wid, lid);
  let b = r.x; let h = r.y; let hk = r.z; let t = r.w;
  let valid = t < p.T;
  var q: array<f32, HD>;
  var go: array<f32, HD>;
  var dq: array<f32, HD>;
  var Li = 0.0;
  var Di = 0.0;
  if (valid) {
    for (var d = 0u; d < HD; d++) { q[d] = qkv[qoff(b, t, h) + d]; go[d] = dO[ooff(b, t, h) + d]; dq[d] = 0.0; }
    Li = lse_in[(b * p.Hq + h) * p.T + t];
    Di = dsum_in[(b * p.Hq + h) * p.T + t];
  }
  let kend = min(p.T, wid.x * BQ + BQ);
  for (var j0 = 0u; j0 < kend; j0 += TK) {
    stage_kv(b, hk, j0, lid);
    workgroupBarrier();
    if (valid && j0 <= t) {
      // as in forward: both dots of the tile's keys d outer, then dq d outer; each sum in the same order
      let lim = t - j0;
      var s: array<f32, TK>;
      var dp: array<f32, TK>;
      for (var jj = 0u; jj < TK; jj++) { s[jj] = 0.0; dp[jj] = 0.0; }
      for (var d = 0u; d < HD; d++) {
        let qd = q[d];
        let gd = go[d];
        for (var jj = 0u; jj < TK; jj++) { s[jj] += qd * Ks[jj * HD + d]; dp[jj] += gd * Vs[jj * HD + d]; }
      }
      for (var jj = 0u; jj < TK; jj++) {
        let pr = exp(s[jj] * p.scale - Li);
        s[jj] = pr * (dp[jj] - Di); // now dS
      }
      for (var d = 0u; d < HD; d++) {
        var a = dq[d];
        for (var jj = 0u; jj < TK; jj++) { a = select(a, a + s[jj] * Ks[jj * HD + d], jj <= lim); }
        dq[d] = a;
      }
    }
    workgroupBarrier();
  }
  if (valid) { for (var d = 0u; d < HD; d++) { dqkv[qoff(b, t, h) + d] = dq[d] * p.scale; } }
}

// backward_dkv stages queries, output gradients, lse and Dsum of TK query rows
var<workgroup> Qs: array<f32, TK * HD>;
var<workgroup> Gs: array<f32, TK * HD>;
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
  var k: array<f32, HD>;
  var v: array<f32, HD>;
  var dk: array<f32, HD>;
  var dv: array<f32, HD>;
  if (valid) {
    for (var d = 0u; d < HD; d++) { k[d] = qkv[koff(b, j, hk) + d]; v[d] = qkv[voff(b, j, hk) + d]; dk[d] = 0.0; dv[d] = 0.0; }
  }
  for (var hg = 0u; hg < G; hg++) {
    let h = hk * G + hg;
    for (var i0 = wid.x * BQ; i0 < p.T; i0 += TK) {
      for (var e = lid; e < TK * HD; e += BQ) {
        let i = i0 + e / HD;
        let d = e % HD;
        var qv = 0.0;
        var gv = 0.0;
        if (i < p.T) { qv = qkv[qoff(b, i, h) + d]; gv = dO[ooff(b, i, h) + d]; }
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
          for (var d = 0u; d < HD; d++) { s += Qs[ii * HD + d] * k[d]; dp += Gs[ii * HD + d] * v[d]; }
          let pr = exp(s * p.scale - Ls[ii]);
          let ds = pr * (dp - Ds[ii]);
          for (var d = 0u; d < HD; d++) { dv[d] += pr * Gs[ii * HD + d]; dk[d] += ds * Qs[ii * HD + d]; }
        }
      }
      workgroupBarrier();
    }
  }
  if (valid) {
    for (var d = 0u; d < HD; d++) { dqkv[koff(b, j, hk) + d] = dk[d] * p.scale; dqkv[voff(b, j, hk) + d] = dv[d]; }
  }
}

// ---- Generation with a KV cache ----
//   kcache, vcache: [B, L, Hkv, HD]; kvmeta[0] = pos0, the absolute position of the first of this call's T tokens.
//   kv_append: writes the keys and values of qkv's T tokens into the cache at pos0 .. pos0+T-1.
//   decode:    o_decode[b, t, h] = attention of query (b, t, h) over cached keys 0 .. pos0+t (causal).
// decode runs one workgroup per (query, batch, head): threads split the keys to score them, then the
// head dimensions to sum the values; keys are taken in chunks of CH scores with an online softmax.

@group(0) @binding(2) var<storage, read> kvmeta: array<u32>;
@group(0) @binding(3) var<storage, read_write> kcache: array<f32>;
@group(0) @binding(4) var<storage, read_write> vcache: array<f32>;

@compute @workgroup_size(64)
fn kv_append(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x; // ((b * T + t) * Hkv + hk) * HD + d
  if (i >= p.B * p.T * p.Hkv * HD) { return; }
  let d = i % HD;
  let hk = (i / HD) % p.Hkv;
  let bt = i / (HD * p.Hkv);
  let b = bt / p.T;
  let t = bt % p.T;
  let at = ((b * p.L + kvmeta[0] + t) * p.Hkv + hk) * HD + d;
  kcache[at] = qkv[bt * p.S + (p.Hq + hk) * HD + d];
  vcache[at] = qkv[bt * p.S + (p.Hq + p.Hkv + hk) * HD + d];
}

@group(0) @binding(3) var<storage, read> kcache_in: array<f32>;
@group(0) @binding(4) var<storage, read> vcache_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> o_decode: array<f32>;

const CH = 1024u;
const NA = (HD + 63u) / 64u;
var<workgroup> sc: array<f32, CH>;
var<workgroup> qs: array<f32, HD>;
var<workgroup> wpos: u32;

@compute @workgroup_size(64)
fn decode(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x;
  let bh = wid.y + p.bh0;
  let b = bh / p.Hq;
  let h = bh % p.Hq;
  let hk = h / (p.Hq / p.Hkv);
  if (lid == 0u) { wpos = kvmeta[0]; }
  let pos0 = workgroupUniformLoad(&wpos);
  let kend = pos0 + t + 1u;
  for (var d = lid; d < HD; d += 64u) { qs[d] = qkv[(b * p.T + t) * p.S + h * HD + d] * p.scale; }
  workgroupBarrier();
  var acc: array<f32, NA>;
  for (var i = 0u; i < NA; i++) { acc[i] = 0.0; }
  var m = -1e30;
  var l = 0.0;
  for (var c0 = 0u; c0 < kend; c0 += CH) {
    let cn = min(CH, kend - c0);
    var mloc = -1e30;
    for (var j = lid; j < cn; j += 64u) {
      let kb = ((b * p.L + c0 + j) * p.Hkv + hk) * HD;
      var s = 0.0;
      for (var d = 0u; d < HD; d++) { s += qs[d] * kcache_in[kb + d]; }
      sc[j] = s;
      mloc = max(mloc, s);
    }
    let mn = max(m, wg_reduce(mloc, lid, 64u, true));
    let corr = exp(m - mn);
    var sloc = 0.0;
    for (var j = lid; j < cn; j += 64u) { let e = exp(sc[j] - mn); sc[j] = e; sloc += e; }
    l = l * corr + wg_reduce(sloc, lid, 64u, false); // the reduction's barrier (either path has one) also publishes sc
    for (var i = 0u; i < NA; i++) {
      let d = lid + 64u * i;
      if (d < HD) {
        var a = acc[i] * corr;
        for (var j = 0u; j < cn; j++) { a += sc[j] * vcache_in[((b * p.L + c0 + j) * p.Hkv + hk) * HD + d]; }
        acc[i] = a;
      }
    }
    m = mn;
    workgroupBarrier(); // sc is rewritten by the next chunk
  }
  for (var i = 0u; i < NA; i++) {
    let d = lid + 64u * i;
    if (d < HD) { o_decode[(b * p.T + t) * p.Hq * HD + h * HD + d] = acc[i] / l; }
  }
}
