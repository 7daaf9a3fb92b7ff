// Every kernel, forward and backward, against the float64 CPU reference (tests/ref/ops.ts) on odd sizes,
// plus a finite-difference check of each backward through the GPU forward itself (directional derivative
// along a random direction, in f32).
import { describe, expect, it } from 'vitest';
import * as ref from './ref/ops.ts';
import { dot, expectClose, relErr, run, testGpu, upload } from './helpers/gpu.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { Gpu, PRELUDE, type Defines, type ReductionPath, type View } from '../src/gpu/runtime.ts';
import { createNodeGpu, nodeShaderSource } from '../src/gpu/node.ts';
import { matmul } from '../src/ops/matmul.ts';
import { halfBits, halfValue, packHalf } from '../src/shared/half.ts';
import { linearBackward, linearForward, type WeightLayout } from '../src/ops/linear.ts';
import { normBackward, normForward } from '../src/ops/norm.ts';
import { geluBackward, geluForward, swigluBackward, swigluForward } from '../src/ops/activation.ts';
import { rope, ropeTable } from '../src/ops/rope.ts';
import { attentionBackward, attentionCached, attentionForward, decodeGroup, kvAppend } from '../src/ops/attention.ts';
import { crossEntropy } from '../src/ops/crossentropy.ts';
import { buildBuckets, bucketLength, embeddingBackward, embeddingForward } from '../src/ops/embedding.ts';
import { adamw, gradNorm, normPartials } from '../src/ops/optim.ts';
import { accumulate, add, zero } from '../src/ops/residual.ts';
import { readModelFolder } from '../src/io/folder.ts';
import { parseSafetensors, readTensorF32 } from '../src/io/safetensors.ts';
import { loadModel } from '../src/model/index.ts';

const read = async (g: Gpu, v: View, n = v.n) => Float64Array.from(await g.read(v, n));

// The two ways a workgroup reduces (Gpu.reductions, shaders/prelude.wgsl's wg_reduce), both on the test adapter:
// testGpu's device uses subgroup operations where the adapter has them (lavapipe does), the other is told not to.
const PATHS: ReductionPath[] = ['subgroups', 'workgroup'];
let treeGpu: Promise<Gpu> | undefined;
async function gpuOn(path: ReductionPath): Promise<Gpu> {
  const g = path === 'subgroups' ? await testGpu() : await (treeGpu ??= createNodeGpu({ subgroups: false }));
  const r = await g.reductions();
  expect(r.path, `${path}: ${r.why}`).toBe(path === 'subgroups' && !g.features.has('subgroups') ? 'workgroup' : path);
  return g;
}

/** Central difference of L(x) = sum(f(x) * R) along direction u, compared with grad . u. */
async function fdCheck(label: string, x0: Float64Array, grad: ArrayLike<number>, loss: (x: Float64Array) => Promise<number>, seed = 7) {
  const u = ref.randn(x0.length, seed);
  const norm = Math.sqrt(dot(u, u));
  u.forEach((v, i) => (u[i] = v / norm)); // a unit direction: the step has norm eps whatever the size
  const eps = 1e-2;
  const xp = x0.map((v, i) => v + eps * u[i]!);
  const xm = x0.map((v, i) => v - eps * u[i]!);
  const num = ((await loss(xp)) - (await loss(xm))) / (2 * eps);
  const ana = dot(grad, u);
  expect(Math.abs(num - ana), `${label}: finite difference ${num} vs analytic ${ana}`).toBeLessThan(3e-3 * Math.max(1, Math.abs(ana)));
}

