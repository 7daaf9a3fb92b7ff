// The memory estimate counts exactly the buffers the engine then allocates.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/shared/model-config.ts';
import { checkFits, estimateMemory, MemoryError } from '../src/shared/memory.ts';
import { KVCache, Transformer } from '../src/model/transformer.ts';
import { LoraSet } from '../src/model/lora.ts';
import { testGpu } from './helpers/gpu.ts';
import { readModelFolder } from '../src/io/folder.ts';
import { loadModel } from '../src/model/index.ts';
import { Generator, GENERATE_DEFAULTS } from '../src/train/generate.ts';

const arenaBytes = (m: Transformer) => m.params.arenas.reduce((s, a) => s + [a.param, a.grad, a.m, a.v].reduce((t, b) => t + (b ? b.size : 0), 0), 0);

for (const name of ['gpt2-tiny', 'llama-tiny', 'qwen2-tiny', 'qwen3-tiny']) {
  describe(`${name} memory estimate`, () => {
    const cfg = parseConfig(JSON.parse(readFileSync(`tests/fixtures/${name}/config.json`, 'utf8')));
    it('full training: weights, gradients, AdamW moments and every activation of the plan', async () => {
      const gpu = await testGpu();
      const model = new Transformer(gpu, cfg, { optimizer: true });
      const plan = await model.plan(3, 21, { training: true });
      const e = estimateMemory(cfg, 'full', { batch: 3, seqLen: 21 });
      const rope = cfg.arch === 'llama' ? cfg.maxPositions * cfg.headDim * 4 : 0;
      expect(e.bytes.weights + e.bytes.gradients + e.bytes.optimizer).toBe(arenaBytes(model) + rope);
      expect(e.bytes.activations).toBe(plan.activationBytes);
      expect(e.parameters).toBe(model.params.count);
      plan.destroy();
      model.params.destroy();
    });

    it('LoRA training: the frozen base, the adapter table and its saved activations', async () => {
      const gpu = await testGpu();
      const model = new Transformer(gpu, cfg);
      const targets = cfg.arch === 'gpt2' ? ['c_attn', 'c_fc'] : ['q_proj', 'v_proj', 'down_proj'];
      const lora = new LoraSet(model, { r: 4, alpha: 8, dropout: 0.1, targets }, { optimizer: true });
      const plan = await model.plan(2, 19, { training: true, lora });
      const e = estimateMemory(cfg, 'lora', { batch: 2, seqLen: 19, loraRank: 4, loraTargets: targets, loraDropout: 0.1 });
      const rope = cfg.arch === 'llama' ? cfg.maxPositions * cfg.headDim * 4 : 0;
      expect(e.bytes.weights + e.bytes.gradients + e.bytes.optimizer).toBe(
        arenaBytes(model) + arenaBytes({ params: lora.params } as unknown as Transformer) + rope,
      );
      expect(e.bytes.activations).toBe(plan.activationBytes + lora.seed.buf.size);
      expect(e.trainable).toBe(lora.params.count);
      plan.destroy();
      lora.destroy();
      model.params.destroy();
    });

    it('generation: shared activations and the KV cache', async () => {
      const gpu = await testGpu();
      const model = new Transformer(gpu, cfg);
      const cache = new KVCache(model, 4, 30);
      const plan = await model.plan(4, 30, { cache });
      const e = estimateMemory(cfg, 'inference', { batch: 4, seqLen: 30, kvCache: true });
      expect(e.bytes.activations).toBe(plan.activationBytes);
      expect(e.bytes.kvCache).toBe(cache.bytes + 16);
      plan.destroy();
      cache.destroy();
      model.params.destroy();
    });
  });
}

