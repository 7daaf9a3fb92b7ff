// SFT: completion-only loss, gradient accumulation that equals a bigger batch, the schedule, near
// memorisation of a small set, and a non-finite step that never touches the weights.
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/io/folder.ts';
import { loadModel } from '../src/model/index.ts';
import { ADAMW_DEFAULTS } from '../src/train/adamw.ts';
import { learningRate } from '../src/train/schedule.ts';
import { SftTrainer, sftBatch, type Example } from '../src/train/sft.ts';
import { Rng } from '../src/shared/sampling.ts';
import { relErr, testGpu } from './helpers/gpu.ts';

const rng = new Rng(4);
const toks = (n: number) => Array.from({ length: n }, () => Math.floor(rng.next() * 370));
const examples: Example[] = Array.from({ length: 8 }, () => ({ prompt: toks(4), completion: [...toks(8), 376] }));
const cfg = { ...ADAMW_DEFAULTS, lr: 3e-3, warmupSteps: 2, totalSteps: 60, minLrRatio: 0.1, batchSize: 8, seqLen: 14, accumulation: 1 };

describe('SFT', () => {
  it('puts the loss on completion tokens only', () => {
    const b = sftBatch([{ prompt: [1, 2, 3], completion: [4, 5] }], 2, 6, 0);
    expect([...b.targets]).toEqual([-1, -1, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1]);
    expect(b.count).toBe(2);
  });

  it('warms up linearly, then decays along a cosine to the floor', () => {
    const s = { lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
    expect(learningRate(5, s)).toBeCloseTo(0.5);
    expect(learningRate(10, s)).toBeCloseTo(1);
    expect(learningRate(60, s)).toBeCloseTo(0.55);
    expect(learningRate(110, s)).toBeCloseTo(0.1);
  });

  it('batch 2 x accumulation 4 takes the same step as batch 8', async () => {
    const gpu = await testGpu();
    const files = await readModelFolder('tests/fixtures/gpt2-tiny');
    const run = async (B: number, acc: number) => {
      const { model } = loadModel(gpu, files, { optimizer: true });
      const t = await SftTrainer.create(model, { ...cfg, batchSize: B, accumulation: acc });
      const micro = Array.from({ length: acc }, (_, i) => sftBatch(examples.slice(i * B, (i + 1) * B), B, cfg.seqLen, 376));
      const r = await t.trainStep(micro);
      const w = await model.params.download('h.1.mlp.c_fc.weight');
      t.destroy();
      model.params.destroy();
      return { r, w };
    };
    const big = await run(8, 1),
      small = await run(2, 4);
    expect(Math.abs(big.r.loss - small.r.loss)).toBeLessThan(1e-5);
    expect(Math.abs(big.r.gradNorm - small.r.gradNorm) / big.r.gradNorm).toBeLessThan(1e-4);
    expect(relErr(small.w, big.w)).toBeLessThan(1e-5);
  });

  it('drives the loss to near memorisation of a small set', async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'), { optimizer: true });
    const t = await SftTrainer.create(model, cfg);
    const batch = sftBatch(examples, 8, cfg.seqLen, 376);
    let r = await t.trainStep([batch]);
    const first = r.loss;
    for (let i = 1; i < 60; i++) r = await t.trainStep([batch]);
    expect(first).toBeGreaterThan(5);
    expect(r.loss).toBeLessThan(0.2);
    expect(await t.evaluate([batch])).toBeLessThan(0.2);
    t.destroy();
    model.params.destroy();
  });

  it('a NaN in the gradient skips the step and leaves the weights untouched', async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/gpt2-tiny'), { optimizer: true });
    const t = await SftTrainer.create(model, cfg);
    const w = await model.params.download('ln_f.weight');
    w[3] = NaN;
    model.params.upload('ln_f.weight', w);
    const before = await model.params.download('h.0.attn.c_attn.weight');
    const r = await t.trainStep([sftBatch(examples, 8, cfg.seqLen, 376)]);
    expect(r.skipped).toBe(true);
    expect(r.step).toBe(0);
    expect(await model.params.download('h.0.attn.c_attn.weight')).toEqual(before);
    t.destroy();
    model.params.destroy();
  });
});