describe('matmul', () => {
  // past one 128x128 tile each way, with partial tiles and both 64-wide halves of each thread's block in play
  const M = 197,
    N = 141,
    K = 33;
  for (const transA of [false, true])
    for (const transB of [false, true])
      for (const bias of [false, true]) {
        it(`transA=${transA} transB=${transB} bias=${bias}, accumulate`, async () => {
          const g = await testGpu();
          const A = ref.randn(M * K, 1),
            B = ref.randn(K * N, 2),
            b = ref.randn(N, 3),
            C0 = ref.randn(M * N, 4);
          const want = ref.matmul(A, B, bias ? b : null, M, N, K, transA, transB);
          const c = g.tensor(M * N, 'c');
          await run(g, matmul(g, { c, a: upload(g, A), b: upload(g, B), bias: bias ? upload(g, b) : undefined, M, N, K, transA, transB }));
          expectClose(await g.read(c), want, 1e-4, 1e-4, 'matmul');
          const acc = upload(g, C0);
          await run(g, matmul(g, { c: acc, a: upload(g, A), b: upload(g, B), bias: bias ? upload(g, b) : undefined, M, N, K, transA, transB, accum: true }));
          expectClose(
            await g.read(acc),
            want.map((v, i) => v + C0[i]!),
            1e-4,
            1e-4,
            'matmul accumulate',
          );
        });
      }

  for (const path of PATHS)
    for (const M1 of [1, 5, 8])
      for (const transB of [false, true])
        for (const K1 of [131, 132]) {
          it(`decoding rows (M=${M1}, transB=${transB}, K=${K1}): the matrix-vector kernels${K1 % 4 ? '' : ' with vec4 loads'}, with bias, scale and accumulation (${path})`, async () => {
            const g = await gpuOn(path);
            const N1 = K1 % 4 ? 77 : 76;
            const A = ref.randn(M1 * K1, 31),
              B = ref.randn(K1 * N1, 32),
              b = ref.randn(N1, 33),
              C0 = ref.randn(M1 * N1, 34);
            const want = ref.matmul(A, B, null, M1, N1, K1, false, transB).map((v, i) => 0.5 * v + b[i % N1]! + C0[i]!);
            const c = upload(g, C0);
            const calls = await matmul(g, { c, a: upload(g, A), b: upload(g, B), bias: upload(g, b), M: M1, N: N1, K: K1, transB, accum: true, alpha: 0.5 });
            expect(calls[0]!.kernel.name).toMatch(/gemv/);
            await run(g, calls);
            expectClose(await g.read(c), want, 1e-4, 1e-4, 'gemv');
          });
        }

  it('splits large work over several dispatches (rows, and K for weight gradients) with the same result', async () => {
    const g = await testGpu();
    // past two 128-row tiles in M and in K, so a budget of one tile's work per dispatch splits both ways
    const M2 = 300,
      N2 = 70,
      K2 = 280;
    const A = ref.randn(K2 * M2, 5),
      B = ref.randn(K2 * N2, 6);
    const want = ref.matmul(A, B, null, M2, N2, K2, true, false);
    const c = g.tensor(M2 * N2, 'c');
    const calls = await matmul(g, { c, a: upload(g, A), b: upload(g, B), M: M2, N: N2, K: K2, transA: true, maxFlops: 2 * 64 * N2 * 64 });
    expect(calls.length).toBeGreaterThan(4);
    await run(g, calls);
    expectClose(await g.read(c), want, 1e-4, 1e-4, 'split matmul');
  });

  it('matrix-vector products for 1 to 8 rows (decoding): compiled for the next power of two of rows, each row right, nothing written past row M', async () => {
    const g = await testGpu();
    const N2 = 37,
      tail = 5;
    // K 70: the scalar kernels; K 72 (and B's row stride 40 for gemv4_nn): the vec4 ones, four columns a
    // thread, so 37 columns leave a last thread with one column
    for (const vec4 of [false, true])
      for (const transB of [false, true])
        for (let M2 = 1; M2 <= 8; M2++) {
          const K2 = vec4 ? 72 : 70,
            ldb = transB ? K2 : vec4 ? 40 : N2;
          const A = ref.randn(M2 * K2, 170 + M2),
            Bs = ref.randn(K2 * (transB ? N2 : ldb), 180 + M2),
            b = ref.randn(N2, 190);
          const B = transB ? Bs : Bs.filter((_, i) => i % ldb < N2); // the [K, N] the product reads
          const want = ref.matmul(A, B, b, M2, N2, K2, false, transB);
          const c = upload(g, new Float32Array(M2 * N2 + tail).fill(7)); // 7s after the M rows: left alone
          const calls = await matmul(g, { c, a: upload(g, A), b: upload(g, Bs), bias: upload(g, b), M: M2, N: N2, K: K2, ldb, transB });
          expect(calls.map((x) => x.kernel.name)).toEqual([
            `matmul.gemv${vec4 ? '4' : ''}_${transB ? 'nt' : 'nn'}{"TRANS_A":false,"TRANS_B":${transB},"GR":${2 ** Math.ceil(Math.log2(M2))}}`,
          ]);
          await run(g, calls);
          const got = await g.read(c);
          expectClose(got.subarray(0, M2 * N2), want, 1e-4, 1e-4, `gemv M=${M2} transB=${transB} vec4=${vec4}`);
          expect([...got.subarray(M2 * N2)]).toEqual(new Array(tail).fill(7));
        }
  });

  it('gemv4 sums each column in k order, as gemv_nn and the tiles do: the same bits; up to 32 rows; an offset of A that is not a multiple of 4 takes the scalar kernel', async () => {
    const g = await testGpu();
    const N = 44,
      K = 96;
    for (const transB of [false, true])
      for (const M of [5, 16, 32, 33]) {
        const A = ref.randn(M * K, 201 + M),
          B = ref.randn(K * N, 202);
        const padded = new Float32Array(1 + M * K);
        padded.set(A, 1);
        const c4 = g.tensor(M * N, 'c4'),
          c1 = g.tensor(M * N, 'c1'),
          bv = upload(g, B);
        const vec = await matmul(g, { c: c4, a: upload(g, A), b: bv, M, N, K, transB });
        const other = await matmul(g, { c: c1, a: upload(g, padded), aOff: 1, b: bv, M, N, K, transB });
        const label = `M=${M} transB=${transB}`;
        expect(vec[0]!.kernel.name, label).toMatch(M <= 32 ? `gemv4_${transB ? 'nt' : 'nn'}` : /matmul\.main/);
        expect(other[0]!.kernel.name, label).toMatch(M <= 8 ? `gemv_${transB ? 'nt' : 'nn'}` : /matmul\.main/);
        await run(g, [...vec, ...other]);
        const [x, y] = [await g.read(c4), await g.read(c1)];
        expectClose(x, ref.matmul(A, B, null, M, N, K, false, transB), 1e-4, 1e-4, label);
        // gemv_nt sums a strided tree: close, not the same bits
        if (!(transB && M <= 8)) expect(new Uint32Array(x.buffer), label).toEqual(new Uint32Array(y.buffer));
      }
  });

  it('gemv4_nt_lanes (for GPUs: a subgroup splits K): chosen on a GPU with subgroups, or when asked; each row right up to 32 rows, with a tail of columns, bias, scale, accumulation, and an f16 B', async () => {
    const def = await testGpu();
    await def.reductions();
    // the test adapter is a CPU one (lavapipe): a thread per four columns there, unless asked
    expect(def.adapter.fallback, def.adapter.name).toBe(true);
    expect(def.matvecLanes).toBe(0);
    const g = await createNodeGpu({ matvecLanes: true });
    const r = await g.reductions();
    expect(r.path, r.why).toBe('subgroups');
    expect(g.matvecLanes).toBe(r.sizes![64]);
    const N = 77,
      K = 136;
    for (const M of [1, 3, 8, 16, 32]) {
      const A = ref.randn(M * K, 211 + M),
        B = ref.randn(N * K, 212),
        b = ref.randn(N, 213),
        C0 = ref.randn(M * N, 214);
      const want = ref.matmul(A, B, null, M, N, K, false, true).map((v, i) => 0.5 * v + b[i % N]! + C0[i]!);
      const c = upload(g, C0);
      const calls = await matmul(g, { c, a: upload(g, A), b: upload(g, B), bias: upload(g, b), M, N, K, transB: true, accum: true, alpha: 0.5 });
      expect(calls.map((x) => x.kernel.name)).toEqual([`matmul.gemv4_nt_lanes{"TRANS_A":false,"TRANS_B":true,"GR":${2 ** Math.ceil(Math.log2(M))}}`]);
      await run(g, calls);
      expectClose(await g.read(c), want, 1e-4, 1e-4, `gemv4_nt_lanes M=${M}`);
    }
    // an f16 B: the product with B rounded to f16, in f32
    const M = 5,
      A = ref.randn(M * K, 215),
      B = ref.randn(N * K, 216);
    const { words } = packHalf(Float32Array.from(B));
    const b16 = g.tensor(words.length, 'b16');
    g.write(b16, words);
    const rounded = Float64Array.from(B, (x) => halfValue(halfBits(x)));
    const c = g.tensor(M * N, 'c');
    const calls = await matmul(g, { c, a: upload(g, A), b: b16, bF16: true, M, N, K, transB: true });
    expect(calls[0]!.kernel.name).toMatch(/gemv4_nt_lanes/);
    await run(g, calls);
    expectClose(await g.read(c), ref.matmul(A, rounded, null, M, N, K, false, true), 1e-4, 1e-4, 'gemv4_nt_lanes f16');
  });

  for (const layout of ['in_out', 'out_in'] as WeightLayout[]) {
    it(`linear layer (${layout}) backward matches the reference and finite differences, on column slices`, async () => {
      const g = await testGpu();
      const Nr = 37,
        In = 29,
        Out = 41,
        ld = 50,
        off = 5; // x and y live in columns [5, 5+In) of wider rows
      const x = ref.randn(Nr * In, 11),
        w = ref.randn(In * Out, 12, 0.3),
        b = ref.randn(Out, 13),
        dy = ref.randn(Nr * Out, 14);
      const widen = (a: Float64Array, cols: number) => {
        const o = new Float64Array(Nr * ld);
        for (let r = 0; r < Nr; r++) for (let c = 0; c < cols; c++) o[r * ld + off + c] = a[r * cols + c]!;
        return o;
      };
      const narrow = (a: Float64Array, cols: number) => {
        const o = new Float64Array(Nr * cols);
        for (let r = 0; r < Nr; r++) for (let c = 0; c < cols; c++) o[r * cols + c] = a[r * ld + off + c]!;
        return o;
      };
      const s = { N: Nr, In, Out, layout, ldx: ld, ldy: ld, xOff: off, yOff: off };
      const want = ref.matmul(x, w, b, Nr, Out, In, false, layout === 'out_in');
      const yv = g.tensor(Nr * ld, 'y');
      const forward = async (xs: Float64Array) => {
        await run(g, linearForward(g, s, { y: yv, x: upload(g, widen(xs, In)), w: upload(g, w), b: upload(g, b) }));
        return narrow(await read(g, yv), Out);
      };
      expectClose(await forward(x), want, 1e-4, 1e-4, 'linear forward');
      const dx = g.tensor(Nr * ld, 'dx'),
        dw = g.tensor(In * Out, 'dw'),
        db = g.tensor(Out, 'db');
      await run(g, linearBackward(g, s, { dx, dw, db, dy: upload(g, widen(dy, Out)), x: upload(g, widen(x, In)), w: upload(g, w) }));
      const r = ref.matmulBackward(dy, x, w, Nr, Out, In, false, layout === 'out_in', true);
      const gdx = narrow(await read(g, dx), In);
      expectClose(gdx, r.dA, 1e-4, 1e-4, 'dx');
      expectClose(await g.read(dw), r.dB, 1e-4, 1e-4, 'dw');
      expectClose(await g.read(db), r.dbias!, 1e-4, 1e-4, 'db');
      await fdCheck('linear dx', x, gdx, async (xs) => dot(await forward(xs), dy));
    });
  }
});