describe('Qwen-sized configs', () => {
  // Qwen/Qwen2.5-0.5B's shape: 14 query and 2 key/value heads of 64, q/k/v biases, tied embeddings
  const qwen25 = parseConfig({
    model_type: 'qwen2',
    hidden_size: 896,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    intermediate_size: 4864,
    vocab_size: 151936,
    max_position_embeddings: 32768,
    rope_theta: 1000000.0,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    use_sliding_window: false,
  });
  const mib = (b: number) => b / 2 ** 20;

  it("Qwen2.5-0.5B: its published parameter count (biases included), 4 bytes each, and PEFT's trainable count for r = 8 on every projection", () => {
    const e = estimateMemory(qwen25, 'full', { batch: 1, seqLen: 256 });
    expect(e.parameters).toBe(494032768); // transformers' num_parameters() for Qwen2.5-0.5B
    const biases = 24 * (896 + 128 + 128);
    const noBias = estimateMemory({ ...qwen25, qkvBias: false }, 'full', { batch: 1, seqLen: 256 });
    expect(e.parameters - noBias.parameters).toBe(biases);
    const rope = 32768 * 64 * 4;
    // every tensor rounded up to 256 bytes: at most 256 more per tensor (1 + 24 * 12 + 1 of them)
    expect(e.bytes.weights - rope).toBeGreaterThanOrEqual(4 * e.parameters);
    expect(e.bytes.weights - rope - 4 * e.parameters).toBeLessThan(256 * 290);
    expect(e.bytes.gradients).toBe(e.bytes.weights - rope);
    expect(e.bytes.optimizer).toBe(2 * e.bytes.gradients);
    expect(mib(e.bytes.weights)).toBeCloseTo(1892.6, 0); // 494M floats and the 8 MiB rotary table
    expect(e.bytes.total / 2 ** 30).toBeGreaterThan(7.3); // 16 bytes per parameter before activations
    expect(e.bytes.total / 2 ** 30).toBeLessThan(9);
    // the tied embedding (519 MiB) is stored over several buffers where one cannot hold it, and the logits come
    // in vocabulary chunks: the largest buffer that must be whole is an MLP projection
    expect(e.largestBuffer).toBe(4864 * 896 * 4);

    const lora = estimateMemory(qwen25, 'lora', { batch: 1, seqLen: 256, loraRank: 8 });
    expect(lora.trainable).toBe(4399104); // PEFT's print_trainable_parameters for r = 8 on q,k,v,o,gate,up,down
    expect(mib(lora.bytes.gradients)).toBeCloseTo((4399104 * 4) / 2 ** 20, 0);
    const gen = estimateMemory(qwen25, 'inference', { batch: 1, seqLen: 1024, kvCache: true });
    expect(gen.bytes.kvCache).toBe(2 * 24 * 1024 * 2 * 64 * 4 + 16); // 2 key/value heads: 12 MiB for 1024 positions
  });

  it('Qwen2.5-0.5B LoRA (r = 8, 8 x 256 tokens): what the run needs, which a 128 MiB binding holds, refused with the numbers where it does not fit', () => {
    const e = estimateMemory(qwen25, 'lora', { batch: 8, seqLen: 256, loraRank: 8 });
    const logits = 8 * 256 * 151936 * 4; // 1187 MiB in f32, in chunks of at most one binding each
    expect(e.bytes.activations).toBeGreaterThan(logits);
    expect(mib(e.bytes.weights)).toBeCloseTo(1892.6 + 16.8, 0); // the frozen base and the adapter
    expect(mib(e.bytes.total)).toBeGreaterThan(7000);
    expect(mib(e.bytes.total)).toBeLessThan(7300);
    // the widest activation left whole: the gate|up rows, 2048 x 9728 floats
    expect(e.largestBinding).toBe(2048 * 2 * 4864 * 4);
    const webgpuDefaults = { maxBufferSize: 256 * 2 ** 20, maxStorageBufferBindingSize: 128 * 2 ** 20 };
    expect(() => checkFits(e, webgpuDefaults)).not.toThrow();
    const total = Math.round(mib(e.bytes.total));
    expect(() => checkFits(e, webgpuDefaults, 6 * 2 ** 30)).toThrow(
      new RegExp(`^lora: needs about ${total} MiB of GPU memory, more than the 6144 MiB available$`),
    );
    const wide = estimateMemory(qwen25, 'lora', { batch: 16, seqLen: 256, loraRank: 8 });
    expect(() => checkFits(wide, webgpuDefaults)).toThrow(
      /^lora: needs 152 MiB in one storage binding, over this adapter's 128 MiB: use a smaller batch or sequence length$/,
    );
  });

  it('Qwen3-0.6B: head_dim 128 with 16 heads over hidden 1024, q_norm and k_norm counted', () => {
    const qwen3 = parseConfig({
      model_type: 'qwen3',
      hidden_size: 1024,
      head_dim: 128,
      num_hidden_layers: 28,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      intermediate_size: 3072,
      vocab_size: 151936,
      max_position_embeddings: 40960,
      rope_theta: 1000000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      attention_bias: false,
    });
    const e = estimateMemory(qwen3, 'inference', { batch: 1, seqLen: 64 });
    expect(e.parameters).toBe(596049920); // transformers' num_parameters() for Qwen3-0.6B
    expect(e.parameters - estimateMemory({ ...qwen3, qkNorm: false }, 'inference', { batch: 1, seqLen: 64 }).parameters).toBe(28 * 2 * 128);
    expect(estimateMemory(qwen3, 'lora', { batch: 1, seqLen: 64, loraRank: 16 }).trainable).toBe(
      28 * 16 * ((1024 + 2048) * 2 + (1024 + 1024) * 2 + (1024 + 3072) * 3),
    );
  });
});

