// Generation with the KV cache (GPT-2, Llama, Qwen2, Qwen3): greedy output equals PyTorch's, cached logits equal a full recompute,
// and sampling draws from the softmax it claims to.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/io/folder.ts';
import { loadModel } from '../src/model/index.ts';
import { KVCache } from '../src/model/transformer.ts';
import { GENERATE_DEFAULTS, Generator } from '../src/train/generate.ts';
import { Rng, sampleToken, samplingDistribution } from '../src/shared/sampling.ts';
import { chiSquareTop } from './helpers/chi-square.ts';
import { testGpu, tightGpu } from './helpers/gpu.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { parseConfig } from '../src/shared/model-config.ts';
import { createNodeGpu } from '../src/gpu/node.ts';

const fixture = (name: string) => ({
  dir: `tests/fixtures/${name}`,
  ref: JSON.parse(readFileSync(`tests/fixtures/${name}/reference.json`, 'utf8')) as { greedy: { prompt_ids: number[]; output_ids: number[] } },
});

let lanesGpu: Promise<Gpu> | undefined;
for (const name of ['gpt2-tiny', 'llama-tiny', 'qwen2-tiny', 'qwen3-tiny']) {
  describe(`${name} generation`, () => {
    const greedy = async (gpu: Gpu, device = false) => {
      const { dir, ref } = fixture(name);
      const { model } = loadModel(gpu, await readModelFolder(dir));
      const gen = new Generator(model);
      gen.deviceSampling = device;
      const { prompt_ids, output_ids } = ref.greedy;
      const streamed: number[] = [];
      const r = await gen.generate(prompt_ids, { ...GENERATE_DEFAULTS, temperature: 0, maxNewTokens: output_ids.length - prompt_ids.length }, (_, id) =>
        streamed.push(id),
      );
      expect([...prompt_ids, ...r.ids[0]!]).toEqual(output_ids);
      expect(streamed).toEqual(r.ids[0]);
      expect(r.finish).toEqual(['length']);
      expect(gen.deviceDraws).toBe(device ? r.ids[0]!.length : 0);
      if (device) {
        // the entropies the device computes (f32) are the CPU's (float64 over the same logits)
        gen.deviceSampling = false;
        const cpu = await gen.generate(prompt_ids, { ...GENERATE_DEFAULTS, temperature: 0, maxNewTokens: output_ids.length - prompt_ids.length });
        r.entropy[0]!.forEach((e, i) => expect(e).toBeCloseTo(cpu.entropy[0]![i]!, 4));
      }
      const parts = model.params.entry(model.headName).parts.length;
      gen.destroy();
      model.params.destroy();
      return parts;
    };

    it('greedy decoding reproduces the reference', async () => {
      expect(await greedy(await testGpu())).toBe(1);
    });

    it('greedy decoding reproduces the reference with the tokens drawn on the device', async () => {
      expect(await greedy(await testGpu(), true)).toBe(1);
    });

    it("greedy decoding reproduces the reference with a GPU's matrix-vector kernel (gemv4_nt_lanes: a subgroup splits K)", async () => {
      const gpu = await (lanesGpu ??= createNodeGpu({ matvecLanes: true }));
      await gpu.reductions();
      expect(gpu.matvecLanes).toBeGreaterThan(0);
      expect(await greedy(gpu)).toBe(1);
    });

    it('greedy decoding reproduces the reference with the LM head over several buffers, its logits in vocabulary chunks', async () => {
      const { dir, ref } = fixture(name);
      const { config } = await readModelFolder(dir);
      expect(await greedy(await tightGpu(parseConfig(config), 1, ref.greedy.output_ids.length))).toBeGreaterThanOrEqual(2);
    });

    it('greedy decoding reproduces the reference with the tokens drawn on the device from logits in vocabulary chunks', async () => {
      const { dir, ref } = fixture(name);
      const { config } = await readModelFolder(dir);
      expect(await greedy(await tightGpu(parseConfig(config), 1, ref.greedy.output_ids.length), true)).toBeGreaterThanOrEqual(2);
    });

    it('cached decoding gives the logits of a full recompute at every step', async () => {
      const gpu = await testGpu();
      const { dir, ref } = fixture(name);
      const { model } = loadModel(gpu, await readModelFolder(dir));
      const K = 3,
        P = ref.greedy.prompt_ids.length,
        N = 10,
        V = model.cfg.vocabSize;
      const cache = new KVCache(model, K, P + N);
      const prefill = await model.plan(K, P, { cache });
      const step = await model.plan(K, 1, { cache });
      const rows: number[][] = Array.from({ length: K }, (_, k) => [...ref.greedy.prompt_ids.slice(0, P - k), ...Array(k).fill(7 + k)]);
      const rngs = [0, 1, 2].map((k) => Rng.forSample(5, k));
      const cached: Float32Array[] = [];
      prefill.setTokens(rows.flat(), 0);
      await gpu.check('prefill', () => gpu.run(prefill.forward));
      cached.push(await prefill.readLogits());
      for (let t = 0; t < N - 1; t++) {
        const next = rows.map((_, k) => sampleToken(cached[t]!.subarray(k * V, (k + 1) * V), { temperature: 1, topK: 0, topP: 1 }, rngs[k]!));
        next.forEach((id, k) => rows[k]!.push(id));
        step.setTokens(next, P + t);
        await gpu.check('step', () => gpu.run(step.forward));
        cached.push(await step.readLogits());
      }
      const full = await model.plan(K, P + N - 1);
      full.setBatch(rows.flat());
      await gpu.check('full', () => gpu.run(full.forward));
      const all = await full.readLogits();
      let maxDiff = 0;
      for (let t = 0; t < N; t++)
        for (let k = 0; k < K; k++)
          for (let v = 0; v < V; v++) {
            maxDiff = Math.max(maxDiff, Math.abs(cached[t]![k * V + v]! - all[(k * (P + N - 1) + P - 1 + t) * V + v]!));
          }
      expect(maxDiff).toBeLessThan(1e-4);
      for (const p of [prefill, step, full]) p.destroy();
      cache.destroy();
      model.params.destroy();
    });
  });
}

