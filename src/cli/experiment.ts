// `rlhf-playground experiment`: the InstructGPT headline experiment with a simulated labeler, headless
// (src/experiment/run.ts). Writes results.json, plot.svg and every stage's metrics.jsonl under --out, and
// prints the summary table.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option } from 'commander';
import type { Gpu } from '../gpu/runtime.ts';
import { LABELERS } from '../experiment/labelers/index.ts';
import { plotSvg } from '../experiment/plot.ts';
import { builtinPrompts } from '../experiment/prompts.ts';
import { mergeResults, POLICY_STAGES, runExperiment, type ExperimentResults } from '../experiment/run.ts';
import { configInput, type Stage } from '../shared/config.ts';
import { required, UsageError } from './options.ts';

export interface ExperimentOpts {
  model: string;
  labeler: string;
  comparisons: number;
  curve: string;
  seeds: number;
  firstSeed: number;
  stages: string;
  out: string;
  evalSamples: number;
  config?: string;
  select: 'order' | 'uncertain';
  buckets: boolean;
}

const STAGES: Stage[] = ['sft', 'rm', 'ppo', 'dpo', 'grpo', 'rloo'];
/** What runs when --stages is not given: GRPO and RLOO join when asked for (each doubles the online part of a run). */
const DEFAULT_STAGES: Stage[] = ['sft', 'rm', 'ppo', 'dpo'];
const int = (flag: string, min: number) => (v: string) => {
  const x = Number(v);
  if (!(Number.isInteger(x) && x >= min)) throw new UsageError(`${flag}: invalid value "${v}" (an integer >= ${min})`);
  return x;
};

export function experimentOptions(): Option[] {
  return [
    required(
      '--labeler <NAME>',
      `the simulated labeler(s), comma-separated, or "all": ${Object.values(LABELERS)
        .map((l) => `${l.name} (${l.taste})`)
        .join('; ')}`,
    ),
    required('--out <DIR>', "where results.json, plot.svg and every stage's metrics.jsonl go"),
    new Option('--comparisons <N>', 'pairs the labeler gives (rankings of K = 4 samples: 6 pairs each, fewer with ties)')
      .argParser(int('--comparisons', 1))
      .default(200),
    new Option('--curve <LIST>', 'learning-curve points (comparisons), comma-separated; those below --comparisons are run too').default('25,50,100'),
    new Option('--seeds <S>', 'seeds (each a whole run: SFT, rankings, RM, PPO, DPO)').argParser(int('--seeds', 1)).default(3),
    new Option(
      '--first-seed <S>',
      'the first seed: seeds S .. S + seeds - 1 run (a long experiment spread over several runs, put together with experiment-merge)',
    )
      .argParser(int('--first-seed', 1))
      .default(1),
    new Option('--stages <LIST>', `stages to run, of ${STAGES.join(',')} (ppo, grpo and rloo need rm)`).default(DEFAULT_STAGES.join(',')),
    new Option('--eval-samples <N>', 'samples per held-out prompt and model for the win rate').argParser(int('--eval-samples', 1)).default(2),
    new Option(
      '--select <HOW>',
      "which prompts the labeler ranks: 'order' (as they come) or 'uncertain' (half as they come, then those a reward model trained on them is least sure of)",
    )
      .choices(['order', 'uncertain'])
      .default('order'),
    new Option(
      '--no-buckets',
      "run every batch at its stage's full length, as before batches were cut to their longest row (to measure what that saves: the same figures, more positions computed)",
    ),
    new Option('--config <JSON>', 'hyperparameters over the defaults, per stage: {"rm": {"lr": 1e-3}, "ppo": {"steps": 20}} (TrainConfig names)'),
  ];
}

