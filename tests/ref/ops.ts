// CPU float64 reference implementations of transformer ops (forward + backward).
// These are the spec that GPU kernels are tested against: plain loops, row-major, no cleverness.
// Every backward takes the gradient of the output(s) and returns fresh gradients of the inputs.

type F64 = Float64Array;
type Ids = Int32Array | number[];

// ---------------------------------------------------------------- PRNG

/** Deterministic N(0, std^2) samples: mulberry32 uniform + Box-Muller. */
export function randn(n: number, seed: number, std = 1): Float64Array {
  let a = seed >>> 0;
  const uniform = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - uniform(); // (0, 1]
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = std * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = std * r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

// ---------------------------------------------------------------- matmul

// index of element (m,k) of A: A is [M,K], or [K,M] if transA
const aIdx = (m: number, k: number, M: number, K: number, transA: boolean): number => (transA ? k * M + m : m * K + k);
// index of element (k,n) of B: B is [K,N], or [N,K] if transB
const bIdx = (k: number, n: number, N: number, K: number, transB: boolean): number => (transB ? n * K + k : k * N + n);

/** C[M,N] = op(A) @ op(B) (+ bias[N]). A: [M,K] ([K,M] if transA); B: [K,N] ([N,K] if transB). */
export function matmul(A: F64, B: F64, bias: F64 | null, M: number, N: number, K: number, transA: boolean, transB: boolean): Float64Array {
  const C = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += A[aIdx(m, k, M, K, transA)] * B[bIdx(k, n, N, K, transB)];
      C[m * N + n] = s;
    }
  }
  return C;
}

/** dC[M,N] -> dA (layout of A), dB (layout of B), dbias[N] (null unless hasBias). */
export function matmulBackward(
  dC: F64,
  A: F64,
  B: F64,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  hasBias: boolean,
): { dA: Float64Array; dB: Float64Array; dbias: Float64Array | null } {
  const dA = new Float64Array(M * K);
  const dB = new Float64Array(K * N);
  const dbias = hasBias ? new Float64Array(N) : null;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const g = dC[m * N + n];
      if (dbias) dbias[n] += g;
      for (let k = 0; k < K; k++) {
        dA[aIdx(m, k, M, K, transA)] += g * B[bIdx(k, n, N, K, transB)];
        dB[bIdx(k, n, N, K, transB)] += g * A[aIdx(m, k, M, K, transA)];
      }
    }
  }
  return { dA, dB, dbias };
}

// ---------------------------------------------------------------- LayerNorm

/** x[N,C], w[C], b[C] -> y[N,C], mean[N], rstd[N]. Biased variance. */
export function layernorm(x: F64, w: F64, b: F64, N: number, C: number, eps: number): { y: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(N * C);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const o = i * C;
    let mu = 0;
    for (let c = 0; c < C; c++) mu += x[o + c];
    mu /= C;
    let vr = 0;
    for (let c = 0; c < C; c++) vr += (x[o + c] - mu) ** 2;
    vr /= C;
    const r = 1 / Math.sqrt(vr + eps);
    for (let c = 0; c < C; c++) y[o + c] = (x[o + c] - mu) * r * w[c] + b[c];
    mean[i] = mu;
    rstd[i] = r;
  }
  return { y, mean, rstd };
}

/** dy[N,C] -> dx[N,C], dw[C], db[C]. */
export function layernormBackward(
  dy: F64,
  x: F64,
  w: F64,
  mean: F64,
  rstd: F64,
  N: number,
  C: number,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const dx = new Float64Array(N * C);
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  for (let i = 0; i < N; i++) {
    const o = i * C;
    // xhat = (x-mean)*rstd, g = dy*w ; dx = rstd*(g - mean(g) - xhat*mean(g*xhat))
    let gMean = 0;
    let gxMean = 0;
    for (let c = 0; c < C; c++) {
      const xhat = (x[o + c] - mean[i]) * rstd[i];
      const g = dy[o + c] * w[c];
      gMean += g;
      gxMean += g * xhat;
      dw[c] += dy[o + c] * xhat;
      db[c] += dy[o + c];
    }
    gMean /= C;
    gxMean /= C;
    for (let c = 0; c < C; c++) {
      const xhat = (x[o + c] - mean[i]) * rstd[i];
      dx[o + c] = rstd[i] * (dy[o + c] * w[c] - gMean - xhat * gxMean);
    }
  }
  return { dx, dw, db };
}