describe('sampling', () => {
  it.each([
    ['on the CPU', false],
    ['on the device', true],
  ])('draws from the softmax of the model logits (chi-square), K samples per batch, %s', async (_, device) => {
    const gpu = await testGpu();
    const { dir, ref } = fixture('gpt2-tiny');
    const { model } = loadModel(gpu, await readModelFolder(dir));
    const prompt = ref.greedy.prompt_ids;
    const full = await model.plan(1, prompt.length);
    full.setBatch(prompt);
    await gpu.check('logits', () => gpu.run(full.forward));
    const V = model.cfg.vocabSize;
    const logits = (await full.readLogits()).slice((prompt.length - 1) * V, prompt.length * V);
    const cfg = { temperature: 1.5, topK: 0, topP: 1 };
    const { ids, probs } = samplingDistribution(logits, cfg);
    const gen = new Generator(model);
    gen.deviceSampling = device;
    const counts = new Map<number, number>();
    const K = 64,
      runs = 40;
    for (let s = 0; s < runs; s++) {
      const r = await gen.generate(prompt, { ...GENERATE_DEFAULTS, ...cfg, numSamples: K, maxNewTokens: 1, seed: s });
      for (const x of r.ids) counts.set(x[0]!, (counts.get(x[0]!) ?? 0) + 1);
    }
    const n = K * runs;
    expect(gen.deviceDraws).toBe(device ? n : 0);
    // bins: the 12 likeliest tokens and "the rest"
    const chi = chiSquareTop(ids, probs, counts, n, 12);
    expect(chi).toBeLessThan(32.9); // chi-square, 12 degrees of freedom, p = 0.001
    gen.destroy();
    full.destroy();
    model.params.destroy();
  });

  it("a row the device cannot draw (a NaN logit) is drawn on the CPU with the same u: the CPU path's tokens", async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'));
    const head = model.headName;
    const w = await model.params.download(head);
    const H = model.cfg.hidden;
    w.fill(NaN, 7 * H, 8 * H); // token 7's logit is NaN at every step
    model.params.upload(head, w);
    const cfg = { ...GENERATE_DEFAULTS, maxNewTokens: 5, temperature: 1, numSamples: 3, seed: 3 };
    const gen = new Generator(model);
    const cpu = await gen.generate([1, 2, 3], cfg);
    gen.deviceSampling = true;
    const dev = await gen.generate([1, 2, 3], cfg);
    expect(gen.deviceDraws).toBe(0);
    expect(dev.ids).toEqual(cpu.ids);
    gen.destroy();
    model.params.destroy();
  });

  it('top-k and top-p restrict the support; seeds reproduce; sample i does not depend on K', async () => {
    const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i) * 3);
    const top5 = new Set(samplingDistribution(logits, { temperature: 1, topK: 5, topP: 1 }).ids);
    const rng = new Rng(1);
    for (let i = 0; i < 500; i++) expect(top5.has(sampleToken(logits, { temperature: 1, topK: 5, topP: 1 }, rng))).toBe(true);
    const nucleus = samplingDistribution(logits, { temperature: 1, topK: 0, topP: 0.5 });
    const full = samplingDistribution(logits, { temperature: 1, topK: 0, topP: 1 });
    const mass = full.probs.slice(0, nucleus.ids.length).reduce((a, b) => a + b, 0);
    expect(mass).toBeGreaterThanOrEqual(0.5);
    expect(mass - full.probs[nucleus.ids.length - 1]!).toBeLessThan(0.5);

    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'));
    const gen = new Generator(model);
    const cfg = { ...GENERATE_DEFAULTS, maxNewTokens: 8, temperature: 1, topK: 40, topP: 0.95, seed: 11 };
    const a = await gen.generate([1, 2, 3], { ...cfg, numSamples: 2 });
    const b = await gen.generate([1, 2, 3], { ...cfg, numSamples: 9 });
    const c = await gen.generate([1, 2, 3], { ...cfg, numSamples: 9 });
    expect(b.ids.slice(0, 2)).toEqual(a.ids);
    expect(c.ids).toEqual(b.ids);
    expect(new Set(b.ids.map((x) => x.join(','))).size).toBeGreaterThan(1);
    const stop = await gen.generate([1, 2, 3], { ...cfg, numSamples: 3, stopTokenIds: [b.ids[0]![2]!], stopWhen: (k, ids) => k === 2 && ids.length === 4 });
    expect(stop.finish[0]).toBe('eos');
    expect(stop.ids[0]!.length).toBe(3);
    expect(stop.finish[2]).toBe(stop.ids[2]!.length === 4 ? 'stop' : 'eos');
    gen.destroy();
    model.params.destroy();
  });
  it.each([
    ['on the CPU (top-k, top-p)', false],
    ['on the device', true],
  ])('generateMany: prompts of different lengths in one batch draw what each would alone, %s', async (_, device) => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'));
    const gen = new Generator(model);
    gen.deviceSampling = device;
    const cfg = { ...GENERATE_DEFAULTS, maxNewTokens: 6, temperature: 1, topK: device ? 0 : 40, topP: device ? 1 : 0.95, numSamples: 3 };
    const requests = [
      { prompt: [1, 2, 3], seed: 5 },
      { prompt: [4, 5, 6, 7, 8, 9, 10], seed: 6, maxNewTokens: 4 },
      { prompt: [11], seed: 7 },
    ];
    const streamed: string[] = [];
    const many = await gen.generateMany(requests, cfg, (j, k, id) => streamed.push(`${j}/${k}/${id}`));
    expect(many.length).toBe(3);
    for (const [j, r] of requests.entries()) {
      const alone = await gen.generate(r.prompt, { ...cfg, seed: r.seed, maxNewTokens: r.maxNewTokens ?? cfg.maxNewTokens });
      expect(many[j]!.ids).toEqual(alone.ids);
      expect(many[j]!.finish).toEqual(alone.finish);
      many[j]!.entropy.flat().forEach((e, i) => expect(e).toBeCloseTo(alone.entropy.flat()[i]!, 4));
    }
    expect(many[1]!.ids.every((x) => x.length <= 4)).toBe(true);
    expect(gen.deviceDraws > 0).toBe(device);
    expect(streamed.length).toBe(many.flatMap((g) => g.ids).flat().length);
    expect(await gen.generateMany([], cfg)).toEqual([]);
    gen.destroy();
    model.params.destroy();
  });

  it('plans once per maximum length: prompts of new lengths reuse the KV cache and step plan, and draw what a fresh generator draws', async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'));
    const gen = new Generator(model);
    const cfg = { ...GENERATE_DEFAULTS, maxNewTokens: 5, temperature: 1, topK: 40, topP: 0.95, numSamples: 2 };
    const steps = [
      [3, 7],
      [5, 2],
      [9, 4],
      [3, 6],
      [12, 12],
      [2, 2],
    ];
    for (const [s, [a, b]] of steps.entries()) {
      const requests = [a!, b!].map((n, i) => ({ prompt: Array.from({ length: n }, (_, t) => 1 + ((t * 7 + i + s) % 90)), seed: 100 * s + i }));
      const reused = await gen.generateMany(requests, cfg);
      const fresh = new Generator(model);
      expect(reused.map((g) => g.ids)).toEqual((await fresh.generateMany(requests, cfg)).map((g) => g.ids));
      fresh.destroy();
    }
    // one cache of 32 positions (every call fits it) and its step plan; prefill plans share one set of buffers
    expect(gen.plannedLength).toBe(32);
    expect(gen.plansBuilt).toBe(1 + 6); // step; prefills of 3, 2 (in 3's buffers), 4 (new buffers), 3 (in 4's), 12 (new buffers), 2 (in 12's)
    // a longer call plans a larger cache once; `planLength` plans for it up front
    await gen.generate([1, 2, 3], { ...cfg, maxNewTokens: 40 });
    expect(gen.plannedLength).toBe(64);
    const sized = new Generator(model);
    await sized.generate([1, 2, 3], { ...cfg, planLength: 50 });
    expect(sized.plannedLength).toBe(50);
    sized.destroy();
    gen.destroy();
    model.params.destroy();
  });
});
