// The InstructGPT headline experiment at playground scale, headless: SFT on demonstrations; a simulated
// labeler ranks K = 4 samples per prompt; a reward model from those rankings; PPO against it and DPO on
// the same rankings; then the labeler judges the tuned models against the SFT model on prompts, samples
// and noise that never appear in training. Every stage goes through the same stage builder as the page
// and the CLI (src/train/stages.ts), with the same defaults, so what this measures is what a user gets.
import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/runtime.ts';
import type { Record as DataRecord } from '../io/datasets.ts';
import { readModelFolder } from '../io/folder.ts';
import type { ModelFiles } from '../io/sources.ts';
import { Tok } from '../io/tokenizer.ts';
import { loadModel } from '../model/index.ts';
import { mergeLora, type LoraSet } from '../model/lora.ts';
import type { Transformer } from '../model/transformer.ts';
import { PlanSet } from '../model/plan-set.ts';
import { snapshot } from '../train/checkpoint.ts';
import { layoutRows, targetWeights } from '../train/layout.ts';
import { meanMargin } from '../shared/selection.ts';
import { resolveConfig, type Stage, type TrainInput } from '../shared/config.ts';
import { parseConfig } from '../shared/model-config.ts';
import { Generator, GENERATE_DEFAULTS } from '../train/generate.ts';
import { Rng } from '../shared/sampling.ts';
import { buildStage, type StageContext, type StageRun } from '../train/stages.ts';
import { accuracyByFeature, featureFit, type FeatureAccuracy, type FeatureFit } from './feature-fit.ts';
import { judge, preferProb, rankCompletions, type Labeler } from './labeler.ts';
import type { ExperimentPrompts } from './prompts.ts';
import { interval, pooled, type Interval } from './stats.ts';

export type PolicyStage = 'ppo' | 'dpo' | 'grpo' | 'rloo';
export const POLICY_STAGES: readonly PolicyStage[] = ['ppo', 'dpo', 'grpo', 'rloo'];
/** The policy stages that train against the reward model, and the metric of its score in their steps. */
const RM_SCORE = { ppo: 'objective/scores', grpo: 'rewards/reward_model/mean', rloo: 'rewards/reward_model/mean' } as const;
/** Their KL to the reference in their steps (GRPO logs none when beta is 0: no reference). */
const KL_OF = { ppo: 'objective/kl', grpo: 'kl', rloo: 'kl' } as const;
type RlStage = keyof typeof RM_SCORE;
/** One step of an RL stage, averaged over seeds: the reward model's mean score of its rollouts, and its KL where logged. */
export interface RlStep {
  step: number;
  reward: number;
  kl?: number;
}

export interface ExperimentOptions {
  model: string; // a model folder
  labelers: Labeler[];
  prompts: ExperimentPrompts;
  comparisons: number; // pairs the labeler gives (the full run)
  curve: number[]; // learning-curve points (pairs), each <= comparisons; the full run is the last
  seeds: number;
  /** the first seed (1): seeds firstSeed .. firstSeed + seeds - 1 run, so one experiment can be spread over several runs and merged (mergeResults) */
  firstSeed?: number;
  stages: Stage[]; // which of sft, rm, ppo, dpo, grpo, rloo run (rm is needed by ppo, grpo and rloo)
  /** Hyperparameters over the defaults, per stage (none: the defaults, which is what the issue asks to work). */
  config?: Partial<Record<Stage, TrainInput>>;
  K: number; // samples ranked per prompt (4)
  /**
   * Which prompts the labeler ranks: 'order' (as they come) or 'uncertain' (active selection: the first
   * half of the comparisons as they come, then a reward model trained on those picks, from a pool of three
   * times the prompts still needed, those whose samples it is least sure about: the smallest mean score
   * margin over their pairs).
   */
  select?: 'order' | 'uncertain';
  /** false: every batch at its stage's full length, as before plan sets (to measure what they save); left out otherwise. */
  buckets?: false;
  evalSamples: number; // samples per held-out prompt and model for the win rate
  maxNewTokens?: number; // longest sample (ranked, judged): 48
  out: string;
  log?: (line: string) => void;
}

/** What one (labeler, seed, comparisons) run measured. */
export interface RunResult {
  labeler: string;
  seed: number;
  comparisons: number; // pairs in the RM's and DPO's data (without ties)
  prompts: number; // ranked prompts
  rm?: {
    heldout_accuracy: number;
    heldout_accuracy_noisy: number;
    heldout_pairs: number;
    train_eval_accuracy?: number;
    /** the same on the held-out prompts of the training vocabulary (ExperimentPrompts.evalSeen) */
    heldout_seen_accuracy?: number;
    heldout_seen_pairs?: number;
    /** its held-out accuracy on the pairs each of the labeler's features tells apart (feature-fit.ts: accuracyByFeature); unseen names, then training vocabulary */
    by_feature?: Record<string, FeatureAccuracy>;
    by_feature_seen?: Record<string, FeatureAccuracy>;
  };
  /** The best a reward model could expect from the same rankings: the labeler's own features, fitted (feature-fit.ts). */
  feature_fit?: FeatureFit & { heldout_seen_accuracy?: number };
  ppo?: PolicyResult;
  dpo?: PolicyResult;
  grpo?: PolicyResult;
  rloo?: PolicyResult;
  seconds: number;
  /** Each stage's training time, and the positions its plans computed for the tokens its batches held (src/model/plan-set.ts). */
  stages?: Record<string, StageUse>;
}

export interface StageUse {
  seconds: number;
  positions: number;
  tokens: number;
}

export interface PolicyResult {
  win_rate: number; // labeler's judgments with fresh noise, ties 0.5
  win_rate_expected: number; // mean P(tuned preferred) under the labeler's noise model (no draw)
  judgments: number;
  kl: number; // mean sequence KL(tuned || SFT) in nats on held-out samples
  labeler_score: number; // mean noise-free labeler score of the tuned model's held-out samples
  sft_labeler_score: number;
  mean_length: number; // words
  distinct: number; // share of distinct samples among the held-out samples (collapse shows as a drop)
  rm_score?: number; // PPO, GRPO: mean RM score of its rollouts over the last steps
  reward_hacking?: string; // set when reward rose but the labeler's judgment did not follow
  /** The same judgment on the held-out prompts of the training vocabulary (other samples, its own noise). */
  seen?: PolicyResult;
}

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;

