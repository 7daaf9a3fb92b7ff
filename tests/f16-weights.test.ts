// Frozen weights in f16 (issue 10): where the device has 'shader-f16', a frozen model (the base under LoRA)
// stores its linear weights as f16 and the matmuls read them so, in f32 arithmetic. On lavapipe (which has the
// feature) these tests run the f16 path against the f32 path on the same adapter, and fail, never skip, if the
// feature is missing. The bounds: an f16 weight is its f32 value to within 2^-11 relative (f16's unit roundoff
// u = 4.9e-4); a product sums such errors, independent and of either sign, so an output moves by about u of
// its scale, and each layer adds its own. Measured on lavapipe with the tiny fixtures (2 layers): logits and the
// decoding steps within 1.1e-3 of their largest value (relErr), the LoRA gradients within 1.7e-3 (they come
// back through every later layer's frozen f16 weights, forward and backward), the loss within 3e-5 relative
// (a mean over tokens, whose errors partly cancel). The bounds are about 3x those: 3e-3 (6u) for logits and
// decoding, 5e-3 (10u) for gradients, 1e-4 for the loss: PyTorch's fp16 rtol is 1e-3, and a wrong kernel or
// a misread weight gives errors of order 1.
import { describe, expect, it } from 'vitest';
import { createNodeGpu } from '../src/gpu/node.ts';
import { composeShader, PRELUDE, type Gpu } from '../src/gpu/runtime.ts';
import { readModelFolder } from '../src/io/folder.ts';
import { exportTensors } from '../src/model/export.ts';
import { loadModel } from '../src/model/index.ts';
import { copyWeights, LoraSet, mergeLora, restoreWeights } from '../src/model/lora.ts';
import { KVCache, type Transformer } from '../src/model/transformer.ts';
import { matmul } from '../src/ops/matmul.ts';
import { alignUp, ALIGN } from '../src/shared/align.ts';
import { halfBits, halfValue, isHalfWeight, packHalf } from '../src/shared/half.ts';
import { estimateMemory } from '../src/shared/memory.ts';
import { readFileSync } from 'node:fs';
import { relErr, run, testGpu, upload } from './helpers/gpu.ts';
import { randn } from './ref/ops.ts';

/** The lavapipe device, which must have 'shader-f16' (the f16 path is what these tests are for). */
async function f16Gpu(): Promise<Gpu> {
  const gpu = await testGpu();
  expect(gpu.features.has('shader-f16'), `adapter ${gpu.adapter.name} lacks shader-f16`).toBe(true);
  expect(gpu.f16Weights).toBe(true);
  return gpu;
}

const ids = (name: string) => (JSON.parse(readFileSync(`tests/fixtures/${name}/reference.json`, 'utf8')) as { input_ids: number[][] }).input_ids;
const rounded = (a: ArrayLike<number>) => Float64Array.from(a, (x) => halfValue(halfBits(x)));

