// The efficacy experiment's parts: the simulated labelers (pure), and a CI-sized run of the whole recipe
// on the built-in model (real WebGPU), with a loose bound a broken stage would fail.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { judge, preferProb, rankCompletions, sigmoid } from '../src/experiment/labeler.ts';
import { LABELERS } from '../src/experiment/labelers/index.ts';
import { builtinPrompts } from '../src/experiment/prompts.ts';
import { plotSvg } from '../src/experiment/plot.ts';
import { pairCount, rankingRecord, runExperiment } from '../src/experiment/run.ts';
import { interval, pooled } from '../src/experiment/stats.ts';
import { importJsonl, exportJsonl } from '../src/io/datasets.ts';
import { Rng } from '../src/train/sampling.ts';
import { testGpu } from './helpers.ts';

describe('simulated labelers', () => {
  const p = 'Write a short greeting for Maya.';
  it('each has its own taste', () => {
    const { cheerful, concise, thorough } = LABELERS;
    const upbeat = 'Hi Maya! It is so great to see you! I hope you have a wonderful day!';
    const curt = 'Hi.';
    const long = 'Hello Maya, it is really good to see you. I hope your week has been kind to you. Come in and tell me how you have been.';
    const ramble = 'Hello Maya, hello, hello to you, Maya, hello, so hello, hello again, hello.';
    expect(cheerful!.score(p, upbeat)).toBeGreaterThan(cheerful!.score(p, long));
    expect(cheerful!.score(p, long)).toBeGreaterThan(cheerful!.score(p, 'Say hello yourself.'));
    expect(concise!.score(p, 'Hi Maya.')).toBeGreaterThan(concise!.score(p, long));
    expect(concise!.score(p, 'Hi Maya.')).toBeGreaterThan(concise!.score(p, curt)); // on topic beats shorter
    expect(thorough!.score(p, long)).toBeGreaterThan(thorough!.score(p, ramble));
  });

  it('ranks with Bradley-Terry noise: each pair of a ranking is ordered with preferProb odds', () => {
    const l = LABELERS.cheerful!;
    const cs = ['Hi Maya!', 'Hi Maya! So great!', 'Hi.', 'Hello Maya.'];
    const rng = Rng.forSample(3, 0), n = 4000;
    let aheadOf = 0;
    for (let i = 0; i < n; i++) {
      const r = rankCompletions(l, p, cs, rng);
      if (r[0]! < r[3]!) aheadOf++;
    }
    const want = preferProb(l, p, cs[0]!, cs[3]!);
    expect(want).toBeGreaterThan(0.6);
    expect(want).toBeLessThan(0.99);
    expect(Math.abs(aheadOf / n - want)).toBeLessThan(4 * Math.sqrt((want * (1 - want)) / n));
  });

  it('judges identical texts a tie, and disagrees with itself on close pairs only', () => {
    const l = LABELERS.concise!, rng = Rng.forSample(1, 1);
    expect(judge(l, p, 'Hi Maya.', 'Hi Maya.', rng)).toBe(0.5);
    expect(sigmoid(0)).toBe(0.5);
    let flips = 0;
    for (let i = 0; i < 1000; i++) flips += judge(l, p, 'Hi Maya.', 'Hello Maya, hello, hello, hello to you, Maya, hello again and again.', rng) === 1 ? 0 : 1;
    expect(flips).toBeLessThan(20);
  });

  it('a ranking becomes a K-way line best first, ties kept, that the JSONL reader takes back', () => {
    const r = rankingRecord('q', ['a', 'b', 'c', 'b'], [2, 0, 1, 0]);
    expect(r).toEqual({ kind: 'ranking', prompt: 'q', completions: ['b', 'b', 'a', 'c'].slice(0, 0).concat(['b', 'b', 'c', 'a']), ranks: [0, 0, 1, 2] });
    expect(pairCount(r)).toBe(5); // 6 pairs less the tie
    const back = importJsonl(exportJsonl([r]), 'x.jsonl');
    expect(back.errors).toEqual([]);
    expect(back.records[0]).toMatchObject({ completions: ['b', 'b', 'c', 'a'], ranks: [0, 0, 1, 2] });
  });

  it('held-out prompts never appear among training prompts or demonstrations', () => {
    const P = builtinPrompts();
    const held = new Set(P.eval);
    expect(P.eval.length).toBeGreaterThanOrEqual(50);
    expect(P.train(1).filter((x) => held.has(x))).toEqual([]);
    expect(P.demonstrations(1).filter((r) => held.has((r as { prompt: string }).prompt))).toEqual([]);
    expect(new Set(P.train(1)).size).toBe(P.train(1).length);
  });

  it('intervals: t over seeds, Wilson over judgments', () => {
    const i = interval([0.7, 0.8, 0.9]);
    expect(i.mean).toBeCloseTo(0.8, 12);
    expect(i.hi - i.mean).toBeCloseTo((4.303 * 0.1) / Math.sqrt(3), 3);
    const w = pooled(80, 100);
    expect(w.lo).toBeGreaterThan(0.7);
    expect(w.hi).toBeLessThan(0.88);
  });
});

