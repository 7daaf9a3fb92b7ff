// The reward model as the paper trains it: all pairs of a K-way ranking in one batch element, scores at
// the last token, ties dropped, held-out pair accuracy, a bias that centres the demonstrations at 0.
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/io/folder.ts';
import { ScoreHead } from '../src/model/head.ts';
import { loadModel } from '../src/model/index.ts';
import { ADAMW_DEFAULTS } from '../src/train/adamw.ts';
import { pairwiseLoss, rankingPairs, RewardTrainer, type Ranking } from '../src/train/reward.ts';
import { Rng } from '../src/train/sampling.ts';
import { dot, testGpu } from './helpers.ts';
import { randn } from './ref/ops.ts';

describe('pairwise ranking loss', () => {
  it('takes all K(K-1)/2 pairs, drops ties, and its gradient matches finite differences', () => {
    expect(rankingPairs(4).length).toBe(6);
    expect(rankingPairs(9).length).toBe(36);
    expect(rankingPairs(3, [0, 1, 1])).toEqual([[0, 1], [0, 2]]); // the tie between 1 and 2 gives no pair
    expect(rankingPairs(2, [0, 0])).toEqual([]);
    const scores = [0.3, -1.2, 2.0, 0.7];
    const pairs = rankingPairs(4, [1, 0, 3, 2]);
    const { loss, dscores, correct } = pairwiseLoss(scores, pairs);
    expect(correct).toBe(pairs.filter(([w, l]) => scores[w]! > scores[l]!).length);
    for (let i = 0; i < 4; i++) {
      const e = 1e-6, up = [...scores], dn = [...scores];
      up[i]! += e;
      dn[i]! -= e;
      expect((pairwiseLoss(up, pairs).loss - pairwiseLoss(dn, pairs).loss) / (2 * e)).toBeCloseTo(dscores[i]!, 6);
    }
    expect(loss).toBeGreaterThan(0);
  });
});

/** Prompts of random tokens with K completions of random lengths, ranked longer-is-better (equal lengths tie). */
function lengthRankings(n: number, seed: number, V: number): Ranking[] {
  const rng = new Rng(seed);
  const tok = () => Math.floor(rng.next() * (V - 1));
  return Array.from({ length: n }, () => {
    const K = 2 + Math.floor(rng.next() * 3);
    const completions = Array.from({ length: K }, () => Array.from({ length: 1 + Math.floor(rng.next() * 14) }, tok));
    const lengths = completions.map((c) => c.length);
    const distinct = [...new Set(lengths)].sort((a, b) => b - a);
    return { prompt: Array.from({ length: 3 + Math.floor(rng.next() * 4) }, tok), completions, ranks: lengths.map((l) => distinct.indexOf(l)) };
  });
}

describe('reward model training', () => {
  it('the gradient through the score head and trunk matches finite differences of the ranking loss', async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'), { optimizer: true });
    const head = new ScoreHead(model, { optimizer: true });
    head.init(1);
    const cfg = { ...ADAMW_DEFAULTS, lr: 0, weightDecay: 0, maxGradNorm: 0, warmupSteps: 0, totalSteps: 1, minLrRatio: 1, promptsPerStep: 2, maxK: 4, seqLen: 24, epochs: 1, padId: 376 };
    const rm = await RewardTrainer.create(model, head, cfg);
    const batch = lengthRankings(2, 5, 377);
    const loss0 = (await rm.trainStep(batch)).loss; // lr 0: computes gradients, leaves weights
    const name = 'model.layers.1.self_attn.v_proj.weight';
    const w0 = await model.params.download(name);
    const g = await model.params.download(name, 'grad');
    const u = randn(w0.length, 3);
    const n = Math.sqrt(dot(u, u)), eps = 1e-2;
    const lossAt = async (s: number) => {
      model.params.upload(name, Float32Array.from(w0, (v, i) => v + (s * eps * u[i]!) / n));
      return (await rm.trainStep(batch)).loss;
    };
    const num = ((await lossAt(1)) - (await lossAt(-1))) / (2 * eps);
    expect(Math.abs(num - dot(g, u) / n)).toBeLessThan(3e-3 * Math.max(1, Math.abs(num)));
    expect(loss0).toBeGreaterThan(0);
    rm.destroy();
    head.destroy();
    model.params.destroy();
  });

  it('learns "longer is better" to >= 90% held-out pair accuracy in one epoch, then centres the demonstrations', async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/gpt2-tiny'), { optimizer: true });
    const head = new ScoreHead(model, { optimizer: true });
    head.init(2);
    const train = lengthRankings(160, 11, 377), heldOut = lengthRankings(40, 12, 377);
    const cfg = { ...ADAMW_DEFAULTS, lr: 2e-3, weightDecay: 0, warmupSteps: 4, totalSteps: 40, minLrRatio: 0.1, promptsPerStep: 4, maxK: 4, seqLen: 24, epochs: 1, padId: 376 };
    const rm = await RewardTrainer.create(model, head, cfg);
    const before = await rm.evaluate(heldOut);
    for (let i = 0; i < train.length; i += 4) await rm.trainStep(train.slice(i, i + 4));
    const after = await rm.evaluate(heldOut);
    expect(after.accuracy, `held-out pair accuracy ${after.accuracy} (before: ${before.accuracy})`).toBeGreaterThanOrEqual(0.9);
    const demos = train.slice(0, 20).map((r) => ({ prompt: r.prompt, completion: r.completions[0]! }));
    await rm.fitBias(demos);
    const s = await rm.score(demos);
    expect(Math.abs(s.reduce((a, b) => a + b, 0) / s.length)).toBeLessThan(1e-4);
    rm.destroy();
    head.destroy();
    model.params.destroy();
  });
});
