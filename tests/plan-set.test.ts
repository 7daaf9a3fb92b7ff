// A step costs the tokens it holds (src/model/plan-set.ts): a batch of short rows runs on a plan just long
// enough for them, sharing the full plan's buffers, and computes what the full plan computes for the real
// tokens: the same per-token losses, parameter and adapter gradients, and scores at each row's last token,
// on GPT-2, Llama and Qwen3 (RoPE, q/k norms), with and without LoRA. Then the trainers: an SFT, reward
// model and DPO step on rows of ~12 tokens with seq_len 64 take the same step on plans of 16 as with
// bucketing off (every batch at 64, as before).
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/io/folder.ts';
import { ScoreHead } from '../src/model/head.ts';
import { loadModel } from '../src/model/index.ts';
import { LoraSet } from '../src/model/lora.ts';
import { bucketLengths, PlanSet } from '../src/model/plan-set.ts';
import type { Plan, Transformer } from '../src/model/transformer.ts';
import { ADAMW_DEFAULTS } from '../src/train/adamw.ts';
import { DpoTrainer } from '../src/train/dpo.ts';
import { GRPO_DEFAULTS, GrpoTrainer, ModelReward } from '../src/train/grpo.ts';
import { PPO_DEFAULTS, PpoTrainer } from '../src/train/ppo.ts';
import { layoutRows, narrowRows, rowLength, targetSpans, targetWeights } from '../src/train/layout.ts';
import { RewardTrainer } from '../src/train/reward.ts';
import { Rng } from '../src/shared/sampling.ts';
import { SftTrainer, sftBatch } from '../src/train/sft.ts';
import { expectClose, testGpu } from './helpers/gpu.ts';

const rng = new Rng(11);
const toks = (n: number) => Array.from({ length: n }, () => Math.floor(rng.next() * 370));
// four rows of 5 to 13 tokens (one a padding row), in a batch planned for 64
const SEQS = [
  { prompt: toks(3), completion: toks(9) },
  { prompt: toks(4), completion: toks(1) },
  { prompt: toks(2), completion: toks(11) },
];
const B = 4,
  MAX_T = 64,
  PAD = 376;

