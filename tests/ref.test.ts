import { describe, expect, it } from 'vitest';
import {
  adamw,
  attention,
  attentionBackward,
  clipScale,
  crossEntropy,
  crossEntropyBackward,
  embedding,
  embeddingBackward,
  geluNew,
  geluNewBackward,
  layernorm,
  layernormBackward,
  matmul,
  matmulBackward,
  randn,
  rmsnorm,
  rmsnormBackward,
  rope,
  ropeBackward,
  swiglu,
  swigluBackward,
} from './ref/ops.ts';

const FD_EPS = 1e-6;
const TOL = 1e-6;

/** L = sum(out * R). */
function dotSum(out: Float64Array, R: Float64Array): number {
  expect(out.length).toBe(R.length);
  let s = 0;
  for (let i = 0; i < out.length; i++) s += out[i] * R[i];
  return s;
}

/** Indices to check: all if small, else 50 deterministic random ones. */
function pickIndices(n: number, seed: number): number[] {
  if (n <= 200) return Array.from({ length: n }, (_, i) => i);
  const u = randn(50, seed);
  return Array.from(u, (z) => Math.floor((0.5 + 0.5 * Math.tanh(z)) * n) % n);
}

/**
 * Central-difference check of `grad` = dL/d`x`, where L = loss() reads `x` (mutated in place here).
 * Returns the worst relative error.
 */