describe('f16 on the CPU', () => {
  it('rounds to nearest even, keeps subnormals, overflows past 65504', () => {
    expect([1, -2, 0.5, 65504, 2 ** -14, 2 ** -24, 0, -0].map(halfBits)).toEqual([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0400, 0x0001, 0, 0x8000]);
    expect(halfBits(1 + 2 ** -11)).toBe(0x3c00); // a tie: to even
    expect(halfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(halfBits(65520)).toBe(0x7c00);
    expect(halfBits(2 ** -25)).toBe(0); // a tie with 0
    expect(halfBits(3 * 2 ** -26)).toBe(1);
    for (const x of randn(2000, 3, 3)) {
      const h = halfValue(halfBits(x));
      expect(Math.abs(h - x)).toBeLessThanOrEqual(Math.max(Math.abs(x) * 2 ** -11, 2 ** -25));
    }
    const { words, overflow } = packHalf(Float32Array.of(1, -2, 3));
    expect([...words]).toEqual([0xc0003c00, 0x4200]);
    expect(overflow).toBe(-1);
    expect(packHalf(Float32Array.of(1, 7e4)).overflow).toBe(1);
  });
});

describe('matmul with an f16 B operand', () => {
  it('every kernel (tiled in each transpose, gemv_nn, gemv_nt) computes op(A) op(B16) in f32', async () => {
    const gpu = await f16Gpu();
    for (const [M, N, K] of [[37, 70, 45], [3, 129, 67], [8, 33, 200]] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          if (transA && M <= 8) continue; // gemv: A not transposed
          const a = randn(M * K, M + K, 1), b = randn(K * N, N + 7, 1), b16 = rounded(b);
          const { words } = packHalf(Float32Array.from(b));
          const bv = gpu.tensor(words.length, 'b16');
          gpu.write(bv, words);
          const c = upload(gpu, new Float32Array(M * N)), c32 = upload(gpu, new Float32Array(M * N)), av = upload(gpu, a), b32 = upload(gpu, b);
          await run(gpu, matmul(gpu, { c, a: av, b: bv, bF16: true, M, N, K, transA, transB, alpha: 0.5 }));
          await run(gpu, matmul(gpu, { c: c32, a: av, b: b32, M, N, K, transA, transB, alpha: 0.5 }));
          const want = new Float64Array(M * N), want32 = new Float64Array(M * N);
          for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) {
            const x = a[transA ? k * M + m : m * K + k]!, at = transB ? n * K + k : k * N + n;
            want[m * N + n] += 0.5 * x * b16[at]!;
            want32[m * N + n] += 0.5 * x * b[at]!;
          }
          const label = `${M}x${N}x${K} transA ${transA} transB ${transB}`;
          // exactly the product with the rounded B, in f32 arithmetic
          expect(relErr(await gpu.read(c), want), label).toBeLessThan(1e-5);
          // and close to the f32 B's: K products with errors of 2^-11 relative each
          expect(relErr(await gpu.read(c), want32), label).toBeLessThan(2e-3);
          expect(relErr(await gpu.read(c32), want32), label).toBeLessThan(1e-5);
          for (const v of [c, c32, av, b32, bv]) gpu.destroy(v.buf);
        }
      }
    }
  });

  it('composes the f16 kernels with `enable f16;` and the f32 ones as before', () => {
    const src = readFileSync('shaders/matmul.wgsl', 'utf8'), prelude = readFileSync(`shaders/${PRELUDE}`, 'utf8');
    const f32 = composeShader('matmul.wgsl', src, prelude, { TRANS_A: false, TRANS_B: true }).code;
    const f16 = composeShader('matmul.wgsl', src, prelude, { TRANS_A: false, TRANS_B: true, B_F16: true }).code;
    expect(f32.replace(/\/\/[^\n]*/g, '')).not.toMatch(/\bf16\b/);
    expect(f32).toMatch(/var<storage, read> B: array<f32>;/);
    expect(f16.match(/^enable f16;$/gm)?.length).toBe(1);
    expect(f16).toMatch(/var<storage, read> B: array<f16>;/);
    expect(f16.split('\n').length).toBe(f32.split('\n').length + 1); // the B_F16 define; every other line in place
  });
});

const TARGETS = { gpt2: ['c_attn', 'c_proj', 'c_fc'], llama: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };
const linearBytes = (m: Transformer, bytesPer: number) => m.params.entries.filter(isHalfWeight).reduce((s, e) => s + alignUp(e.n * bytesPer, ALIGN), 0);
const arenaBytes = (m: Transformer) => m.params.arenas.reduce((s, a) => s + a.param.size, 0);

/** A LoRA adapter with random A and B (so its update is not zero) on `model`, the same on every model for one seed. */
async function adapter(model: Transformer, seed: number): Promise<LoraSet> {
  const lora = new LoraSet(model, { r: 4, alpha: 8, dropout: 0, targets: TARGETS[model.cfg.arch] }, { optimizer: true });
  lora.init(seed);
  let s = seed;
  for (const m of lora.modules.values()) lora.params.upload(`${m.module}.lora_B.weight`, Float32Array.from(randn(m.Out * 4, s++, 0.05)));
  return lora;
}

