// GRPO and RLOO on real WebGPU: the policy-gradient loss against finite differences through the whole
// model, and a verifiable (rule) reward that rises within a few steps while the KL to the reference is
// reported.
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/io/folder.ts';
import { loadModel } from '../src/model/index.ts';
import { LoraSet } from '../src/model/lora.ts';
import { GRPO_DEFAULTS, GrpoTrainer, type GrpoConfig, type RewardScorer, type Rollout } from '../src/train/grpo.ts';
import type { PgRow } from '../src/train/grpo-math.ts';
import { Rng } from '../src/shared/sampling.ts';
import { dot, testGpu } from './helpers/gpu.ts';
import { randn } from './ref/ops.ts';

const base: Omit<GrpoConfig, 'method'> = {
  ...GRPO_DEFAULTS,
  weightDecay: 0,
  totalSteps: 100,
  numGenerations: 4,
  promptsPerStep: 4,
  maxCompletionLength: 8,
  seqLen: 16,
  padId: 376,
  eosIds: [],
  seed: 3,
};

describe('GRPO / RLOO gradients', () => {
  it('the loss of every method matches finite differences through the model', async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'));
    const lora = new LoraSet(model, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'down_proj'] }, { optimizer: true });
    lora.init(1);
    for (const m of lora.modules.values()) lora.params.upload(`${m.module}.lora_B.weight`, Float32Array.from(randn(m.Out * 4, 51, 0.2)));
    const rng = new Rng(8);
    const tok = () => Math.floor(rng.next() * 370);
    const rs: Rollout[] = Array.from({ length: 4 }, (_, i) => ({
      prompt: [tok(), tok(), tok()],
      response: Array.from({ length: 3 + (i % 3) }, tok),
      finish: 'eos',
      entropy: [],
    }));
    const none: RewardScorer = { name: 'none', score: async (x) => x.map(() => 0) };
    for (const [method, extra] of [
      ['grpo', { lossType: 'grpo' }],
      ['grpo', { lossType: 'dr_grpo', beta: 0.1 }],
      ['rloo', {}],
    ] as const) {
      const t = await GrpoTrainer.create({ model, lora }, model, [none], {
        ...base,
        ...extra,
        method,
        promptsPerStep: 2,
        numGenerations: 2,
        seqLen: 12,
        maxCompletionLength: 5,
      });
      // "old" and reference log-probs a little off the current ones, so some ratios clip and most do not
      const now = await t.lossPass(rs, (logp) => logp.map((l) => ({ logp: l, old: l, ref: l, advantage: 0 })));
      expect(now.loss).toBe(0);
      const rowsOf = (logp: number[][]): PgRow[] =>
        logp.map((l, i) => ({
          logp: l,
          advantage: Math.cos(3 * i + 1),
          old: l.map((_, k) => -5.9 + 0.3 * Math.sin(i + 2 * k)),
          ref: l.map((_, k) => -5.9 + 0.2 * Math.cos(i + k)),
        }));
      const name = 'model.layers.1.self_attn.v_proj.lora_A.weight';
      const lossAt = async () => (await t.lossPass(rs, rowsOf)).loss;
      const l0 = await lossAt();
      expect(l0).not.toBe(0);
      const w0 = await lora.params.download(name),
        g = await lora.params.download(name, 'grad');
      const u = randn(w0.length, 12),
        n = Math.sqrt(dot(u, u)),
        eps = 1e-2;
      const at = async (s: number) => {
        lora.params.upload(
          name,
          Float32Array.from(w0, (v, i) => v + (s * eps * u[i]!) / n),
        );
        return lossAt();
      };
      const num = ((await at(1)) - (await at(-1))) / (2 * eps);
      lora.params.upload(name, w0);
      expect(Math.abs(num - dot(g, u) / n), `${method} ${JSON.stringify(extra)}: ${num} vs ${dot(g, u) / n}`).toBeLessThan(
        3e-3 * Math.max(0.1, Math.abs(num)) + 1e-5,
      );
      t.destroy();
    }
    lora.destroy();
    model.params.destroy();
  });
});