describe('norms', () => {
  for (const path of PATHS)
    for (const rms of [false, true]) {
      it(`${rms ? 'RMSNorm' : 'LayerNorm'} forward/backward, C > workgroup size (${path})`, async () => {
        const g = await gpuOn(path);
        const N = 37,
          C = 300,
          eps = 1e-5;
        const x = ref.randn(N * C, 21).map((v, i) => v * 2 + (i % 7)),
          w = ref.randn(C, 22),
          b = ref.randn(C, 23),
          dy = ref.randn(N * C, 24);
        const y = g.tensor(N * C, 'y'),
          stats = g.tensor(2 * N, 'stats'),
          wv = upload(g, w),
          bv = upload(g, b);
        const forward = async (xs: Float64Array) => {
          await run(g, normForward(g, { N, C, eps, rms }, { y, stats, x: upload(g, xs), w: wv, b: rms ? undefined : bv }));
          return read(g, y);
        };
        const fy = await forward(x);
        const r = rms ? ref.rmsnorm(x, w, N, C, eps) : ref.layernorm(x, w, b, N, C, eps);
        expectClose(fy, r.y, 1e-4, 1e-4, 'norm forward');
        const dx0 = ref.randn(N * C, 25);
        const dx = upload(g, dx0),
          dw = upload(g, new Float64Array(C)),
          db = upload(g, new Float64Array(C));
        await run(g, normBackward(g, { N, C, eps, rms }, { dx, dw, db: rms ? undefined : db, dy: upload(g, dy), x: upload(g, x), w: wv, stats, accum: true }));
        const rb = rms
          ? ref.rmsnormBackward(dy, x, w, (r as { rstd: Float64Array }).rstd, N, C)
          : ref.layernormBackward(dy, x, w, (r as unknown as { mean: Float64Array }).mean, r.rstd, N, C);
        const gdx = (await read(g, dx)).map((v, i) => v - dx0[i]!); // accum: dx += ...
        expectClose(gdx, rb.dx, 1e-4, 1e-3, 'norm dx');
        expectClose(await g.read(dw), rb.dw, 1e-4, 1e-3, 'norm dw');
        if (!rms) expectClose(await g.read(db), (rb as unknown as { db: Float64Array }).db, 1e-4, 1e-3, 'norm db');
        await fdCheck('norm dx', x, gdx, async (xs) => dot(await forward(xs), dy));
      });
    }

  for (const path of PATHS)
    it(`RMSNorm over rows inside wider rows (per-head q/k norms in the fused qkv layout), other columns untouched (${path})`, async () => {
      const g = await gpuOn(path);
      const tokens = 13,
        G = 3,
        C = 10,
        ld = 47,
        off = 6,
        N = tokens * G,
        eps = 1e-6; // G rows of C at column 6 of 47-wide rows
      const x = ref.randn(N * C, 41),
        w = ref.randn(C, 42),
        dy = ref.randn(N * C, 43);
      const at = (r: number) => off + Math.floor(r / G) * ld + (r % G) * C;
      const widen = (a: Float64Array, fill: Float64Array) => {
        const o = fill.slice();
        for (let r = 0; r < N; r++) for (let c = 0; c < C; c++) o[at(r) + c] = a[r * C + c]!;
        return o;
      };
      const narrow = (a: Float64Array) => {
        const o = new Float64Array(N * C);
        for (let r = 0; r < N; r++) for (let c = 0; c < C; c++) o[r * C + c] = a[at(r) + c]!;
        return o;
      };
      const outside = (a: Float64Array) =>
        a.filter((_, i) => {
          const col = i % ld;
          return col < off || col >= off + G * C;
        });
      const s = { N, C, eps, rms: true, rows: { group: G, ld, off } };
      const y0 = ref.randn(tokens * ld, 44),
        dx0 = ref.randn(tokens * ld, 45);
      const y = upload(g, y0),
        stats = g.tensor(2 * N, 'stats'),
        wv = upload(g, w);
      const forward = async (xs: Float64Array) => {
        await run(g, normForward(g, s, { y, stats, x: upload(g, widen(xs, ref.randn(tokens * ld, 46))), w: wv }));
        return read(g, y);
      };
      const fy = await forward(x);
      const r = ref.rmsnorm(x, w, N, C, eps);
      expectClose(narrow(fy), r.y, 1e-4, 1e-4, 'strided norm forward');
      expect(outside(fy), 'columns outside the rows').toEqual(outside(Float64Array.from(Float32Array.from(y0))));
      const dx = upload(g, dx0),
        dw = upload(g, new Float64Array(C));
      await run(
        g,
        normBackward(g, s, {
          dx,
          dw,
          dy: upload(g, widen(dy, new Float64Array(tokens * ld))),
          x: upload(g, widen(x, new Float64Array(tokens * ld))),
          w: wv,
          stats,
          accum: false,
        }),
      );
      const rb = ref.rmsnormBackward(dy, x, w, r.rstd, N, C);
      const gdx = await read(g, dx);
      expectClose(narrow(gdx), rb.dx, 1e-4, 1e-3, 'strided norm dx');
      expect(outside(gdx), 'dx columns outside the rows').toEqual(outside(Float64Array.from(Float32Array.from(dx0))));
      expectClose(await g.read(dw), rb.dw, 1e-4, 1e-3, 'strided norm dw');
    });
});

describe('activations', () => {
  it('gelu_new forward/backward, finite for huge inputs', async () => {
    const g = await testGpu();
    const n = 1003;
    const x = ref.randn(n, 31, 3);
    x[0] = 1e4;
    x[1] = -1e4;
    x[2] = 90;
    x[3] = -90;
    x[4] = 0;
    const dy = ref.randn(n, 32);
    const y = g.tensor(n, 'y');
    const forward = async (xs: Float64Array) => {
      await run(g, geluForward(g, { y, x: upload(g, xs), n }));
      return read(g, y);
    };
    const fy = await forward(x);
    expectClose(fy, ref.geluNew(x), 1e-5, 1e-5, 'gelu');
    const d = upload(g, dy);
    await run(g, geluBackward(g, { d, x: upload(g, x), n }));
    const gd = await read(g, d);
    expectClose(gd, ref.geluNewBackward(dy, x), 1e-5, 1e-4, 'gelu backward');
    const small = x.map((v) => Math.max(-6, Math.min(6, v)));
    await run(g, geluBackward(g, { d: upload(g, dy), x: upload(g, small), n }));
    await fdCheck('gelu', small, ref.geluNewBackward(dy, small), async (xs) => dot(await forward(xs), dy));
  });

  it('SwiGLU forward/backward', async () => {
    const g = await testGpu();
    const N = 13,
      I = 37;
    const gate = ref.randn(N * I, 41, 2),
      up = ref.randn(N * I, 42),
      dh = ref.randn(N * I, 43);
    gate[0] = 200;
    gate[1] = -200;
    const gu = new Float64Array(N * 2 * I);
    for (let r = 0; r < N; r++)
      for (let c = 0; c < I; c++) {
        gu[r * 2 * I + c] = gate[r * I + c]!;
        gu[r * 2 * I + I + c] = up[r * I + c]!;
      }
    const h = g.tensor(N * I, 'h');
    const forward = async (x: Float64Array) => {
      await run(g, swigluForward(g, { h, gu: upload(g, x), N, I }));
      return read(g, h);
    };
    expectClose(await forward(gu), ref.swiglu(gate, up), 1e-4, 1e-4, 'swiglu');
    const dgu = g.tensor(N * 2 * I, 'dgu');
    await run(g, swigluBackward(g, { dgu, dh: upload(g, dh), gu: upload(g, gu), N, I }));
    const r = ref.swigluBackward(dh, gate, up);
    const got = await read(g, dgu);
    const want = new Float64Array(N * 2 * I);
    for (let rr = 0; rr < N; rr++)
      for (let c = 0; c < I; c++) {
        want[rr * 2 * I + c] = r.dgate[rr * I + c]!;
        want[rr * 2 * I + I + c] = r.dup[rr * I + c]!;
      }
    expectClose(got, want, 1e-4, 1e-4, 'swiglu backward');
    const gu2 = gu.map((v) => Math.max(-8, Math.min(8, v)));
    await run(g, swigluBackward(g, { dgu, dh: upload(g, dh), gu: upload(g, gu2), N, I }));
    await fdCheck('swiglu', gu2, await read(g, dgu), async (x) => dot(await forward(x), dh));
  });
});