/** Logits, loss and every adapter gradient of one batch. */
async function pass(model: Transformer, lora: LoraSet, batch: number[][]) {
  const gpu = model.gpu, B = batch.length, T = batch[0]!.length;
  const inf = await model.plan(B, T, { lora });
  inf.setBatch(batch.flat());
  await gpu.check('forward', () => gpu.run([...inf.forward, ...inf.loss]));
  const logits = await inf.readLogits(), loss = await inf.readLoss();
  inf.destroy();
  const tr = await model.plan(B, T, { training: true, lora });
  tr.setBatch(batch.flat());
  await gpu.check('backward', () => gpu.run([...tr.zeroGrads, ...tr.forward, ...tr.lossFused, ...tr.backward]));
  const grads = new Map<string, Float32Array>();
  for (const e of lora.params.entries) grads.set(e.name, await lora.params.download(e.name, 'grad'));
  tr.destroy();
  return { logits, loss, grads };
}

/** The last position's logits after a prefill of P tokens and one decoding step with the KV cache (the gemv kernels: <= 8 rows). */
async function decode(model: Transformer, lora: LoraSet, tokens: number[]): Promise<Float32Array[]> {
  const gpu = model.gpu, P = tokens.length - 1;
  const cache = new KVCache(model, 1, P + 1);
  const pre = await model.plan(1, P, { cache, lora }), step = await model.plan(1, 1, { cache, lora });
  pre.setTokens(tokens.slice(0, P), 0);
  await gpu.check('prefill', () => gpu.run(pre.forward));
  const a = await pre.readLogits();
  step.setTokens(tokens.slice(P), P);
  await gpu.check('decode', () => gpu.run(step.forward));
  const b = await step.readLogits();
  pre.destroy();
  step.destroy();
  cache.destroy();
  return [a, b];
}

for (const name of ['gpt2-tiny', 'llama-tiny', 'qwen2-tiny', 'qwen3-tiny']) {
  describe(`f16 base weights under LoRA on ${name}`, () => {
    it('halves the frozen weights\' memory, as estimated, and stays close to f32 in logits, loss, LoRA gradients and decoding', async () => {
      const gpu = await f16Gpu();
      const files = await readModelFolder(`tests/fixtures/${name}`);
      const before = gpu.allocatedBytes;
      const m16 = loadModel(gpu, files, { frozenF16: true }).model;
      const bytes16 = gpu.allocatedBytes - before;
      const m32 = loadModel(gpu, files).model;
      const bytes32 = gpu.allocatedBytes - before - bytes16;
      expect(m16.f16Weights).toBe(true);
      expect(m32.f16Weights).toBe(false);
      // memory: every linear weight in half the bytes (each tensor 256-byte aligned), the rest as it was
      const saved = linearBytes(m32, 4) - linearBytes(m16, 2);
      expect(linearBytes(m16, 2)).toBeLessThanOrEqual(linearBytes(m32, 4) / 2 + 256 * m16.params.entries.filter(isHalfWeight).length);
      expect(bytes32 - bytes16).toBe(saved);
      expect(arenaBytes(m32) - arenaBytes(m16)).toBe(saved);
      const rope = m16.cfg.arch === 'llama' ? m16.cfg.maxPositions * m16.cfg.headDim * 4 : 0;
      expect(estimateMemory(m16.cfg, 'inference', { batch: 1, seqLen: 1, f16Weights: true }).bytes.weights).toBe(arenaBytes(m16) + rope);
      expect(estimateMemory(m16.cfg, 'inference', { batch: 1, seqLen: 1 }).bytes.weights).toBe(arenaBytes(m32) + rope);
      // the values are the f32 ones, rounded
      const w = m16.params.entries.find(isHalfWeight)!;
      const words = await gpu.read(m16.params.weight(w.name).view);
      const halves = new Uint16Array(words.buffer, words.byteOffset, w.n);
      const f32 = await m32.params.download(w.name);
      expect(Array.from(halves, halfValue)).toEqual(Array.from(rounded(f32)));

      const l16 = await adapter(m16, 11), l32 = await adapter(m32, 11);
      const batch = ids(name);
      const a = await pass(m16, l16, batch), b = await pass(m32, l32, batch);
      const logitErr = relErr(a.logits, b.logits), lossErr = Math.abs(a.loss - b.loss) / Math.abs(b.loss);
      expect(logitErr, 'logits').toBeLessThan(3e-3);
      expect(logitErr, 'logits: f16 is not f32').toBeGreaterThan(0);
      expect(lossErr, 'loss').toBeLessThan(1e-4);
      let gradErr = 0;
      for (const [k, g] of b.grads) gradErr = Math.max(gradErr, relErr(a.grads.get(k)!, g));
      expect(gradErr, 'LoRA gradients').toBeLessThan(5e-3);
      const tokens = batch[0]!.slice(0, 6);
      const [p16, d16] = await decode(m16, l16, tokens), [p32, d32] = await decode(m32, l32, tokens);
      expect(relErr(p16!, p32!), 'prefill (gemv)').toBeLessThan(3e-3);
      expect(relErr(d16!, d32!), 'decode step (gemv)').toBeLessThan(3e-3);
      console.log(`${name} on ${gpu.adapter.name}: f16 vs f32 relErr logits ${logitErr.toExponential(2)}, loss ${lossErr.toExponential(2)}, LoRA grads ${gradErr.toExponential(2)}, decode ${relErr(d16!, d32!).toExponential(2)}; weights ${bytes16} vs ${bytes32} bytes`);
      for (const x of [l16, l32]) x.destroy();
      for (const x of [m16, m32]) x.params.destroy();
    });
  });
}