/** A K-way ranking line (completions best first, ranks for ties) from the labeler's ranks. */
export function rankingRecord(prompt: string, completions: string[], ranks: number[]): DataRecord {
  const order = completions.map((_, i) => i).sort((a, b) => ranks[a]! - ranks[b]!);
  const r = order.map((i) => ranks[i]!);
  return { kind: 'ranking', prompt, completions: order.map((i) => completions[i]!), ranks: r.map((x) => x - r[0]!) };
}

/** A ranking as its JSONL line. */
const lineOf = (r: DataRecord) => {
  const k = r as { prompt: string; completions: string[]; ranks: number[] };
  return { prompt: k.prompt, completions: k.completions, ranks: k.ranks };
};

/** Pairs a ranking gives the reward model (ties give none). */
export function pairCount(r: DataRecord): number {
  if (r.kind !== 'ranking') return r.kind === 'preference' ? 1 : 0;
  const ranks = r.ranks ?? r.completions.map((_, i) => i);
  let n = 0;
  for (let i = 0; i < ranks.length; i++) for (let j = i + 1; j < ranks.length; j++) if (ranks[i] !== ranks[j]) n++;
  return n;
}

/** Sample seeds of the seen-vocabulary held-out prompts sit this far from the unseen ones' (no stream shared). */
const SEEN_SEEDS = 2_000_000;

/** Prompts sampled together in one batch (k rows each): a decode step costs about the same for 64 rows as for 4. */
const SAMPLE_BATCH = 16;

/**
 * k samples of each prompt from a model (with an adapter, or the base alone), decoded; prompt i's seed
 * `seeds[i]` makes its samples reproducible whatever prompts share its batch.
 */
async function sampleMany(gen: Generator, tok: Tok, prompts: string[], k: number, seeds: number[], maxNewTokens: number): Promise<string[][]> {
  const out: string[][] = [];
  for (let i = 0; i < prompts.length; i += SAMPLE_BATCH) {
    const requests = prompts.slice(i, i + SAMPLE_BATCH).map((p, j) => ({ prompt: tok.encodePrompt(p), seed: seeds[i + j]! }));
    const gs = await gen.generateMany(requests, { ...GENERATE_DEFAULTS, numSamples: k, maxNewTokens, temperature: 1, stopTokenIds: tok.eosTokenIds });
    for (const g of gs) out.push(g.ids.map((ids) => tok.decode(ids, { skipSpecialTokens: true }).trim()));
  }
  return out;
}

/** Summed log p(completion | prompt) under a model (+ adapter), one value per sequence. */
async function sequenceLogps(model: Transformer, lora: LoraSet | undefined, tok: Tok, items: { prompt: string; completion: string }[]): Promise<number[]> {
  const seqs = items.map((it) => ({
    p: tok.encodePrompt(it.prompt),
    c: [...tok.encode(it.completion, { addSpecialTokens: false }), ...tok.eosTokenIds.slice(0, 1)],
  }));
  const T = Math.min(model.cfg.maxPositions, Math.ceil(Math.max(...seqs.map((x) => x.p.length + x.c.length)) / 8) * 8),
    B = 8,
    out: number[] = [];
  const plan = await model.plan(B, T, { lora });
  try {
    for (let i = 0; i < items.length; i += B) {
      const chunk = seqs.slice(i, i + B);
      const { ids, targets } = layoutRows(
        chunk.map(({ p, c }) => ({ prompt: p, completion: c })),
        B,
        T,
        tok.eosTokenIds[0] ?? 0,
      );
      plan.setBatch(ids, targets, targetWeights(targets));
      await model.gpu.check('experiment logprobs', () => model.gpu.run([...plan.forward, ...plan.loss]));
      const l = await model.gpu.read(plan.losses);
      chunk.forEach((_, row) => {
        let s = 0;
        for (let t = 0; t < T; t++) s -= l[row * T + t]!;
        out.push(s);
      });
    }
  } finally {
    plan.destroy();
  }
  return out;
}

async function runStage(run: StageRun, dir: string, log: (s: string) => void, name: string, use?: (u: StageUse) => void): Promise<Record<string, number>[]> {
  const t0 = Date.now();
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'metrics.jsonl'),
    lines: Record<string, number>[] = [];
  writeFileSync(path, '');
  for (let s = 0; s < run.totalSteps; s++) {
    const r = await run.step(s);
    const line = { step: s + 1, ...r.metrics };
    lines.push(line);
    appendFileSync(path, JSON.stringify(line) + '\n');
  }
  const fin = await run.finish();
  if (Object.keys(fin).length) {
    lines.push({ step: run.totalSteps, ...fin });
    appendFileSync(path, JSON.stringify({ step: run.totalSteps, ...fin }) + '\n');
  }
  const { positions, tokens } = run.planUse();
  const u = { seconds: (Date.now() - t0) / 1000, positions, tokens };
  use?.(u);
  log(`  ${name}: ${run.totalSteps} steps, ${u.seconds.toFixed(0)} s, ${u.positions} positions computed for ${u.tokens} tokens`);
  return lines;
}

/** Runs the whole experiment; writes results.json beside every stage's metrics.jsonl under `out`. */
export async function runExperiment(gpu: Gpu, o: ExperimentOptions): Promise<ExperimentResults> {
  const was = PlanSet.bucketing;
  PlanSet.bucketing = o.buckets !== false;
  try {
    return await experiment(gpu, o);
  } finally {
    PlanSet.bucketing = was;
  }
}