export async function experimentCommand(gpu: Gpu, v: ExperimentOpts): Promise<void> {
  const names = v.labeler === 'all' ? Object.keys(LABELERS) : v.labeler.split(',').map((s) => s.trim());
  const labelers = names.map(
    (n) =>
      LABELERS[n] ??
      (() => {
        throw new UsageError(`--labeler: no labeler "${n}" (there are ${Object.keys(LABELERS).join(', ')})`);
      })(),
  );
  const stages = v.stages.split(',').map((s) => s.trim()) as Stage[];
  const badStage = stages.find((s) => !STAGES.includes(s));
  if (badStage) throw new UsageError(`--stages: no stage "${badStage}" (there are ${STAGES.join(', ')})`);
  for (const s of ['ppo', 'grpo', 'rloo'] as const)
    if (stages.includes(s) && !stages.includes('rm')) throw new UsageError(`--stages: ${s} trains against the reward model; add rm`);
  const curve = v.curve
    .split(',')
    .filter(Boolean)
    .map((s) => int('--curve', 1)(s.trim()));
  let config;
  if (v.config) {
    try {
      config = JSON.parse(v.config);
    } catch (e) {
      throw new UsageError(`--config: not JSON (${(e as Error).message})`);
    }
    // checked now, not when the stage starts (after the stages before it have trained)
    if (typeof config !== 'object' || config === null || Array.isArray(config))
      throw new UsageError('--config: not an object of stages ({"dpo": {"beta": 0.5}})');
    for (const [stage, c] of Object.entries(config as Record<string, unknown>)) {
      if (!STAGES.includes(stage as Stage)) throw new UsageError(`--config: no stage "${stage}" (there are ${STAGES.join(', ')})`);
      if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new UsageError(`--config: ${stage}: not an object of options`);
      try {
        configInput(c as Record<string, unknown>);
      } catch (e) {
        throw new UsageError(`--config: ${stage}: ${(e as Error).message}`);
      }
    }
  }
  mkdirSync(v.out, { recursive: true });
  const t0 = Date.now();
  const results = await runExperiment(gpu, {
    model: v.model,
    labelers,
    prompts: builtinPrompts(),
    comparisons: v.comparisons,
    curve,
    seeds: v.seeds,
    firstSeed: v.firstSeed,
    stages,
    config,
    K: 4,
    select: v.select,
    evalSamples: v.evalSamples,
    out: v.out,
    ...(v.buckets === false ? { buckets: false as const } : {}),
    log: (line) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${line}\n`),
  });
  writeFileSync(join(v.out, 'plot.svg'), plotSvg(results));
  process.stdout.write(summaryTable(results) + '\n');
}

/** `experiment-merge A/results.json B/results.json --out DIR`: one experiment from runs of other seeds. */
export function experimentMergeCommand(files: string[], v: { out: string }): void {
  const parts = files.map((f) => {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw new UsageError(`${f}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    let r: ExperimentResults;
    try {
      r = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`${f}: not JSON (${(e as Error).message})`);
    }
    if (!r || typeof r !== 'object' || !Array.isArray(r.runs) || !r.settings || !r.summary || !r.ppo_steps)
      throw new UsageError(`${f}: not an experiment's results.json (no runs, settings, summary or ppo_steps)`);
    return r;
  });
  let merged: ExperimentResults;
  try {
    merged = mergeResults(parts, files);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  mkdirSync(v.out, { recursive: true });
  writeFileSync(join(v.out, 'results.json'), JSON.stringify(merged, null, 2) + '\n');
  writeFileSync(join(v.out, 'plot.svg'), plotSvg(merged));
  process.stdout.write(summaryTable(merged) + '\n');
}

const iv = (x?: { mean: number; lo: number; hi: number }) => (x ? `${x.mean.toFixed(2)} [${x.lo.toFixed(2)}, ${x.hi.toFixed(2)}]` : '-');
/** A rate's interval, cut to [0, 1] (a t-interval over a few seeds can run past either end). */
const rate = (x?: { mean: number; lo: number; hi: number }) => iv(x && { ...x, lo: Math.max(0, x.lo), hi: Math.min(1, x.hi) });
/** A KL's interval, cut at 0 (a KL is never negative; over two seeds a t-interval easily runs below it). */
const kl = (x?: { mean: number; lo: number; hi: number }) => iv(x && { ...x, lo: Math.max(0, x.lo) });

