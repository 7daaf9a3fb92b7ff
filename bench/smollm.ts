// The bench's section for a model users actually train: a SmolLM2-135M-shaped Llama (30 layers, 576 wide,
// 9 query and 3 key/value heads, vocabulary 49152, tied embedding; random weights) with LoRA r 8 on every
// projection, as the playground trains it. One LoRA SFT step, one PPO iteration (policy, value and
// reward adapters on one frozen base; the base is the reference) and one GRPO iteration (a rule reward),
// each timed after a warm-up step, with tokens/s and the GPU memory the setup and its step hold beyond the
// base weights (allocated bytes, every plan and KV cache included).
import type { Gpu } from '../src/gpu/runtime.ts';
import { parseConfig } from '../src/shared/model-config.ts';
import { ScoreHead } from '../src/model/head.ts';
import { initWeights } from '../src/model/init.ts';
import { LoraSet, LORA_DEFAULTS } from '../src/model/lora.ts';
import { Transformer } from '../src/model/transformer.ts';
import { ADAMW_DEFAULTS } from '../src/train/adamw.ts';
import { GRPO_DEFAULTS, GrpoTrainer } from '../src/train/grpo.ts';
import { PPO_DEFAULTS, PpoTrainer } from '../src/train/ppo.ts';
import { Rng } from '../src/shared/sampling.ts';
import { SftTrainer, sftBatch } from '../src/train/sft.ts';

/** SmolLM2-135M's shape (30 layers, 576 wide, 9/3 heads, vocab 49152), random weights. */
export const SMOLLM2_135M = () =>
  parseConfig({
    model_type: 'llama',
    vocab_size: 49152,
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    tie_word_embeddings: true,
  });

export interface SmolRow {
  name: string;
  ms: number;
  tokens: number;
  tokens_per_s: number;
  /** GPU bytes held beyond the base weights: adapters, heads, AdamW moments, plans, KV cache */
  memory_bytes: number;
  setting: string;
}

export async function benchSmolLM2(gpu: Gpu, log: (s: string) => void, quick: boolean): Promise<{ base_weights_bytes: number; rows: SmolRow[] }> {
  const cfg = SMOLLM2_135M();
  const before = gpu.allocatedBytes;
  const base = new Transformer(gpu, cfg);
  initWeights(base, 3);
  const baseBytes = gpu.allocatedBytes - before;
  const rng = new Rng(5);
  const toks = (n: number) => Array.from({ length: n }, () => 1 + Math.floor(rng.next() * (cfg.vocabSize - 2)));
  const lcfg = { ...LORA_DEFAULTS.llama, dropout: 0 };
  const opt = { ...ADAMW_DEFAULTS, lr: 1e-4, warmupSteps: 0, totalSteps: 100, minLrRatio: 1 };
  const rows: SmolRow[] = [];
  const reps = quick ? 1 : 2;
  /** Times `step` (after one warm-up call), and the bytes allocated from before `setup` to after the steps. */
  const measure = async <T>(name: string, setting: string, setup: () => Promise<T>, step: (t: T, i: number) => Promise<number>, free: (t: T) => void) => {
    const at = gpu.allocatedBytes;
    const t = await setup();
    await step(t, 0);
    let ms = 0,
      tokens = 0;
    for (let i = 1; i <= reps; i++) {
      const t0 = performance.now();
      tokens += await step(t, i);
      ms += performance.now() - t0;
    }
    const row: SmolRow = {
      name,
      ms: Math.round(ms / reps),
      tokens: tokens / reps,
      tokens_per_s: Number((tokens / (ms / 1000)).toFixed(1)),
      memory_bytes: gpu.allocatedBytes - at,
      setting,
    };
    free(t);
    log(`smollm2-135m ${name}: ${row.ms} ms, ${row.tokens_per_s} tok/s, ${(row.memory_bytes / 2 ** 20).toFixed(0)} MiB beyond the base`);
    rows.push(row);
  };

  // LoRA SFT: 4 rows of 16 prompt + 48 completion tokens
  const B = 4,
    P = 16,
    C = 48;
  await measure(
    'lora sft step',
    `LoRA r 8 on every projection, batch ${B} x ${P + C} tokens`,
    async () => {
      const lora = new LoraSet(base, lcfg, { optimizer: true });
      lora.init(1);
      return { lora, t: await SftTrainer.create(base, { ...opt, batchSize: B, seqLen: P + C, accumulation: 1 }, lora) };
    },
    async ({ t }) => {
      const r = await t.trainStep([
        sftBatch(
          Array.from({ length: B }, () => ({ prompt: toks(P), completion: toks(C) })),
          B,
          P + C,
          0,
        ),
      ]);
      return B * (P + C) * (r.tokens > 0 ? 1 : 0);
    },
    ({ lora, t }) => {
      t.destroy();
      lora.destroy();
    },
  );

  // PPO and GRPO: 2 prompts of 16 tokens x 4 samples of 16 new tokens; one pass over one minibatch (PPO)
  const prompts = [toks(16), toks(16)],
    NEW = 16,
    T = 16 + NEW;
  await measure(
    'ppo iteration',
    `2 prompts x 4 samples of ${NEW} tokens, 1 pass of 1 minibatch; policy, value and reward LoRA on one base`,
    async () => {
      const policy = new LoraSet(base, lcfg, { optimizer: true }),
        value = new LoraSet(base, lcfg, { optimizer: true }),
        rm = new LoraSet(base, lcfg);
      for (const [i, l] of [policy, value, rm].entries()) l.init(10 + i);
      const rmHead = new ScoreHead(base),
        valueHead = new ScoreHead(base, { optimizer: true });
      rmHead.init(1);
      valueHead.init(1);
      const t = await PpoTrainer.create(
        {
          policy: { model: base, lora: policy },
          reference: { model: base },
          reward: { model: base, lora: rm, head: rmHead },
          value: { model: base, lora: value, head: valueHead },
        },
        { ...PPO_DEFAULTS, promptsPerStep: 2, numSamples: 4, maxNewTokens: NEW, seqLen: T, minibatches: 1, ppoEpochs: 1, padId: 0, eosIds: [], seed: 1 },
      );
      return {
        t,
        free: () => {
          t.destroy();
          rmHead.destroy();
          valueHead.destroy();
          for (const l of [policy, value, rm]) l.destroy();
        },
      };
    },
    async ({ t }) => {
      const r = await t.trainStep(prompts);
      return 8 * (16 + r['objective/response_length']);
    },
    ({ free }) => free(),
  );

  await measure(
    'grpo iteration',
    `2 prompts x 4 samples of ${NEW} tokens, beta 0, 1 iteration; a rule reward (fewer tokens is better)`,
    async () => {
      const policy = new LoraSet(base, lcfg, { optimizer: true });
      policy.init(20);
      const t = await GrpoTrainer.create(
        { model: base, lora: policy },
        undefined,
        [{ name: 'short', score: async (rs) => rs.map((r) => -r.response.length) }],
        {
          ...GRPO_DEFAULTS,
          ...opt,
          method: 'grpo',
          numGenerations: 4,
          promptsPerStep: 2,
          maxCompletionLength: NEW,
          seqLen: T,
          padId: 0,
          eosIds: [],
          seed: 1,
        },
      );
      return { t, policy };
    },
    async ({ t }) => {
      const r = await t.trainStep(prompts);
      return r.rows.reduce((s, x) => s + x.prompt.length + x.completion.length, 0);
    },
    ({ t, policy }) => {
      t.destroy();
      policy.destroy();
    },
  );

  base.params.destroy();
  return { base_weights_bytes: baseBytes, rows };
}