describe('refusing what does not fit', () => {
  it('names what is too large and what to change', () => {
    const gpt2 = parseConfig({ model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: 12, vocab_size: 50257, n_positions: 1024 });
    const limits = { maxBufferSize: 256 * 2 ** 20, maxStorageBufferBindingSize: 128 * 2 ** 20 };
    const huge = estimateMemory(gpt2, 'full', { batch: 32, seqLen: 1024 });
    expect(() => checkFits(huge, limits)).toThrow(/full: needs a 384 MiB buffer, over this adapter's maxBufferSize of 256 MiB/);
    const e = estimateMemory(gpt2, 'full', { batch: 12, seqLen: 1024 });
    expect(e.parameters).toBe(124439808);
    expect(() => checkFits(e, limits)).toThrow(MemoryError);
    expect(() => checkFits(e, limits)).toThrow(
      /full: needs 144 MiB in one storage binding, over this adapter's 128 MiB: use a smaller batch or sequence length/,
    );
    // the 154 MB embedding and 196 MiB of logits a 1024-token step makes are split: they need no binding of their own
    expect(() => checkFits(estimateMemory(gpt2, 'full', { batch: 1, seqLen: 1024 }), limits)).not.toThrow();
    const small = estimateMemory(gpt2, 'inference', { batch: 1, seqLen: 256, kvCache: true });
    expect(() => checkFits(small, limits)).not.toThrow();
    expect(() => checkFits(small, limits, 100 * 2 ** 20)).toThrow(/inference: needs about \d+ MiB of GPU memory, more than the 100 MiB available/);
    const lora = estimateMemory(gpt2, 'lora', { batch: 1, seqLen: 256, loraRank: 8 });
    expect(lora.trainable).toBe(12 * 8 * (768 + 2304 + (768 + 768) + (768 + 3072) + (3072 + 768)));
    expect(lora.bytes.optimizer).toBeLessThan(e.bytes.optimizer / 100);
  });
});

// One list of a plan's buffers (src/shared/plan-buffers.ts) is what Plan allocates, in order, and what the
// estimate sums; a generation whose buffers cannot exist on the adapter is refused before anything is allocated.
describe("the plan's buffer list", () => {
  it('is what a plan allocates, by name and size, for training, LoRA, generation and a score head', async () => {
    const { planBuffers } = await import('../src/shared/plan-buffers.ts');
    const { ScoreHead } = await import('../src/model/head.ts');
    const gpu = await testGpu();
    for (const name of ['gpt2-tiny', 'qwen3-tiny']) {
      const cfg = parseConfig(JSON.parse(readFileSync(`tests/fixtures/${name}/config.json`, 'utf8')));
      const model = new Transformer(gpu, cfg, { grads: true });
      const targets = cfg.arch === 'gpt2' ? ['c_attn', 'c_fc'] : ['q_proj', 'down_proj'];
      const lora = new LoraSet(model, { r: 4, alpha: 8, dropout: 0.1, targets }, { optimizer: true });
      const head = new ScoreHead(model, { optimizer: true });
      const cache = new KVCache(model, 2, 12);
      const cases = [
        { opts: { training: true }, list: { training: true } },
        { opts: { training: true, lora }, list: { training: true, lora: { r: 4, dropout: 0.1, modules: [...lora.modules.values()] } } },
        { opts: { lora }, list: { training: false, lora: { r: 4, dropout: 0.1, modules: [...lora.modules.values()] } } },
        { opts: { cache }, list: { training: false, kvCache: true } },
        { opts: { training: true, score: head }, list: { training: true, score: true } },
      ];
      for (const { opts, list } of cases) {
        const made: [string, number][] = [];
        const tensor = gpu.tensor.bind(gpu);
        gpu.tensor = (n, label) => (made.push([label, n]), tensor(n, label));
        const plan = await model.plan(2, 5, opts).finally(() => (gpu.tensor = tensor));
        const { io, body } = planBuffers(cfg, 2, 5, list);
        expect(made, `${name} ${JSON.stringify(list)}`).toEqual([...io, ...body].map((b) => [b.label, b.n]));
        plan.destroy();
      }
      cache.destroy();
      head.params.destroy();
      lora.destroy();
      model.params.destroy();
    }
  });

  it("refuses a plan with a buffer over the binding before allocating anything, on every path (a reward scorer's plan set here; it allocated before)", async () => {
    const { createNodeGpu } = await import('../src/gpu/node.ts');
    const { PlanSet } = await import('../src/model/plan-set.ts');
    const { ScoreHead } = await import('../src/model/head.ts');
    const cfg = parseConfig(JSON.parse(readFileSync('tests/fixtures/llama-tiny/config.json', 'utf8')));
    const limit = estimateMemory(cfg, 'full', { batch: 1, seqLen: 8 }).largestBinding;
    const gpu = await createNodeGpu({ maxBinding: limit, maxBuffer: limit });
    const model = new Transformer(gpu, cfg);
    const head = new ScoreHead(model);
    let made = 0;
    const buffer = gpu.buffer.bind(gpu);
    gpu.buffer = (...a) => (made++, buffer(...a));
    const before = gpu.allocatedBytes;
    const err = await PlanSet.create(model, 4, 64, { score: head }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemoryError);
    expect((err as Error).message).toMatch(
      /^a plan of 4 x 64 tokens: its \S+ needs .* in one buffer, over this adapter's .* storage binding: use a smaller batch or sequence length$/,
    );
    expect(made).toBe(0);
    expect(gpu.allocatedBytes).toBe(before);
    (await PlanSet.create(model, 1, 8, { score: head })).destroy(); // what fits is planned as before
    head.destroy();
    model.params.destroy();
  });

  it('refuses a stage whose buffers cannot exist on this adapter before allocating anything, wherever it is built (the CLI and the experiment too, not only the worker)', async () => {
    const { createNodeGpu } = await import('../src/gpu/node.ts');
    const { buildStage } = await import('../src/train/stages.ts');
    const { resolveConfig } = await import('../src/shared/config.ts');
    const { Tok } = await import('../src/io/tokenizer.ts');
    const dir = 'tests/fixtures/llama-tiny';
    const files = await readModelFolder(dir);
    const cfg = parseConfig(files.config);
    const limit = estimateMemory(cfg, 'full', { batch: 1, seqLen: 8 }).largestBinding;
    const gpu = await createNodeGpu({ maxBinding: limit, maxBuffer: limit });
    const tok = Tok.fromJson(files.tokenizer, files.tokenizerConfig, `${dir}/tokenizer.json`);
    const { model: base } = loadModel(gpu, files);
    const records = [{ kind: 'completion' as const, prompt: 'Hi', completion: 'Hello there' }];
    let made = 0;
    const buffer = gpu.buffer.bind(gpu);
    gpu.buffer = (...a) => (made++, buffer(...a));
    const before = gpu.allocatedBytes;
    const err = await buildStage({ gpu, files, tok, base }, 'sft', resolveConfig('sft', { batchSize: 4, seqLen: 64 }, base.cfg), records).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MemoryError);
    expect((err as Error).message).toMatch(/^SFT run: .* (buffer|storage binding)/);
    expect(made).toBe(0);
    expect(gpu.allocatedBytes).toBe(before);
    (await buildStage({ gpu, files, tok, base }, 'sft', resolveConfig('sft', { batchSize: 1, seqLen: 8 }, base.cfg), records)).destroy(); // what fits builds as before
    base.params.destroy();
  });

  it('refuses a generation whose prefill cannot be bound before allocating anything (it allocated the KV cache and plans before, then failed)', async () => {
    const { createNodeGpu } = await import('../src/gpu/node.ts');
    const files = await readModelFolder('tests/fixtures/llama-tiny');
    const cfg = parseConfig(files.config);
    const limit = estimateMemory(cfg, 'inference', { batch: 1, seqLen: 8, kvCache: true }).largestBinding;
    const gpu = await createNodeGpu({ maxBinding: limit, maxBuffer: limit });
    const { model } = loadModel(gpu, files);
    const gen = new Generator(model);
    let made = 0;
    const buffer = gpu.buffer.bind(gpu);
    gpu.buffer = (...a) => (made++, buffer(...a));
    const before = gpu.allocatedBytes;
    const long = Array.from({ length: 100 }, (_, i) => 1 + (i % 50));
    const err = await gen.generate(long, { ...GENERATE_DEFAULTS, maxNewTokens: 4, temperature: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemoryError);
    expect((err as Error).message).toMatch(/^generation of 1 x 100 prompt tokens: needs .* (buffer|storage binding)/);
    expect(made).toBe(0);
    expect(gpu.allocatedBytes).toBe(before);
    // a prompt that fits still generates on the same generator
    expect((await gen.generate([1, 2, 3], { ...GENERATE_DEFAULTS, maxNewTokens: 3, temperature: 0 })).ids[0]).toHaveLength(3);
    gen.destroy();
    model.params.destroy();
  });
});

// What no estimate can promise: the GPU refusing an allocation anyway. lavapipe reports a real
// GPUOutOfMemoryError (vkCreateBuffer: VK_ERROR_OUT_OF_DEVICE_MEMORY) for a buffer of its whole
// maxBufferSize, which Dawn rounds up past what Vulkan backs. The engine names it as out of memory, and the
// device, the model on it and its plans go on as before.
describe('an allocation the GPU refuses', () => {
  it('is reported as out of GPU memory, with what was being made, and the engine goes on', async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'));
    const ids = Array.from({ length: 6 }, (_, i) => (i * 5) % model.cfg.vocabSize);
    const logits = async () => {
      const plan = await model.plan(1, ids.length);
      plan.setBatch(Int32Array.from(ids));
      await gpu.check('forward', () => gpu.run(plan.forward, 'forward'));
      const out = await plan.readLogits();
      plan.destroy();
      return out;
    };
    const before = await logits();
    const size = gpu.device.limits.maxBufferSize;
    let refused: GPUBuffer | undefined;
    await expect(
      gpu.check('a buffer of the whole maxBufferSize', () => {
        refused = gpu.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE });
      }),
    ).rejects.toThrow(/^a buffer of the whole maxBufferSize: out of GPU memory: /);
    refused?.destroy();
    expect(await logits()).toEqual(before);
    // and generation allocates its KV cache and plans on the same device
    const gen = new Generator(model);
    const g = await gen.generate(ids, { ...GENERATE_DEFAULTS, maxNewTokens: 3, temperature: 0 });
    expect(g.ids[0]).toHaveLength(3);
    gen.destroy();
    model.params.destroy();
  });

  it("fails the plan that asked, when it is the plan's first buffers (ids, logits) the GPU refuses, with its buffers freed", async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'));
    // the logits buffer comes from the real device, at a size lavapipe refuses (its whole maxBufferSize):
    // a real out-of-memory error, raised where the plan's constructor allocates
    const buffer = gpu.buffer.bind(gpu),
      destroy = gpu.destroy.bind(gpu);
    const made = new Set<GPUBuffer>(),
      freed = new Set<GPUBuffer>();
    gpu.buffer = (bytes, label, usage) => {
      const b = !label?.includes('logits')
        ? buffer(bytes, label, usage)
        : gpu.device.createBuffer({ label: 'refused logits', size: gpu.device.limits.maxBufferSize, usage: GPUBufferUsage.STORAGE });
      if (b.usage & GPUBufferUsage.STORAGE) made.add(b);
      return b;
    };
    gpu.destroy = (b) => {
      freed.add(b);
      if (b.label === 'refused logits')
        b.destroy(); // never counted in allocatedBytes
      else destroy(b);
    };
    try {
      await expect(model.plan(1, 6)).rejects.toThrow(/^a plan of 1 x 6 tokens: out of GPU memory: /);
    } finally {
      gpu.buffer = buffer;
      gpu.destroy = destroy;
    }
    expect(made.size).toBeGreaterThan(0);
    expect([...made].filter((b) => !freed.has(b)).map((b) => b.label)).toEqual([]); // every buffer the plan made is freed
    (await model.plan(1, 6)).destroy(); // and the next plan is made as before
    model.params.destroy();
  });
});