// ---------------------------------------------------------------- RMSNorm

/** x[N,C], w[C] -> y[N,C], rstd[N]; rstd = 1/sqrt(mean(x^2)+eps). */
export function rmsnorm(x: F64, w: F64, N: number, C: number, eps: number): { y: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(N * C);
  const rstd = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const o = i * C;
    let ms = 0;
    for (let c = 0; c < C; c++) ms += x[o + c] * x[o + c];
    const r = 1 / Math.sqrt(ms / C + eps);
    for (let c = 0; c < C; c++) y[o + c] = x[o + c] * r * w[c];
    rstd[i] = r;
  }
  return { y, rstd };
}

/** dy[N,C] -> dx[N,C], dw[C]. dx = rstd*(g - x*rstd^2*mean(g*x)), g = dy*w. */
export function rmsnormBackward(dy: F64, x: F64, w: F64, rstd: F64, N: number, C: number): { dx: Float64Array; dw: Float64Array } {
  const dx = new Float64Array(N * C);
  const dw = new Float64Array(C);
  for (let i = 0; i < N; i++) {
    const o = i * C;
    const r = rstd[i];
    let gx = 0;
    for (let c = 0; c < C; c++) {
      gx += dy[o + c] * w[c] * x[o + c];
      dw[c] += dy[o + c] * x[o + c] * r;
    }
    gx /= C;
    for (let c = 0; c < C; c++) dx[o + c] = r * (dy[o + c] * w[c] - x[o + c] * r * r * gx);
  }
  return { dx, dw };
}

// ---------------------------------------------------------------- GELU (tanh approximation, "gelu_new")

const GELU_S = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/** elementwise y = 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715 x^3))). */
export function geluNew(x: F64): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const u = x[i];
    y[i] = 0.5 * u * (1 + Math.tanh(GELU_S * (u + GELU_A * u * u * u)));
  }
  return y;
}

/** elementwise dx = dy * gelu'(x). */
export function geluNewBackward(dy: F64, x: F64): Float64Array {
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const u = x[i];
    const t = Math.tanh(GELU_S * (u + GELU_A * u * u * u));
    const sech2 = 1 - t * t; // exactly 0 once tanh saturates, so large |x| stays finite
    const d = 0.5 * (1 + t) + 0.5 * u * sech2 * GELU_S * (1 + 3 * GELU_A * u * u);
    dx[i] = dy[i] * d;
  }
  return dx;
}

// ---------------------------------------------------------------- SwiGLU

const sigmoid = (g: number): number => 1 / (1 + Math.exp(-g));

/** gate[N,I], up[N,I] -> h[N,I] = silu(gate) * up. */
export function swiglu(gate: F64, up: F64): Float64Array {
  const h = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) h[i] = gate[i] * sigmoid(gate[i]) * up[i];
  return h;
}

/** dh[N,I] -> dgate, dup. silu'(g) = s*(1 + g*(1-s)), s = sigmoid(g). */
export function swigluBackward(dh: F64, gate: F64, up: F64): { dgate: Float64Array; dup: Float64Array } {
  const dgate = new Float64Array(gate.length);
  const dup = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    const s = sigmoid(g);
    dgate[i] = dh[i] * up[i] * s * (1 + g * (1 - s));
    dup[i] = dh[i] * g * s;
  }
  return { dgate, dup };
}

// ---------------------------------------------------------------- RoPE (HF rotate_half layout)

/** inv_freq[i] = theta^(-2i/D), i < D/2. */
function ropeInvFreq(D: number, theta: number): Float64Array {
  const f = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) f[i] = Math.pow(theta, (-2 * i) / D);
  return f;
}

/**
 * x[B,T,H,D] -> out[B,T,H,D]. Pairs (i, i+D/2) rotate by angle a = pos*inv_freq[i]:
 * out[i] = x[i]cos a - x[i+D/2] sin a ; out[i+D/2] = x[i+D/2] cos a + x[i] sin a.
 */
