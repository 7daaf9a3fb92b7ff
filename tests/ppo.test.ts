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
import { Rng } from '../src/train/sampling.ts';
import { testGpu } from './helpers.ts';

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
    const rmTrainer = await RewardTrainer.create(base, rmHead, { ...ADAMW_DEFAULTS, lr: 3e-3, weightDecay: 0, warmupSteps: 3, totalSteps: 30, minLrRatio: 0.1, promptsPerStep: 4, maxK: 4, seqLen: 16, epochs: 1, padId: 376 }, rmLora);
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
    const cfg = { ...PPO_DEFAULTS, lr: 5e-3, promptsPerStep: 4, numSamples: 4, maxNewTokens: 8, seqLen: 16, kl_coef: 0.02, kl_target: 4, kl_horizon: 100, minibatches: 2, padId: 376, eosIds: STOP, seed: 3, ema_decay: 0.9 };
    const ppo = await PpoTrainer.create({ policy: { model: base, lora: policy }, reference: { model: base }, reward: { model: base, lora: rmLora, head: rmHead }, value: { model: base, lora: valueLora, head: valueHead } }, cfg);
    const prompts = rankings.slice(0, 4).map((r) => r.prompt);
    const steps = [];
    for (let i = 0; i < 14; i++) steps.push(await ppo.trainStep(prompts));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const early = mean(steps.slice(0, 3).map((s) => s['objective/scores'])), late = mean(steps.slice(-3).map((s) => s['objective/scores']));
    const trace = steps.map((s) => `${s['objective/scores'].toFixed(2)}/${s['objective/response_length'].toFixed(1)}/${s['objective/kl'].toFixed(2)}`).join(' ');
    expect(late, `reward/length/kl per step: ${trace}`).toBeGreaterThan(early + 0.3);
    expect(mean(steps.slice(-3).map((s) => s['objective/kl']))).toBeLessThan(2 * cfg.kl_target);
    expect(Math.abs(steps[0]!['objective/kl'])).toBeLessThan(1e-3); // policy = reference before the first update
    const last = steps.at(-1)!;
    for (const k of ['policy/clipfrac_avg', 'loss/value_avg', 'objective/entropy', 'policy/approxkl_avg', 'objective/response_length'] as const) expect(Number.isFinite(last[k])).toBe(true);
    expect(last.samples[0]!.kl.length).toBe(last.samples[0]!.response.length);
    expect(last.samples[0]!.advantage.length).toBe(last.samples[0]!.response.length);
    expect(ppo.emaWeights!.size).toBe(policy.params.entries.length);
    ppo.destroy();
    for (const x of [policy, valueLora, rmLora]) x.destroy();
    for (const h of [rmHead, valueHead]) h.destroy();
    base.params.destroy();
  });
});