function gradCheck(label: string, x: Float64Array, grad: Float64Array, loss: () => number, seed = 7): number {
  expect(grad.length, label).toBe(x.length);
  let worst = 0;
  for (const i of pickIndices(x.length, seed)) {
    const x0 = x[i];
    x[i] = x0 + FD_EPS;
    const lp = loss();
    x[i] = x0 - FD_EPS;
    const lm = loss();
    x[i] = x0;
    const num = (lp - lm) / (2 * FD_EPS);
    const err = Math.abs(num - grad[i]) / Math.max(1, Math.abs(num), Math.abs(grad[i]));
    worst = Math.max(worst, err);
    if (!(err <= TOL)) {
      throw new Error(`${label}[${i}]: analytic ${grad[i]} vs numeric ${num} (rel err ${err})`);
    }
  }
  return worst;
}

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-12): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    expect(Math.abs(a[i] - b[i]), `index ${i}: ${a[i]} vs ${b[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i])));
  }
}

/** Explicit transpose of X[R,C] -> [C,R]. */
function transpose(X: Float64Array, R: number, C: number): Float64Array {
  const Y = new Float64Array(X.length);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) Y[c * R + r] = X[r * C + c];
  return Y;
}

describe('randn', () => {
  it('is deterministic and roughly standard normal', () => {
    expectClose(randn(10, 3), randn(10, 3), 0);
    const z = randn(20001, 1, 2);
    let m = 0;
    let s = 0;
    for (const x of z) {
      m += x;
      s += x * x;
    }
    m /= z.length;
    s = s / z.length - m * m;
    expect(Math.abs(m)).toBeLessThan(0.05);
    expect(Math.abs(Math.sqrt(s) - 2)).toBeLessThan(0.05);
    expect(z.every(Number.isFinite)).toBe(true);
  });
});

describe('matmul', () => {
  const M = 5,
    N = 7,
    K = 3;
  it('forward matches a hand example', () => {
    const A = Float64Array.from([1, 2, 3, 4]); // [2,2]
    const B = Float64Array.from([5, 6, 7, 8]);
    expectClose(matmul(A, B, null, 2, 2, 2, false, false), [19, 22, 43, 50]);
    expectClose(matmul(A, B, Float64Array.from([1, -1]), 2, 2, 2, false, false), [20, 21, 44, 49]);
  });
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const withBias of [false, true]) {
        it(`transA=${transA} transB=${transB} bias=${withBias}`, () => {
          const A = randn(M * K, 1);
          const B = randn(K * N, 2);
          const bias = withBias ? randn(N, 3) : null;
          const R = randn(M * N, 4);
          // forward agrees with the untransposed product of explicitly transposed operands
          const An = transA ? transpose(A, K, M) : A;
          const Bn = transB ? transpose(B, N, K) : B;
          expectClose(matmul(A, B, bias, M, N, K, transA, transB), matmul(An, Bn, bias, M, N, K, false, false));
          const loss = () => dotSum(matmul(A, B, bias, M, N, K, transA, transB), R);
          const g = matmulBackward(R, A, B, M, N, K, transA, transB, withBias);
          gradCheck('dA', A, g.dA, loss);
          gradCheck('dB', B, g.dB, loss);
          if (bias) gradCheck('dbias', bias, g.dbias!, loss);
          else expect(g.dbias).toBeNull();
        });
      }
    }
  }
});

describe('layernorm', () => {
  const N = 5,
    C = 7,
    eps = 1e-5;
  it('forward normalizes', () => {
    const x = randn(N * C, 10, 3);
    const w = new Float64Array(C).fill(1);
    const b = new Float64Array(C);
    const { y, mean, rstd } = layernorm(x, w, b, N, C, eps);
    for (let i = 0; i < N; i++) {
      let m = 0,
        v = 0,
        mx = 0;
      for (let c = 0; c < C; c++) {
        m += y[i * C + c];
        mx += x[i * C + c];
      }
      for (let c = 0; c < C; c++) v += y[i * C + c] ** 2;
      expect(Math.abs(m / C)).toBeLessThan(1e-12);
      expect(Math.abs(v / C - 1)).toBeLessThan(1e-4);
      expect(mean[i]).toBeCloseTo(mx / C, 12);
      expect(rstd[i]).toBeGreaterThan(0);
    }
  });
  it('backward matches finite differences', () => {
    const x = randn(N * C, 11, 2);
    const w = randn(C, 12);
    const b = randn(C, 13);
    const R = randn(N * C, 14);
    const loss = () => dotSum(layernorm(x, w, b, N, C, eps).y, R);
    const { mean, rstd } = layernorm(x, w, b, N, C, eps);
    const g = layernormBackward(R, x, w, mean, rstd, N, C);
    gradCheck('dx', x, g.dx, loss);
    gradCheck('dw', w, g.dw, loss);
    gradCheck('db', b, g.db, loss);
  });
});

describe('rmsnorm', () => {
  const N = 5,
    C = 7,
    eps = 1e-6;
  it('forward has unit rms with w=1', () => {
    const x = randn(N * C, 20, 3);
    const { y, rstd } = rmsnorm(x, new Float64Array(C).fill(1), N, C, eps);
    for (let i = 0; i < N; i++) {
      let ms = 0;
      for (let c = 0; c < C; c++) ms += y[i * C + c] ** 2;
      expect(Math.abs(ms / C - 1)).toBeLessThan(1e-5);
      expect(rstd[i]).toBeGreaterThan(0);
    }
  });
  it('backward matches finite differences', () => {
    const x = randn(N * C, 21);
    const w = randn(C, 22);
    const R = randn(N * C, 23);
    const loss = () => dotSum(rmsnorm(x, w, N, C, eps).y, R);
    const { rstd } = rmsnorm(x, w, N, C, eps);
    const g = rmsnormBackward(R, x, w, rstd, N, C);
    gradCheck('dx', x, g.dx, loss);
    gradCheck('dw', w, g.dw, loss);
  });
});

describe('geluNew', () => {
  it('forward matches known values', () => {
    const y = geluNew(Float64Array.from([0, 1, -1, 3]));
    expect(y[0]).toBe(0);
    expect(y[1]).toBeCloseTo(0.8411919906082768, 12);
    expect(y[2]).toBeCloseTo(-0.15880800939172324, 12);
    // equivalent form: x * sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3)
    const u3 = Math.sqrt(2 / Math.PI) * (3 + 0.044715 * 27);
    expect(y[3]).toBeCloseTo(3 / (1 + Math.exp(-2 * u3)), 13);
  });
  it('backward matches finite differences', () => {
    const x = randn(35, 30, 2);
    const R = randn(35, 31);
    const loss = () => dotSum(geluNew(x), R);
    gradCheck('dx', x, geluNewBackward(R, x), loss);
  });
  it('stays finite for large |x|', () => {
    const x = Float64Array.from([1e4, -1e4, 1e3, -1e3, 50, -50, 9999.5, -9999.5]);
    const y = geluNew(x);
    const dx = geluNewBackward(new Float64Array(x.length).fill(1), x);
    for (let i = 0; i < x.length; i++) {
      expect(Number.isFinite(y[i])).toBe(true);
      expect(Number.isFinite(dx[i])).toBe(true);
      expect(y[i]).toBeCloseTo(x[i] > 0 ? x[i] : 0, 9);
      expect(dx[i]).toBeCloseTo(x[i] > 0 ? 1 : 0, 9);
    }
  });
});

describe('swiglu', () => {
  it('forward matches a hand example', () => {
    const h = swiglu(Float64Array.from([0, 2]), Float64Array.from([5, 3]));
    expect(h[0]).toBe(0);
    expect(h[1]).toBeCloseTo((2 / (1 + Math.exp(-2))) * 3, 14);
  });
  it('backward matches finite differences', () => {
    const n = 5 * 7;
    const gate = randn(n, 40, 2);
    const up = randn(n, 41);
    const R = randn(n, 42);
    const loss = () => dotSum(swiglu(gate, up), R);
    const g = swigluBackward(R, gate, up);
    gradCheck('dgate', gate, g.dgate, loss);
    gradCheck('dup', up, g.dup, loss);
  });
  it('stays finite for large |gate|', () => {
    const gate = Float64Array.from([1e4, -1e4, 800, -800]);
    const up = new Float64Array(4).fill(1);
    const h = swiglu(gate, up);
    const g = swigluBackward(new Float64Array(4).fill(1), gate, up);
    for (const a of [h, g.dgate, g.dup]) expect(a.every(Number.isFinite)).toBe(true);
  });
});

describe('rope', () => {
  const B = 2,
    T = 3,
    H = 3,
    D = 6,
    theta = 10000;
  const pos = Int32Array.from([0, 1, 2, 5, 9, 4]);
  it('forward matches a hand example and preserves norms', () => {
    // D = 2: inv_freq = [1], angle = pos for both halves
    const out = rope(Float64Array.from([2, 3]), Int32Array.from([1]), 1, 1, 1, 2, theta);
    expect(out[0]).toBeCloseTo(2 * Math.cos(1) - 3 * Math.sin(1), 14);
    expect(out[1]).toBeCloseTo(3 * Math.cos(1) + 2 * Math.sin(1), 14);
    // D = 4, theta = 100: inv_freq = [1, 0.1]
    const x4 = Float64Array.from([1, 2, 3, 4]);
    const o4 = rope(x4, Int32Array.from([2]), 1, 1, 1, 4, 100);
    expectClose(o4, [
      1 * Math.cos(2) - 3 * Math.sin(2),
      2 * Math.cos(0.2) - 4 * Math.sin(0.2),
      3 * Math.cos(2) + 1 * Math.sin(2),
      4 * Math.cos(0.2) + 2 * Math.sin(0.2),
    ]);
    const x = randn(B * T * H * D, 50);
    const y = rope(x, pos, B, T, H, D, theta);
    for (let r = 0; r < B * T * H; r++) {
      let nx = 0,
        ny = 0;
      for (let d = 0; d < D; d++) {
        nx += x[r * D + d] ** 2;
        ny += y[r * D + d] ** 2;
      }
      expect(ny).toBeCloseTo(nx, 12);
    }
    // position 0 is the identity
    expectClose(y.subarray(0, H * D), x.subarray(0, H * D));
  });
  it('backward matches finite differences', () => {
    const x = randn(B * T * H * D, 51);
    const R = randn(B * T * H * D, 52);
    const loss = () => dotSum(rope(x, pos, B, T, H, D, theta), R);
    gradCheck('dx', x, ropeBackward(R, pos, B, T, H, D, theta), loss);
  });
});

describe('attention', () => {
  const B = 2,
    T = 5,
    Hq = 4,
    Hkv = 2,
    D = 6;
  const scale = 1 / Math.sqrt(D);
  const mk = () => ({
    q: randn(B * T * Hq * D, 60),
    k: randn(B * T * Hkv * D, 61),
    v: randn(B * T * Hkv * D, 62),
  });

  it('first position returns v, GQA equals MHA with repeated kv heads', () => {
    const { q, k, v } = mk();
    const { out } = attention(q, k, v, B, T, Hq, Hkv, D, scale);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < Hq; h++) {
        const hk = Math.floor(h / (Hq / Hkv));
        for (let d = 0; d < D; d++) {
          expect(out[(b * T * Hq + h) * D + d]).toBeCloseTo(v[(b * T * Hkv + hk) * D + d], 14);
        }
      }
    }
    const rep = (x: Float64Array) => {
      const y = new Float64Array(B * T * Hq * D);
      for (let bt = 0; bt < B * T; bt++) {
        for (let h = 0; h < Hq; h++) {
          const hk = Math.floor(h / (Hq / Hkv));
          for (let d = 0; d < D; d++) y[(bt * Hq + h) * D + d] = x[(bt * Hkv + hk) * D + d];
        }
      }
      return y;
    };
    expectClose(attention(q, rep(k), rep(v), B, T, Hq, Hq, D, scale).out, out);
  });

  it('lse is the logsumexp of the scaled causal scores', () => {
    const { q, k, v } = mk();
    const { lse } = attention(q, k, v, B, T, Hq, Hkv, D, scale);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < Hq; h++) {
        const hk = Math.floor(h / (Hq / Hkv));
        for (let t = 0; t < T; t++) {
          let sum = 0;
          for (let s = 0; s <= t; s++) {
            let dot = 0;
            for (let d = 0; d < D; d++) dot += q[((b * T + t) * Hq + h) * D + d] * k[((b * T + s) * Hkv + hk) * D + d];
            sum += Math.exp(scale * dot);
          }
          expect(lse[(b * Hq + h) * T + t]).toBeCloseTo(Math.log(sum), 12);
        }
      }
    }
  });

  it('is causal', () => {
    const { q, k, v } = mk();
    const base = attention(q, k, v, B, T, Hq, Hkv, D, scale);
    const tf = 3; // perturb k and v at position tf in batch 1
    const k2 = k.slice();
    const v2 = v.slice();
    for (let i = 0; i < Hkv * D; i++) {
      k2[(1 * T + tf) * Hkv * D + i] += 5;
      v2[(1 * T + tf) * Hkv * D + i] -= 7;
    }
    const pert = attention(q, k2, v2, B, T, Hq, Hkv, D, scale);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < Hq; h++) {
          const o = ((b * T + t) * Hq + h) * D;
          const same = b === 0 || t < tf;
          for (let d = 0; d < D; d++) {
            if (same) expect(pert.out[o + d]).toBe(base.out[o + d]);
          }
          if (!same) expect(pert.out[o]).not.toBe(base.out[o]);
          if (same) expect(pert.lse[(b * Hq + h) * T + t]).toBe(base.lse[(b * Hq + h) * T + t]);
        }
      }
    }
  });

  it('backward matches finite differences', () => {
    const { q, k, v } = mk();
    const R = randn(B * T * Hq * D, 63);
    const loss = () => dotSum(attention(q, k, v, B, T, Hq, Hkv, D, scale).out, R);
    const g = attentionBackward(R, q, k, v, B, T, Hq, Hkv, D, scale);
    gradCheck('dq', q, g.dq, loss, 1);
    gradCheck('dk', k, g.dk, loss, 2);
    gradCheck('dv', v, g.dv, loss, 3);
  });
});

describe('crossEntropy', () => {
  const N = 5,
    V = 11;
  const targets = Int32Array.from([3, -1, 0, 10, 7]);
  const weights = Float64Array.from([1, 2, 0.5, 1.5, 0.25]);
  it('forward matches a hand computation; masked rows contribute 0', () => {
    const logits = randn(N * V, 70, 3);
    const { losses, lse } = crossEntropy(logits, targets, weights, N, V);
    for (let i = 0; i < N; i++) {
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(logits[i * V + j]);
      expect(lse[i]).toBeCloseTo(Math.log(s), 12);
      const want = targets[i] < 0 ? 0 : weights[i] * (Math.log(s) - logits[i * V + targets[i]]);
      expect(losses[i]).toBeCloseTo(want, 12);
    }
    expect(losses[1]).toBe(0);
    // stable for huge logits
    const big = Float64Array.from([1000, 0, -1000]);
    const r = crossEntropy(big, [1], Float64Array.from([1]), 1, 3);
    expect(r.losses[0]).toBeCloseTo(1000, 9);
    expect(crossEntropyBackward(big, [1], Float64Array.from([1]), 1, 3).every(Number.isFinite)).toBe(true);
  });
  it('backward matches finite differences', () => {
    const logits = randn(N * V, 71, 2);
    const loss = () => crossEntropy(logits, targets, weights, N, V).losses.reduce((a, b) => a + b, 0);
    const dl = crossEntropyBackward(logits, targets, weights, N, V);
    gradCheck('dlogits', logits, dl, loss);
    for (let j = 0; j < V; j++) expect(dl[1 * V + j]).toBe(0);
  });
});

describe('embedding', () => {
  const B = 2,
    T = 3,
    C = 5,
    V = 7,
    P = 4;
  const ids = Int32Array.from([1, 4, 1, 6, 1, 0]); // repeated ids exercise accumulation
  it('forward gathers rows', () => {
    const wte = randn(V * C, 80);
    const wpe = randn(P * C, 81);
    const out = embedding(ids, wte, wpe, B, T, C);
    expect(out[(1 * T + 2) * C + 3]).toBe(wte[0 * C + 3] + wpe[2 * C + 3]);
    expect(embedding(ids, wte, null, B, T, C)[(0 * T + 1) * C + 2]).toBe(wte[4 * C + 2]);
  });
  it('backward matches finite differences (with wpe)', () => {
    const wte = randn(V * C, 82);
    const wpe = randn(P * C, 83);
    const R = randn(B * T * C, 84);
    const loss = () => dotSum(embedding(ids, wte, wpe, B, T, C), R);
    const g = embeddingBackward(R, ids, B, T, C, V, P);
    gradCheck('dwte', wte, g.dwte, loss);
    gradCheck('dwpe', wpe, g.dwpe!, loss);
  });
  it('backward matches finite differences (no wpe)', () => {
    const wte = randn(V * C, 85);
    const R = randn(B * T * C, 86);
    const loss = () => dotSum(embedding([...ids], wte, null, B, T, C), R);
    const g = embeddingBackward(R, [...ids], B, T, C, V, 0);
    expect(g.dwpe).toBeNull();
    gradCheck('dwte', wte, g.dwte, loss);
  });
});

describe('adamw', () => {
  it('one step matches a hand-computed scalar example', () => {
    const lr = 0.1,
      beta1 = 0.9,
      beta2 = 0.999,
      eps = 1e-8,
      weightDecay = 0.01;
    const p = Float64Array.from([1.0]);
    const m = Float64Array.from([0]);
    const v = Float64Array.from([0]);
    // g = 0.5 * gradScale 0.5 = 0.25
    adamw(p, Float64Array.from([0.5]), m, v, { lr, beta1, beta2, eps, weightDecay, step: 1, gradScale: 0.5 });
    // p after decay: 1 - 0.1*0.01*1 = 0.999 ; m = 0.025 ; v = 0.0000625
    // mhat = 0.25, vhat = 0.0625, update = 0.1 * 0.25 / (0.25 + 1e-8)
    expect(m[0]).toBeCloseTo(0.025, 15);
    expect(v[0]).toBeCloseTo(0.0000625, 15);
    expect(p[0]).toBeCloseTo(0.999 - (0.1 * 0.25) / (0.25 + 1e-8), 14);
  });
  it('second step uses bias correction for step 2', () => {
    const o = { lr: 0.01, beta1: 0.8, beta2: 0.9, eps: 1e-6, weightDecay: 0, step: 2, gradScale: 1 };
    const p = Float64Array.from([2, -1]);
    const m = Float64Array.from([0.1, -0.2]);
    const v = Float64Array.from([0.01, 0.04]);
    const g = Float64Array.from([1, 3]);
    const want = [0, 1].map((i) => {
      const mi = 0.8 * m[i] + 0.2 * g[i];
      const vi = 0.9 * v[i] + 0.1 * g[i] * g[i];
      return p[i] - (0.01 * (mi / (1 - 0.64))) / (Math.sqrt(vi / (1 - 0.81)) + 1e-6);
    });
    adamw(p, g, m, v, o);
    expectClose(p, want);
    expectClose(m, [0.8 * 0.1 + 0.2, 0.8 * -0.2 + 0.6]);
  });
});

describe('clipScale', () => {
  it('computes the global norm and scale', () => {
    const r = clipScale([Float64Array.from([3]), Float64Array.from([0, 4])], 1);
    expect(r.norm).toBe(5);
    expect(r.scale).toBeCloseTo(1 / (5 + 1e-6), 15);
    const s = clipScale([Float64Array.from([3]), Float64Array.from([0, 4])], 10);
    expect(s.norm).toBe(5);
    expect(s.scale).toBe(1);
    expect(clipScale([], 1)).toEqual({ norm: 0, scale: 1 });
  });
});