describe('rope', () => {
  it('rotates the query and key heads of qkv (rotate_half layout), and backward un-rotates', async () => {
    const g = await testGpu();
    const B = 2,
      T = 9,
      Hq = 4,
      Hkv = 2,
      D = 6,
      theta = 10000,
      S = (Hq + 2 * Hkv) * D;
    const qkv = ref.randn(B * T * S, 51);
    const pos = Int32Array.from({ length: B * T }, (_, i) => (i % T) + (i >= T ? 3 : 0)); // second row starts at position 3
    const sub = (a: Float64Array, h0: number, H: number) => {
      const o = new Float64Array(B * T * H * D);
      for (let r = 0; r < B * T; r++) for (let j = 0; j < H * D; j++) o[r * H * D + j] = a[r * S + h0 * D + j]!;
      return o;
    };
    const table = upload(g, ropeTable(16, D, theta));
    const posv = upload(g, pos, 'pos', 'u32');
    const v = upload(g, qkv);
    await run(g, rope(g, { BT: B * T, Hq, Hkv, D }, { qkv: v, pos: posv, table, backward: false }));
    const got = await read(g, v);
    expectClose(sub(got, 0, Hq), ref.rope(sub(qkv, 0, Hq), pos, B, T, Hq, D, theta), 1e-5, 1e-5, 'rope q');
    expectClose(sub(got, Hq, Hkv), ref.rope(sub(qkv, Hq, Hkv), pos, B, T, Hkv, D, theta), 1e-5, 1e-5, 'rope k');
    expectClose(sub(got, Hq + Hkv, Hkv), sub(qkv, Hq + Hkv, Hkv).map(Math.fround), 0, 0, 'v untouched');
    await run(g, rope(g, { BT: B * T, Hq, Hkv, D }, { qkv: v, pos: posv, table, backward: true }));
    const back = await read(g, v);
    expectClose(sub(back, 0, Hq), ref.ropeBackward(sub(got, 0, Hq), pos, B, T, Hq, D, theta), 1e-5, 1e-5, 'rope backward');
  });
});

describe('attention', () => {
  const cases = [
    { B: 2, T: 70, Hq: 4, Hkv: 2, D: 6 },
    { B: 1, T: 19, Hq: 3, Hkv: 3, D: 20 },
    { B: 1, T: 5, Hq: 2, Hkv: 1, D: 1 },
  ];
  for (const path of PATHS)
    for (const { B, T, Hq, Hkv, D } of cases) {
      it(`causal GQA B=${B} T=${T} Hq=${Hq} Hkv=${Hkv} D=${D}: forward, lse, backward (${path})`, async () => {
        const g = await gpuOn(path);
        const S = (Hq + 2 * Hkv) * D,
          scale = 1 / Math.sqrt(D);
        const qkv = ref.randn(B * T * S, 61, 1.5);
        const part = (a: Float64Array, h0: number, H: number) => {
          const o = new Float64Array(B * T * H * D);
          for (let r = 0; r < B * T; r++) for (let j = 0; j < H * D; j++) o[r * H * D + j] = a[r * S + h0 * D + j]!;
          return o;
        };
        const q = part(qkv, 0, Hq),
          k = part(qkv, Hq, Hkv),
          v = part(qkv, Hq + Hkv, Hkv);
        const want = ref.attention(q, k, v, B, T, Hq, Hkv, D, scale);
        const out = g.tensor(B * T * Hq * D, 'out'),
          lse = g.tensor(B * Hq * T, 'lse');
        const sh = { B, T, Hq, Hkv, D };
        const forward = async (x: Float64Array) => {
          await run(g, attentionForward(g, sh, { out, lse, qkv: upload(g, x) }));
          return read(g, out);
        };
        expectClose(await forward(qkv), want.out, 1e-5, 1e-4, 'attention out');
        expectClose(await g.read(lse), want.lse, 1e-5, 1e-5, 'attention lse');
        const dout = ref.randn(B * T * Hq * D, 62);
        const dqkv = g.tensor(B * T * S, 'dqkv'),
          dsum = g.tensor(B * Hq * T, 'dsum');
        await run(g, attentionBackward(g, sh, { dqkv, dsum, dout: upload(g, dout), out, lse, qkv: upload(g, qkv) }));
        const r = ref.attentionBackward(dout, q, k, v, B, T, Hq, Hkv, D, scale);
        const got = await read(g, dqkv);
        expectClose(part(got, 0, Hq), r.dq, 1e-4, 1e-3, 'dq');
        expectClose(part(got, Hq, Hkv), r.dk, 1e-4, 1e-3, 'dk');
        expectClose(part(got, Hq + Hkv, Hkv), r.dv, 1e-4, 1e-3, 'dv');
        await fdCheck('attention', qkv, got, async (x) => dot(await forward(x), dout));
        // One (batch, head) pair per dispatch: the watchdog split gives the same numbers.
        const tiny = { ...sh, maxFlops: 1 };
        const fwd = await attentionForward(g, tiny, { out, lse, qkv: upload(g, qkv) });
        expect(fwd.length).toBe(B * Hq);
        await run(g, fwd);
        expectClose(await g.read(out), want.out, 1e-5, 1e-4, 'split attention out');
        await run(g, attentionBackward(g, tiny, { dqkv, dsum, dout: upload(g, dout), out, lse, qkv: upload(g, qkv) }));
        expectClose(await g.read(dqkv), got, 0, 0, 'split attention backward');
      });
    }
});

describe('attention with a KV cache', () => {
  // head sizes: 5 (not a multiple of 4: scalar loads, zeros past it), 20 (vec4 loads; 5 vec4s a row, so the weighted
  // sum's 12 key groups leave 4 threads idle), 260 (65 vec4s: one group, two vec4s a thread); query heads per
  // key/value head: 2 (one workgroup serves both), 10 (two workgroups of 5: at most 8 a workgroup; chunks of 204 keys
  // a head) and 1
  for (const path of PATHS)
    for (const [D, Hq, Hkv] of [
      [5, 2, 1],
      [20, 10, 1],
      [260, 2, 2],
    ] as const)
      it(`new tokens attend to cached keys, across more keys than one score chunk, head size ${D}, ${Hq}/${Hkv} heads (${path})`, async () => {
        const g = await gpuOn(path);
        const B = 2,
          L = 1100,
          Tn = 3,
          S = (Hq + 2 * Hkv) * D,
          pos0 = L - Tn;
        const qkv = ref.randn(B * L * S, 65);
        const part = (a: Float64Array, h0: number, H: number, T: number) => {
          const o = new Float64Array(B * T * H * D);
          for (let r = 0; r < B * T; r++) for (let j = 0; j < H * D; j++) o[r * H * D + j] = a[r * S + h0 * D + j]!;
          return o;
        };
        const want = ref.attention(part(qkv, 0, Hq, L), part(qkv, Hq, Hkv, L), part(qkv, Hq + Hkv, Hkv, L), B, L, Hq, Hkv, D, 1 / Math.sqrt(D));
        // the caches with 8 values past their end, which kv_append must leave as they are
        const n = B * L * Hkv * D,
          sentinel = new Float32Array(n + 8).fill(-7);
        const cache = { k: g.tensor(n + 8, 'k'), v: g.tensor(n + 8, 'v'), meta: g.tensor(4, 'meta'), L };
        g.write(cache.k, sentinel);
        g.write(cache.v, sentinel);
        // fill the cache with the first pos0 tokens of each row, then add the last Tn
        const rows = (t0: number, T: number) => {
          const o = new Float64Array(B * T * S);
          for (let b = 0; b < B; b++) o.set(qkv.subarray((b * L + t0) * S, (b * L + t0 + T) * S), b * T * S);
          return o;
        };
        g.write(cache.meta, Uint32Array.of(0, 0, 0, 0));
        await run(g, kvAppend(g, { B, T: pos0, Hq, Hkv, D }, { qkv: upload(g, rows(0, pos0)), cache }));
        g.write(cache.meta, Uint32Array.of(pos0, 0, 0, 0));
        const out = g.tensor(B * Tn * Hq * D, 'out');
        const last = upload(g, rows(pos0, Tn));
        await run(g, kvAppend(g, { B, T: Tn, Hq, Hkv, D }, { qkv: last, cache }));
        // at 10/1 heads, a dispatch per workgroup row (a budget of 1 FLOP: each of the 4 rows of 5 heads alone)
        const calls = await attentionCached(g, { B, T: Tn, Hq, Hkv, D, maxFlops: Hq === 10 ? 1 : undefined }, { out, qkv: last, cache });
        expect(calls.length).toBe(Hq === 10 ? 4 : 1);
        await run(g, calls);
        const expectRows = new Float64Array(B * Tn * Hq * D);
        for (let b = 0; b < B; b++) expectRows.set(want.out.subarray((b * L + pos0) * Hq * D, (b * L + L) * Hq * D), b * Tn * Hq * D);
        expectClose(await g.read(out), expectRows, 1e-5, 1e-4, 'cached attention');
        // the caches hold every position's key and value rows ([B, L, Hkv, D]) as uploaded, and nothing past them
        for (const [view, h0] of [
          [cache.k, Hq],
          [cache.v, Hq + Hkv],
        ] as const) {
          const want = new Float32Array(n + 8).fill(-7);
          want.set(part(qkv, h0, Hkv, L));
          expect(Array.from(await g.read(view))).toEqual(Array.from(want));
        }
      });
});