describe('f16 base weights: what reads them in f32', () => {
  it('merging, restoring, exporting and copying use the f32 values, not the f16 ones', async () => {
    const gpu = await f16Gpu();
    const files = await readModelFolder('tests/fixtures/llama-tiny');
    const m16 = loadModel(gpu, files, { frozenF16: true }).model, m32 = loadModel(gpu, files).model;
    const l16 = await adapter(m16, 5), l32 = await adapter(m32, 5);
    const orig = await exportTensors(m32);
    expect(await exportTensors(m16)).toEqual(orig);
    const s16 = await mergeLora(l16), s32 = await mergeLora(l32);
    // the merged weights are the f32 model's, bit for bit (the host keeps them; the GPU has them rounded)
    expect(await exportTensors(m16)).toEqual(await exportTensors(m32));
    const batch = ids('llama-tiny');
    const run16 = async () => {
      const p = await m16.plan(batch.length, batch[0]!.length);
      p.setBatch(batch.flat());
      await gpu.check('merged', () => gpu.run([...p.forward, ...p.loss]));
      const l = await p.readLogits();
      p.destroy();
      return l;
    };
    const merged = await run16();
    restoreWeights(m16, s16);
    restoreWeights(m32, s32);
    expect(await exportTensors(m16)).toEqual(orig);
    expect(await run16()).not.toEqual(merged);
    // a full fine-tune's own model copies the frozen base exactly (f32 in, f32 out)
    const full = loadModel(gpu, files, { optimizer: true, frozenF16: true }).model;
    expect(full.f16Weights).toBe(false); // it trains: f32
    await copyWeights(m16, full);
    expect(await exportTensors(full)).toEqual(orig);
    expect(() => m16.params.view(m16.params.entries.find(isHalfWeight)!.name)).toThrow(/stored as f16/);
    for (const x of [l16, l32]) x.destroy();
    for (const x of [m16, m32, full]) x.params.destroy();
  });

  it('GpuOptions.f16Weights: false keeps the f32 path on the same adapter, bit for bit', async () => {
    await f16Gpu();
    const off = await createNodeGpu({ f16Weights: false });
    expect(off.features.has('shader-f16')).toBe(true);
    expect(off.f16Weights).toBe(false);
    const files = await readModelFolder('tests/fixtures/gpt2-tiny');
    const a = loadModel(off, files, { frozenF16: true }).model, b = loadModel(off, files).model;
    expect(a.f16Weights).toBe(false);
    const la = await adapter(a, 2), lb = await adapter(b, 2);
    const batch = ids('gpt2-tiny');
    const x = await pass(a, la, batch), y = await pass(b, lb, batch);
    expect(x.logits).toEqual(y.logits);
    expect(x.loss).toBe(y.loss);
    for (const [k, g] of y.grads) expect(x.grads.get(k), k).toEqual(g);
    for (const l of [la, lb]) l.destroy();
    for (const m of [a, b]) m.params.destroy();
    off.device.destroy();
  });
});