describe('mask_truncated_completions', () => {
  it('leaves completions cut at the length limit out of the loss: all cut, no gradient at all', async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/gpt2-tiny'));
    const lora = new LoraSet(model, { r: 4, alpha: 8, dropout: 0, targets: ['c_attn'] }, { optimizer: true });
    lora.init(1);
    const varied: RewardScorer = { name: 'varied', score: async (rs) => rs.map((r) => r.response[0]! / 376) };
    for (const mask of [false, true]) {
      const t = await GrpoTrainer.create({ model, lora }, undefined, [varied], {
        ...base,
        method: 'grpo',
        promptsPerStep: 2,
        numGenerations: 2,
        maxCompletionLength: 4,
        maskTruncatedCompletions: mask,
      });
      const s = await t.trainStep([
        [1, 2, 3],
        [4, 5, 6],
      ]); // no stop tokens: every completion runs to the limit
      expect(s.metrics['completions/clipped_ratio']).toBe(1);
      if (mask) expect([s.metrics.loss, s.metrics.grad_norm]).toEqual([0, 0]);
      else expect(s.metrics.grad_norm).toBeGreaterThan(0);
      t.destroy();
    }
    lora.destroy();
    model.params.destroy();
  });
});

describe('GRPO / RLOO learn a verifiable reward', () => {
  // the rule: shorter is better (1 for one token, 0 for all 8). The stop tokens are ids the fixture model
  // emits often (its greedy output repeats 185), so lengths vary from the start and it can learn to end earlier.
  const low: RewardScorer = { name: 'short', score: async (rs) => rs.map((r) => (8 - r.response.length) / 7) };
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const [method, extra] of [
    ['grpo', { beta: 0.04 }],
    ['rloo', { numGenerations: 2, promptsPerStep: 8, beta: 0.05 }],
  ] as const) {
    it(`${method}: the reward rises, the KL to the reference is reported`, async () => {
      const gpu = await testGpu();
      const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/gpt2-tiny'));
      const lora = new LoraSet(model, { r: 8, alpha: 16, dropout: 0, targets: ['c_attn', 'c_fc', 'c_proj'] }, { optimizer: true });
      lora.init(2);
      const cfg: GrpoConfig = { ...base, ...extra, method, lr: 5e-3, eosIds: [185, 337, 325] };
      const t = await GrpoTrainer.create({ model, lora }, model, [low], cfg);
      const rng = new Rng(21);
      const prompts = Array.from({ length: cfg.promptsPerStep }, () => Array.from({ length: 4 }, () => Math.floor(rng.next() * 376)));
      const steps = [];
      for (let i = 0; i < 12; i++) steps.push(await t.trainStep(prompts));
      const trace = steps.map((s) => `${s.metrics.reward!.toFixed(2)}/${s.metrics.kl!.toFixed(3)}`).join(' ');
      const early = mean(steps.slice(0, 3).map((s) => s.metrics.reward!)),
        late = mean(steps.slice(-3).map((s) => s.metrics.reward!));
      expect(late, `reward/kl per step: ${trace}`).toBeGreaterThan(early + 0.15);
      expect(Math.abs(steps[0]!.metrics.kl!)).toBeLessThan(1e-3); // the adapter starts at zero: policy = reference
      expect(steps.at(-1)!.metrics.kl!, trace).toBeGreaterThan(0);
      const last = steps.at(-1)!;
      for (const k of [
        'reward',
        'reward_std',
        'rewards/short/mean',
        'rewards/short/std',
        'entropy',
        'clip_ratio/region_mean',
        'completions/mean_length',
        'frac_reward_zero_std',
        'grad_norm',
        'learning_rate',
      ]) {
        expect(Number.isFinite(last.metrics[k]), k).toBe(true);
      }
      expect(last.rows.length).toBe(cfg.promptsPerStep * cfg.numGenerations);
      expect(last.rows[0]!.rewards).toHaveLength(1);
      expect(last.metrics.early_stop).toBe(0);
      t.destroy();
      // TRL's early stopping with num_iterations 3: the first update is on-policy (approx KL 0); the second
      // pass finds the policy moved more than 1.5 x target_kl from the one that sampled, so it and the third
      // are skipped; without the guard all three run
      for (const early_stopping of [true, false]) {
        const g = await GrpoTrainer.create({ model, lora }, model, [low], { ...cfg, numIterations: 3, earlyStopping: early_stopping, targetKl: 1e-8 });
        const seen: number[] = [];
        const out = await g.trainStep(prompts, (p) => void (p.phase === 'updating' && seen.push(p.done)));
        expect([out.metrics.early_stop, seen], `early_stopping ${early_stopping}`).toEqual(early_stopping ? [1, [0, 1]] : [0, [0, 1, 2]]);
        g.destroy();
      }
      lora.destroy();
      model.params.destroy();
    });
  }
});
