// PPO on one shared base: an RM adapter trained on a simple rule ("shorter is better"),
// a value adapter initialised from it, and a policy adapter whose mean reward rises while the KL to the
// reference (the base without an adapter) stays near its target.
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/io/folder.ts';
import { ScoreHead } from '../src/model/head.ts';
import { loadModel } from '../src/model/index.ts';
import { LoraSet } from '../src/model/lora.ts';
import { ADAMW_DEFAULTS } from '../src/train/adamw.ts';
import { PPO_DEFAULTS, PpoTrainer } from '../src/train/ppo.ts';
import { RewardTrainer, type Ranking } from '../src/train/reward.ts';
import { Rng } from '../src/shared/sampling.ts';
import { dot, testGpu } from './helpers/gpu.ts';
import { randn } from './ref/ops.ts';

// The stop tokens: ids the fixture model emits often (its greedy output repeats 185), so that response
// lengths vary from the start and the policy can learn to end earlier.
const STOP = [185, 337, 325];

describe('PPO', () => {
  it('raises the RM score of its samples while KL to the reference stays near the target', async () => {
    const gpu = await testGpu();
    const { model: base } = loadModel(gpu, await readModelFolder('tests/fixtures/gpt2-tiny'));
    const targets = ['c_attn', 'c_fc', 'c_proj'];
    // reward model: base + adapter + head, trained on rankings made by the rule
    const rng = new Rng(21);
    const tok = () => Math.floor(rng.next() * 376);
    const rankings: Ranking[] = Array.from({ length: 120 }, () => {
      const completions = Array.from({ length: 4 }, () => Array.from({ length: 1 + Math.floor(rng.next() * 8) }, tok));
      const lengths = completions.map((c) => c.length);
      const order = [...new Set(lengths)].sort((a, b) => a - b);
      return { prompt: Array.from({ length: 4 }, tok), completions, ranks: lengths.map((l) => order.indexOf(l)) };
    });
    const rmLora = new LoraSet(base, { r: 8, alpha: 16, dropout: 0, targets }, { optimizer: true });
    rmLora.init(1);
    const rmHead = new ScoreHead(base, { optimizer: true });
    rmHead.init(1);
    const rmTrainer = await RewardTrainer.create(
      base,
      rmHead,
      {
        ...ADAMW_DEFAULTS,
        lr: 3e-3,
        weightDecay: 0,
        warmupSteps: 3,
        totalSteps: 30,
        minLrRatio: 0.1,
        promptsPerStep: 4,
        maxK: 4,
        seqLen: 16,
        epochs: 1,
        padId: 376,
      },
      rmLora,
    );
    for (let i = 0; i < 100; i += 4) await rmTrainer.trainStep(rankings.slice(i, i + 4));
    const acc = (await rmTrainer.evaluate(rankings.slice(100))).accuracy;
    expect(acc).toBeGreaterThan(0.85);
    rmTrainer.destroy();

    // value = a copy of the RM (adapter and head); policy = a fresh adapter (= the reference at first)
    const valueLora = new LoraSet(base, rmLora.cfg, { optimizer: true });
    for (const e of rmLora.params.entries) valueLora.params.upload(e.name, await rmLora.params.download(e.name));
    const valueHead = new ScoreHead(base, { optimizer: true });
    valueHead.params.upload('score.weight', await rmHead.params.download('score.weight'));
    const policy = new LoraSet(base, { r: 8, alpha: 16, dropout: 0, targets }, { optimizer: true });
    policy.init(2);
    const cfg = {
      ...PPO_DEFAULTS,
      lr: 5e-3,
      promptsPerStep: 4,
      numSamples: 4,
      maxNewTokens: 8,
      seqLen: 16,
      klCoef: 0.02,
      klTarget: 4,
      klHorizon: 100,
      minibatches: 2,
      padId: 376,
      eosIds: STOP,
      seed: 3,
      emaDecay: 0.9,
    };
    const ppo = await PpoTrainer.create(
      {
        policy: { model: base, lora: policy },
        reference: { model: base },
        reward: { model: base, lora: rmLora, head: rmHead },
        value: { model: base, lora: valueLora, head: valueHead },
      },
      cfg,
    );
    const prompts = rankings.slice(0, 4).map((r) => r.prompt);
    const steps = [];
    // the phases of a step, as the page shows them: every token drawn, then scoring, then each update
    const phases: string[] = [];
    steps.push(await ppo.trainStep(prompts, (p) => phases.push(`${p.phase} ${p.done}/${p.total}`)));
    const drawn = phases.filter((p) => p.startsWith('sampling')),
      tokens = steps[0]!['objective/response_length'] * 16;
    expect(drawn).toEqual(Array.from({ length: tokens + 1 }, (_, i) => `sampling ${i}/${16 * 8}`));
    expect(phases.slice(drawn.length)).toEqual(['scoring 0/1', 'updating 0/2', 'updating 1/2']); // 1 pass (ppo_epochs) x 2 minibatches
    for (let i = 1; i < 14; i++) steps.push(await ppo.trainStep(prompts));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const early = mean(steps.slice(0, 3).map((s) => s['objective/scores'])),
      late = mean(steps.slice(-3).map((s) => s['objective/scores']));
    const trace = steps
      .map((s) => `${s['objective/scores'].toFixed(2)}/${s['objective/response_length'].toFixed(1)}/${s['objective/kl'].toFixed(2)}`)
      .join(' ');
    expect(late, `reward/length/kl per step: ${trace}`).toBeGreaterThan(early + 0.3);
    expect(mean(steps.slice(-3).map((s) => s['objective/kl']))).toBeLessThan(2 * cfg.klTarget);
    expect(Math.abs(steps[0]!['objective/kl'])).toBeLessThan(1e-3); // policy = reference before the first update
    const last = steps.at(-1)!;
    for (const k of ['policy/clipfrac_avg', 'loss/value_avg', 'objective/entropy', 'policy/approxkl_avg', 'objective/response_length'] as const)
      expect(Number.isFinite(last[k])).toBe(true);
    expect(last.samples[0]!.kl.length).toBe(last.samples[0]!.response.length);
    expect(last.samples[0]!.advantage.length).toBe(last.samples[0]!.response.length);
    expect(ppo.emaWeights!.size).toBe(policy.params.entries.length);
    expect(last['policy/early_stop']).toBe(0); // the guard is off unless asked (as in TRL)
    ppo.destroy();

    // TRL's early stopping: once an update has moved the policy more than 1.5 x target_kl (approx KL) from the
    // one that sampled, the step's remaining updates are skipped and the step says so; off, all 2 x 2 run
    const guarded = await PpoTrainer.create(
      {
        policy: { model: base, lora: policy },
        reference: { model: base },
        reward: { model: base, lora: rmLora, head: rmHead },
        value: { model: base, lora: valueLora, head: valueHead },
      },
      { ...cfg, ppoEpochs: 2, emaDecay: 0, earlyStopping: true, targetKl: 1e-8 },
    );
    const updates = async (t: PpoTrainer) => {
      const seen: string[] = [];
      const out = await t.trainStep(prompts, (p) => {
        if (p.phase === 'updating') seen.push(`${p.done}/${p.total}`);
      });
      return { seen, out };
    };
    const stopped = await updates(guarded);
    expect(stopped.seen).toEqual(['0/4', '1/4']); // the first update ran; the second pass found the policy moved and stopped
    expect(stopped.out['policy/early_stop']).toBe(1);
    expect(stopped.out['policy/approxkl_avg']).toBeGreaterThan(1.5e-8);
    guarded.destroy();
    const free = await PpoTrainer.create(
      {
        policy: { model: base, lora: policy },
        reference: { model: base },
        reward: { model: base, lora: rmLora, head: rmHead },
        value: { model: base, lora: valueLora, head: valueHead },
      },
      { ...cfg, ppoEpochs: 2, emaDecay: 0, earlyStopping: false, targetKl: 1e-8 },
    );
    const all = await updates(free);
    expect([all.seen, all.out['policy/early_stop']]).toEqual([['0/4', '1/4', '2/4', '3/4'], 0]);
    free.destroy();
    for (const x of [policy, valueLora, rmLora]) x.destroy();
    for (const h of [rmHead, valueHead]) h.destroy();
    base.params.destroy();
  });
});