// The whole experiment at CI size on the built-in model (real WebGPU; fails without an adapter): SFT, the
// cheerful labeler's rankings (its taste does not depend on the prompt, so a few dozen comparisons carry
// over to held-out prompts), a reward model, PPO and DPO with the defaults but for the step counts and
// the sample length, judged on held-out prompts. The bounds are loose, but a stage that does not learn
// sits at 0.5: a broken trainer, loss or default fails here. At this size (48 comparisons, 8 PPO steps
// instead of 32) DPO won 0.72 (expected) and PPO 0.56 on lavapipe: PPO is held to what 8 steps show, its
// reward rising, the labeler's score of its samples above the SFT model's, and a win rate above 0.5; the
// full experiment (README, "Does it align?") measures the rest.
describe('the experiment, CI-sized', () => {
  it('a reward model from 48 comparisons ranks held-out pairs better than chance, DPO beats the SFT model, PPO raises its reward and the labeler\'s score', async () => {
    const gpu = await testGpu();
    const out = mkdtempSync(join(tmpdir(), 'experiment-'));
    const r = await runExperiment(gpu, {
      model: 'public/models/default', labelers: [LABELERS.cheerful!], prompts: builtinPrompts({ demonstrations: 16, ppoPrompts: 16, evalPrompts: 10 }),
      comparisons: 48, curve: [], seeds: 1, stages: ['sft', 'rm', 'ppo', 'dpo'], K: 4, evalSamples: 2, maxNewTokens: 24, out,
      config: { sft: { steps: 2 }, ppo: { steps: 8 } },
    });
    const run = r.runs[0]!;
    console.log('CI experiment', JSON.stringify({ rm: run.rm, ppo: run.ppo, dpo: run.dpo, seconds: r.seconds }));
    expect(run.comparisons).toBeGreaterThanOrEqual(48);
    expect(run.rm!.heldout_accuracy).toBeGreaterThan(0.6);
    expect(run.dpo!.win_rate_expected).toBeGreaterThan(0.6);
    expect(run.ppo!.win_rate_expected).toBeGreaterThan(0.5);
    expect(run.ppo!.labeler_score).toBeGreaterThan(run.ppo!.sft_labeler_score);
    const steps = r.ppo_steps.cheerful!, mean = (xs: { reward: number }[]) => xs.reduce((a, x) => a + x.reward, 0) / xs.length;
    expect(steps.length).toBe(8);
    expect(mean(steps.slice(-3))).toBeGreaterThan(mean(steps.slice(0, 3))); // PPO raised its reward model's score
    for (const k of ['ppo', 'dpo'] as const) {
      expect(run[k]!.kl, k).toBeGreaterThan(0.5); // it moved, away from the SFT model
      expect(run[k]!.distinct, k).toBeGreaterThan(0.5);
    }
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(res.adapter).toBe(gpu.adapter.name);
    expect(res.summary.cheerful.dpo_win_rate.mean).toBe(run.dpo!.win_rate);
    for (const stage of ['sft', 'rm', 'ppo', 'dpo']) {
      const dir = stage === 'sft' ? join(out, 'seed-1', 'sft') : join(out, 'seed-1', 'cheerful', 'comparisons-48', stage);
      expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, stage).toBeGreaterThan(0);
    }
    expect(plotSvg(r)).toMatch(/^<svg/);
    rmSync(out, { recursive: true, force: true }); // (kept when a check fails, to look at)
  }, 600_000);

  it('active selection: half the comparisons as the prompts come, then the prompts a reward model trained on those is least sure of', async () => {
    const gpu = await testGpu();
    const out = mkdtempSync(join(tmpdir(), 'experiment-select-'));
    const r = await runExperiment(gpu, {
      model: 'public/models/default', labelers: [LABELERS.concise!], prompts: builtinPrompts({ demonstrations: 16, ppoPrompts: 16, evalPrompts: 6 }),
      comparisons: 24, curve: [], seeds: 1, stages: ['sft', 'rm'], K: 4, evalSamples: 1, maxNewTokens: 16, out, select: 'uncertain',
      config: { sft: { steps: 2 }, rm: { steps: 8 } },
    });
    const run = r.runs[0]!;
    expect(run.comparisons).toBeGreaterThanOrEqual(24);
    expect(Number.isFinite(run.rm!.heldout_accuracy)).toBe(true);
    const dir = join(out, 'seed-1', 'concise', 'comparisons-24');
    const lines = (f: string) => readFileSync(join(dir, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const ranked = lines('rankings.jsonl'), pool = lines('selection.jsonl') as { prompt: string; margin: number }[];
    const all = lines('../rankings.jsonl'); // the labeler's rankings in prompt order
    // the first rankings are the ones in order, up to half the comparisons
    let half = 0, k = 0;
    while (half < 12) half += pairCount({ kind: 'ranking', ...all[k++] });
    expect(ranked.slice(0, k).map((x) => x.prompt)).toEqual(all.slice(0, k).map((x) => x.prompt));
    // the rest are the pool's smallest margins, in that order
    expect(pool.map((x) => x.margin)).toEqual([...pool.map((x) => x.margin)].sort((a, b) => a - b));
    expect(ranked.slice(k).map((x) => x.prompt)).toEqual(pool.slice(0, ranked.length - k).map((x) => x.prompt));
    expect(pool.length).toBeGreaterThan(ranked.length - k); // there was a choice
    expect(readFileSync(join(dir, 'rm-select', 'metrics.jsonl'), 'utf8').trim().split('\n').length).toBeGreaterThan(0);
    rmSync(out, { recursive: true, force: true });
  }, 600_000);
});

