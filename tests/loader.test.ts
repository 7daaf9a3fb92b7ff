// Checkpoint layouts real Hub models use, and the paths that split tensors larger than one binding.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createNodeGpu } from '../src/gpu/node.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { parseSafetensors, readTensorF32, writeSafetensors, type SafetensorsFile } from '../src/io/safetensors.ts';
import { ConfigError, paramSpecs, parseConfig } from '../src/shared/model-config.ts';
import { ScoreHead } from '../src/model/head.ts';
import { exportModelFiles } from '../src/model/export.ts';
import { loadModel } from '../src/model/index.ts';
import { AdamW, ADAMW_DEFAULTS } from '../src/train/adamw.ts';
import { relErr, testGpu } from './helpers/gpu.ts';
import { attention, embedding, matmul, randn, rmsnorm, rope, swiglu } from './ref/ops.ts';

const fixture = (name: string) => {
  const dir = `tests/fixtures/${name}`;
  const config = JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')) as Record<string, unknown>;
  const st = parseSafetensors(readFileSync(`${dir}/model.safetensors`), `${name}/model.safetensors`);
  const ref = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as { input_ids: number[][]; logits: number[][][] };
  const tensors = [...st.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, data: readTensorF32(st, t.name) }));
  return { config, st, ref, tensors };
};

const rewrite = (tensors: { name: string; shape: number[]; data: Float32Array }[], file = 'variant.safetensors'): SafetensorsFile =>
  parseSafetensors(writeSafetensors(tensors), file);

async function logitsOf(gpu: Gpu, config: unknown, weights: SafetensorsFile[], ids: number[][]): Promise<Float32Array> {
  const { model } = loadModel(gpu, { config, weights });
  const plan = await model.plan(ids.length, ids[0]!.length);
  plan.setBatch(ids.flat());
  await gpu.check('logits', () => gpu.run(plan.forward));
  const out = await plan.readLogits();
  plan.destroy();
  model.params.destroy();
  return out;
}