export function rope(x: F64, pos: Int32Array, B: number, T: number, H: number, D: number, theta: number): Float64Array {
  return ropeApply(x, pos, B, T, H, D, theta, 1);
}

/** dy[B,T,H,D] -> dx[B,T,H,D]: rotation by -angle (transpose of the forward rotation). */
export function ropeBackward(dy: F64, pos: Int32Array, B: number, T: number, H: number, D: number, theta: number): Float64Array {
  return ropeApply(dy, pos, B, T, H, D, theta, -1);
}

function ropeApply(x: F64, pos: Int32Array, B: number, T: number, H: number, D: number, theta: number, sign: number): Float64Array {
  const half = D / 2;
  const invFreq = ropeInvFreq(D, theta);
  const out = new Float64Array(B * T * H * D);
  for (let bt = 0; bt < B * T; bt++) {
    for (let h = 0; h < H; h++) {
      const o = (bt * H + h) * D;
      for (let i = 0; i < half; i++) {
        const a = pos[bt] * invFreq[i];
        const c = Math.cos(a);
        const s = sign * Math.sin(a);
        const x1 = x[o + i];
        const x2 = x[o + i + half];
        out[o + i] = x1 * c - x2 * s;
        out[o + i + half] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- causal GQA attention

/** Softmax probabilities p[0..t] and logsumexp of row (b,t,h). */
function attnRow(
  q: F64,
  k: F64,
  b: number,
  t: number,
  h: number,
  T: number,
  Hq: number,
  Hkv: number,
  D: number,
  scale: number,
): { p: Float64Array; lse: number } {
  const hk = Math.floor(h / (Hq / Hkv));
  const qo = ((b * T + t) * Hq + h) * D;
  const p = new Float64Array(t + 1);
  let mx = -Infinity;
  for (let s = 0; s <= t; s++) {
    const ko = ((b * T + s) * Hkv + hk) * D;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
    p[s] = scale * dot;
    mx = Math.max(mx, p[s]);
  }
  let sum = 0;
  for (let s = 0; s <= t; s++) sum += Math.exp(p[s] - mx);
  const lse = mx + Math.log(sum);
  for (let s = 0; s <= t; s++) p[s] = Math.exp(p[s] - lse);
  return { p, lse };
}

/** q[B,T,Hq,D], k,v[B,T,Hkv,D] -> out[B,T,Hq,D], lse[B,Hq,T]. */
export function attention(
  q: F64,
  k: F64,
  v: F64,
  B: number,
  T: number,
  Hq: number,
  Hkv: number,
  D: number,
  scale: number,
): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(B * T * Hq * D);
  const lse = new Float64Array(B * Hq * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const hk = Math.floor(h / (Hq / Hkv));
      for (let t = 0; t < T; t++) {
        const row = attnRow(q, k, b, t, h, T, Hq, Hkv, D, scale);
        lse[(b * Hq + h) * T + t] = row.lse;
        const oo = ((b * T + t) * Hq + h) * D;
        for (let s = 0; s <= t; s++) {
          const vo = ((b * T + s) * Hkv + hk) * D;
          for (let d = 0; d < D; d++) out[oo + d] += row.p[s] * v[vo + d];
        }
      }
    }
  }
  return { out, lse };
}

/**
 * dout[B,T,Hq,D] -> dq[B,T,Hq,D], dk,dv[B,T,Hkv,D].
 * dv_s += p_s dout ; dp_s = dout·v_s ; ds_s = p_s (dp_s - sum_s' p_s' dp_s') ;
 * dq += scale ds_s k_s ; dk_s += scale ds_s q.
 */
export function attentionBackward(
  dout: F64,
  q: F64,
  k: F64,
  v: F64,
  B: number,
  T: number,
  Hq: number,
  Hkv: number,
  D: number,
  scale: number,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const hk = Math.floor(h / (Hq / Hkv));
      for (let t = 0; t < T; t++) {
        const { p } = attnRow(q, k, b, t, h, T, Hq, Hkv, D, scale);
        const qo = ((b * T + t) * Hq + h) * D;
        const dp = new Float64Array(t + 1);
        let pdp = 0;
        for (let s = 0; s <= t; s++) {
          const vo = ((b * T + s) * Hkv + hk) * D;
          for (let d = 0; d < D; d++) {
            dp[s] += dout[qo + d] * v[vo + d];
            dv[vo + d] += p[s] * dout[qo + d];
          }
          pdp += p[s] * dp[s];
        }
        for (let s = 0; s <= t; s++) {
          const ds = p[s] * (dp[s] - pdp);
          const ko = ((b * T + s) * Hkv + hk) * D;
          for (let d = 0; d < D; d++) {
            dq[qo + d] += scale * ds * k[ko + d];
            dk[ko + d] += scale * ds * q[qo + d];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}

// ---------------------------------------------------------------- cross-entropy

/** logits[N,V], targets[N] (<0 = masked), weights[N] -> losses[N] (weighted, 0 if masked), lse[N]. */
export function crossEntropy(logits: F64, targets: Ids, weights: F64, N: number, V: number): { losses: Float64Array; lse: Float64Array } {
  const losses = new Float64Array(N);
  const lse = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const o = i * V;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[o + j]);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[o + j] - mx);
    lse[i] = mx + Math.log(sum);
    const tgt = targets[i];
    if (tgt >= 0) losses[i] = weights[i] * (lse[i] - logits[o + tgt]);
  }
  return { losses, lse };
}

/** -> dlogits[N,V] = weight_i * (softmax_i - onehot(target_i)); 0 rows where target < 0. */
export function crossEntropyBackward(logits: F64, targets: Ids, weights: F64, N: number, V: number): Float64Array {
  const { lse } = crossEntropy(logits, targets, weights, N, V);
  const dl = new Float64Array(N * V);
  for (let i = 0; i < N; i++) {
    const tgt = targets[i];
    if (tgt < 0) continue;
    const o = i * V;
    for (let j = 0; j < V; j++) dl[o + j] = weights[i] * (Math.exp(logits[o + j] - lse[i]) - (j === tgt ? 1 : 0));
  }
  return dl;
}

// ---------------------------------------------------------------- embedding

/** ids[B,T], wte[V,C], wpe[P,C]|null -> out[B,T,C] = wte[ids[b,t]] + wpe[t]. */
export function embedding(ids: Ids, wte: F64, wpe: F64 | null, B: number, T: number, C: number): Float64Array {
  const out = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C;
      const id = ids[b * T + t];
      for (let c = 0; c < C; c++) out[o + c] = wte[id * C + c] + (wpe ? wpe[t * C + c] : 0);
    }
  }
  return out;
}