/** What every part of one experiment shares: its options, the model's files and tokenizer, and the tallies it fills. */
interface Env {
  gpu: Gpu;
  o: ExperimentOptions;
  log: (s: string) => void;
  files: ModelFiles;
  tok: Tok;
  maxNew: number;
  /** A stage's config for a seed: the defaults, the options' own values over them; PPO's reward model is the one trained just before it, in this process (no run id to name). */
  cfgOf: (stage: Stage, seed: number, base: Pick<Transformer, 'cfg'>) => ReturnType<typeof resolveConfig>;
  runs: RunResult[];
  /** each RL stage's metrics lines, by `${stage}/${labeler}/${comparisons}`, one list per seed */
  rlCurves: Record<string, Record<string, number>[][]>;
  /** how often the labeler agrees with itself, judging the same held-out pair twice (InstructGPT's labelers agreed with each other 72.6% of the time) */
  agree: Record<string, { same: number; n: number }>;
}

async function experiment(gpu: Gpu, o: ExperimentOptions): Promise<ExperimentResults> {
  const t0 = Date.now();
  const files: ModelFiles = await readModelFolder(o.model);
  if (!files.tokenizer) throw new Error(`${o.model}: no tokenizer.json; the experiment reads and writes text`);
  const env: Env = {
    gpu,
    o,
    log: o.log ?? (() => {}),
    files,
    tok: Tok.fromJson(files.tokenizer, files.tokenizerConfig, `${files.source}/tokenizer.json`),
    maxNew: o.maxNewTokens ?? 48,
    cfgOf: (stage, seed, base) =>
      resolveConfig(stage, { seed, ...(stage in RM_SCORE ? { rewardRunId: 'experiment' } : {}), ...(o.config?.[stage] ?? {}) }, base.cfg),
    runs: [],
    rlCurves: {},
    agree: {},
  };
  // one base serves every stage of a seed: its linear weights in f16 (where the device has 'shader-f16') only
  // when every stage trains a LoRA adapter on it; a full fine-tune's reference and starting weights stay f32
  const modelCfg = parseConfig(files.config, `${files.source}/config.json`);
  const frozenF16 = o.stages.every((st) => env.cfgOf(st, o.firstSeed ?? 1, { cfg: modelCfg }).loraRank > 0);

  const firstSeed = o.firstSeed ?? 1;
  for (let seed = firstSeed; seed < firstSeed + o.seeds; seed++) {
    const { model: base } = loadModel(gpu, { ...files, configFile: `${files.source}/config.json` }, { frozenF16 });
    try {
      const s = await startSeed(env, seed, base);
      for (const labeler of o.labelers) {
        const data = await labelerData(env, s, labeler);
        for (const n of [...new Set([...o.curve.filter((x) => x < o.comparisons), o.comparisons])].sort((a, b) => a - b)) {
          await curvePoint(env, s, labeler, data, n);
        }
      }
      s.sftGen.destroy();
    } finally {
      base.destroy();
    }
  }
  const agreement = Object.fromEntries(Object.entries(env.agree).map(([k, v]) => [k, v.same / v.n]));
  const { labelers, prompts, log: _log, out: _out, ...settings } = o;
  const results = summarize(
    { settings, labelers: labelers.map((l) => ({ name: l.name, taste: l.taste, noise: l.noise })), evalPrompts: prompts.eval.length },
    env.runs,
    env.rlCurves,
    agreement,
    gpu.adapter.name,
    (Date.now() - t0) / 1000,
  );
  writeFileSync(join(o.out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  return results;
}

/** One seed's starting point: the SFT model (merged into `base`), its held-out samples, and its samples of the training prompts, drawn on demand. */
interface Seed {
  seed: number;
  base: Transformer;
  ctx: StageContext;
  dir: string;
  sftGen: Generator;
  evalPrompts: string[];
  seenPrompts: string[];
  /** the SFT model's samples of the held-out prompts: the baseline every tuned model is judged against */
  sftEval: string[][];
  sftSeen: string[][];
  trainAll: string[];
  /** the SFT model's K samples of prompt `i` of a kind: the same whoever ranks them */
  samplesOf: (kind: 'train' | 'eval' | 'seen', i: number) => Promise<string[]>;
}

async function startSeed(env: Env, seed: number, base: Transformer): Promise<Seed> {
  const { o, log, tok, maxNew } = env;
  const ctx: StageContext = { gpu: env.gpu, files: env.files, tok, base };
  const dir = join(o.out, `seed-${seed}`);
  // ---- SFT on the demonstrations, merged into the base: the starting model of every later stage ----
  if (o.stages.includes('sft')) {
    const demos = o.prompts.demonstrations(seed);
    const run = await buildStage(ctx, 'sft', env.cfgOf('sft', seed, base), demos);
    await runStage(run, join(dir, 'sft'), log, `seed ${seed} sft (${demos.length} demonstrations)`);
    if (run.policy?.lora) await mergeLora(run.policy.lora);
    run.destroy();
    ctx.adopted = true;
  }
  const sftGen = new Generator(base);
  // held-out samples of the SFT model, the baseline every tuned model is judged against
  const evalPrompts = o.prompts.eval,
    seenPrompts = o.prompts.evalSeen(seed);
  const sftEval = await sampleMany(
    sftGen,
    tok,
    evalPrompts,
    o.evalSamples,
    evalPrompts.map((_, i) => 1_000_003 * seed + i),
    maxNew,
  );
  const sftSeen = await sampleMany(
    sftGen,
    tok,
    seenPrompts,
    o.evalSamples,
    seenPrompts.map((_, i) => 1_000_003 * seed + i + SEEN_SEEDS),
    maxNew,
  );
  // the SFT model's K samples of a prompt are the same whoever ranks them: drawn once per seed, a
  // batch of prompts at a time (the held-out ones all at once)
  const drawn = new Map<string, string[]>();
  const trainAll = o.prompts.train(seed);
  const samplesOf = async (kind: 'train' | 'eval' | 'seen', i: number) => {
    const key = `${kind}/${i}`;
    if (!drawn.has(key)) {
      const ps = kind === 'train' ? trainAll : kind === 'eval' ? evalPrompts : seenPrompts;
      const idx = Array.from({ length: kind === 'train' ? SAMPLE_BATCH : ps.length }, (_, j) => i + j).filter(
        (x) => x < ps.length && !drawn.has(`${kind}/${x}`),
      );
      const cs = await sampleMany(
        sftGen,
        tok,
        idx.map((x) => ps[x]!),
        o.K,
        idx.map((x) => ({ train: 7_000_001, eval: 9_000_011, seen: 9_100_019 })[kind] * seed + x),
        maxNew,
      );
      idx.forEach((x, j) => drawn.set(`${kind}/${x}`, cs[j]!));
    }
    return drawn.get(key)!;
  };
  return { seed, base, ctx, dir, sftGen, evalPrompts, seenPrompts, sftEval, sftSeen, trainAll, samplesOf };
}

/** A labeler's data in one seed: its rankings of the training prompts, and its held-out rankings to measure reward models on. */
interface LabelerData {
  dir: string;
  /** K samples per training prompt ranked with the labeler's noise, until `comparisons` pairs */
  rankings: DataRecord[];
  /** the held-out prompts' samples in the labeler's noise-free order, and ranked with fresh noise */
  heldTrue: DataRecord[];
  heldNoisy: DataRecord[];
  /** the held-out prompts of the training vocabulary, noise-free */
  heldSeen: DataRecord[];
  judgeRng: Rng;
  seenRng: Rng;
}

async function labelerData(env: Env, s: Seed, labeler: Labeler): Promise<LabelerData> {
  const { o } = env;
  const dir = join(s.dir, labeler.name);
  // ---- the labeler ranks K samples of training prompts until it has given `comparisons` pairs ----
  const rng = Rng.forSample(s.seed, 17);
  const rankings: DataRecord[] = [];
  let pairs = 0;
  for (const [i, p] of s.trainAll.entries()) {
    if (pairs >= o.comparisons) break;
    const cs = await s.samplesOf('train', i);
    const r = rankingRecord(p, cs, rankCompletions(labeler, p, cs, rng));
    rankings.push(r);
    pairs += pairCount(r);
  }
  if (pairs < o.comparisons) throw new Error(`${s.trainAll.length} training prompts gave only ${pairs} of the ${o.comparisons} comparisons asked for`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'rankings.jsonl'), rankings.map((r) => JSON.stringify(lineOf(r))).join('\n') + '\n');
  // held-out rankings: eval prompts, other samples, fresh noise; and the labeler's noise-free order of them
  const evalRng = Rng.forSample(s.seed, 23);
  const heldNoisy: DataRecord[] = [],
    heldTrue: DataRecord[] = [];
  const trueOrder = (p: string, cs: string[]) => {
    const sc = cs.map((c) => labeler.score(p, c));
    const distinct = [...new Set(sc)].sort((a, b) => b - a);
    return rankingRecord(
      p,
      cs,
      sc.map((x) => distinct.indexOf(x)),
    );
  };
  for (const [i, p] of s.evalPrompts.entries()) {
    const cs = await s.samplesOf('eval', i);
    heldNoisy.push(rankingRecord(p, cs, rankCompletions(labeler, p, cs, evalRng)));
    heldTrue.push(trueOrder(p, cs));
  }
  const heldSeen: DataRecord[] = [];
  for (const [i, p] of s.seenPrompts.entries()) heldSeen.push(trueOrder(p, await s.samplesOf('seen', i)));
  writeFileSync(join(dir, 'heldout-seen.jsonl'), heldSeen.map((r) => JSON.stringify(lineOf(r))).join('\n') + '\n');
  writeFileSync(
    join(dir, 'heldout.jsonl'),
    heldTrue
      .map((r, i) =>
        JSON.stringify({
          ...lineOf(r),
          noisy_ranks: (heldNoisy[i] as { ranks: number[] }).ranks,
          noisy_completions: (heldNoisy[i] as { completions: string[] }).completions,
        }),
      )
      .join('\n') + '\n',
  );
  const judgeRng = Rng.forSample(s.seed, 29),
    seenRng = Rng.forSample(s.seed, 43);
  const a = (env.agree[labeler.name] ??= { same: 0, n: 0 });
  for (const r of heldTrue) {
    const cs = (r as { completions: string[] }).completions,
      p = (r as { prompt: string }).prompt;
    for (let i = 0; i < cs.length; i++)
      for (let j = i + 1; j < cs.length; j++) {
        if (cs[i] === cs[j]) continue;
        a.same += judge(labeler, p, cs[i]!, cs[j]!, evalRng) === judge(labeler, p, cs[i]!, cs[j]!, evalRng) ? 1 : 0;
        a.n++;
      }
  }
  return { dir, rankings, heldTrue, heldNoisy, heldSeen, judgeRng, seenRng };
}

/** The stage's scores of every completion of each ranking, in order (one scoring pass over all of them). */
async function scoresOf(run: StageRun, rankings: DataRecord[]): Promise<number[][]> {
  const rs = rankings.flatMap((r) => (r.kind === 'ranking' ? [r] : []));
  const flat = await run.score!(rs.flatMap((r) => r.completions.map((completion) => ({ prompt: r.prompt, completion }))));
  let at = 0;
  return rs.map((r) => flat.slice(at, (at += r.completions.length)));
}

/** Active selection: `warm` ranked as the prompts come, then the most uncertain prompts of a pool, until n pairs. */
async function uncertainRankings(env: Env, s: Seed, labeler: Labeler, warm: DataRecord[], n: number, dir: string): Promise<DataRecord[]> {
  const run = await buildStage(s.ctx, 'rm', env.cfgOf('rm', s.seed, s.base), warm);
  await runStage(run, join(dir, 'rm-select'), env.log, 'rm (trained on the first half, to pick the rest)');
  let have = warm.reduce((sum, r) => sum + pairCount(r), 0);
  const perPrompt = have / warm.length;
  const pool = Array.from({ length: Math.max(12, Math.ceil((3 * (n - have)) / perPrompt)) }, (_, j) => warm.length + j).filter((i) => i < s.trainAll.length);
  const margin: { i: number; m: number }[] = [];
  for (const i of pool) {
    const p = s.trainAll[i]!,
      cs = await s.samplesOf('train', i);
    const sc = await run.score!(cs.map((completion) => ({ prompt: p, completion })));
    const m = meanMargin(cs, sc);
    if (m !== undefined) margin.push({ i, m });
  }
  run.destroy();
  const rng = Rng.forSample(s.seed, 31);
  const out = [...warm];
  margin.sort((x, y) => x.m - y.m || x.i - y.i);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'selection.jsonl'), margin.map(({ i, m }) => JSON.stringify({ prompt: s.trainAll[i], margin: m })).join('\n') + '\n');
  for (const { i } of margin) {
    if (have >= n) break;
    const p = s.trainAll[i]!,
      cs = await s.samplesOf('train', i);
    const r = rankingRecord(p, cs, rankCompletions(labeler, p, cs, rng));
    out.push(r);
    have += pairCount(r);
  }
  if (have < n) throw new Error(`active selection: a pool of ${pool.length} prompts gave only ${have} of the ${n} comparisons asked for`);
  writeFileSync(join(dir, 'rankings.jsonl'), out.map((r) => JSON.stringify(lineOf(r))).join('\n') + '\n');
  return out;
}