describe('checkpoint layouts', () => {
  it('GPT-2 as openai-community/gpt2 stores it: no prefix, attn.bias mask buffers, a copy of the tied head', async () => {
    const gpu = await testGpu();
    const { config, ref, tensors } = fixture('gpt2-tiny');
    const variant = tensors.map((t) => ({ ...t, name: t.name.replace(/^transformer\./, '') }));
    for (let l = 0; l < 2; l++) variant.push({ name: `h.${l}.attn.bias`, shape: [1, 1, 4, 4], data: new Float32Array(16).fill(1) });
    variant.push({ name: 'lm_head.weight', shape: [377, 48], data: tensors.find((t) => t.name === 'transformer.wte.weight')!.data });
    const got = await logitsOf(gpu, config, [rewrite(variant)], ref.input_ids);
    expect(relErr(got, ref.logits.flat(2))).toBeLessThan(1e-4);
  });

  it('Llama with tied embeddings (as SmolLM2) equals the untied model whose head is the embedding', async () => {
    const gpu = await testGpu();
    const { config, st, ref, tensors } = fixture('llama-tiny');
    const embed = tensors.find((t) => t.name === 'model.embed_tokens.weight')!;
    const untied = tensors.map((t) => (t.name === 'lm_head.weight' ? { ...t, data: embed.data } : t));
    const tied = tensors.filter((t) => t.name !== 'lm_head.weight');
    const a = await logitsOf(gpu, config, [rewrite(untied)], ref.input_ids);
    const b = await logitsOf(gpu, { ...config, tie_word_embeddings: true }, [rewrite(tied)], ref.input_ids);
    expect(relErr(b, a)).toBeLessThan(1e-6);
    // and the untouched fixture still matches PyTorch through this path
    expect(relErr(await logitsOf(gpu, config, [st], ref.input_ids), ref.logits.flat(2))).toBeLessThan(1e-4);
  });

  it('a *ForSequenceClassification folder (a reward model) loads its trunk: score.weight apart, no LM head, tied or not', async () => {
    const gpu = await testGpu();
    for (const [name, cls] of [
      ['llama-tiny', 'LlamaForSequenceClassification'],
      ['gpt2-tiny', 'GPT2ForSequenceClassification'],
    ] as const) {
      const { config, st, ref, tensors } = fixture(name);
      const C = Number(config.hidden_size ?? config.n_embd);
      const w = Float32Array.from({ length: C }, (_, i) => Math.sin(i + 1));
      const folder = [...tensors.filter((t) => t.name !== 'lm_head.weight'), { name: 'score.weight', shape: [1, C], data: w }];
      const seqCls = { ...config, architectures: [cls], num_labels: 1, id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 }, pad_token_id: 376 };
      const rm = loadModel(gpu, { config: seqCls, weights: [rewrite(folder, 'rm.safetensors')] });
      expect(rm.model.cfg.sequenceClassification).toBe(true);
      expect(rm.score).toEqual({ file: 'rm.safetensors', shape: [1, C], data: w });
      if (!rm.model.cfg.tiedEmbeddings)
        expect(
          (await rm.model.params.download('lm_head.weight')).every((v) => v === 0),
          `${name}: lm_head`,
        ).toBe(true);
      // the trunk is the causal model's: a score head on each gives the same scores
      const causal = loadModel(gpu, { config, weights: [st] });
      const scores = async (m: typeof rm) => {
        const head = new ScoreHead(m.model);
        head.params.upload('score.weight', w);
        const plan = await m.model.plan(ref.input_ids.length, ref.input_ids[0]!.length, { score: head });
        plan.setBatch(ref.input_ids.flat());
        await gpu.check('scores', () => gpu.run(plan.forward));
        const out = await gpu.read(plan.scores!);
        plan.destroy();
        head.destroy();
        m.model.params.destroy();
        return out;
      };
      expect(await scores(rm), name).toEqual(await scores(causal));
      // a causal-LM config does not take a score head
      expect(() => loadModel(gpu, { config, weights: [rewrite(folder, 'x.safetensors')] })).toThrow(
        /x\.safetensors: tensor "score\.weight" is not a parameter/,
      );
    }
  });

  it('names the tensor that is missing, unexpected or of the wrong shape', async () => {
    const gpu = await testGpu();
    const { config, tensors } = fixture('gpt2-tiny');
    const load = (t: typeof tensors) => () => loadModel(gpu, { config, weights: [rewrite(t, 'x.safetensors')] });
    expect(load(tensors.filter((t) => t.name !== 'transformer.h.1.mlp.c_fc.bias'))).toThrow(/x\.safetensors: missing tensor "h\.1\.mlp\.c_fc\.bias"/);
    expect(load([...tensors, { name: 'transformer.h.0.attn.q_proj.weight', shape: [1], data: new Float32Array(1) }])).toThrow(
      /x\.safetensors: tensor "transformer\.h\.0\.attn\.q_proj\.weight" is not a parameter/,
    );
    expect(load(tensors.map((t) => (t.name === 'transformer.ln_f.bias' ? { ...t, shape: [6, 8] } : t)))).toThrow(
      /tensor "transformer\.ln_f\.bias" has shape \[6,8\], the config implies \[48\]/,
    );
  });
});

