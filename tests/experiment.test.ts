// The efficacy experiment's parts: the simulated labelers (pure), and a CI-sized run of the whole recipe
// on the built-in model (real WebGPU), with a loose bound a broken stage would fail.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { accuracyByFeature, featureFit } from '../src/experiment/feature-fit.ts';
import { judge, preferProb, rankCompletions, sigmoid } from '../src/experiment/labeler.ts';
import { LABELERS } from '../src/experiment/labelers/index.ts';
import { builtinPrompts } from '../src/experiment/prompts.ts';
import { plotSvg } from '../src/experiment/plot.ts';
import { mergeResults, pairCount, rankingRecord, runExperiment, type ExperimentResults } from '../src/experiment/run.ts';
import { experimentCommand, summaryTable } from '../src/cli/experiment.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { cli } from './helpers/cli.ts';
import { interval, pooled } from '../src/experiment/stats.ts';
import { importJsonl, exportJsonl } from '../src/io/datasets.ts';
import { Rng } from '../src/shared/sampling.ts';
import { testGpu } from './helpers/gpu.ts';

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
    const rng = Rng.forSample(3, 0),
      n = 4000;
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
    const l = LABELERS.concise!,
      rng = Rng.forSample(1, 1);
    expect(judge(l, p, 'Hi Maya.', 'Hi Maya.', rng)).toBe(0.5);
    expect(sigmoid(0)).toBe(0.5);
    let flips = 0;
    for (let i = 0; i < 1000; i++) flips += judge(l, p, 'Hi Maya.', 'Hello Maya, hello, hello, hello to you, Maya, hello again and again.', rng) === 1 ? 0 : 1;
    expect(flips).toBeLessThan(20);
  });

  it("a labeler's score is the weighted sum of its named features", () => {
    const upbeat = 'Hi Maya! It is so great to see you! I hope you have a wonderful day!';
    for (const l of Object.values(LABELERS)) {
      const sum = Object.values(l.features).reduce((s, f) => s + f.weight * f.of(p, upbeat), 0);
      expect(l.score(p, upbeat)).toBe(sum);
    }
  });

  it("fitting the labeler's own features to its noisy rankings recovers its weights, and is the reward model's ceiling", () => {
    // synthetic completions mixing what the cheerful labeler looks at, ranked K = 4 at a time with its noise
    const l = LABELERS.cheerful!,
      rng = new Rng(5);
    const bits = ['Hi Maya!', 'It is so great!', 'Whatever.', 'Hello there.', 'Have a wonderful day!', 'Fine, okay.', 'I love it.', 'See you.'];
    const text = () => Array.from({ length: 1 + Math.floor(rng.next() * 4) }, () => bits[Math.floor(rng.next() * bits.length)]!).join(' ');
    const ranked = (n: number, noisy: boolean) =>
      Array.from({ length: n }, () => {
        const cs = Array.from({ length: 4 }, text);
        const s = cs.map((c) => l.score(p, c)),
          d = [...new Set(s)].sort((a, b) => b - a);
        return rankingRecord(p, cs, noisy ? rankCompletions(l, p, cs, rng) : s.map((x) => d.indexOf(x)));
      });
    const held = ranked(100, false);
    const many = featureFit(l, ranked(600, true), held);
    expect(many.train_pairs).toBeGreaterThan(3000);
    expect(many.heldout_pairs).toBeGreaterThan(400);
    expect(many.heldout_accuracy).toBeGreaterThan(0.97);
    for (const [k, f] of Object.entries(l.features)) expect(Math.abs(many.weights[k]! - f.weight), k).toBeLessThan(0.25 * Math.abs(f.weight) + 0.1);
    // a few noisy rankings fit worse than many; ties (identical texts) give no pairs
    const few = featureFit(l, ranked(3, true), held);
    expect(few.heldout_accuracy).toBeLessThan(many.heldout_accuracy);
    expect(featureFit(l, [rankingRecord(p, ['Hi!', 'Hi!'], [0, 0])], held).train_pairs).toBe(0);
  });

  it("counts a reward model's held-out accuracy by the feature that tells each pair apart", () => {
    const l = LABELERS.cheerful!;
    // noise-free order: 'Hi Maya! So great!' (two marks, one happy word) > 'Hi Maya!' (one mark) > 'Hi Maya.' > 'Whatever.' (curt)
    const cs = ['Hi Maya.', 'Hi Maya!', 'Whatever.', 'Hi Maya! So great!'];
    const sc = cs.map((c) => l.score(p, c)),
      d = [...new Set(sc)].sort((a, b) => b - a);
    const held = [
      rankingRecord(
        p,
        cs,
        sc.map((x) => d.indexOf(x)),
      ),
    ];
    // a reward model that sees exclamation marks and nothing else
    const rm = [(held[0] as { completions: string[] }).completions.map((c) => (c.match(/!/g) ?? []).length)];
    const by = accuracyByFeature(l, held, rm);
    expect(Object.keys(by)).toEqual(Object.keys(l.features));
    // marks differ in 5 of the 6 pairs (not 'Hi Maya.' vs 'Whatever.'), each ordered right
    expect(by.exclamation_marks).toMatchObject({ pairs: 5, accuracy: 1 });
    // alone: 'Hi Maya.' vs 'Hi Maya!' only (on_topic is the same, and no other feature moves)
    expect(by.exclamation_marks).toMatchObject({ alone_pairs: 1, alone_accuracy: 1 });
    // the curt word (with on_topic) tells 'Whatever.' from the others: this reward model ties it with 'Hi Maya.', which counts as wrong
    expect(by.curt_words).toMatchObject({ pairs: 3, alone_pairs: 0 });
    expect(by.curt_words!.accuracy).toBeCloseTo(2 / 3, 12);
    expect(by.on_topic).toEqual(by.curt_words);
    expect(by.happy_words).toMatchObject({ pairs: 3, alone_pairs: 0 });
    expect(by.happy_words!.alone_accuracy).toBeNaN();
    expect(() => accuracyByFeature(l, held, [[1, 2]])).toThrow('ranking 0: 2 scores for 4 completions');
  });

  it('a ranking becomes a K-way line best first, ties kept, that the JSONL reader takes back', () => {
    const r = rankingRecord('q', ['a', 'b', 'c', 'b'], [2, 0, 1, 0]);
    expect(r).toEqual({ kind: 'ranking', prompt: 'q', completions: ['b', 'b', 'a', 'c'].slice(0, 0).concat(['b', 'b', 'c', 'a']), ranks: [0, 0, 1, 2] });
    expect(pairCount(r)).toBe(5); // 6 pairs less the tie
    const back = importJsonl(exportJsonl([r]), 'x.jsonl');
    expect(back.errors).toEqual([]);
    expect(back.records[0]).toMatchObject({ completions: ['b', 'b', 'c', 'a'], ranks: [0, 0, 1, 2] });
  });

  it('held-out prompts (of unseen names, and of the training vocabulary) never appear among training prompts or demonstrations', () => {
    const P = builtinPrompts();
    const held = new Set(P.eval);
    expect(P.eval.length).toBeGreaterThanOrEqual(50);
    expect(P.train(1).filter((x) => held.has(x))).toEqual([]);
    expect(P.demonstrations(1).filter((r) => held.has((r as { prompt: string }).prompt))).toEqual([]);
    expect(new Set(P.train(1)).size).toBe(P.train(1).length);
    // the held-out prompts of the training vocabulary: as many, none ranked, PPO's or demonstrated
    for (const seed of [1, 2]) {
      const seen = P.evalSeen(seed),
        taken = new Set([
          ...P.train(seed),
          ...P.ppo(seed).map((r) => (r as { prompt: string }).prompt),
          ...P.demonstrations(seed).map((r) => (r as { prompt: string }).prompt),
          ...P.eval,
        ]);
      expect(seen.length).toBe(P.eval.length);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.filter((x) => taken.has(x))).toEqual([]);
    }
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
  it("a reward model from 48 comparisons ranks held-out pairs better than chance, DPO beats the SFT model, PPO raises its reward and the labeler's score", async () => {
    const gpu = await testGpu();
    const out = mkdtempSync(join(tmpdir(), 'experiment-'));
    const r = await runExperiment(gpu, {
      model: 'public/models/default',
      labelers: [LABELERS.cheerful!],
      prompts: builtinPrompts({ demonstrations: 16, ppoPrompts: 16, evalPrompts: 10 }),
      comparisons: 48,
      curve: [],
      seeds: 1,
      stages: ['sft', 'rm', 'ppo', 'dpo'],
      K: 4,
      evalSamples: 2,
      maxNewTokens: 24,
      out,
      config: { sft: { steps: 2 }, ppo: { steps: 8 } },
      log: (line) => console.log(`CI experiment: ${line}`),
    });
    const run = r.runs[0]!;
    console.log('CI experiment', JSON.stringify({ rm: run.rm, feature_fit: run.feature_fit, ppo: run.ppo, dpo: run.dpo, seconds: r.seconds }));
    expect(run.comparisons).toBeGreaterThanOrEqual(48);
    expect(run.rm!.heldout_accuracy).toBeGreaterThan(0.6);
    expect(run.dpo!.win_rate_expected).toBeGreaterThan(0.6);
    expect(run.ppo!.win_rate_expected).toBeGreaterThan(0.5);
    expect(run.ppo!.labeler_score).toBeGreaterThan(run.ppo!.sft_labeler_score);
    const steps = r.ppo_steps.cheerful!,
      mean = (xs: { reward: number }[]) => xs.reduce((a, x) => a + x.reward, 0) / xs.length;
    expect(steps.length).toBe(8);
    expect(mean(steps.slice(-3))).toBeGreaterThan(mean(steps.slice(0, 3))); // PPO raised its reward model's score
    for (const k of ['ppo', 'dpo'] as const) {
      expect(run[k]!.kl, k).toBeGreaterThan(0.5); // it moved, away from the SFT model
      expect(run[k]!.distinct, k).toBeGreaterThan(0.5);
    }
    // the same judgments on held-out prompts of the training vocabulary, and the reward model's ceiling
    expect(run.rm!.heldout_seen_pairs).toBeGreaterThan(20);
    expect(run.rm!.heldout_seen_accuracy).toBeGreaterThan(0.6);
    for (const k of ['ppo', 'dpo'] as const) expect(run[k]!.seen!.judgments, k).toBe(20);
    expect(run.dpo!.seen!.win_rate_expected).toBeGreaterThan(0.6);
    expect(run.feature_fit!.heldout_accuracy).toBeGreaterThan(0.6);
    expect(run.feature_fit!.heldout_seen_accuracy).toBeGreaterThan(0.6);
    // where its held-out errors lie, by the labeler's features: every pair differs in at least one, in one alone at most once
    for (const [by, pairs] of [
      [run.rm!.by_feature!, run.rm!.heldout_pairs],
      [run.rm!.by_feature_seen!, run.rm!.heldout_seen_pairs!],
    ] as const) {
      const fs = Object.values(by);
      expect(fs).toHaveLength(Object.keys(LABELERS.cheerful!.features).length);
      expect(Math.max(...fs.map((f) => f.pairs))).toBeLessThanOrEqual(pairs);
      expect(fs.reduce((n, f) => n + f.pairs, 0)).toBeGreaterThanOrEqual(pairs);
      expect(fs.reduce((n, f) => n + f.alone_pairs, 0)).toBeLessThanOrEqual(pairs);
    }
    expect(summaryTable(r)).toContain('Held-out prompts of the training vocabulary');
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(res.adapter).toBe(gpu.adapter.name);
    expect(res.summary.cheerful.dpo_win_rate.mean).toBe(run.dpo!.win_rate);
    for (const stage of ['sft', 'rm', 'ppo', 'dpo']) {
      const dir = stage === 'sft' ? join(out, 'seed-1', 'sft') : join(out, 'seed-1', 'cheerful', 'comparisons-48', stage);
      expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, stage).toBeGreaterThan(0);
    }
    expect(plotSvg(r)).toMatch(/^<svg/);
    // each stage's time, and the positions its plans computed for the tokens its batches held: every
    // batch on a plan as long as its longest row computes at least its tokens, and never more than the
    // stage's whole length for every row
    for (const stage of ['rm', 'ppo', 'dpo']) {
      const u = run.stages![stage]!;
      expect(u.seconds, stage).toBeGreaterThan(0);
      expect(u.tokens, stage).toBeGreaterThan(0);
      expect(u.positions, stage).toBeGreaterThanOrEqual(u.tokens);
    }
    expect(res.runs[0].stages.rm.positions).toBe(run.stages!.rm!.positions);
    rmSync(out, { recursive: true, force: true }); // (kept when a check fails, to look at)
  }, 1_200_000); // about 9 minutes in CI (524 s before plan sets); 10 were too few beside other jobs

  it('active selection: half the comparisons as the prompts come, then the prompts a reward model trained on those is least sure of', async () => {
    const gpu = await testGpu();
    const out = mkdtempSync(join(tmpdir(), 'experiment-select-'));
    const r = await runExperiment(gpu, {
      model: 'public/models/default',
      labelers: [LABELERS.concise!],
      prompts: builtinPrompts({ demonstrations: 16, ppoPrompts: 16, evalPrompts: 6 }),
      comparisons: 24,
      curve: [],
      seeds: 1,
      stages: ['sft', 'rm'],
      K: 4,
      evalSamples: 1,
      maxNewTokens: 16,
      out,
      select: 'uncertain',
      config: { sft: { steps: 2 }, rm: { steps: 8 } },
    });
    const run = r.runs[0]!;
    expect(run.comparisons).toBeGreaterThanOrEqual(24);
    expect(Number.isFinite(run.rm!.heldout_accuracy)).toBe(true);
    const dir = join(out, 'seed-1', 'concise', 'comparisons-24');
    const lines = (f: string) =>
      readFileSync(join(dir, f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    const ranked = lines('rankings.jsonl'),
      pool = lines('selection.jsonl') as { prompt: string; margin: number }[];
    const all = lines('../rankings.jsonl'); // the labeler's rankings in prompt order
    // the first rankings are the ones in order, up to half the comparisons
    let half = 0,
      k = 0;
    while (half < 12) half += pairCount({ kind: 'ranking', ...all[k++] });
    expect(ranked.slice(0, k).map((x) => x.prompt)).toEqual(all.slice(0, k).map((x) => x.prompt));
    // the rest are the pool's smallest margins, in that order
    expect(pool.map((x) => x.margin)).toEqual([...pool.map((x) => x.margin)].sort((a, b) => a - b));
    expect(ranked.slice(k).map((x) => x.prompt)).toEqual(pool.slice(0, ranked.length - k).map((x) => x.prompt));
    expect(pool.length).toBeGreaterThan(ranked.length - k); // there was a choice
    expect(
      readFileSync(join(dir, 'rm-select', 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n').length,
    ).toBeGreaterThan(0);
    rmSync(out, { recursive: true, force: true });
  }, 600_000);
});

// experiment-merge: one experiment from runs of other seeds (--first-seed), summarised as if one run had
// done them all. Two hand-made results files: seed 1 alone, seeds 2 and 3 together.
describe('the experiment command', () => {
  it("checks --config before any stage trains: stages, options (old snake_case names read as today's), and says which is wrong", async () => {
    const out = mkdtempSync(join(tmpdir(), 'exp-config-'));
    const v = {
      model: 'builtin',
      labeler: 'cheerful',
      comparisons: 48,
      curve: '',
      seeds: 1,
      firstSeed: 1,
      stages: 'sft,dpo',
      out,
      evalSamples: 8,
      select: 'order',
      buckets: true,
    } as const;
    const noGpu = null as unknown as Gpu; // refused before the GPU is touched
    try {
      await expect(experimentCommand(noGpu, { ...v, config: '{"dpo": {"betta": 1}}' })).rejects.toThrow('--config: dpo: config.betta: not a training option');
      await expect(experimentCommand(noGpu, { ...v, config: '{"dop": {"beta": 1}}' })).rejects.toThrow('--config: no stage "dop"');
      await expect(experimentCommand(noGpu, { ...v, config: '[1]' })).rejects.toThrow('--config: not an object of stages');
      await expect(experimentCommand(noGpu, { ...v, config: '{"ppo": {"kl_coef": 0.1, "klCoef": 0.2}}' })).rejects.toThrow(
        '--config: ppo: config.klCoef: given twice, as kl_coef and as klCoef, with different values',
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('mergeResults', () => {
  const labelers = [{ name: 'concise', taste: 'short', noise: 0.5 }];
  const pol = (win: number, kl: number) => ({
    win_rate: win,
    win_rate_expected: win,
    judgments: 100,
    kl,
    labeler_score: 1,
    sft_labeler_score: 0,
    mean_length: 5,
    distinct: 1,
  });
  const run = (seed: number, acc: number, win: number, kl: number) => ({
    labeler: 'concise',
    seed,
    comparisons: 200,
    prompts: 34,
    seconds: 10,
    rm: { heldout_accuracy: acc, heldout_accuracy_noisy: acc - 0.05, heldout_pairs: 300 },
    ppo: pol(win, kl),
  });
  const results = (runs: ReturnType<typeof run>[], agreement: number, steps: { step: number; reward: number; kl: number }[], seconds: number, date: string) =>
    ({
      adapter: 'llvmpipe',
      date,
      model: 'public/models/default',
      settings: {
        model: 'public/models/default',
        comparisons: 200,
        curve: [],
        seeds: runs.length,
        firstSeed: runs[0]!.seed,
        stages: ['sft', 'rm', 'ppo'],
        K: 4,
        select: 'order',
        evalSamples: 2,
        labelers: labelers.map((l) => ({ ...l, self_agreement: agreement })),
        eval_prompts: 52,
      },
      seconds,
      summary: { concise: { comparisons: 200, reward_hacking: [], ppo_win_rate: { ...interval(runs.map((r) => r.ppo.win_rate)), pooled: pooled(0, 1) } } },
      curve: {},
      ppo_steps: { concise: steps },
      targets: { rm_accuracy: 0.9, win_rate: 0.8, max_kl: 10, met: {} },
      runs,
    }) as unknown as ExperimentResults;
  const a = results(
    [run(1, 0.7, 0.6, 5)],
    0.8,
    [
      { step: 1, reward: 0, kl: 0 },
      { step: 2, reward: 3, kl: 3 },
    ],
    100,
    '2026-12-04T00:00:00Z',
  );
  const b = results(
    [run(2, 0.8, 0.7, 7), run(3, 0.9, 0.8, 9)],
    0.65,
    [
      { step: 1, reward: 0.3, kl: 0 },
      { step: 2, reward: 1.5, kl: 6 },
    ],
    250,
    '2026-12-05T00:00:00Z',
  );

  it('intervals over every seed, self-agreement weighted by seeds, PPO steps averaged over every seed, wall times added', () => {
    const m = mergeResults([a, b], ['a.json', 'b.json']);
    expect(m.runs.map((r) => r.seed)).toEqual([1, 2, 3]);
    expect(m.settings.seeds).toBe(3);
    expect(m.summary.concise!.rm_accuracy).toEqual(interval([0.7, 0.8, 0.9]));
    expect(m.summary.concise!.ppo_win_rate!.mean).toBeCloseTo(0.7, 12);
    expect(m.summary.concise!.ppo_win_rate!.pooled).toEqual(pooled(210, 300));
    expect(m.summary.concise!.ppo_kl).toEqual(interval([5, 7, 9]));
    expect(m.settings.labelers[0]!.self_agreement).toBeCloseTo((0.8 + 2 * 0.65) / 3, 12);
    expect(m.ppo_steps.concise!.map((x) => x.reward)).toEqual([(0 + 2 * 0.3) / 3, (3 + 2 * 1.5) / 3]);
    expect(m.ppo_steps.concise![1]!.kl).toBeCloseTo(5, 12);
    expect(m.seconds).toBe(350);
    expect(m.merged_from).toEqual([
      { date: a.date, seeds: [1], seconds: 100 },
      { date: b.date, seeds: [2, 3], seconds: 250 },
    ]);
    expect(m.targets.met.concise).toEqual({ rm_accuracy: false, ppo_win_rate: false, ppo_kl: true });
    expect(summaryTable(m)).toContain('3 seeds (1 + 2, 3, run separately)');
  });

  it("the learning curve carries each point's KL beside its win rate, over every seed, and the summary prints it", () => {
    const at = (seed: number, comparisons: number, win: number, kl: number) => ({ ...run(seed, 0.7, win, kl), comparisons });
    const curved = (runs: ReturnType<typeof run>[], date: string) => {
      const r = results(runs, 0.7, [{ step: 1, reward: 0, kl: 0 }], 10, date);
      return { ...r, settings: { ...r.settings, curve: [25] } } as ExperimentResults;
    };
    const m = mergeResults([curved([at(1, 25, 0.5, 2), at(1, 200, 0.6, 5)], a.date), curved([at(2, 25, 0.7, 4), at(2, 200, 0.8, 7)], b.date)]);
    expect(m.curve.concise!.map((c) => c.comparisons)).toEqual([25, 200]);
    expect(m.curve.concise![0]!.ppo_win_rate).toEqual(interval([0.5, 0.7]));
    expect(m.curve.concise![0]!.ppo_kl).toEqual(interval([2, 4]));
    expect(m.curve.concise![1]!.ppo_kl).toEqual(interval([5, 7]));
    const table = summaryTable(m);
    expect(table).toContain('The learning curve');
    expect(table).toMatch(/\| concise \| 25 \| 0\.70 \[0\.70, 0\.70\] \| - \| 0\.60 \[0\.00, 1\.00\] \| 3\.00 \[0\.00, 15\.\d\d\] \|/);
    expect(table).toMatch(/\| concise \| 200 \| 0\.70 \[0\.70, 0\.70\] \| - \| 0\.70 \[0\.00, 1\.00\] \| 6\.00 \[0\.00, 18\.\d\d\] \|/);
    // one point (no curve) prints no curve table
    expect(summaryTable(a)).not.toContain('The learning curve');
  });

  it("GRPO's and RLOO's steps are averaged over every seed like PPO's (GRPO with no KL when it logged none), and plotted beside them", () => {
    const withRl = (r: ExperimentResults, grpo: number[], rloo: { reward: number; kl: number }[]) =>
      ({
        ...r,
        summary: { concise: { ...r.summary.concise!, grpo_win_rate: r.summary.concise!.ppo_win_rate, rloo_win_rate: r.summary.concise!.ppo_win_rate } },
        rl_steps: { concise: { grpo: grpo.map((reward, i) => ({ step: i + 1, reward })), rloo: rloo.map((x, i) => ({ step: i + 1, ...x })) } },
      }) as ExperimentResults;
    const m = mergeResults([withRl(a, [1, 2], [{ reward: 0, kl: 1 }]), withRl(b, [4, 8], [{ reward: 3, kl: 4 }])], ['a.json', 'b.json']);
    expect(m.rl_steps!.concise!.grpo).toEqual([
      { step: 1, reward: (1 + 2 * 4) / 3 },
      { step: 2, reward: (2 + 2 * 8) / 3 },
    ]);
    expect(m.rl_steps!.concise!.rloo).toEqual([{ step: 1, reward: 2, kl: 3 }]);
    expect(m.ppo_steps.concise!.map((x) => x.reward)).toEqual([(0 + 2 * 0.3) / 3, (3 + 2 * 1.5) / 3]); // PPO's as before
    const svg = plotSvg(m);
    for (const k of ['PPO', 'GRPO', 'RLOO']) expect(svg, k).toContain(`concise: ${k}</text>`);
    expect(svg).toContain('stroke-dasharray="5 3"'); // GRPO's line
    expect(svg).toContain('stroke-dasharray="2 2"'); // RLOO's line
    // a run of GRPO and RLOO alone plots their steps, not "no data"
    const alone = plotSvg({ ...m, ppo_steps: {} });
    expect(alone).not.toContain('reward model score per step: no data');
    expect(alone).not.toContain('KL to the SFT model per step: no data'); // RLOO logs its KL
  });

  it('refuses a seed run twice, or runs of other settings, naming the files', () => {
    expect(() => mergeResults([a, a], ['a.json', 'again.json'])).toThrow('merge: again.json and a.json both ran seed 1');
    const other = { ...b, settings: { ...b.settings, comparisons: 100 } };
    expect(() => mergeResults([a, other], ['a.json', 'b.json'])).toThrow('merge: b.json was run with other settings than a.json');
    const otherGpu = { ...b, adapter: 'SwiftShader' };
    expect(() => mergeResults([a, otherGpu], ['a.json', 'b.json'])).toThrow('other settings');
    const otherConfig = { ...b, settings: { ...b.settings, config: { rm: { lr: 1e-3 } } } };
    expect(() => mergeResults([a, otherConfig], ['a.json', 'b.json'])).toThrow('other settings');
    const reordered = { ...b, settings: { ...b.settings, labelers: [...b.settings.labelers].reverse(), K: 4 } };
    expect(mergeResults([a, reordered]).runs.length).toBe(3);
    expect(() => mergeResults([a])).toThrow('at least two');
  });

  it('rlhf-playground experiment-merge writes results.json, plot.svg and the table; a bad file is one line and exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'merge-'));
    writeFileSync(join(dir, 'a.json'), JSON.stringify(a));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(b));
    writeFileSync(join(dir, 'bad.json'), '{"runs": ');
    const ok = await cli(['experiment-merge', join(dir, 'a.json'), join(dir, 'b.json'), '--out', join(dir, 'out')]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('| concise | 0.70 | 200 |');
    expect(JSON.parse(readFileSync(join(dir, 'out', 'results.json'), 'utf8')).runs.length).toBe(3);
    expect(readFileSync(join(dir, 'out', 'plot.svg'), 'utf8')).toMatch(/^<svg/);
    const bad = await cli(['experiment-merge', join(dir, 'a.json'), join(dir, 'bad.json'), '--out', join(dir, 'out2')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/bad\.json: not JSON/)]);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