/** One point of the learning curve: the reward model, then the policy stages, from the labeler's first `n` comparisons. */
async function curvePoint(env: Env, s: Seed, labeler: Labeler, d: LabelerData, n: number): Promise<void> {
  const { o, log, tok, maxNew } = env;
  const { seed, base, ctx } = s;
  const t1 = Date.now();
  const dir = join(d.dir, `comparisons-${n}`);
  // the first rankings that give n pairs (the last one may give a few more), or with active selection
  // the first that give half of them and then the ones a reward model trained on those is least sure of
  const first = (upTo: number) => {
    const out: DataRecord[] = [];
    let got = 0;
    for (const r of d.rankings) {
      if (got >= upTo) break;
      out.push(r);
      got += pairCount(r);
    }
    return out;
  };
  const data = o.select === 'uncertain' ? await uncertainRankings(env, s, labeler, first(Math.ceil(n / 2)), n, dir) : first(n);
  const have = data.reduce((sum, r) => sum + pairCount(r), 0);
  const fit = { ...featureFit(labeler, data, d.heldTrue), heldout_seen_accuracy: featureFit(labeler, data, d.heldSeen).heldout_accuracy };
  const res: RunResult = { labeler: labeler.name, seed, comparisons: have, prompts: data.length, seconds: 0, feature_fit: fit };
  log(
    `seed ${seed}, labeler ${labeler.name}, ${have} comparisons from ${data.length} prompts (the labeler's own features fitted to them: held-out accuracy ${fit.heldout_accuracy.toFixed(3)}, seen vocabulary ${fit.heldout_seen_accuracy.toFixed(3)})`,
  );
  let reward: StageContext['reward'];
  if (o.stages.includes('rm')) {
    const c = env.cfgOf('rm', seed, base);
    const run = await buildStage(ctx, 'rm', c, data);
    const lines = await runStage(run, join(dir, 'rm'), log, 'rm', (u) => ((res.stages ??= {}).rm = u));
    const evTrue = await run.evaluate!(d.heldTrue),
      evNoisy = await run.evaluate!(d.heldNoisy),
      evSeen = await run.evaluate!(d.heldSeen);
    res.rm = {
      heldout_accuracy: evTrue.accuracy,
      heldout_accuracy_noisy: evNoisy.accuracy,
      heldout_pairs: evTrue.pairs,
      train_eval_accuracy: lines.at(-1)?.eval_accuracy,
      heldout_seen_accuracy: evSeen.accuracy,
      heldout_seen_pairs: evSeen.pairs,
      by_feature: accuracyByFeature(labeler, d.heldTrue, await scoresOf(run, d.heldTrue)),
      by_feature_seen: accuracyByFeature(labeler, d.heldSeen, await scoresOf(run, d.heldSeen)),
    };
    log(
      `  rm held-out accuracy ${evTrue.accuracy.toFixed(3)} (noisy labels ${evNoisy.accuracy.toFixed(3)}, ${evTrue.pairs} pairs); seen vocabulary ${evSeen.accuracy.toFixed(3)} (${evSeen.pairs} pairs)`,
    );
    log(
      `  rm held-out accuracy by the feature that tells a pair apart (all pairs it differs in / it alone): ${Object.entries(res.rm.by_feature!)
        .map(([k, f]) => `${k} ${f.accuracy.toFixed(2)} of ${f.pairs} / ${f.alone_pairs ? f.alone_accuracy.toFixed(2) : '-'} of ${f.alone_pairs}`)
        .join('; ')}`,
    );
    reward = { config: c, checkpoint: await snapshot(run.trainables, {}) };
    run.destroy();
  }
  for (const stage of POLICY_STAGES) {
    const online = stage !== 'dpo';
    if (!o.stages.includes(stage) || (online && !reward)) continue;
    const c = env.cfgOf(stage, seed, base);
    const run = await buildStage({ ...ctx, reward }, stage, c, online ? o.prompts.ppo(seed) : data);
    const lines = await runStage(run, join(dir, stage), log, stage, (u) => ((res.stages ??= {})[stage] = u));
    if (stage in RM_SCORE) (env.rlCurves[`${stage}/${labeler.name}/${n}`] ??= []).push(lines);
    const r = (res[stage] = await evaluatePolicy(
      run,
      base,
      tok,
      labeler,
      s.evalPrompts,
      s.sftEval,
      o.evalSamples,
      seed,
      maxNew,
      d.judgeRng,
      online ? { lines, key: RM_SCORE[stage] } : undefined,
    ));
    r.seen = await evaluatePolicy(run, base, tok, labeler, s.seenPrompts, s.sftSeen, o.evalSamples, seed, maxNew, d.seenRng, undefined, SEEN_SEEDS);
    log(
      `  ${stage} win rate ${r.win_rate.toFixed(3)} (expected ${r.win_rate_expected.toFixed(3)}), KL ${r.kl.toFixed(2)} nats, labeler score ${r.labeler_score.toFixed(2)} vs SFT ${r.sft_labeler_score.toFixed(2)}; seen vocabulary ${r.seen.win_rate.toFixed(3)} (expected ${r.seen.win_rate_expected.toFixed(3)}), KL ${r.seen.kl.toFixed(2)}`,
    );
    run.destroy();
  }
  res.seconds = (Date.now() - t1) / 1000;
  env.runs.push(res);
  writeFileSync(join(dir, 'result.json'), JSON.stringify(res, null, 2) + '\n');
}