describe('Qwen configs as the Hub writes them', () => {
  // Qwen/Qwen2.5-0.5B and Qwen/Qwen3-0.6B's config.json, as published
  const qwen25 = {
    architectures: ['Qwen2ForCausalLM'],
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151643,
    hidden_act: 'silu',
    hidden_size: 896,
    initializer_range: 0.02,
    intermediate_size: 4864,
    max_position_embeddings: 32768,
    max_window_layers: 24,
    model_type: 'qwen2',
    num_attention_heads: 14,
    num_hidden_layers: 24,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    sliding_window: 32768,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: 151936,
  };
  const qwen3 = {
    architectures: ['Qwen3ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151645,
    head_dim: 128,
    hidden_act: 'silu',
    hidden_size: 1024,
    initializer_range: 0.02,
    intermediate_size: 3072,
    max_position_embeddings: 40960,
    max_window_layers: 28,
    model_type: 'qwen3',
    num_attention_heads: 16,
    num_hidden_layers: 28,
    num_key_value_heads: 8,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 1000000,
    sliding_window: null,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: 151936,
  };
  const shapes = (cfg: ReturnType<typeof parseConfig>) => new Map(paramSpecs(cfg).map((s) => [s.name, s.shape]));

  it('Qwen2.5: biases on q/k/v and none on o, tied, the sliding-window fields ignored while use_sliding_window is false', () => {
    const c = parseConfig(qwen25);
    expect([c.arch, c.headDim, c.kvHeads, c.tiedEmbeddings, c.qkvBias, c.oBias, c.qkNorm, c.ropeTheta]).toEqual([
      'llama',
      64,
      2,
      true,
      true,
      false,
      false,
      1e6,
    ]);
    const p = shapes(c);
    expect(p.get('model.layers.23.self_attn.q_proj.bias')).toEqual([896]);
    expect(p.get('model.layers.0.self_attn.k_proj.bias')).toEqual([128]);
    expect(p.get('model.layers.0.self_attn.v_proj.bias')).toEqual([128]);
    expect(p.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);
    expect(p.has('lm_head.weight')).toBe(false);
    // Qwen2 has no attention_bias field: transformers' Qwen2Attention hard-codes the biases
    expect(parseConfig({ ...qwen25, attention_bias: false }).qkvBias).toBe(true);
  });

  it('Qwen3: head_dim from the config (not hidden / heads), q_norm and k_norm [head_dim], attention_bias on all four projections', () => {
    const c = parseConfig(qwen3);
    expect([c.headDim, c.heads * c.headDim, c.hidden, c.qkNorm, c.qkvBias, c.oBias]).toEqual([128, 2048, 1024, true, false, false]);
    const p = shapes(c);
    expect(p.get('model.layers.27.self_attn.q_norm.weight')).toEqual([128]);
    expect(p.get('model.layers.27.self_attn.k_norm.weight')).toEqual([128]);
    expect(p.get('model.layers.0.self_attn.q_proj.weight')).toEqual([2048, 1024]);
    expect(p.get('model.layers.0.self_attn.o_proj.weight')).toEqual([1024, 2048]);
    expect(p.has('model.layers.0.self_attn.q_proj.bias')).toBe(false);
    const biased = shapes(parseConfig({ ...qwen3, attention_bias: true }));
    expect(['q', 'k', 'v', 'o'].map((n) => biased.get(`model.layers.0.self_attn.${n}_proj.bias`))).toEqual([[2048], [1024], [1024], [1024]]);
    // Qwen3Config's default, as transformers reads a config without the field
    const { head_dim: _, ...noHeadDim } = qwen3;
    expect(parseConfig(noHeadDim).headDim).toBe(128);
  });

  it('refuses sliding-window attention, naming config.json and the field', () => {
    for (const cfg of [qwen25, qwen3]) {
      expect(() => parseConfig({ ...cfg, use_sliding_window: true }, 'Qwen/config.json')).toThrow(ConfigError);
      expect(() => parseConfig({ ...cfg, use_sliding_window: true }, 'Qwen/config.json')).toThrow(
        /^Qwen\/config\.json: unsupported value of "use_sliding_window": true \(sliding-window attention is not implemented\)$/,
      );
    }
    expect(() => parseConfig({ ...qwen3, head_dim: 15 })).toThrow(/config\.json: head size 15 must be an even integer/);
  });
});

/** The Qwen3 block in float64 from the reference ops (tests/ref/ops.ts): biases on every attention projection when given. */
function qwen3Reference(c: ReturnType<typeof parseConfig>, w: Map<string, Float64Array>, ids: number[][]): Float64Array {
  const B = ids.length,
    T = ids[0]!.length,
    N = B * T,
    C = c.hidden,
    D = c.headDim,
    Hq = c.heads,
    Hkv = c.kvHeads,
    I = c.intermediate;
  const pos = Int32Array.from({ length: N }, (_, i) => i % T);
  const W = (name: string) => w.get(name)!;
  const linear = (x: Float64Array, name: string, out: number, inp: number) =>
    matmul(x, W(`${name}.weight`), w.get(`${name}.bias`) ?? null, N, out, inp, false, true);
  let x = embedding(ids.flat(), W('model.embed_tokens.weight'), null, B, T, C);
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`;
    let h = rmsnorm(x, W(p + 'input_layernorm.weight'), N, C, c.eps).y;
    const q = rope(rmsnorm(linear(h, p + 'self_attn.q_proj', Hq * D, C), W(p + 'self_attn.q_norm.weight'), N * Hq, D, c.eps).y, pos, B, T, Hq, D, c.ropeTheta);
    const k = rope(
      rmsnorm(linear(h, p + 'self_attn.k_proj', Hkv * D, C), W(p + 'self_attn.k_norm.weight'), N * Hkv, D, c.eps).y,
      pos,
      B,
      T,
      Hkv,
      D,
      c.ropeTheta,
    );
    const v = linear(h, p + 'self_attn.v_proj', Hkv * D, C);
    const o = linear(attention(q, k, v, B, T, Hq, Hkv, D, 1 / Math.sqrt(D)).out, p + 'self_attn.o_proj', C, Hq * D);
    x = x.map((xi, i) => xi + o[i]!);
    h = rmsnorm(x, W(p + 'post_attention_layernorm.weight'), N, C, c.eps).y;
    const m = linear(swiglu(linear(h, p + 'mlp.gate_proj', I, C), linear(h, p + 'mlp.up_proj', I, C)), p + 'mlp.down_proj', C, I);
    x = x.map((xi, i) => xi + m[i]!);
  }
  const head = c.tiedEmbeddings ? W('model.embed_tokens.weight') : W('lm_head.weight');
  return matmul(rmsnorm(x, W('model.norm.weight'), N, C, c.eps).y, head, null, N, c.vocabSize, C, false, true);
}

describe('Qwen3 with attention_bias', () => {
  it("biases on q, k, v and o: the engine's logits equal a float64 reference of the Qwen3 block", async () => {
    const gpu = await testGpu();
    const { config, ref, tensors } = fixture('qwen3-tiny');
    const f64 = (ts: typeof tensors) => new Map(ts.map((t) => [t.name, Float64Array.from(t.data)]));
    // the reference composition first reproduces PyTorch's logits of the unbiased fixture
    const plain = qwen3Reference(parseConfig(config), f64(tensors), ref.input_ids);
    expect(relErr(plain, ref.logits.flat(2))).toBeLessThan(1e-5);
    const biased = { ...config, attention_bias: true };
    const cfg = parseConfig(biased);
    const biases = paramSpecs(cfg)
      .filter((s) => s.name.endsWith('_proj.bias'))
      .map((s, i) => ({ name: s.name, shape: s.shape, data: Float32Array.from(randn(s.shape[0]!, 100 + i, 0.5)) }));
    expect(biases.map((b) => b.name.split('.').slice(-2, -1)[0]).sort()).toEqual([
      'k_proj',
      'k_proj',
      'o_proj',
      'o_proj',
      'q_proj',
      'q_proj',
      'v_proj',
      'v_proj',
    ]);
    const want = qwen3Reference(cfg, f64([...tensors, ...biases]), ref.input_ids);
    expect(relErr(want, plain)).toBeGreaterThan(0.05); // the biases change the logits well beyond the tolerance
    const got = await logitsOf(gpu, biased, [rewrite([...tensors, ...biases])], ref.input_ids);
    expect(relErr(got, want)).toBeLessThan(1e-4);
  });
});

describe('RoPE settings as transformers 4 and 5 write them', () => {
  // transformers >= 5 saves {"rope_parameters": {"rope_type": "default", "rope_theta": ...}} instead of a top-level rope_theta
  const v5 = (config: Record<string, unknown>, rope: Record<string, unknown> = { rope_type: 'default', rope_theta: config.rope_theta }) => {
    const { rope_theta: _, rope_scaling: __, ...rest } = config;
    return { ...rest, rope_parameters: rope };
  };

  it('rope_parameters.rope_theta gives the logits of the same theta at the top level (qwen3-tiny, theta 1e6); export keeps it', async () => {
    const gpu = await testGpu();
    const { config, st, ref } = fixture('qwen3-tiny');
    expect(config.rope_theta).toBe(1e6);
    const top = await logitsOf(gpu, config, [st], ref.input_ids);
    expect(relErr(top, ref.logits.flat(2))).toBeLessThan(1e-4);
    const nested = v5(config);
    expect(parseConfig(nested).ropeTheta).toBe(1e6);
    expect(await logitsOf(gpu, nested, [st], ref.input_ids)).toEqual(top);
    // theta matters at these positions: transformers' default (10000) gives other logits
    const { rope_theta: _, ...noTheta } = config;
    expect(relErr(await logitsOf(gpu, noTheta, [st], ref.input_ids), top)).toBeGreaterThan(1e-3);
    // both layouts at once, agreeing, as a config converted by hand may carry them
    expect(parseConfig({ ...nested, rope_theta: 1e6 }).ropeTheta).toBe(1e6);
    // the exported config.json is the one read, rope_parameters included, and reads back to the same theta
    const { model } = loadModel(gpu, { config: nested, weights: [st] });
    const files = await exportModelFiles(model, {
      meta: { producer: 'rlhf-playground', stage: 'base', steps: 0, baseModel: 'qwen3-tiny', date: '2026-01-01T00:00:00Z' },
    });
    model.params.destroy();
    const written = JSON.parse(new TextDecoder().decode(files.get('config.json'))) as Record<string, unknown>;
    expect(written.rope_parameters).toEqual({ rope_type: 'default', rope_theta: 1e6 });
    expect(parseConfig(written).ropeTheta).toBe(1e6);
  });

  it('refuses two thetas that differ, naming the file and both values', () => {
    const { config } = fixture('qwen3-tiny');
    expect(() => parseConfig({ ...v5(config, { rope_type: 'default', rope_theta: 10000 }), rope_theta: 1e6 }, 'Qwen/config.json')).toThrow(
      /^Qwen\/config\.json: "rope_theta" \(1000000\) and "rope_parameters\.rope_theta" \(10000\) differ/,
    );
  });

  it('refuses every rope_type but the default, in rope_parameters or rope_scaling, and a partial rotary factor, by name', () => {
    const { config } = fixture('qwen2-tiny');
    const refuse = (cfg: Record<string, unknown>, field: string) => {
      expect(() => parseConfig(cfg, 'Qwen/config.json')).toThrow(ConfigError);
      expect(() => parseConfig(cfg, 'Qwen/config.json')).toThrow(new RegExp(`^Qwen/config\\.json: unsupported value of "${field.replace('.', '\\.')}": `));
    };
    for (const type of ['yarn', 'linear', 'llama3', 'dynamic', 'longrope']) {
      refuse(v5(config, { rope_type: type, rope_theta: 1e6, factor: 4.0, original_max_position_embeddings: 32768 }), 'rope_parameters.rope_type');
      refuse({ ...config, rope_scaling: { rope_type: type, factor: 4.0 } }, 'rope_scaling.rope_type');
      refuse({ ...config, rope_scaling: { type, factor: 4.0 } }, 'rope_scaling.rope_type'); // transformers 4's older key
    }
    expect(() => parseConfig({ ...config, rope_scaling: { type: 'yarn', factor: 4.0 } })).toThrow(
      /"rope_scaling\.rope_type": "yarn" \(only the default rope is implemented\)$/,
    );
    refuse(v5(config, { rope_type: 'default', rope_theta: 1e6, partial_rotary_factor: 0.5 }), 'rope_parameters.partial_rotary_factor');
    refuse({ ...config, partial_rotary_factor: 0.5 }, 'partial_rotary_factor');
    refuse(v5(config, { full_attention: { rope_type: 'default', rope_theta: 1e6 } }), 'rope_parameters');
    // what the default rope means is accepted in either dict: no rope_type, or "default", a factor of 1
    expect(parseConfig(v5(config, { rope_theta: 1e6, partial_rotary_factor: 1.0 })).ropeTheta).toBe(1e6);
    expect(parseConfig({ ...config, rope_scaling: { rope_type: 'default' } }).ropeTheta).toBe(1e6);
  });
});

describe('tensors larger than one storage binding', () => {
  it('a 64 KiB binding limit (embedding, LM head and optimizer in chunks) gives the same gradients and steps', async () => {
    const { config, st, ref } = fixture('gpt2-tiny');
    const ids = ref.input_ids.flat();
    const B = ref.input_ids.length,
      T = ref.input_ids[0]!.length;
    const train = async (gpu: Gpu) => {
      const { model } = loadModel(gpu, { config, weights: [st] }, { optimizer: true });
      const plan = await model.plan(B, T, { training: true });
      const opt = await AdamW.create(gpu, model.params, { ...ADAMW_DEFAULTS, lr: 3e-3 });
      plan.setBatch(ids);
      const losses: number[] = [];
      for (let step = 1; step <= 6; step++) {
        opt.prepare(step, 3e-3);
        await gpu.check('train step', () => gpu.run([...plan.zeroGrads, ...plan.forward, ...plan.lossFused, ...plan.backward, ...opt.calls]));
        losses.push(await plan.readLoss());
      }
      const wte = await model.params.download('wte.weight');
      const calls = plan.forward.length + plan.backward.length;
      plan.destroy();
      model.params.destroy();
      return { losses, wte, calls };
    };
    const whole = await train(await testGpu());
    const small = await createNodeGpu({ maxBinding: 64 * 1024 });
    const split = await train(small);
    expect(split.calls).toBeGreaterThan(whole.calls); // the split paths really ran
    expect(whole.losses[5]!).toBeLessThan(whole.losses[0]! - 0.3); // training on one batch drives its loss down
    for (let i = 0; i < 6; i++) expect(Math.abs(split.losses[i]! - whole.losses[i]!)).toBeLessThan(1e-5);
    expect(relErr(split.wte, whole.wte)).toBeLessThan(1e-5);
    small.device.destroy();
  });
});
