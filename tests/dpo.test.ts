// DPO from rankings: pairs, the gradient (finite differences through the whole model), and training that
// raises the chosen-minus-rejected margin with the SFT model (the base without the adapter) as reference.
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/io/folder.ts';
import { loadModel } from '../src/model/index.ts';
import { LoraSet } from '../src/model/lora.ts';
import { ADAMW_DEFAULTS } from '../src/train/adamw.ts';
import { DpoTrainer, pairsFromRankings } from '../src/train/dpo.ts';
import type { DpoLossType } from '../src/train/dpo-math.ts';
import { Rng } from '../src/shared/sampling.ts';
import { dot, testGpu } from './helpers/gpu.ts';
import { randn } from './ref/ops.ts';

const rng = new Rng(9);
const toks = (n: number) => Array.from({ length: n }, () => Math.floor(rng.next() * 370));
const rankings = Array.from({ length: 6 }, () => ({ prompt: toks(5), completions: [toks(6), toks(4), toks(7)] }));
const base = { ...ADAMW_DEFAULTS, weightDecay: 0, warmupSteps: 0, totalSteps: 100, minLrRatio: 1, beta: 0.1, pairsPerStep: 6, seqLen: 16, padId: 376 };

describe('DPO', () => {
  it('takes every (better, worse) pair of a ranking', () => {
    const p = pairsFromRankings([{ prompt: [1], completions: [[2], [3], [4]], ranks: [0, 1, 1] }]);
    expect(p.map((x) => [x.chosen[0], x.rejected[0]])).toEqual([
      [2, 3],
      [2, 4],
    ]);
    expect(pairsFromRankings(rankings).length).toBe(18);
  });

  it.each([
    ['sigmoid (DPO)', {}],
    ['ipo and sft weighted, LD-DPO alpha 0.5', { lossTypes: ['ipo', 'sft'] as DpoLossType[], lossWeights: [1, 0.5], ldAlpha: 0.5, beta: 0.5 }],
    ['robust with label smoothing, and bco_pair', { lossTypes: ['robust', 'bco_pair'] as DpoLossType[], labelSmoothing: 0.2 }],
  ])('its gradient matches finite differences of the loss: %s', async (_, loss) => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'));
    const lora = new LoraSet(model, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'up_proj'] }, { optimizer: true });
    lora.init(1);
    for (const m of lora.modules.values()) lora.params.upload(`${m.module}.lora_B.weight`, Float32Array.from(randn(m.Out * 4, 5, 0.2)));
    const dpo = await DpoTrainer.create(model, { ...base, lr: 0, maxGradNorm: 0, ...loss }, { lora });
    const pairs = pairsFromRankings(rankings).slice(0, 6);
    await dpo.trainStep(pairs);
    const name = 'model.layers.0.mlp.up_proj.lora_A.weight';
    const a0 = await lora.params.download(name),
      g = await lora.params.download(name, 'grad');
    const u = randn(a0.length, 6),
      n = Math.sqrt(dot(u, u)),
      eps = 1e-2;
    const at = async (s: number) => {
      lora.params.upload(
        name,
        Float32Array.from(a0, (v, i) => v + (s * eps * u[i]!) / n),
      );
      return (await dpo.trainStep(pairs)).loss;
    };
    const num = ((await at(1)) - (await at(-1))) / (2 * eps);
    expect(Math.abs(num - dot(g, u) / n)).toBeLessThan(2e-3 * Math.max(1e-2, Math.abs(num)) + 1e-5);
    dpo.destroy();
    lora.destroy();
    model.params.destroy();
  });

  it('raises the chosen-minus-rejected margin (LoRA policy, the base as reference)', async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/gpt2-tiny'));
    const lora = new LoraSet(model, { r: 8, alpha: 16, dropout: 0, targets: ['c_attn', 'c_fc', 'c_proj'] }, { optimizer: true });
    lora.init(2);
    const dpo = await DpoTrainer.create(model, { ...base, lr: 5e-3 }, { lora });
    const pairs = pairsFromRankings(rankings).slice(0, 6);
    const first = await dpo.trainStep(pairs);
    expect(Math.abs(first['rewards/margins'])).toBeLessThan(1e-4); // policy = reference at the start
    let last = first;
    for (let i = 0; i < 10; i++) last = await dpo.trainStep(pairs);
    expect(last['rewards/margins']).toBeGreaterThan(0.5);
    expect(last['rewards/accuracies']).toBeCloseTo(1, 9);
    expect(last.loss).toBeLessThan(first.loss);
    dpo.destroy();
    lora.destroy();
    model.params.destroy();
  });
});