export interface F16Row {
  /** 'f32' or 'f16': how the frozen base stores its linear weights */
  base: 'f32' | 'f16';
  ms: number;
  tokens_per_s: number;
  /** GPU bytes of the base weights, and what the step holds beyond them (adapter, moments, plan) */
  base_bytes: number;
  memory_bytes: number;
  setting: string;
  error?: string;
}

/**
 * The LoRA SFT step of the SmolLM2-135M-shaped model on an f32 base and on an f16 base (its linear weights
 * in f16 where the adapter has 'shader-f16': Transformer's frozenF16), the same random weights and batches,
 * one after the other in the same run: time (after a warm-up step) and GPU bytes of each.
 */
export async function benchF16Sft(gpu: Gpu, log: (s: string) => void, quick: boolean): Promise<F16Row[]> {
  const cfg = SMOLLM2_135M(),
    B = 4,
    P = 16,
    C = 48,
    reps = quick ? 1 : 2;
  const setting = `LoRA r 8 on every projection, batch ${B} x ${P + C} tokens`;
  const rows: F16Row[] = [];
  for (const half of [false, true]) {
    const name = half ? 'f16' : 'f32';
    if (half && !gpu.f16Weights) {
      rows.push({
        base: name,
        ms: 0,
        tokens_per_s: 0,
        base_bytes: 0,
        memory_bytes: 0,
        setting,
        error: "this adapter has no 'shader-f16' (or it was turned off)",
      });
      continue;
    }
    const rng = new Rng(5);
    const toks = (n: number) => Array.from({ length: n }, () => 1 + Math.floor(rng.next() * (cfg.vocabSize - 2)));
    const before = gpu.allocatedBytes;
    const base = new Transformer(gpu, cfg, { frozenF16: half });
    initWeights(base, 3);
    const baseBytes = gpu.allocatedBytes - before;
    const lora = new LoraSet(base, { ...LORA_DEFAULTS.llama, dropout: 0 }, { optimizer: true });
    lora.init(1);
    const t = await SftTrainer.create(
      base,
      { ...ADAMW_DEFAULTS, lr: 1e-4, warmupSteps: 0, totalSteps: 100, minLrRatio: 1, batchSize: B, seqLen: P + C, accumulation: 1 },
      lora,
    );
    const step = () =>
      t.trainStep([
        sftBatch(
          Array.from({ length: B }, () => ({ prompt: toks(P), completion: toks(C) })),
          B,
          P + C,
          0,
        ),
      ]);
    await step();
    let ms = 0;
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await step();
      ms += performance.now() - t0;
    }
    const row: F16Row = {
      base: name,
      ms: Math.round(ms / reps),
      tokens_per_s: Number(((B * (P + C) * reps) / (ms / 1000)).toFixed(1)),
      base_bytes: baseBytes,
      memory_bytes: gpu.allocatedBytes - before - baseBytes,
      setting,
    };
    t.destroy();
    lora.destroy();
    base.params.destroy();
    log(
      `smollm2-135m lora sft step, ${name} base: ${row.ms} ms, ${row.tokens_per_s} tok/s, base ${(baseBytes / 2 ** 20).toFixed(0)} MiB + ${(row.memory_bytes / 2 ** 20).toFixed(0)} MiB`,
    );
    rows.push(row);
  }
  return rows;
}
