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
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createNodeGpu } from '../src/gpu/node.ts';
import { composeShader, PRELUDE, type Gpu } from '../src/gpu/runtime.ts';
import { importJsonl } from '../src/io/datasets.ts';
import { readModelFolder } from '../src/io/folder.ts';
import { readCheckpointAll } from '../src/store/checkpoints.ts';
import { getMetrics, openStore, saveDataset, USER_DATASET } from '../src/store/db.ts';
import type { TrainInput } from '../src/worker/api.ts';
import { createEngine } from '../src/worker/engine.ts';
import { exportTensors } from '../src/model/export.ts';
import { loadModel } from '../src/model/index.ts';
import { copyWeights, LoraSet, mergeLora, restoreWeights } from '../src/model/lora.ts';
import { KVCache, type Transformer } from '../src/model/transformer.ts';
import { matmul } from '../src/ops/matmul.ts';
import { alignUp, ALIGN } from '../src/shared/align.ts';
import { halfBits, halfValue, isHalfWeight, packHalf } from '../src/shared/half.ts';
import { estimateMemory } from '../src/shared/memory.ts';
import { paramSpecs, parseConfig } from '../src/shared/model-config.ts';
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
  it('every kernel (tiled in each transpose, gemv_nn, gemv_nt, gemv4_nn, gemv4_nt) computes op(A) op(B16) in f32', async () => {
    const gpu = await f16Gpu();
    for (const [M, N, K] of [
      [137, 70, 45],
      [3, 129, 67],
      [8, 33, 200],
      [5, 36, 64], // K and both strides multiples of 4: gemv4_nn and gemv4_nt
    ] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          if (transA && M <= 8) continue; // gemv: A not transposed
          const a = randn(M * K, M + K, 1),
            b = randn(K * N, N + 7, 1),
            b16 = rounded(b);
          const { words } = packHalf(Float32Array.from(b));
          const bv = gpu.tensor(words.length, 'b16');
          gpu.write(bv, words);
          const c = upload(gpu, new Float32Array(M * N)),
            c32 = upload(gpu, new Float32Array(M * N)),
            av = upload(gpu, a),
            b32 = upload(gpu, b);
          await run(gpu, matmul(gpu, { c, a: av, b: bv, bF16: true, M, N, K, transA, transB, alpha: 0.5 }));
          await run(gpu, matmul(gpu, { c: c32, a: av, b: b32, M, N, K, transA, transB, alpha: 0.5 }));
          const want = new Float64Array(M * N),
            want32 = new Float64Array(M * N);
          for (let m = 0; m < M; m++)
            for (let n = 0; n < N; n++)
              for (let k = 0; k < K; k++) {
                const x = a[transA ? k * M + m : m * K + k]!,
                  at = transB ? n * K + k : k * N + n;
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
    const src = readFileSync('shaders/matmul.wgsl', 'utf8'),
      prelude = readFileSync(`shaders/${PRELUDE}`, 'utf8');
    const f32 = composeShader('matmul.wgsl', src, prelude, { TRANS_A: false, TRANS_B: true, GR: 8 }).code;
    const f16 = composeShader('matmul.wgsl', src, prelude, { TRANS_A: false, TRANS_B: true, B_F16: true, GR: 8 }).code;
    expect(f32.replace(/\/\/[^\n]*/g, '')).not.toMatch(/\bf16\b/);
    expect(f32).toMatch(/var<storage, read> B: array<f32>;/);
    expect(f16.match(/^enable f16;$/gm)?.length).toBe(1);
    expect(f16).toMatch(/var<storage, read> B: array<f16>;/);
    expect(f16.split('\n').length).toBe(f32.split('\n').length + 1); // the B_F16 define; every other line in place
  });
});