describe('PPO gradients', () => {
  it('the clipped policy objective and the clipped value loss match finite differences through the model', async () => {
    const gpu = await testGpu();
    const { model: base } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'));
    const mk = (seed: number, opt: boolean) => {
      const l = new LoraSet(base, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'down_proj'] }, { optimizer: opt });
      l.init(seed);
      for (const m of l.modules.values()) l.params.upload(`${m.module}.lora_B.weight`, Float32Array.from(randn(m.Out * 4, seed + 50, 0.2)));
      return l;
    };
    const policy = mk(1, true),
      value = mk(2, true),
      rmLora = mk(3, false);
    const rmHead = new ScoreHead(base),
      valueHead = new ScoreHead(base, { optimizer: true });
    rmHead.init(4);
    valueHead.init(5);
    const cfg = { ...PPO_DEFAULTS, promptsPerStep: 2, numSamples: 2, maxNewTokens: 5, seqLen: 12, padId: 376, eosIds: [376], cliprange: 0.2, vfCoef: 1 };
    const ppo = await PpoTrainer.create(
      {
        policy: { model: base, lora: policy },
        reference: { model: base },
        reward: { model: base, lora: rmLora, head: rmHead },
        value: { model: base, lora: value, head: valueHead },
      },
      cfg,
    );
    const rng = new Rng(8);
    const tok = () => Math.floor(rng.next() * 370);
    const rollouts = Array.from({ length: 4 }, (_, i) => ({ prompt: [tok(), tok(), tok()], response: Array.from({ length: 3 + (i % 3) }, tok), entropy: [] }));
    // "old" log-probs and values a little off the current ones, so some tokens clip and most do not
    const first = await ppo.policyPass(
      rollouts,
      rollouts.map((r) => r.response.map(() => -6)),
      rollouts.map((r) => r.response.map(() => 0)),
    );
    expect(first.loss).toBe(0); // zero advantages: zero objective
    const oldLogp = rollouts.map((r, i) => r.response.map((_, t) => -5.9 + 0.3 * Math.sin(i + 2 * t)));
    const adv = rollouts.map((r, i) => r.response.map((_, t) => Math.cos(3 * i + t)));
    const oldValues = rollouts.map((r, i) => r.response.map((_, t) => 0.1 * Math.sin(i * t)));
    const returns = rollouts.map((r, i) => r.response.map((_, t) => 0.5 * Math.cos(i + t)));
    const check = async (table: LoraSet['params'], name: string, lossAt: () => Promise<number>) => {
      await lossAt(); // leaves the gradient in the grads
      const w0 = await table.download(name),
        g = await table.download(name, 'grad');
      const u = randn(w0.length, 12),
        n = Math.sqrt(dot(u, u)),
        eps = 1e-2;
      const at = async (s: number) => {
        table.upload(
          name,
          Float32Array.from(w0, (v, i) => v + (s * eps * u[i]!) / n),
        );
        return lossAt();
      };
      const num = ((await at(1)) - (await at(-1))) / (2 * eps);
      table.upload(name, w0);
      expect(Math.abs(num - dot(g, u) / n), `${name}: ${num} vs ${dot(g, u) / n}`).toBeLessThan(3e-3 * Math.max(0.1, Math.abs(num)) + 1e-5);
    };
    await check(policy.params, 'model.layers.1.self_attn.v_proj.lora_A.weight', async () => (await ppo.policyPass(rollouts, oldLogp, adv)).loss);
    await check(value.params, 'model.layers.0.mlp.down_proj.lora_B.weight', async () => (await ppo.valuePass(rollouts, oldValues, returns)).loss);
    await check(valueHead.params, 'score.weight', async () => (await ppo.valuePass(rollouts, oldValues, returns)).loss);
    ppo.destroy();
    for (const x of [policy, value, rmLora]) x.destroy();
    for (const h of [rmHead, valueHead]) h.destroy();
    base.params.destroy();
  });
});