describe('cross-entropy', () => {
  // the logits whole, and in three vocabulary chunks of their own buffers (as the LM head writes a large vocabulary)
  for (const path of PATHS)
    for (const widths of [[300], [128, 128, 44]]) {
      it(`fused forward/backward with masked rows, weights and huge logits, ${widths.length} vocabulary chunk(s) (${path})`, async () => {
        const g = await gpuOn(path);
        const N = 9,
          V = 300;
        const logits = ref.randn(N * V, 71, 3);
        logits[5] = 1e4;
        logits[V + 7] = -1e30; // a dominant logit and a -inf-like mask
        logits[2 * V + 280] = 60; // a row whose max is in the last chunk: the running sum is rescaled
        const targets = Int32Array.from([5, 7, 2, -1, 299, 0, 1, 100, 3]);
        const weights = Float64Array.from([1, 0.5, 2, 1, 1, 0.25, 1, 3, 1]);
        const r = ref.crossEntropy(logits, targets, weights, N, V);
        const starts = widths.map((_, i) => widths.slice(0, i).reduce((a, b) => a + b, 0));
        const chunksOf = (x: Float64Array) =>
          widths.map((vn, i) => {
            const v0 = starts[i]!,
              part = new Float64Array(N * vn);
            for (let n = 0; n < N; n++) part.set(x.subarray(n * V + v0, n * V + v0 + vn), n * vn);
            return { v0, vn, view: upload(g, part) };
          });
        const joined = async (cs: { v0: number; vn: number; view: View }[]) => {
          const out = new Float64Array(N * V);
          for (const c of cs) {
            const part = await read(g, c.view);
            for (let n = 0; n < N; n++) out.set(part.subarray(n * c.vn, (n + 1) * c.vn), n * V + c.v0);
          }
          return out;
        };
        const tv = upload(g, targets, 't', 'i32'),
          wv = upload(g, weights),
          losses = g.tensor(N, 'losses'),
          stats = g.tensor(3 * N, 'stats');
        const ce = (chunks: { v0: number; vn: number; view: View }[], fused: boolean) =>
          crossEntropy(g, { N }, { chunks, targets: tv, weights: wv, stats, losses, fused });
        const lv = chunksOf(logits);
        await run(g, ce(lv, false));
        expectClose(await g.read(losses), r.losses, 1e-4, 1e-5, 'losses');
        expectClose(await joined(lv), Float32Array.from(logits), 0, 0, 'forward leaves logits');
        await run(g, ce(lv, true));
        const dl = await joined(lv);
        expectClose(dl, ref.crossEntropyBackward(logits, targets, weights, N, V), 1e-6, 1e-4, 'dlogits');
        expect(dl.every(Number.isFinite)).toBe(true);
        const mild = ref.randn(N * V, 72);
        const lossOf = async (x: Float64Array) => {
          await run(g, ce(chunksOf(x), false));
          return (await read(g, losses)).reduce((a, b) => a + b, 0);
        };
        const gm = chunksOf(mild);
        await run(g, ce(gm, true));
        await fdCheck('cross-entropy', mild, await joined(gm), lossOf);
      });
    }
});

describe('embedding', () => {
  for (const withPos of [true, false]) {
    it(`token${withPos ? ' + position' : ''} embedding, deterministic scatter-add backward`, async () => {
      const g = await testGpu();
      const B = 3,
        T = 7,
        C = 13,
        V = 50;
      const ids = Int32Array.from({ length: B * T }, (_, i) => ((i * 7) % 11) + (i % 3 === 0 ? 38 : 0)); // repeats
      const wte = ref.randn(V * C, 81),
        wpe = ref.randn(T * C, 82),
        dout = ref.randn(B * T * C, 83);
      const pos = Int32Array.from({ length: B * T }, (_, i) => i % T);
      const out = g.tensor(B * T * C, 'out');
      const sh = { B, T, C, V };
      await run(
        g,
        embeddingForward(g, sh, {
          out,
          ids: upload(g, ids, 'ids', 'u32'),
          pos: upload(g, pos, 'pos', 'u32'),
          wte: [{ v0: 0, vn: V, view: upload(g, wte) }],
          wpe: withPos ? upload(g, wpe) : undefined,
        }),
      );
      expectClose(await g.read(out), ref.embedding(ids, wte, withPos ? wpe : null, B, T, C), 1e-6, 1e-6, 'embedding');
      const buckets = upload(g, buildBuckets(ids), 'b', 'u32');
      expect(buildBuckets(ids).length).toBe(bucketLength(B * T));
      const dwte = upload(g, new Float64Array(V * C).fill(0.5)),
        dwpe = upload(g, new Float64Array(T * C));
      await run(g, embeddingBackward(g, sh, { dwte: [{ v0: 0, vn: V, view: dwte }], dwpe: withPos ? dwpe : undefined, dout: upload(g, dout), buckets }));
      const r = ref.embeddingBackward(dout, ids, B, T, C, V, withPos ? T : 0);
      expectClose(
        await g.read(dwte),
        r.dwte.map((v) => v + 0.5),
        1e-5,
        1e-5,
        'dwte (accumulated)',
      );
      if (withPos) expectClose(await g.read(dwpe), r.dwpe!, 1e-5, 1e-5, 'dwpe');
    });
  }
});