export async function evaluatePolicy(
  run: StageRun,
  base: Transformer,
  tok: Tok,
  labeler: Labeler,
  prompts: string[],
  sftEval: string[][],
  k: number,
  seed: number,
  maxNew: number,
  rng: Rng,
  rmScores?: { lines: Record<string, number>[]; key: string },
  seedOffset = 0,
): Promise<PolicyResult> {
  const pol = run.policy!;
  const gen = new Generator(pol.model, pol.lora);
  let wins = 0,
    expected = 0,
    n = 0,
    score = 0,
    sftScore = 0,
    len = 0;
  const items: { prompt: string; completion: string }[] = [];
  try {
    const all = await sampleMany(
      gen,
      tok,
      prompts,
      k,
      prompts.map((_, i) => 1_000_003 * seed + i + 500_000 + seedOffset),
      maxNew,
    );
    for (const [i, p] of prompts.entries()) {
      all[i]!.forEach((t, j) => {
        const s = sftEval[i]![j]!;
        wins += judge(labeler, p, t, s, rng);
        expected += t === s ? 0.5 : preferProb(labeler, p, t, s);
        score += labeler.score(p, t);
        sftScore += labeler.score(p, s);
        len += words(t);
        n++;
        items.push({ prompt: p, completion: t });
      });
    }
  } finally {
    gen.destroy();
  }
  // KL(tuned || SFT) per sequence on the tuned model's own samples: E[log pi(y) - log pi_sft(y)]
  const lp = await sequenceLogps(pol.model, pol.lora, tok, items);
  const lref = await sequenceLogps(base, undefined, tok, items);
  const kl = lp.reduce((a, x, i) => a + x - lref[i]!, 0) / items.length;
  const r: PolicyResult = {
    win_rate: wins / n,
    win_rate_expected: expected / n,
    judgments: n,
    kl,
    labeler_score: score / n,
    sft_labeler_score: sftScore / n,
    mean_length: len / n,
    distinct: new Set(items.map((x) => x.completion)).size / items.length,
  };
  if (rmScores) {
    const { lines, key } = rmScores;
    const tail = lines.filter((l) => key in l).slice(-3);
    const head = lines.filter((l) => key in l).slice(0, 3);
    const mean = (ls: Record<string, number>[]) => ls.reduce((a, l) => a + l[key]!, 0) / Math.max(1, ls.length);
    r.rm_score = mean(tail);
    if (mean(tail) > mean(head) && r.win_rate_expected <= 0.5)
      r.reward_hacking = `RM score rose ${mean(head).toFixed(2)} -> ${mean(tail).toFixed(2)} while the labeler prefers the SFT model (expected win rate ${r.win_rate_expected.toFixed(2)})`;
  }
  if (r.distinct < 0.5)
    r.reward_hacking = `${r.reward_hacking ? r.reward_hacking + '; ' : ''}degenerate text: only ${(100 * r.distinct).toFixed(0)}% of held-out samples are distinct`;
  return r;
}