/** dout[B,T,C] -> dwte[V,C] (scatter-add by id), dwpe[P,C] (null if P == 0). */
export function embeddingBackward(
  dout: F64,
  ids: Ids,
  B: number,
  T: number,
  C: number,
  V: number,
  P: number,
): { dwte: Float64Array; dwpe: Float64Array | null } {
  const dwte = new Float64Array(V * C);
  const dwpe = P > 0 ? new Float64Array(P * C) : null;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C;
      const id = ids[b * T + t];
      for (let c = 0; c < C; c++) {
        dwte[id * C + c] += dout[o + c];
        if (dwpe) dwpe[t * C + c] += dout[o + c];
      }
    }
  }
  return { dwte, dwpe };
}

// ---------------------------------------------------------------- optimizer

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number; // starts at 1
  gradScale: number;
}

/** torch.optim.AdamW, one step, in place on p, m, v (all [n]). */
export function adamw(p: F64, g: F64, m: F64, v: F64, o: AdamWOptions): void {
  const bc1 = 1 - Math.pow(o.beta1, o.step);
  const bc2 = 1 - Math.pow(o.beta2, o.step);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * o.gradScale;
    p[i] -= o.lr * o.weightDecay * p[i];
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
    const mhat = m[i] / bc1;
    const vhat = v[i] / bc2;
    p[i] -= (o.lr * mhat) / (Math.sqrt(vhat) + o.eps);
  }
}

/** Global grad-norm clipping factor, as torch.nn.utils.clip_grad_norm_. */
export function clipScale(grads: F64[], maxNorm: number): { norm: number; scale: number } {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  const norm = Math.sqrt(ss);
  return { norm, scale: norm > maxNorm ? maxNorm / (norm + 1e-6) : 1 };
}