// The estimate before a run starts against what the trainers then hold on the GPU (after a step, so the
// rollouts' KV cache and plans are there too): within 10%. AdamW's norm scratch and the generator's small
// per-token plans are the difference.
describe("a stage's memory before it starts", () => {
  it('GRPO (with and without a reference, with a reward model) and PPO, LoRA on gpt2-tiny', async () => {
    const { GRPO_DEFAULTS, GrpoTrainer } = await import('../src/train/grpo.ts');
    const { PpoTrainer, PPO_DEFAULTS } = await import('../src/train/ppo.ts');
    const { ScoreHead } = await import('../src/model/head.ts');
    const { stageMemory } = await import('../src/shared/memory.ts');
    const gpu = await testGpu();
    const cfg = parseConfig(JSON.parse(readFileSync('tests/fixtures/gpt2-tiny/config.json', 'utf8')));
    const targets = ['c_attn', 'c_fc', 'c_proj'],
      r = 4,
      P = 2,
      G = 3,
      T = 16;
    const prompts = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    void gpu.none; // made once per device, kept
    const held = async (run: () => Promise<() => void>) => {
      const before = gpu.allocatedBytes;
      const free = await run();
      const bytes = gpu.allocatedBytes - before;
      free();
      expect(gpu.allocatedBytes, 'bytes left after destroy').toBe(before); // uniforms and optimizer scratch too
      return bytes;
    };
    for (const beta of [0, 0.04]) {
      const bytes = await held(async () => {
        const base = new Transformer(gpu, cfg);
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
        await t.trainStep(prompts);
        return () => {
          t.destroy();
          lora.destroy();
          base.params.destroy();
        };
      });
      const e = stageMemory(cfg, { stage: 'grpo', batch: P, seqLen: T, samples: G, loraRank: r, loraTargets: targets, beta, rewardModel: false, promptLen: 3 });
      expect(Math.abs(e.total / bytes - 1), `beta ${beta}: estimated ${e.total}, held ${bytes}`).toBeLessThan(0.1);
      expect('reference' in e.parts).toBe(beta > 0);
    }
    const ppoBytes = await held(async () => {
      const base = new Transformer(gpu, cfg);
      const mk = (opt: boolean) => new LoraSet(base, { r, alpha: 8, dropout: 0, targets }, { optimizer: opt });
      const policy = mk(true),
        value = mk(true),
        rm = mk(false),
        rmHead = new ScoreHead(base),
        valueHead = new ScoreHead(base, { optimizer: true });
      const t = await PpoTrainer.create(
        {
          policy: { model: base, lora: policy },
          reference: { model: base },
          reward: { model: base, lora: rm, head: rmHead },
          value: { model: base, lora: value, head: valueHead },
        },
        { ...PPO_DEFAULTS, promptsPerStep: P, numSamples: G, maxNewTokens: T - 3, seqLen: T, padId: 0, eosIds: [] },
      );
      await t.trainStep(prompts);
      return () => {
        t.destroy();
        for (const x of [policy, value, rm]) x.destroy();
        rmHead.destroy();
        valueHead.destroy();
        base.params.destroy();
      };
    });
    const ppo = stageMemory(cfg, {
      stage: 'ppo',
      batch: P,
      seqLen: T,
      samples: G,
      loraRank: r,
      loraTargets: targets,
      beta: 0,
      rewardModel: true,
      promptLen: 3,
    });
    expect(Math.abs(ppo.total / ppoBytes - 1), `PPO: estimated ${ppo.total}, held ${ppoBytes}`).toBeLessThan(0.1);
    const grpo = stageMemory(cfg, { stage: 'grpo', batch: P, seqLen: T, samples: G, loraRank: r, loraTargets: targets, beta: 0, rewardModel: false });
    expect(ppo.total).toBeGreaterThan(grpo.total);
  });

  it("a reward model's parts are each >= 0 (full and LoRA), the score head counted apart from the trained model", async () => {
    const { stageMemory } = await import('../src/shared/memory.ts');
    for (const name of ['gpt2-tiny', 'llama-tiny']) {
      const cfg = parseConfig(JSON.parse(readFileSync(`tests/fixtures/${name}/config.json`, 'utf8')));
      for (const loraRank of [0, 4]) {
        const e = stageMemory(cfg, { stage: 'rm', batch: 2, seqLen: 16, samples: 3, loraRank, beta: 0, rewardModel: false });
        for (const [part, bytes] of Object.entries(e.parts)) expect(bytes, `${name} rank ${loraRank}: ${part}`).toBeGreaterThanOrEqual(0);
        expect(e.parts.head).toBeGreaterThan(0);
        expect(e.total).toBe(Object.values(e.parts).reduce((a, b) => a + b, 0));
        // the head replaces the LM head's logits: the run holds less than a policy's training plan of the same rows
        const sft = stageMemory(cfg, { stage: 'sft', batch: 6, seqLen: 16, samples: 1, loraRank, beta: 0, rewardModel: false });
        expect(e.total).toBeLessThan(sft.total);
      }
    }
  });
});