export interface ExperimentResults {
  adapter: string;
  date: string;
  model: string;
  settings: Omit<ExperimentOptions, 'labelers' | 'prompts' | 'log' | 'out'> & {
    labelers: { name: string; taste: string; noise: number; self_agreement: number }[];
    eval_prompts: number;
  };
  seconds: number;
  /** Per labeler: the full run's figures, mean and 95% interval over seeds. */
  summary: Record<string, LabelerSummary>;
  /** Per labeler, win rate and KL (and RM accuracy) against comparisons. */
  curve: Record<
    string,
    ({ comparisons: number; rm_accuracy?: Interval; feature_fit_accuracy?: Interval } & Partial<Record<`${PolicyStage}_${'win_rate' | 'kl'}`, Interval>>)[]
  >;
  /** Per labeler: PPO's reward and KL per step, averaged over seeds (the full run). */
  ppo_steps: Record<string, { step: number; reward: number; kl: number }[]>;
  /** Per labeler: GRPO's and RLOO's reward-model score (and KL, where logged) per step, averaged over seeds (the full run). */
  rl_steps?: Record<string, Partial<Record<'grpo' | 'rloo', RlStep[]>>>;
  /** met: on the held-out prompts of unseen names; met_seen: on those of the training vocabulary. */
  targets: {
    rm_accuracy: number;
    win_rate: number;
    max_kl: number;
    met: Record<string, Record<string, boolean>>;
    met_seen?: Record<string, Record<string, boolean>>;
  };
  runs: RunResult[];
  /** Set by mergeResults: the runs put together, each with its seeds, date and wall time. */
  merged_from?: { date: string; seeds: number[]; seconds: number }[];
}

type Settings = Omit<ExperimentOptions, 'labelers' | 'prompts' | 'log' | 'out'>;
interface SummaryInput {
  settings: Settings;
  labelers: { name: string; taste: string; noise: number }[];
  evalPrompts: number;
}

/** Per policy stage: `${stage}_win_rate` (with the judgments pooled) and `${stage}_kl`. */
export type LabelerSummary = {
  comparisons: number;
  rm_accuracy?: Interval;
  rm_accuracy_noisy?: Interval;
  /** The labeler's own features fitted to the same rankings (the reference for rm_accuracy). */
  feature_fit_accuracy?: Interval;
  /** The same figures on the held-out prompts of the training vocabulary (runs that measured them). */
  rm_accuracy_seen?: Interval;
  feature_fit_accuracy_seen?: Interval;
  reward_hacking: string[];
} & Partial<Record<`${PolicyStage}_win_rate` | `${PolicyStage}_win_rate_seen`, Interval & { pooled: Interval }>> &
  Partial<Record<`${PolicyStage}_kl` | `${PolicyStage}_kl_seen`, Interval>>;