/** The summary as Markdown tables (the README carries them): the held-out prompts of unseen names, then those of the training vocabulary when measured. */
export function summaryTable(r: ExperimentResults): string {
  const names = { ppo: 'PPO', dpo: 'DPO', grpo: 'GRPO', rloo: 'RLOO' };
  const stages = POLICY_STAGES.filter((k) => r.settings.stages.includes(k)); // the columns of the stages that ran
  const rows = Object.entries(r.summary).map(([name, s]) => {
    const l = r.settings.labelers.find((x) => x.name === name)!;
    return `| ${name} | ${l.self_agreement.toFixed(2)} | ${s.comparisons} | ${rate(s.rm_accuracy)} | ${rate(s.feature_fit_accuracy)} | ${rate(s.rm_accuracy_noisy)} |${stages.map((k) => ` ${rate(s[`${k}_win_rate`])} | ${kl(s[`${k}_kl`])} |`).join('')}`;
  });
  type Iv = { mean: number; lo: number; hi: number } | undefined;
  /** A row of the tables without self-agreement and noisy labels: the seen vocabulary's and the learning curve's. */
  const shortRow = (name: string, n: number, rm: Iv, fit: Iv, policy: (k: (typeof stages)[number]) => [Iv, Iv]) =>
    `| ${name} | ${n} | ${rate(rm)} | ${rate(fit)} |${stages.map((k) => ` ${rate(policy(k)[0])} | ${kl(policy(k)[1])} |`).join('')}`;
  const seen = Object.entries(r.summary)
    .filter(([, s]) => s.rm_accuracy_seen || s.feature_fit_accuracy_seen || stages.some((k) => s[`${k}_win_rate_seen`]))
    .map(([name, s]) => shortRow(name, s.comparisons, s.rm_accuracy_seen, s.feature_fit_accuracy_seen, (k) => [s[`${k}_win_rate_seen`], s[`${k}_kl_seen`]]));
  const policyHeads = stages.map((k) => ` ${names[k]} win rate vs SFT | ${names[k]} KL (nats) |`).join('');
  // the learning curve, where a labeler has more than one point: each point its own reward model and policies
  const curve = Object.entries(r.curve ?? {})
    .filter(([, pts]) => pts.length > 1)
    .flatMap(([name, pts]) => pts.map((c) => shortRow(name, c.comparisons, c.rm_accuracy, c.feature_fit_accuracy, (k) => [c[`${k}_win_rate`], c[`${k}_kl`]])));
  return [
    `Held-out prompts of names, objects and places the model never saw:`,
    '',
    `| labeler | self-agreement | comparisons | RM held-out accuracy | the labeler's features fitted (the RM's ceiling) | RM vs noisy labels |${policyHeads}`,
    `| --- | --- | --- | --- | --- | --- |${' --- | --- |'.repeat(stages.length)}`,
    ...rows,
    ...(seen.length
      ? [
          '',
          `Held-out prompts of the training vocabulary (never ranked, demonstrated or PPO's):`,
          '',
          `| labeler | comparisons | RM held-out accuracy | the labeler's features fitted (the RM's ceiling) |${policyHeads}`,
          `| --- | --- | --- | --- |${' --- | --- |'.repeat(stages.length)}`,
          ...seen,
        ]
      : []),
    ...(curve.length
      ? [
          '',
          `The learning curve (held-out prompts of unseen names; each point trains its own reward model and policies from the labeler's first comparisons):`,
          '',
          `| labeler | comparisons | RM held-out accuracy | the labeler's features fitted (the RM's ceiling) |${policyHeads}`,
          `| --- | --- | --- | --- |${' --- | --- |'.repeat(stages.length)}`,
          ...curve,
        ]
      : []),
    '',
    `${r.settings.seeds} seeds${r.merged_from ? ` (${r.merged_from.map((m) => m.seeds.join(', ')).join(' + ')}, run separately)` : ''}, means with 95% intervals over seeds; ${r.settings.eval_prompts} held-out prompts (of each kind) x ${r.settings.evalSamples} samples; adapter: ${r.adapter}; ${Math.round(r.seconds)} s.`,
  ].join('\n');
}