describe('what is made is freed', () => {
  it('a plan and a stage give back every byte they allocated, their uniform buffers and optimizer scratch included', async () => {
    const { buildStage } = await import('../src/train/stages.ts');
    const { resolveConfig } = await import('../src/shared/config.ts');
    const { Tok } = await import('../src/io/tokenizer.ts');
    const gpu = await testGpu();
    const dir = 'tests/fixtures/llama-tiny';
    const files = await readModelFolder(dir);
    const tok = Tok.fromJson(files.tokenizer, files.tokenizerConfig, `${dir}/tokenizer.json`);
    void gpu.none; // made once per device, kept
    const empty = gpu.allocatedBytes;
    const { model: base } = loadModel(gpu, files);
    const made: GPUBuffer[] = [];
    const buffer = gpu.buffer.bind(gpu);
    gpu.buffer = (...a) => {
      const b = buffer(...a);
      made.push(b);
      return b;
    };
    let before = gpu.allocatedBytes;
    const plan = await base.plan(2, 16);
    expect(made.some((b) => b.usage & GPUBufferUsage.UNIFORM)).toBe(true);
    plan.destroy();
    plan.destroy(); // twice is once
    expect(gpu.allocatedBytes).toBe(before);
    const records = [
      { kind: 'completion' as const, prompt: 'Hi', completion: 'Hello there' },
      { kind: 'preference' as const, prompt: 'Hi', chosen: 'Hello there', rejected: 'No' },
    ];
    for (const stage of ['sft', 'rm', 'dpo'] as const) {
      before = gpu.allocatedBytes;
      const run = await buildStage({ gpu, files, tok, base }, stage, resolveConfig(stage, { batchSize: 1, seqLen: 16, steps: 1 }, base.cfg), records);
      await run.step(0);
      run.destroy();
      expect(gpu.allocatedBytes, stage).toBe(before);
    }
    // the model: its weights and its RoPE table, once however often it is asked
    expect(base.ropeTable).toBeDefined();
    base.destroy();
    base.destroy();
    expect(base.ropeTable).toBeUndefined();
    expect(gpu.allocatedBytes).toBe(empty);
  });
});