/** The interval of the values some runs measured (undefined: none did). */
const seenOf = (xs: (number | undefined)[]) => {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length ? interval(v) : undefined;
};

/** An RL stage's steps averaged over its runs (`curves`: each run's metrics lines), as long as the shortest run. */
function meanSteps(stage: RlStage, curves: Record<string, number>[][]): RlStep[] {
  const rows = curves.map((c) => c.filter((x) => RM_SCORE[stage] in x));
  if (!rows.length) return [];
  return Array.from({ length: Math.min(...rows.map((r) => r.length)) }, (_, i) => {
    const at = rows.map((r) => r[i]!),
      mean = (k: string) => at.reduce((a, x) => a + x[k]!, 0) / at.length;
    return { step: i + 1, reward: mean(RM_SCORE[stage]), ...(at.every((x) => KL_OF[stage] in x) ? { kl: mean(KL_OF[stage]) } : {}) };
  });
}

/** `rlCurves`: per `${stage}/${labeler}/${comparisons}`, each run's metrics lines (PPO, GRPO, RLOO). */
function summarize(
  input: SummaryInput,
  runs: RunResult[],
  rlCurves: Record<string, Record<string, number>[][]>,
  agreement: Record<string, number>,
  adapter: string,
  seconds: number,
): ExperimentResults {
  const o = { ...input.settings, labelers: input.labelers };
  const summary: Record<string, LabelerSummary> = {},
    curve: ExperimentResults['curve'] = {},
    steps: ExperimentResults['ppo_steps'] = {};
  const rlSteps: NonNullable<ExperimentResults['rl_steps']> = {};
  const met: Record<string, Record<string, boolean>> = {},
    metSeen: Record<string, Record<string, boolean>> = {};
  for (const l of o.labelers) {
    const mine = runs.filter((r) => r.labeler === l.name);
    const points = [...new Set(mine.map((r) => r.comparisons))];
    const byN = new Map<number, RunResult[]>();
    // the curve's points by requested size: runs of one size may differ by a few pairs between seeds
    const sizes = [...new Set([...o.curve.filter((x) => x < o.comparisons), o.comparisons])].sort((a, b) => a - b);
    for (const r of mine) {
      const s = sizes.filter((x) => x <= r.comparisons).at(-1) ?? sizes[0]!;
      byN.set(s, [...(byN.get(s) ?? []), r]);
    }
    void points;
    curve[l.name] = sizes.map((n) => {
      const rs = byN.get(n) ?? [];
      return {
        comparisons: n,
        rm_accuracy: rs.some((r) => r.rm) ? interval(rs.flatMap((r) => (r.rm ? [r.rm.heldout_accuracy] : []))) : undefined,
        feature_fit_accuracy: rs.some((r) => r.feature_fit) ? interval(rs.flatMap((r) => (r.feature_fit ? [r.feature_fit.heldout_accuracy] : []))) : undefined,
        ...Object.fromEntries(
          POLICY_STAGES.flatMap((k) =>
            rs.some((r) => r[k])
              ? [
                  [`${k}_win_rate`, interval(rs.flatMap((r) => (r[k] ? [r[k]!.win_rate] : [])))],
                  [`${k}_kl`, interval(rs.flatMap((r) => (r[k] ? [r[k]!.kl] : [])))],
                ]
              : [],
          ),
        ),
      };
    });
    const full = byN.get(o.comparisons) ?? [];
    const pol = (k: PolicyStage, seen = false) => {
      const rs = full.flatMap((r) => (r[k] && (!seen || r[k]!.seen) ? [seen ? r[k]!.seen! : r[k]!] : []));
      if (!rs.length) return undefined;
      const wins = rs.reduce((a, r) => a + r.win_rate * r.judgments, 0),
        n = rs.reduce((a, r) => a + r.judgments, 0);
      return { ...interval(rs.map((r) => r.win_rate)), pooled: pooled(wins, n) };
    };
    const s: LabelerSummary = {
      comparisons: o.comparisons,
      rm_accuracy: full.some((r) => r.rm) ? interval(full.flatMap((r) => (r.rm ? [r.rm.heldout_accuracy] : []))) : undefined,
      rm_accuracy_noisy: full.some((r) => r.rm) ? interval(full.flatMap((r) => (r.rm ? [r.rm.heldout_accuracy_noisy] : []))) : undefined,
      feature_fit_accuracy: full.some((r) => r.feature_fit)
        ? interval(full.flatMap((r) => (r.feature_fit ? [r.feature_fit.heldout_accuracy] : [])))
        : undefined,
      rm_accuracy_seen: seenOf(full.map((r) => r.rm?.heldout_seen_accuracy)),
      feature_fit_accuracy_seen: seenOf(full.map((r) => r.feature_fit?.heldout_seen_accuracy)),
      ...Object.fromEntries(
        POLICY_STAGES.flatMap((k) =>
          full.some((r) => r[k]?.seen)
            ? [
                [`${k}_win_rate_seen`, pol(k, true)],
                [`${k}_kl_seen`, seenOf(full.map((r) => r[k]?.seen?.kl))],
              ]
            : [],
        ),
      ),
      ...Object.fromEntries(
        POLICY_STAGES.flatMap((k) =>
          full.some((r) => r[k])
            ? [
                [`${k}_win_rate`, pol(k)],
                [`${k}_kl`, interval(full.flatMap((r) => (r[k] ? [r[k]!.kl] : [])))],
              ]
            : [],
        ),
      ),
      reward_hacking: mine.flatMap((r) =>
        POLICY_STAGES.map((k) => r[k]?.reward_hacking)
          .filter((x): x is string => !!x)
          .map((x) => `seed ${r.seed}, ${r.comparisons} comparisons: ${x}`),
      ),
    };
    summary[l.name] = s;
    met[l.name] = {
      ...(s.rm_accuracy ? { rm_accuracy: s.rm_accuracy.mean >= 0.9 } : {}),
      ...Object.fromEntries(
        POLICY_STAGES.flatMap((k) =>
          s[`${k}_win_rate`]
            ? [
                [`${k}_win_rate`, s[`${k}_win_rate`]!.mean >= 0.8],
                [`${k}_kl`, s[`${k}_kl`]!.mean <= 10],
              ]
            : [],
        ),
      ),
    };
    metSeen[l.name] = {
      ...(s.rm_accuracy_seen ? { rm_accuracy: s.rm_accuracy_seen.mean >= 0.9 } : {}),
      ...Object.fromEntries(
        POLICY_STAGES.flatMap((k) =>
          s[`${k}_win_rate_seen`]
            ? [
                [`${k}_win_rate`, s[`${k}_win_rate_seen`]!.mean >= 0.8],
                [`${k}_kl`, s[`${k}_kl_seen`]!.mean <= 10],
              ]
            : [],
        ),
      ),
    };
    const ppo = meanSteps('ppo', rlCurves[`ppo/${l.name}/${o.comparisons}`] ?? []);
    if (ppo.length) steps[l.name] = ppo.map((x) => ({ step: x.step, reward: x.reward, kl: x.kl ?? NaN }));
    for (const k of ['grpo', 'rloo'] as const) {
      const xs = meanSteps(k, rlCurves[`${k}/${l.name}/${o.comparisons}`] ?? []);
      if (xs.length) (rlSteps[l.name] ??= {})[k] = xs;
    }
  }
  return {
    adapter,
    date: new Date().toISOString(),
    model: o.model,
    settings: { ...input.settings, labelers: input.labelers.map((l) => ({ ...l, self_agreement: agreement[l.name] ?? NaN })), eval_prompts: input.evalPrompts },
    seconds,
    summary,
    curve,
    ppo_steps: steps,
    ...(Object.keys(rlSteps).length ? { rl_steps: rlSteps } : {}),
    targets: { rm_accuracy: 0.9, win_rate: 0.8, max_kl: 10, met, met_seen: metSeen },
    runs,
  };
}