describe('plan sets: a step costs the tokens it holds', () => {
  it('buckets: 16, 24, 32, 48, ... below the longest, each at most 1.5x the one before, then the longest', () => {
    expect(bucketLengths(256)).toEqual([16, 24, 32, 48, 64, 96, 128, 192, 256]);
    expect(bucketLengths(48)).toEqual([16, 24, 32, 48]);
    expect(bucketLengths(14)).toEqual([14]);
    expect(bucketLengths(100)).toEqual([16, 24, 32, 48, 64, 96, 100]);
  });

  it("narrows laid-out rows to their targets' span", () => {
    const { ids, targets } = layoutRows(SEQS, B, MAX_T, PAD);
    expect(targetSpans(targets, B, MAX_T)).toEqual([11, 4, 12, 0]);
    const n = narrowRows(ids, B, MAX_T, 16);
    expect(n.length).toBe(B * 16);
    expect([...n.subarray(16, 21)]).toEqual([...SEQS[1]!.prompt, ...SEQS[1]!.completion]);
    expect(() => narrowRows(ids, B, MAX_T, 80)).toThrow(/cannot widen/);
  });

  for (const [name, lora] of [
    ['gpt2-tiny', true],
    ['llama-tiny', false],
    ['qwen3-tiny', true],
  ] as const) {
    it(`${name}${lora ? ' + LoRA' : ''}: the short plan gives the full plan's losses, gradients and scores for the real tokens`, async () => {
      const gpu = await testGpu();
      const { model } = loadModel(gpu, await readModelFolder(`tests/fixtures/${name}`), { optimizer: true });
      const set = lora
        ? new LoraSet(
            model,
            { r: 4, alpha: 8, dropout: 0, targets: name === 'gpt2-tiny' ? ['c_attn', 'c_fc'] : ['q_proj', 'v_proj', 'up_proj'] },
            { optimizer: true },
          )
        : undefined;
      set?.init(5);
      // a nonzero B, so that the adapter changes the forward too
      if (set)
        for (const e of set.params.entries)
          if (e.name.includes('lora_B'))
            set.params.upload(
              e.name,
              Float32Array.from({ length: e.n }, () => 0.05 * (rng.next() - 0.5)),
            );
      const plans = await PlanSet.create(model, B, MAX_T, { training: true, lora: set });
      const short = await plans.fit(SEQS.map((s) => rowLength(s, MAX_T)));
      expect(short.T).toBe(16);
      expect(short.activationBytes).toBe(0); // all of it in the full plan's buffers
      expect(plans.use).toEqual({ batches: 1, positions: B * 16, tokens: 12 + 5 + 13 });
      const trained = set ? set.params : model.params;
      const run = async (plan: Plan) => {
        const { ids, targets } = layoutRows(SEQS, B, plan.T, PAD);
        plan.setBatch(ids, targets, targetWeights(targets));
        await gpu.check('step', () => gpu.run([...plan.zeroGrads, ...plan.forward, ...plan.lossFused, ...plan.backward]));
        const losses = await gpu.read(plan.losses);
        const real = [...targets.keys()].filter((i) => targets[i]! >= 0);
        const grads = await Promise.all(trained.entries.map((e) => trained.download(e.name, 'grad')));
        return { losses: real.map((i) => losses[i]!), grads };
      };
      const full = await run(plans.full),
        cut = await run(short);
      expectClose(cut.losses, full.losses, 1e-5, 1e-5, 'per-token losses');
      trained.entries.forEach((e, i) => expectClose(cut.grads[i]!, full.grads[i]!, 1e-6, 1e-4, `grad ${e.name}`));
      expect(full.grads.some((g) => g.some((x) => x !== 0))).toBe(true);
      plans.destroy();

      // a score head: each row's score at its last token
      const head = new ScoreHead(model);
      head.init(2);
      const scored = await PlanSet.create(model, B, MAX_T, { lora: set, score: head });
      const scores = async (plan: Plan) => {
        const { ids, last } = layoutRows(SEQS, B, plan.T, PAD);
        plan.setBatch(ids);
        await gpu.check('score', () => gpu.run(plan.forward));
        const s = await gpu.read(plan.scores!);
        return last.map((i) => s[i]!);
      };
      const a = await scores(scored.full),
        b = await scores(await scored.fit([13, 5, 12]));
      expectClose(b, a, 1e-5, 1e-5, 'scores');
      scored.destroy();
      head.destroy();
      set?.destroy();
      model.params.destroy();
    });
  }

  it('SFT, reward model and DPO steps on short rows take the step they take at full length, on a quarter of the positions', async () => {
    const gpu = await testGpu();
    const files = await readModelFolder('tests/fixtures/gpt2-tiny');
    const opt = { ...ADAMW_DEFAULTS, lr: 3e-3, warmupSteps: 0, totalSteps: 10, minLrRatio: 1 };
    const after = async (T: number) => {
      const out: Record<string, Float32Array> = {};
      const load = () => loadModel(gpu, files, { optimizer: true }).model;
      const weight = (m: Transformer) => m.params.download('h.1.mlp.c_fc.weight');
      let m = load();
      const sft = await SftTrainer.create(m, { ...opt, batchSize: B, seqLen: T, accumulation: 1 });
      const sr = await sft.trainStep([sftBatch(SEQS, B, T, PAD)]);
      const sftUse = { ...sft.plans.use };
      out.sft = await weight(m);
      // the loss and gradient norm too: Adam's first step is nearly blind to the gradient's scale
      out.sftLoss = Float32Array.of(sr.loss, sr.gradNorm, await sft.evaluate([sftBatch(SEQS, B, T, PAD)]));
      sft.destroy();
      m.params.destroy();
      m = load();
      const head = new ScoreHead(m, { optimizer: true });
      head.init(1);
      const rm = await RewardTrainer.create(m, head, { ...opt, promptsPerStep: 1, maxK: 3, seqLen: T, padId: PAD, epochs: 1, headLrRatio: 1 }, undefined);
      await rm.trainStep([{ prompt: SEQS[0]!.prompt, completions: SEQS.map((s) => s.completion), ranks: [0, 2, 1] }]);
      out.rm = await weight(m);
      out.rmScores = Float32Array.from(await rm.score(SEQS));
      rm.destroy();
      head.destroy();
      m.params.destroy();
      m = load();
      const ref = load();
      const dpo = await DpoTrainer.create(m, { ...opt, beta: 0.1, pairsPerStep: 2, seqLen: T, padId: PAD }, { reference: ref });
      await dpo.trainStep([
        { prompt: SEQS[0]!.prompt, chosen: SEQS[0]!.completion, rejected: SEQS[1]!.completion },
        { prompt: SEQS[2]!.prompt, chosen: SEQS[2]!.completion, rejected: SEQS[0]!.completion },
      ]);
      out.dpo = await weight(m);
      dpo.destroy();
      m.params.destroy();
      ref.params.destroy();
      return { out, sftUse };
    };
    const short = await after(MAX_T);
    PlanSet.bucketing = false; // every batch at seq_len 64, as before plan sets
    const long = await after(MAX_T).finally(() => (PlanSet.bucketing = true));
    expect(short.sftUse).toEqual({ batches: 1, positions: B * 16, tokens: 11 + 4 + 12 });
    expect(long.sftUse).toEqual({ batches: 1, positions: B * MAX_T, tokens: 11 + 4 + 12 });
    for (const k of Object.keys(long.out)) expectClose(short.out[k]!, long.out[k]!, 1e-6, 1e-4, k);
  });

  it('a PPO step (with PPO-ptx) and a GRPO step (full fine-tuning, reward model, value model, reference) take the step they take at full length', async () => {
    const gpu = await testGpu();
    const files = await readModelFolder('tests/fixtures/gpt2-tiny');
    const load = () => loadModel(gpu, files, { optimizer: true }).model;
    const prompts = [toks(4), toks(3)];
    const opt = { ...ADAMW_DEFAULTS, warmupSteps: 0, totalSteps: 10, minLrRatio: 1 };
    const step = async () => {
      const [policy, reference, reward, value] = [load(), load(), load(), load()];
      const rmHead = new ScoreHead(reward),
        vHead = new ScoreHead(value, { optimizer: true });
      rmHead.init(1);
      vHead.init(2);
      const ppo = await PpoTrainer.create(
        { policy: { model: policy }, reference: { model: reference }, reward: { model: reward, head: rmHead }, value: { model: value, head: vHead } },
        {
          ...PPO_DEFAULTS,
          ...opt,
          lr: 3e-3,
          promptsPerStep: 2,
          numSamples: 2,
          maxNewTokens: 8,
          seqLen: MAX_T,
          minibatches: 2,
          padId: PAD,
          eosIds: [],
          seed: 5,
          emaDecay: 0,
          ptxCoef: 0.5,
        },
      );
      ppo.setPtxData([sftBatch(SEQS.slice(0, 2), 2, MAX_T, PAD)]); // PPO-ptx: SFT rows of 2 (a minibatch), laid out at full length
      const r = await ppo.trainStep(prompts);
      const use = { ...ppo.plans.policy.use };
      const out: Record<string, Float32Array> = {
        ppo: await policy.params.download('h.1.mlp.c_fc.weight'),
        value: await vHead.params.download('score.weight'),
        score: Float32Array.of(r['objective/scores'], r['objective/kl']),
      };
      ppo.destroy();
      const g = load();
      const rm = await ModelReward.create('rm', { model: reward, head: rmHead }, 4, MAX_T, 0, PAD);
      const grpo = await GrpoTrainer.create({ model: g }, reference, [rm], {
        ...GRPO_DEFAULTS,
        ...opt,
        lr: 3e-3,
        method: 'grpo',
        numGenerations: 2,
        promptsPerStep: 2,
        maxCompletionLength: 8,
        beta: 0.1,
        seqLen: MAX_T,
        padId: PAD,
        eosIds: [],
        seed: 3,
      });
      await grpo.trainStep(prompts);
      out.grpo = await g.params.download('h.1.mlp.c_fc.weight');
      grpo.destroy();
      rm.destroy();
      for (const m of [policy, reference, reward, value, g]) m.params.destroy();
      rmHead.destroy();
      vHead.destroy();
      return { out, use };
    };
    const short = await step();
    PlanSet.bucketing = false;
    const long = await step().finally(() => (PlanSet.bucketing = true));
    expect(short.use.positions).toBeLessThan(long.use.positions / 3); // rows of at most 12 tokens: 16 positions, not 64
    for (const k of Object.keys(long.out)) expectClose(short.out[k]!, long.out[k]!, 1e-6, 1e-4, k);
  });
});