const TARGETS = { gpt2: ['c_attn', 'c_proj', 'c_fc'], llama: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };
const linearBytes = (m: Transformer, bytesPer: number) => m.params.entries.filter(isHalfWeight).reduce((s, e) => s + alignUp(e.n * bytesPer, ALIGN), 0);
const linearBytesOf = (cfg: Parameters<typeof paramSpecs>[0], bytesPer: number) =>
  paramSpecs(cfg)
    .filter(isHalfWeight)
    .reduce((s, e) => s + alignUp(e.shape.reduce((a, b) => a * b, 1) * bytesPer, ALIGN), 0);
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
  const gpu = model.gpu,
    B = batch.length,
    T = batch[0]!.length;
  const inf = await model.plan(B, T, { lora });
  inf.setBatch(batch.flat());
  await gpu.check('forward', () => gpu.run([...inf.forward, ...inf.loss]));
  const logits = await inf.readLogits(),
    loss = await inf.readLoss();
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
  const gpu = model.gpu,
    P = tokens.length - 1;
  const cache = new KVCache(model, 1, P + 1);
  const pre = await model.plan(1, P, { cache, lora }),
    step = await model.plan(1, 1, { cache, lora });
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
    it("halves the frozen weights' memory, as estimated, and stays close to f32 in logits, loss, LoRA gradients and decoding", async () => {
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

      const l16 = await adapter(m16, 11),
        l32 = await adapter(m32, 11);
      const batch = ids(name);
      const a = await pass(m16, l16, batch),
        b = await pass(m32, l32, batch);
      const logitErr = relErr(a.logits, b.logits),
        lossErr = Math.abs(a.loss - b.loss) / Math.abs(b.loss);
      expect(logitErr, 'logits').toBeLessThan(3e-3);
      expect(logitErr, 'logits: f16 is not f32').toBeGreaterThan(0);
      expect(lossErr, 'loss').toBeLessThan(1e-4);
      let gradErr = 0;
      for (const [k, g] of b.grads) gradErr = Math.max(gradErr, relErr(a.grads.get(k)!, g));
      expect(gradErr, 'LoRA gradients').toBeLessThan(5e-3);
      const tokens = batch[0]!.slice(0, 6);
      const [p16, d16] = await decode(m16, l16, tokens),
        [p32, d32] = await decode(m32, l32, tokens);
      expect(relErr(p16!, p32!), 'prefill (gemv)').toBeLessThan(3e-3);
      expect(relErr(d16!, d32!), 'decode step (gemv)').toBeLessThan(3e-3);
      console.log(
        `${name} on ${gpu.adapter.name}: f16 vs f32 relErr logits ${logitErr.toExponential(2)}, loss ${lossErr.toExponential(2)}, LoRA grads ${gradErr.toExponential(2)}, decode ${relErr(d16!, d32!).toExponential(2)}; weights ${bytes16} vs ${bytes32} bytes`,
      );
      for (const x of [l16, l32]) x.destroy();
      for (const x of [m16, m32]) x.params.destroy();
    });
  });
}