/** JSON with every object's keys sorted, so equal settings give equal text whatever their order. */
const canonical = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(canonical).join(',')}]`
    : v && typeof v === 'object'
      ? `{${Object.keys(v)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
          .join(',')}}`
      : (JSON.stringify(v) ?? 'null');

/**
 * One experiment from several runs of it with other seeds (`--first-seed`): the same model, adapter,
 * labelers, stages and settings, no seed twice. The runs are put together and summarised again, as if
 * one run had done every seed: intervals over all the seeds, the labelers' self-agreement weighted by
 * seeds, PPO's per-step reward and KL averaged over every seed (each file's curve is already its seeds'
 * mean, so it counts as many times as it has seeds), wall times added.
 */
export function mergeResults(parts: ExperimentResults[], names: string[] = parts.map((_, i) => `results ${i + 1}`)): ExperimentResults {
  if (parts.length < 2) throw new Error('merge: give at least two results.json files');
  const first = parts[0]!;
  const same = (r: ExperimentResults) => {
    const { seeds: _s, firstSeed: _f, labelers, ...rest } = r.settings;
    const ls = labelers.map(({ self_agreement: _a, ...l }) => l).sort((a, b) => a.name.localeCompare(b.name));
    return canonical({ ...rest, select: rest.select ?? 'order', labelers: ls, adapter: r.adapter });
  };
  const seen = new Map<string, string>();
  const seedsOf = (r: ExperimentResults, i: number) => {
    const seeds = [...new Set(r.runs.map((x) => x.seed))].sort((a, b) => a - b);
    for (const s of seeds) {
      if (seen.has(String(s))) throw new Error(`merge: ${names[i]} and ${seen.get(String(s))} both ran seed ${s}; merge runs of different seeds`);
      seen.set(String(s), names[i]!);
    }
    return seeds;
  };
  const seedLists = parts.map(seedsOf);
  parts.forEach((r, i) => {
    if (same(r) !== same(first))
      throw new Error(
        `merge: ${names[i]} was run with other settings than ${names[0]} (model, adapter, labelers, stages, comparisons, curve and sampling must be equal)`,
      );
  });
  const runs = parts.flatMap((r) => r.runs).sort((a, b) => a.seed - b.seed || a.labeler.localeCompare(b.labeler) || a.comparisons - b.comparisons);
  const rlCurves: Record<string, Record<string, number>[][]> = {};
  const agreement: Record<string, number> = {};
  const { seeds: _s, firstSeed: _f, labelers, eval_prompts, ...settings } = first.settings;
  for (const l of labelers) {
    let w = 0,
      sum = 0;
    parts.forEach((r, i) => {
      const k = seedLists[i]!.length;
      const a = r.settings.labelers.find((x) => x.name === l.name)?.self_agreement;
      if (a !== undefined && Number.isFinite(a)) ((w += k), (sum += k * a));
      for (const stage of ['ppo', 'grpo', 'rloo'] as const) {
        const steps: RlStep[] | undefined = stage === 'ppo' ? r.ppo_steps[l.name] : r.rl_steps?.[l.name]?.[stage];
        if (!steps?.length) continue;
        const lines = steps.map((x) => ({ [RM_SCORE[stage]]: x.reward, ...(x.kl === undefined ? {} : { [KL_OF[stage]]: x.kl }) }));
        // the runs its curve is the mean of: those of the full size with this stage
        const full = r.summary[l.name]?.[`${stage}_win_rate`]?.n ?? k;
        for (let j = 0; j < full; j++) (rlCurves[`${stage}/${l.name}/${first.settings.comparisons}`] ??= []).push(lines);
      }
    });
    agreement[l.name] = w ? sum / w : NaN;
  }
  const seeds = seedLists.flat().sort((a, b) => a - b);
  const merged = summarize(
    {
      settings: { ...settings, seeds: seeds.length, firstSeed: seeds[0] },
      labelers: labelers.map(({ self_agreement: _a, ...l }) => l),
      evalPrompts: eval_prompts,
    },
    runs,
    rlCurves,
    agreement,
    first.adapter,
    parts.reduce((a, r) => a + r.seconds, 0),
  );
  merged.merged_from = parts.map((r, i) => ({ date: r.date, seeds: seedLists[i]!, seconds: r.seconds }));
  return merged;
}