describe('optimizer', () => {
  for (const path of PATHS)
    for (const maxNorm of [0, 1]) {
      it(`gradient norm over several tensors and AdamW (maxNorm ${maxNorm}, ${path})`, async () => {
        const g = await gpuOn(path);
        const sizes = [5000, 77, 1];
        const grads = sizes.map((n, i) => ref.randn(n, 90 + i, 0.1));
        const params = sizes.map((n, i) => ref.randn(n, 95 + i));
        const gv = grads.map((x) => upload(g, x));
        const clip = g.tensor(4, 'clip'),
          partials = g.tensor(2 * normPartials(gv), 'partials');
        await run(g, gradNorm(g, { clip, partials, grads: gv, maxNorm }));
        const c = await g.read(clip);
        const r = ref.clipScale(grads, maxNorm || Infinity);
        expect(c[0]).toBeCloseTo(r.norm, 4);
        expect(c[1]).toBeCloseTo(maxNorm ? r.scale : 1, 5);
        expect(c[2]).toBe(0);
        const hyper = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
        const m = params.map((p) => p.map(() => 0)),
          v = params.map((p) => p.map(() => 0));
        const pv = params.map((p) => upload(g, p)),
          mv = m.map((x) => upload(g, x)),
          vv = v.map((x) => upload(g, x));
        for (let step = 1; step <= 3; step++) {
          for (let i = 0; i < sizes.length; i++) {
            const a = await adamw(g, { param: pv[i]!, grad: gv[i]!, m: mv[i]!, v: vv[i]!, clip, hyper });
            a.set(step, hyper.lr);
            await run(g, a.calls);
            ref.adamw(params[i]!, grads[i]!, m[i]!, v[i]!, { ...hyper, step, gradScale: maxNorm ? r.scale : 1 });
          }
        }
        for (let i = 0; i < sizes.length; i++) expectClose(await g.read(pv[i]!), params[i]!, 1e-5, 1e-4, `adamw param ${i}`);
      });
    }

  for (const path of PATHS)
    it(`a NaN or Inf gradient is flagged and AdamW leaves the weights untouched (${path})`, async () => {
      const g = await gpuOn(path);
      const grad = ref.randn(9000, 99);
      grad[4321] = NaN;
      const gv = upload(g, grad),
        clip = g.tensor(4, 'clip'),
        partials = g.tensor(2 * normPartials([gv]), 'p');
      await run(g, gradNorm(g, { clip, partials, grads: [gv], maxNorm: 1 }));
      expect((await g.read(clip))[2]).toBe(1);
      const p0 = ref.randn(9000, 98);
      const pv = upload(g, p0);
      const a = await adamw(g, {
        param: pv,
        grad: gv,
        m: g.tensor(9000, 'm'),
        v: g.tensor(9000, 'v'),
        clip,
        hyper: { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
      });
      a.set(1, 0.1);
      await run(g, a.calls);
      expectClose(
        await g.read(pv),
        p0.map((x) => Math.fround(x)),
        0,
        0,
        'weights untouched',
      );
    });
});

describe('residual', () => {
  it('add, accumulate and zero', async () => {
    const g = await testGpu();
    const n = 1234;
    const a = ref.randn(n, 1),
      b = ref.randn(n, 2);
    const y = g.tensor(n, 'y');
    await run(g, add(g, { y, a: upload(g, a), b: upload(g, b), n }));
    expectClose(
      await g.read(y),
      a.map((v, i) => v + b[i]!),
      1e-6,
      1e-6,
      'add',
    );
    await run(g, accumulate(g, { acc: y, src: upload(g, b), n }));
    expectClose(
      await g.read(y),
      a.map((v, i) => v + 2 * b[i]!),
      1e-6,
      1e-6,
      'accumulate',
    );
    await run(g, zero(g, y));
    expectClose(await g.read(y), new Float64Array(n), 0, 0, 'zero');
  });

  it('element-wise kernels take four elements a thread and cover every element of a 2-D grid', async () => {
    const g = await createNodeGpu();
    // at most 4 workgroups a dimension: 10,007 elements need 10 workgroups of 1024, launched as 4 x 3
    Object.defineProperty(g, 'limits', { value: { maxComputeWorkgroupsPerDimension: 4 } });
    const n = 10_007;
    expect(g.elementGrid(n)).toEqual([4, 3]);
    const a = ref.randn(n, 3),
      b = ref.randn(n, 4);
    const y = g.tensor(n + 5, 'y');
    g.write(y, new Float32Array(n + 5).fill(7));
    await run(g, add(g, { y, a: upload(g, a), b: upload(g, b), n }));
    const got = await g.read(y);
    expectClose(
      got.subarray(0, n),
      a.map((v, i) => v + b[i]!),
      1e-6,
      1e-6,
      'add over a 2-D grid',
    );
    expect([...got.subarray(n)], 'nothing past n is written').toEqual([7, 7, 7, 7, 7]);
    await run(g, geluForward(g, { y, x: upload(g, a), n }));
    expectClose((await g.read(y)).subarray(0, n), ref.geluNew(a), 1e-5, 1e-5, 'gelu over a 2-D grid');
    await run(g, zero(g, { ...y, n }));
    expect((await g.read(y)).every((v, i) => (i < n ? v === 0 : v === 7))).toBe(true);
  });
});

describe('decode workgroups', () => {
  it('serve a whole group of query heads up to 8 and 8 KiB of their queries, else the largest divisor within both', () => {
    const gq = (Hq: number, Hkv: number, D: number) => decodeGroup({ Hq, Hkv, D });
    expect([gq(4, 4, 64), gq(4, 2, 32), gq(9, 3, 64), gq(14, 2, 64), gq(16, 2, 128)]).toEqual([1, 2, 3, 7, 8]); // GPT-2, built-in, SmolLM2, Qwen2.5
    expect([gq(10, 1, 20), gq(12, 1, 64), gq(32, 1, 128)]).toEqual([5, 6, 8]); // past 8 heads: a divisor
    expect([gq(8, 1, 256), gq(8, 1, 512), gq(6, 1, 1024)]).toEqual([8, 4, 2]); // queries of 1, 2, 4 KiB a head
    expect(gq(7, 1, 2000)).toBe(1); // one head's queries past 4 KiB: a workgroup each
    expect(() => gq(6, 4, 64)).toThrow(/6 query heads are not a multiple of 4/);
  });
});

describe('kv_append over a 2-D grid', () => {
  // at most 8 workgroups a dimension: the new tokens' 2400 vec4s (two a row at head size 8, and at 6, where the
  // second is half zeros) take 38 workgroups of 64, launched as 8 x 5; every row lands at its position and nothing
  // else is written
  for (const D of [8, 6])
    it(`writes every key and value row of a long prefill, head size ${D}`, async () => {
      const g = await createNodeGpu();
      Object.defineProperty(g, 'limits', { value: { maxComputeWorkgroupsPerDimension: 8 } });
      expect(g.grid(38)).toEqual([8, 5]);
      const B = 2,
        T = 300,
        L = 310,
        Hq = 4,
        Hkv = 2,
        S = (Hq + 2 * Hkv) * D,
        pos0 = 7;
      const qkv = ref.randn(B * T * S, 9);
      const n = B * L * Hkv * D;
      const cache = { k: g.tensor(n + 8, 'k'), v: g.tensor(n + 8, 'v'), meta: g.tensor(4, 'meta'), L };
      g.write(cache.k, new Float32Array(n + 8).fill(-7));
      g.write(cache.v, new Float32Array(n + 8).fill(-7));
      g.write(cache.meta, Uint32Array.of(pos0, 0, 0, 0));
      await run(g, kvAppend(g, { B, T, Hq, Hkv, D }, { qkv: upload(g, qkv), cache }));
      for (const [view, h0] of [
        [cache.k, Hq],
        [cache.v, Hq + Hkv],
      ] as const) {
        const want = new Float32Array(n + 8).fill(-7);
        for (let b = 0; b < B; b++)
          for (let t = 0; t < T; t++) for (let j = 0; j < Hkv * D; j++) want[(b * L + pos0 + t) * Hkv * D + j] = qkv[(b * T + t) * S + h0 * D + j]!;
        expect(Array.from(await g.read(view))).toEqual(Array.from(want));
      }
    });
});

describe('reductions with subgroups and in workgroup memory', () => {
  // Every kernel that reduces across a workgroup, on both paths with the same inputs. The paths add in different
  // orders, so they are not bit-equal: each output tensor must agree within REL_TOL of its largest magnitude (f32
  // sums of a few hundred terms reordered), far inside the 1e-4 both keep to the float64 references above. Each
  // path gives the same bits when run again (the determinism the shaders' headers claim), and a kernel that does
  // not reduce (attention's forward and backward: a thread owns a row) gives the same bits on both.
  const REL_TOL = 1e-6;
  type Outputs = Record<string, ArrayLike<number>>;
  const worst: Record<string, number> = {};
  /** Runs `op` twice on each path; returns the outputs of the subgroup path's first run and the workgroup path's. */
  async function bothPaths(label: string, op: (g: Gpu) => Promise<Outputs>, bitEqual = false): Promise<void> {
    const got: Partial<Record<ReductionPath, Outputs>> = {};
    for (const path of PATHS) {
      const g = await gpuOn(path);
      const [a, b] = [await op(g), await op(g)];
      for (const k of Object.keys(a)) expectClose(b[k]!, a[k]!, 0, 0, `${label} ${k} (${path}): run to run`);
      got[path] = a;
    }
    for (const k of Object.keys(got.workgroup!)) {
      const sg = got.subgroups![k]!,
        wg = got.workgroup![k]!;
      if (bitEqual) {
        expectClose(sg, wg, 0, 0, `${label} ${k}: the same kernel on both paths`);
        continue;
      }
      let d = 0,
        m = 0;
      for (let i = 0; i < wg.length; i++) ((d = Math.max(d, Math.abs(sg[i]! - wg[i]!))), (m = Math.max(m, Math.abs(wg[i]!))));
      worst[`${label} ${k}`] = m ? d / m : d;
      expect(d, `${label} ${k}: max |subgroups - workgroup| ${d}, max |workgroup| ${m}`).toBeLessThanOrEqual(REL_TOL * m);
    }
  }

  it('the test adapter has subgroups, so both paths run here', async () => {
    const g = await testGpu();
    const r = await g.reductions();
    expect(g.features.has('subgroups'), `${g.adapter.name} has no 'subgroups': only the workgroup path is tested`).toBe(true);
    expect(r.path, r.why).toBe('subgroups');
    for (const n of [32, 64, 128, 256]) expect([4, 8, 16, 32, 64, 128], `${n}-thread workgroups`).toContain(r.sizes![n]! > n ? n : r.sizes![n]);
    expect(g.subgroups).toBe(true);
    expect((await gpuOn('workgroup')).subgroups).toBe(false);
  });

  const norm =
    (rms: boolean) =>
    async (g: Gpu): Promise<Outputs> => {
      const N = 19,
        C = 1000,
        eps = 1e-5;
      const x = ref.randn(N * C, 121).map((v, i) => v * 3 + (i % 5)),
        w = ref.randn(C, 122),
        b = ref.randn(C, 123),
        dy = ref.randn(N * C, 124);
      const y = g.tensor(N * C, 'y'),
        stats = g.tensor(2 * N, 'stats'),
        dx = g.tensor(N * C, 'dx');
      const dw = upload(g, new Float64Array(C)),
        db = upload(g, new Float64Array(C)),
        xv = upload(g, x),
        wv = upload(g, w);
      await run(g, normForward(g, { N, C, eps, rms }, { y, stats, x: xv, w: wv, b: rms ? undefined : upload(g, b) }));
      await run(g, normBackward(g, { N, C, eps, rms }, { dx, dw, db: rms ? undefined : db, dy: upload(g, dy), x: xv, w: wv, stats, accum: false }));
      return { y: await g.read(y), stats: await g.read(stats), dx: await g.read(dx), dw: await g.read(dw), ...(rms ? {} : { db: await g.read(db) }) };
    };
  for (const rms of [false, true]) it(`${rms ? 'RMSNorm' : 'LayerNorm'} forward and backward`, () => bothPaths(rms ? 'rmsnorm' : 'layernorm', norm(rms)));

  it('on the workgroup path every reducing shader compiles, without the directive, with no message and no scope error', async () => {
    const g = await gpuOn('workgroup');
    const DEFINES: Record<string, Defines[]> = {
      norm: [false, true].flatMap((RMS) => [false, true].map((ACCUM) => ({ RMS, ACCUM }))),
      // GQ: decode's query heads per key/value head; KV4: the caches bound as vec4s
      attention: [
        { HD: 16, GQ: 1 },
        { HD: 24, GQ: 3, KV4: true },
        { HD: 64, GQ: 2, KV4: true },
      ],
      crossentropy: [{}],
      optim: [{}],
      // GR: the rows the matrix-vector kernels are compiled for (1 to 8; 2 and 4 differ from these only in the constant)
      matmul: [false, true].flatMap((TRANS_A) => [false, true].flatMap((TRANS_B) => [1, 8].map((GR) => ({ TRANS_A, TRANS_B, GR })))),
    };
    for (const [file, sets] of Object.entries(DEFINES)) {
      for (const defines of sets) {
        const code = g.shaderText(`${file}.wgsl`, defines);
        expect(code, file).not.toMatch(/^enable subgroups;|\bsubgroup[A-Z]\w*\(/m);
        g.device.pushErrorScope('validation');
        const module = g.device.createShaderModule({ label: file, code });
        const messages = (await module.getCompilationInfo()).messages.map((m) => `${m.type} line ${m.lineNum}: ${m.message}`);
        expect([...messages, (await g.device.popErrorScope())?.message].filter(Boolean), `${file} ${JSON.stringify(defines)}`).toEqual([]);
      }
    }
  });

  it("cross-entropy: row statistics, losses and the logits' gradient, over two vocabulary chunks", async () => {
    const N = 7,
      widths = [3000, 1234],
      V = 4234;
    const logits = ref.randn(N * V, 131, 4);
    const targets = Int32Array.from([5, 4000, -1, 2999, 3000, 0, 17]),
      weights = Float64Array.from([1, 0.5, 1, 2, 1, 0.25, 1]);
    await bothPaths('cross-entropy', async (g) => {
      const chunks = widths.map((vn, i) => {
        const v0 = i ? widths[0]! : 0,
          part = new Float64Array(N * vn);
        for (let n = 0; n < N; n++) part.set(logits.subarray(n * V + v0, n * V + v0 + vn), n * vn);
        return { v0, vn, view: upload(g, part) };
      });
      const stats = g.tensor(3 * N, 'stats'),
        losses = g.tensor(N, 'losses');
      await run(g, crossEntropy(g, { N }, { chunks, targets: upload(g, targets, 't', 'i32'), weights: upload(g, weights), stats, losses, fused: true }));
      return { stats: await g.read(stats), losses: await g.read(losses), dlogits0: await g.read(chunks[0]!.view), dlogits1: await g.read(chunks[1]!.view) };
    });
  });

  it('attention: KV-cache decoding (softmax over 1100 keys in three chunks of 512 a head: 4/2 heads) reduces; forward and backward do not', async () => {
    const B = 2,
      L = 1100,
      Tn = 3,
      Hq = 4,
      Hkv = 2,
      D = 24,
      S = (Hq + 2 * Hkv) * D,
      pos0 = L - Tn;
    const qkv = ref.randn(B * L * S, 141, 1.5);
    const rows = (t0: number, T: number) => {
      const o = new Float64Array(B * T * S);
      for (let b = 0; b < B; b++) o.set(qkv.subarray((b * L + t0) * S, (b * L + t0 + T) * S), b * T * S);
      return o;
    };
    await bothPaths('decode', async (g) => {
      const cache = { k: g.tensor(B * L * Hkv * D, 'k'), v: g.tensor(B * L * Hkv * D, 'v'), meta: g.tensor(4, 'meta'), L };
      g.write(cache.meta, Uint32Array.of(0, 0, 0, 0));
      await run(g, kvAppend(g, { B, T: pos0, Hq, Hkv, D }, { qkv: upload(g, rows(0, pos0)), cache }));
      g.write(cache.meta, Uint32Array.of(pos0, 0, 0, 0));
      const last = upload(g, rows(pos0, Tn)),
        out = g.tensor(B * Tn * Hq * D, 'out');
      await run(g, kvAppend(g, { B, T: Tn, Hq, Hkv, D }, { qkv: last, cache }));
      await run(g, attentionCached(g, { B, T: Tn, Hq, Hkv, D }, { out, qkv: last, cache }));
      return { out: await g.read(out) };
    });
    const T = 70,
      sh = { B, T, Hq, Hkv, D },
      x = qkv.subarray(0, B * T * S),
      dout = ref.randn(B * T * Hq * D, 142);
    await bothPaths(
      'attention',
      async (g) => {
        const out = g.tensor(B * T * Hq * D, 'out'),
          lse = g.tensor(B * Hq * T, 'lse'),
          dqkv = g.tensor(B * T * S, 'dqkv'),
          qv = upload(g, x);
        await run(g, attentionForward(g, sh, { out, lse, qkv: qv }));
        await run(g, attentionBackward(g, sh, { dqkv, dsum: g.tensor(B * Hq * T, 'dsum'), dout: upload(g, dout), out, lse, qkv: qv }));
        return { out: await g.read(out), lse: await g.read(lse), dqkv: await g.read(dqkv) };
      },
      true,
    );
  });

  it("matrix-vector products for decoding (gemv_nt: a workgroup per column sums its threads' parts of K)", async () => {
    const K = 2999, // not a multiple of 4: gemv_nt, not gemv4_nt
      N = 77;
    for (const M of [1, 8]) {
      const A = ref.randn(M * K, 161),
        B = ref.randn(N * K, 162),
        b = ref.randn(N, 163);
      await bothPaths(`gemv_nt M=${M}`, async (g) => {
        const c = g.tensor(M * N, 'c'),
          calls = await matmul(g, { c, a: upload(g, A), b: upload(g, B), bias: upload(g, b), M, N, K, transB: true });
        expect(calls[0]!.kernel.name).toMatch(/gemv_nt/);
        await run(g, calls);
        return { c: await g.read(c) };
      });
    }
  });

  it('optimizer: the global gradient norm (sums of squares per 4096 elements, then over the partials)', async () => {
    const sizes = [300_000, 4097, 5];
    const grads = sizes.map((n, i) => ref.randn(n, 151 + i, 0.01 * (i + 1)));
    await bothPaths('grad norm', async (g) => {
      const gv = grads.map((x) => upload(g, x)),
        clip = g.tensor(4, 'clip'),
        partials = g.tensor(2 * normPartials(gv), 'partials');
      await run(g, gradNorm(g, { clip, partials, grads: gv, maxNorm: 1 }));
      return { partials: await g.read(partials), clip: (await g.read(clip)).subarray(0, 3) };
    });
  });

  // The PyTorch fixtures of tests/models.test.ts (which runs them on testGpu's path) on both paths: each within
  // the fixtures' tolerances, and the two paths' logits and gradients within MODEL_TOL of each other (a whole
  // model's forward and backward: the paths' differences pass through every layer).
  const MODEL_TOL = 1e-5;
  for (const name of ['gpt2-tiny', 'llama-tiny', 'qwen2-tiny', 'qwen3-tiny']) {
    it(`the PyTorch fixture ${name}: logits, loss and every gradient on both paths`, async () => {
      const dir = `tests/fixtures/${name}`;
      const want = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as { input_ids: number[][]; logits: number[][][]; loss: number };
      const grads = parseSafetensors(readFileSync(`${dir}/grads.safetensors`), 'grads.safetensors');
      const B = want.input_ids.length,
        T = want.input_ids[0]!.length,
        wantLogits = want.logits.flat(2);
      const got: Partial<Record<ReductionPath, Map<string, Float32Array>>> = {};
      for (const path of PATHS) {
        const g = await gpuOn(path);
        const { model, fileNames } = loadModel(g, await readModelFolder(dir), { grads: true });
        const plan = await model.plan(B, T, { training: true });
        plan.setBatch(want.input_ids.flat());
        await g.check(name, () => g.run([...plan.zeroGrads, ...plan.forward, ...plan.loss]));
        const logits = await plan.readLogits(),
          loss = await plan.readLoss();
        expectClose(logits, wantLogits, 1e-4, 0, `${name} logits (${path})`);
        expect(Math.abs(loss - want.loss) / want.loss, `${name} loss ${loss} vs ${want.loss} (${path})`).toBeLessThan(1e-5);
        await g.check(name, () => g.run([...plan.lossFused, ...plan.backward]));
        const out = new Map([['logits', logits]]);
        for (const e of model.params.entries) {
          const grad = await model.params.download(e.name, 'grad');
          expect(relErr(grad, readTensorF32(grads, fileNames.get(e.name)!)), `${name} ${e.name} gradient (${path})`).toBeLessThan(1e-3);
          out.set(e.name, grad);
        }
        got[path] = out;
        plan.destroy();
        model.params.destroy();
      }
      let most = 0;
      for (const [k, wg] of got.workgroup!) {
        const d = relErr(got.subgroups!.get(k)!, wg);
        most = Math.max(most, d);
        expect(d, `${name} ${k}: subgroups vs workgroup`).toBeLessThanOrEqual(MODEL_TOL);
      }
      worst[`${name} (logits and gradients, worst tensor)`] = most;
    });
  }

  it('prints the largest differences between the paths', () => {
    console.log(
      `subgroups vs workgroup memory, max |difference| / max |value| per output (tolerance ${REL_TOL}):\n${Object.entries(worst)
        .map(([k, v]) => `  ${k}: ${v.toExponential(2)}`)
        .join('\n')}`,
    );
    expect(Object.keys(worst).length).toBeGreaterThan(15);
  });
});

describe('runtime', () => {
  it('an invalid kernel is an error naming it, never a silent no-op', async () => {
    const g = await testGpu();
    await expect(g.kernel('matmul.wgsl', 'no_such_entry', ['u', 'r', 'r', 'r', 'w'], { TRANS_A: false, TRANS_B: false, GR: 8 })).rejects.toThrow(
      /matmul\.no_such_entry/,
    );
    await expect(g.kernel('matmul.wgsl', 'main', ['u', 'r', 'r', 'r', 'w'])).rejects.toThrow(/kernel matmul\.main/); // defines missing: WGSL error
  });

  it('every shader compiles with the prelude and each set of defines its launchers use: no WGSL message, no error in any scope', async () => {
    const g = await testGpu();
    await g.reductions(); // shaderText composes on the path it decides
    const flags = (names: string[]): Defines[] =>
      names.reduce<Defines[]>(
        (all, n) =>
          all.flatMap((d) => [
            { ...d, [n]: false },
            { ...d, [n]: true },
          ]),
        [{}],
      );
    const DEFINES: Record<string, Defines[]> = {
      // GQ: decode's query heads per key/value head; KV4: the caches bound as vec4s
      attention: [
        { HD: 16, GQ: 1 },
        { HD: 24, GQ: 3, KV4: true },
        { HD: 64, GQ: 2, KV4: true },
      ],
      embedding: flags(['HAS_POS']),
      norm: flags(['RMS', 'ACCUM']),
      matmul: flags(['TRANS_A', 'TRANS_B']).flatMap((d) => [1, 8].map((GR) => ({ ...d, GR }))),
    };
    const files = readdirSync('shaders').filter((f) => f.endsWith('.wgsl') && f !== PRELUDE);
    let pipelines = 0;
    for (const file of files) {
      const entries = [...readFileSync(`shaders/${file}`, 'utf8').matchAll(/@compute[^\n]*\n\s*fn\s+(\w+)/g)].map((m) => m[1]!);
      expect(entries.length, file).toBeGreaterThan(0);
      for (const defines of DEFINES[file.replace(/\.wgsl$/, '')] ?? [{}]) {
        // the module by hand, inside error scopes: a compiler message of any kind (warnings too) fails the test
        g.device.pushErrorScope('validation');
        g.device.pushErrorScope('internal');
        const module = g.device.createShaderModule({ label: file, code: g.shaderText(file, defines) });
        const messages = (await module.getCompilationInfo()).messages.map((m) => `${m.type} line ${m.lineNum}: ${m.message}`);
        const errors = [await g.device.popErrorScope(), await g.device.popErrorScope()].filter((e) => e).map((e) => e!.message);
        expect([...messages, ...errors], `${file} ${JSON.stringify(defines)}`).toEqual([]);
        // and each entry point's pipeline through the runtime (its own error scopes: a broken one throws, never runs in zero time)
        for (const entry of entries) {
          const k = await g.kernel(file, entry, defines);
          expect(k.kinds[0], `${file}.${entry}`).toBe('u');
          pipelines++;
        }
      }
    }
    expect(pipelines).toBeGreaterThan(60); // 84 today: 4 matmul entries x 4 transposes x 2 row counts, attention x 3 head sizes, ...
  });

  it('a shader that redeclares a prelude helper fails to compile, the message pointing into the files; the prelude is no kernel', async () => {
    const g = await testGpu();
    const bad = `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return lid; }
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) { y[flat(wid, nwg, lid)] = 1.0; }`;
    const h = new Gpu(g.device, g.adapter, (f) => (f === 'bad.wgsl' ? bad : nodeShaderSource(f)));
    // compiled beside a good kernel: each gets its own errors (the error scopes of one compile never span an await)
    const [broken, good] = await Promise.allSettled([h.kernel('bad.wgsl', 'main'), h.kernel('norm.wgsl', 'forward', { RMS: true, ACCUM: false })]);
    expect(good.status).toBe('fulfilled');
    expect(broken.status === 'rejected' && String(broken.reason)).toMatch(
      /kernel bad\.main: WGSL error: bad\.wgsl:2: [^;]*'flat'.*; prelude\.wgsl:\d+: note: /,
    );
    await expect(h.kernel(PRELUDE, 'wg_reduce')).rejects.toThrow(/no shader of its own/);
  });
});