describe('error scopes', () => {
  it('name the check whose work failed when checks overlap (the Rank tab sampling beside a training step)', async () => {
    const gpu = await testGpu();
    // MAP_READ goes only with COPY_DST: a validation error
    const bad = () => gpu.device.createBuffer({ label: 'invalid', size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE }).destroy();
    const [good, failed] = await Promise.allSettled([gpu.check('good', () => 1), gpu.check('bad', bad)]);
    expect(good).toEqual({ status: 'fulfilled', value: 1 });
    expect(failed.status === 'rejected' && (failed.reason as Error).message).toMatch(/^bad: GPU validation error/);
    // work that awaits: the second waits for the first, so each scope holds its own work
    const slow = gpu.checkAsync('slow good', async () => {
      await new Promise((r) => setTimeout(r, 20));
      return 2;
    });
    const asyncBad = gpu.checkAsync('bad async', async () => bad());
    const [s, b] = await Promise.allSettled([slow, asyncBad]);
    expect(s).toEqual({ status: 'fulfilled', value: 2 });
    expect(b.status === 'rejected' && (b.reason as Error).message).toMatch(/^bad async: GPU validation error/);
    // a synchronous check's work inside an asynchronous one is its own
    const outer = await gpu.checkAsync('outer', async () => {
      await expect(gpu.check('inner bad', bad)).rejects.toThrow(/^inner bad: GPU validation error/);
      await new Promise((r) => setTimeout(r, 5));
      return 3;
    });
    expect(outer).toBe(3);
    // a promise handed to check is refused, not checked halfway
    await expect(gpu.check('async in check', (async () => 4) as unknown as () => number)).rejects.toThrow(/use checkAsync/);
    // and nothing is left on the scope stack: a later check sees only its own work
    await expect(gpu.check('after', () => 5)).resolves.toBe(5);
  });
});