describe("f16 base weights: a stage's memory", () => {
  it('the estimate before a GRPO run (LoRA, a reference pass) counts the f16 base as it is allocated', async () => {
    const { GRPO_DEFAULTS, GrpoTrainer } = await import('../src/train/grpo.ts');
    const { stageMemory } = await import('../src/shared/memory.ts');
    const { parseConfig } = await import('../src/shared/model-config.ts');
    const { Transformer } = await import('../src/model/transformer.ts');
    const gpu = await f16Gpu();
    const cfg = parseConfig(JSON.parse(readFileSync('tests/fixtures/gpt2-tiny/config.json', 'utf8')));
    const targets = ['c_attn', 'c_fc', 'c_proj'],
      r = 4,
      P = 2,
      G = 3,
      T = 16,
      beta = 0.04;
    const held: Record<string, number> = {};
    for (const f16 of [true, false]) {
      const before = gpu.allocatedBytes;
      const base = new Transformer(gpu, cfg, { frozenF16: f16 });
      expect(base.f16Weights).toBe(f16);
      const baseBytes = gpu.allocatedBytes - before;
      const lora = new LoraSet(base, { r, alpha: 8, dropout: 0, targets }, { optimizer: true });
      const t = await GrpoTrainer.create({ model: base, lora }, base, [{ name: 'len', score: async (rs) => rs.map((x) => x.response.length) }], {
        ...GRPO_DEFAULTS,
        totalSteps: 4,
        method: 'grpo',
        numGenerations: G,
        promptsPerStep: P,
        maxCompletionLength: T - 3,
        beta,
        seqLen: T,
        padId: 0,
        eosIds: [],
        seed: 1,
      });
      await t.trainStep([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      const bytes = gpu.allocatedBytes - before;
      t.destroy();
      lora.destroy();
      base.params.destroy();
      const e = stageMemory(cfg, {
        stage: 'grpo',
        batch: P,
        seqLen: T,
        samples: G,
        loraRank: r,
        loraTargets: targets,
        beta,
        rewardModel: false,
        promptLen: 3,
        f16Weights: f16,
      });
      expect(e.parts.base, `f16 ${f16}: the base`).toBe(baseBytes);
      expect(Math.abs(e.total / bytes - 1), `f16 ${f16}: estimated ${e.total}, held ${bytes}`).toBeLessThan(0.1);
      held[String(f16)] = bytes;
    }
    expect(held.false! - held.true!).toBe(linearBytesOf(cfg, 4) - linearBytesOf(cfg, 2));
    // full fine-tuning counts no f16 weights: they train
    const full = (f16Weights: boolean) =>
      stageMemory(cfg, { stage: 'sft', batch: 2, seqLen: T, samples: 1, loraRank: 0, beta: 0, rewardModel: false, f16Weights }).total;
    expect(full(true)).toBe(full(false));
  });
});

describe('f16 base weights: what reads them in f32', () => {
  it('merging, restoring, exporting and copying use the f32 values, not the f16 ones', async () => {
    const gpu = await f16Gpu();
    const files = await readModelFolder('tests/fixtures/llama-tiny');
    const m16 = loadModel(gpu, files, { frozenF16: true }).model,
      m32 = loadModel(gpu, files).model;
    const l16 = await adapter(m16, 5),
      l32 = await adapter(m32, 5);
    const orig = await exportTensors(m32);
    expect(await exportTensors(m16)).toEqual(orig);
    const s16 = await mergeLora(l16),
      s32 = await mergeLora(l32);
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
    const a = loadModel(off, files, { frozenF16: true }).model,
      b = loadModel(off, files).model;
    expect(a.f16Weights).toBe(false);
    const la = await adapter(a, 2),
      lb = await adapter(b, 2);
    const batch = ids('gpt2-tiny');
    const x = await pass(a, la, batch),
      y = await pass(b, lb, batch);
    expect(x.logits).toEqual(y.logits);
    expect(x.loss).toBe(y.loss);
    for (const [k, g] of y.grads) expect(x.grads.get(k), k).toEqual(g);
    for (const l of [la, lb]) l.destroy();
    for (const m of [a, b]) m.params.destroy();
    off.device.destroy();
  });
});

describe("f16 base weights in the engine (the page's worker, here on Dawn)", () => {
  const DIR = 'tests/fixtures/gpt2-tiny';
  const files = () => new Map(['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => [f, new Uint8Array(readFileSync(`${DIR}/${f}`))]));
  const demos = importJsonl(
    Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `the cat ${i}`, completion: `sat on the mat ${i} times` })).join('\n'),
    'demos.jsonl',
  ).records;
  let n = 0;
  /** The trained tensors and the losses of a SFT run on an engine over `gpu`. */
  async function sft(gpu: Promise<Gpu>, input: TrainInput) {
    const name = `f16-engine-${n++}`;
    const db = await openStore(name);
    await saveDataset(db, { id: USER_DATASET, name: 'My data', records: demos, createdAt: 1 });
    db.close();
    const e = createEngine({ gpu, store: openStore(name) });
    await e.loadModel({ files: files(), name: 'gpt2-tiny' });
    const memory = await e.stageMemory('sft', input);
    const id = await e.startStage('sft', input);
    expect(await e.wait(id)).toBe('done');
    const store = await openStore(name);
    const ck = await readCheckpointAll(store, id);
    const losses = (await getMetrics(store, id)).map((m) => m.values.loss!);
    store.close();
    await e.dispose();
    return { tensors: ck!.tensors, losses, memory };
  }

  it('a full fine-tune trains on f32 weights, bit for bit as with f16 off; a LoRA run on the f16 base, close to it, and its estimate counts the f16 base', async () => {
    const on = Promise.resolve(await f16Gpu()),
      off = Promise.resolve(await createNodeGpu({ f16Weights: false }));
    const full: TrainInput = { seed: 3, steps: 3, batchSize: 4, seqLen: 24, lr: 1e-3 };
    const [a, b] = [await sft(on, full), await sft(off, full)];
    expect(a.losses).toEqual(b.losses);
    expect([...a.tensors.keys()]).toEqual([...b.tensors.keys()]);
    for (const [k, t] of b.tensors) expect(a.tensors.get(k), k).toEqual(t);
    expect(a.memory).toEqual(b.memory);
    const lora: TrainInput = { ...full, loraRank: 4 };
    const [c, d] = [await sft(on, lora), await sft(off, lora)];
    expect(c.losses.length).toBe(3);
    for (const [i, l] of d.losses.entries()) expect(Math.abs(c.losses[i]! - l) / l, `step ${i + 1} loss`).toBeLessThan(1e-3);
    const cfg = parseConfig(JSON.parse(readFileSync(`${DIR}/config.json`, 'utf8')));
    expect(d.memory.parts.base! - c.memory.parts.base!).toBe(linearBytesOf(cfg, 4) - linearBytesOf(cfg, 2));
    (await off).device.destroy();
  });
});
