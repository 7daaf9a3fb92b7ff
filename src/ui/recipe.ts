// The whole recipe as one action of the Train tab: from the user's rankings to a tuned policy, either a
// reward model then PPO on the user's prompts (InstructGPT's steps 2 and 3), or DPO (one step, no reward
// model). Each stage is an ordinary run, started with the same call as the Train tab's Start button
// (AppContext.startRun); PPO gets the reward model's run id. A paused stage is resumed like any run (the
// Train tab's Resume or the recipe's), and the recipe goes on from there; a cancelled or failed stage
// ends the recipe.
//
// Before it starts, the recipe says how long it will take. That is an estimate, and the page says so:
//  - the work comes from the data: each stage's steps and the shape of its batches (rows x positions),
//    with the sequence lengths measured in the model's own tokens (Engine.countTokens), following what
//    src/train/stages.ts builds (positions fit to the longest sequence, the reward model's with 32 of room);
//  - the speed of this GPU comes from timing two forward passes of the loaded model (Engine.timeForward):
//    a fixed cost per pass (dispatch, sync) plus a cost per token; a training step counts its forward
//    passes, a backward as two, PPO's rollouts as one pass per new token;
//  - an earlier run of the same stage on this model, when there is one, corrects that guess: its
//    measured seconds per step (the metric rows' times) over what the same formula predicts for it.
// Everything here but RecipeRunner is pure, and tested in Node (tests/recipe.test.ts).
import { promptText, rankingPairs, type Record as DataRecord } from '../io/datasets.ts';
import { resolveConfig, stepsFor as stepsOf, type ModelShape, type Stage, type TrainConfig, type TrainInput } from '../shared/config.ts';
import type { RunStatus, RunStatusEvent } from '../worker/api.ts';

export type RecipeKind = 'rm-ppo' | 'dpo';

export const RECIPES: { id: RecipeKind; name: string; what: string; stages: Stage[] }[] = [
  {
    id: 'rm-ppo',
    name: 'Reward model, then PPO',
    stages: ['rm', 'ppo'],
    what: 'a reward model learns to score answers as you ranked them, then PPO samples answers to your prompts and moves the model toward what it scores high, on a KL leash (InstructGPT).',
  },
  {
    id: 'dpo',
    name: 'DPO',
    stages: ['dpo'],
    what: 'learns straight from the pairs of your rankings, without a reward model or sampling: one stage, usually the faster.',
  },
];

export const STAGE_NAMES: Record<Stage, string> = { sft: 'SFT', rm: 'Reward model', ppo: 'PPO', dpo: 'DPO', grpo: 'GRPO', rloo: 'RLOO' };

/** What the user may set for the whole recipe; undefined = the recipe's default. */
export interface RecipeOptions {
  steps?: number; // every stage; 0 or undefined = the stage's default passes (auto epochs)
  batchSize?: number;
  lr?: number;
  seqLen?: number;
  loraRank?: number;
  numSamples?: number; // PPO
  maxNewTokens?: number; // PPO
}

/** LoRA rank of the recipe (PPO needs LoRA: its roles share one base). */
export const RECIPE_RANK = 8;

/** The runs of a recipe, in order, with the inputs each starts with (PPO's rewardRunId is filled in when the reward model is done). */
export function recipeInputs(kind: RecipeKind, o: RecipeOptions): { stage: Stage; input: TrainInput }[] {
  const stages = RECIPES.find((r) => r.id === kind)!.stages;
  return stages.map((stage) => {
    const input: TrainInput = { loraRank: o.loraRank ?? RECIPE_RANK }; // the passes: the stage's default (auto: at least 32 steps)
    if (o.steps) input.steps = o.steps;
    if (o.batchSize !== undefined) input.batchSize = o.batchSize;
    if (o.lr !== undefined) input.lr = o.lr;
    if (o.seqLen !== undefined) input.seqLen = o.seqLen;
    if (stage === 'ppo') {
      if (o.numSamples !== undefined) input.numSamples = o.numSamples;
      if (o.maxNewTokens !== undefined) input.maxNewTokens = o.maxNewTokens;
    }
    return { stage, input };
  });
}

/** The resolved config of each stage (PPO with a stand-in reward model), or why the options cannot run. */
export function recipeConfigs(kind: RecipeKind, o: RecipeOptions, model: ModelShape): { stage: Stage; input: TrainInput; config: TrainConfig }[] {
  return recipeInputs(kind, o).map(({ stage, input }) => {
    if (stage === 'ppo' && !((input.loraRank ?? 0) > 0)) throw new Error('config.loraRank: PPO needs LoRA (rank >= 1): its roles share one base');
    return { stage, input, config: resolveConfig(stage, stage === 'ppo' ? { ...input, rewardRunId: 'the reward model' } : input, model) };
  });
}

// ---- the data, in tokens ----

/** The data of the stages as token lengths: what the estimate needs. */
export interface DataLens {
  /** rankings (and preferences as K = 2): prompt length, completion lengths, ranks */
  rankings: { prompt: number; completions: number[]; ranks?: number[] }[];
  /** PPO's prompts */
  prompts: number[];
}

/** The text of an online stage's prompt: a prompt record's (one user turn), or a demonstration's (its prompt is sampled too). */
const promptOf = (r: DataRecord): string | undefined => (r.kind === 'prompt' ? promptText(r.prompt) : r.kind === 'completion' ? r.prompt : undefined);

/** The texts to count: every prompt and completion of the ranking data, and PPO's prompts. */
export function textsOf(rankingRecords: DataRecord[], promptRecords: DataRecord[]): { prompts: string[]; completions: string[] } {
  const prompts = new Set<string>(),
    completions = new Set<string>();
  for (const r of rankingRecords) {
    if (r.kind === 'ranking') {
      prompts.add(r.prompt);
      r.completions.forEach((c) => completions.add(c));
    } else if (r.kind === 'preference') {
      prompts.add(r.prompt);
      completions.add(r.chosen).add(r.rejected);
    }
  }
  for (const r of promptRecords) {
    const p = promptOf(r);
    if (p !== undefined) prompts.add(p);
  }
  return { prompts: [...prompts], completions: [...completions] };
}

/** DataLens from the records and the token counts of textsOf's texts (the same order). */
export function dataLens(
  rankingRecords: DataRecord[],
  promptRecords: DataRecord[],
  texts: { prompts: string[]; completions: string[] },
  counts: { prompts: number[]; completions: number[] },
): DataLens {
  const p = new Map(texts.prompts.map((t, i) => [t, counts.prompts[i]!]));
  const c = new Map(texts.completions.map((t, i) => [t, counts.completions[i]!]));
  const rankings: DataLens['rankings'] = [];
  for (const r of rankingRecords) {
    if (r.kind === 'ranking')
      rankings.push({ prompt: p.get(r.prompt) ?? 0, completions: r.completions.map((x) => c.get(x) ?? 0), ...(r.ranks ? { ranks: r.ranks } : {}) });
    else if (r.kind === 'preference') rankings.push({ prompt: p.get(r.prompt) ?? 0, completions: [c.get(r.chosen) ?? 0, c.get(r.rejected) ?? 0] });
  }
  return {
    rankings,
    prompts: promptRecords.flatMap((r) => {
      const x = promptOf(r);
      return x === undefined ? [] : [p.get(x) ?? 0];
    }),
  };
}

// ---- the work of a stage ----

/** What one stage computes: its steps and the passes of one step, as (calls, rows x positions) of the model. */
export interface StageWork {
  stage: Stage;
  steps: number;
  /** forward-pass equivalents of one step: n passes over `tokens` tokens each */
  passes: { n: number; tokens: number }[];
  /** the whole run's extra passes (the reward model's held-out evaluations) */
  extra: { n: number; tokens: number }[];
  /** PPO: tokens sampled per step, each from the whole vocabulary on the CPU */
  sampled?: number;
}

/** Positions a stage fits to its longest sequence: rounded up to 8, at least 4, at most seqLen (as stages.ts). */
const fit = (longest: number, seqLen: number) => Math.max(4, Math.min(seqLen, Math.ceil(longest / 8) * 8));

/** The steps and passes of a stage with config `c` on data `d` (undefined when the data cannot make a step). */
export function stageWork(stage: Stage, c: TrainConfig, d: DataLens): StageWork | undefined {
  const B = c.batchSize;
  const stepsFor = (perEpoch: number) => stepsOf(c, perEpoch);
  if (stage === 'rm') {
    const n = d.rankings.length;
    if (!n) return undefined;
    const held = n >= 10 ? Math.floor(n / 10) : 0,
      train = n - held;
    const maxK = Math.max(...d.rankings.map((r) => r.completions.length));
    const steps = stepsFor(Math.ceil(train / B));
    // positions: the longest sequence with 32 of room for the rollouts it will score (as stages.ts)
    const rows = B * maxK,
      T = fit(Math.max(...d.rankings.flatMap((r) => r.completions.map((x) => r.prompt + x))) + 32, c.seqLen);
    // held-out scoring about ten times a run and once at the end, in batches of the plan's rows
    const heldRows = Math.round((held / n) * d.rankings.reduce((s, r) => s + r.completions.length, 0));
    const evals = held ? Math.floor(steps / Math.max(1, Math.ceil(steps / 10))) + 1 : 0;
    return { stage, steps, passes: [{ n: 3, tokens: rows * T }], extra: held ? [{ n: evals * Math.ceil(heldRows / rows), tokens: rows * T }] : [] };
  }
  if (stage === 'dpo') {
    let pairs = 0,
      longest = 0;
    for (const r of d.rankings) {
      const pr = rankingPairs(r.completions.length, r.ranks);
      pairs += pr.length;
      for (const [a, b] of pr) longest = Math.max(longest, r.prompt + Math.max(r.completions[a]!, r.completions[b]!));
    }
    if (!pairs) return undefined;
    const T = fit(longest, c.seqLen);
    // the policy forward and backward (3 passes) and the reference forward, over chosen and rejected rows
    return { stage, steps: stepsFor(Math.ceil(pairs / B)), passes: [{ n: 4, tokens: 2 * B * T }], extra: [] };
  }
  if (stage === 'ppo') {
    const perEpoch = Math.floor(d.prompts.length / B);
    if (perEpoch < 1) return undefined;
    const P = Math.max(...d.prompts),
      R = B * c.numSamples,
      T = fit(P + c.maxNewTokens, c.seqLen);
    const mb = c.minibatches,
      rows = Math.ceil(R / mb);
    return {
      stage,
      steps: stepsFor(perEpoch),
      extra: [],
      sampled: R * c.maxNewTokens,
      passes: [
        { n: 1, tokens: R * P }, // the rollouts' prefill
        { n: c.maxNewTokens - 1, tokens: R }, // one pass per new token
        { n: 4, tokens: R * T }, // old log-probs, reference, reward and value
        { n: 6 * c.ppoEpochs * mb, tokens: rows * T }, // policy and value, forward and backward, per minibatch
      ],
    };
  }
  if (stage === 'grpo' || stage === 'rloo') {
    const perEpoch = Math.floor(d.prompts.length / B);
    if (perEpoch < 1) return undefined;
    const P = Math.max(...d.prompts),
      R = B * c.numSamples,
      T = fit(P + c.maxNewTokens, c.seqLen);
    return {
      stage,
      steps: stepsFor(perEpoch),
      extra: [],
      sampled: R * c.maxNewTokens,
      passes: [
        { n: 1, tokens: R * P }, // the rollouts' prefill
        { n: c.maxNewTokens - 1, tokens: R }, // one pass per new token
        { n: (c.rewardRunId ? 1 : 0) + (c.beta > 0 ? 1 : 0), tokens: R * T }, // the reward model, the reference (beta > 0)
        { n: 3 * c.numIterations, tokens: R * T }, // the policy, forward and backward, per update (no value model)
      ],
    };
  }
  return undefined;
}

// ---- this GPU's speed, and the estimate ----

/** One forward pass of the loaded model costs `overhead + perToken * tokens` seconds on this GPU. */
export interface Speed {
  overhead: number;
  perToken: number;
  vocab: number;
}

/** Speed from two timed forward passes (seconds) of `t1` and `t2` tokens. */
export function speedFrom(a: { tokens: number; seconds: number }, b: { tokens: number; seconds: number }, vocab: number): Speed {
  const perToken = Math.max(0, (b.seconds - a.seconds) / Math.max(1, b.tokens - a.tokens));
  return { overhead: Math.max(0, a.seconds - perToken * a.tokens), perToken, vocab };
}

/** Per step: the optimizer, the metric row written to IndexedDB, the events to the page. */
const STEP_BOOKKEEPING = 0.02;
/** Sampling one token from the logits on the CPU, per vocabulary entry. */
const SAMPLE_PER_LOGIT = 5e-9;

const passSeconds = (s: Speed, ps: { n: number; tokens: number }[]) => ps.reduce((t, p) => t + p.n * (s.overhead + s.perToken * p.tokens), 0);

/** Seconds of one step of `w` at speed `s` (no correction). */
export function stepSeconds(w: StageWork, s: Speed): number {
  return passSeconds(s, w.passes) + (w.sampled ?? 0) * s.vocab * SAMPLE_PER_LOGIT + STEP_BOOKKEEPING;
}

export interface StageEstimate {
  stage: Stage;
  steps: number;
  seconds: number;
  calibrated: boolean;
}

/**
 * The time of each stage: its steps at the predicted (and, with `factor`, corrected) seconds per step,
 * the whole run's extra passes, and the start (building the stage; the first step also compiles its
 * GPU pipelines, counted as two more steps).
 */
export function estimateStage(w: StageWork, s: Speed, factor?: number): StageEstimate {
  const f = factor ?? 1;
  const per = stepSeconds(w, s) * f;
  return { stage: w.stage, steps: w.steps, seconds: 1 + (w.steps + 2) * per + passSeconds(s, w.extra) * f, calibrated: factor !== undefined };
}

/** An earlier run's correction: its measured seconds per step over the predicted ones, within [0.1, 10]. */
export function correction(measured: number, predicted: number): number | undefined {
  if (!(measured > 0) || !(predicted > 0)) return undefined;
  return Math.min(10, Math.max(0.1, measured / predicted));
}

/** Seconds per step of a run, from its metric rows' times: the median gap (the first step's compile and checkpoints fall out). */
export function measuredStepSeconds(times: number[]): number | undefined {
  const t = [...times].sort((a, b) => a - b);
  const gaps = t
    .slice(1)
    .map((x, i) => (x - t[i]!) / 1000)
    .sort((a, b) => a - b);
  return gaps.length >= 2 ? gaps[Math.floor(gaps.length / 2)] : undefined;
}

/** A duration in words for an estimate: rounded, never to the second past a minute. */
export function roughDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds < 60) return `${Math.max(5, Math.ceil(seconds / 5) * 5)} s`;
  if (seconds < 3600) return `${Math.ceil(seconds / 60)} min`;
  const m = Math.ceil(seconds / 600) * 10;
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
}

// ---- running it ----

/** What the runner needs of the page: AppContext, as a small interface (tests give a fake). */
export interface RecipeHost {
  startRun(stage: Stage, input: TrainInput): Promise<string>;
  /** resolves with the run's status once it stops training */
  wait(runId: string): Promise<RunStatus>;
  resumeRun(runId: string): Promise<void>;
  pauseRun(runId: string): Promise<RunStatus>;
  cancelRun(runId: string): Promise<RunStatus>;
  onStatus(fn: (s: RunStatusEvent) => void): () => void;
  readonly liveRun: string | undefined;
}

export type RecipeState = 'running' | 'paused' | 'done' | 'cancelled' | 'failed';

export interface RecipeStageState {
  stage: Stage;
  input: TrainInput;
  runId?: string;
  status?: RunStatus;
  step?: number;
  total?: number;
}

/**
 * One recipe: its stages run one after the other. `onChange` is called on every change of state;
 * `done` resolves with the last stage's run id when every stage is done, or undefined when the recipe
 * ended otherwise (cancelled, failed: `error` says why).
 */
export class RecipeRunner {
  readonly stages: RecipeStageState[];
  state: RecipeState = 'running';
  index = 0;
  error?: string;
  readonly done: Promise<string | undefined>;
  private resumed?: () => void;
  private cancelled = false;
  private off: () => void;

  constructor(
    private readonly host: RecipeHost,
    readonly kind: RecipeKind,
    options: RecipeOptions,
    private readonly onChange: () => void = () => {},
  ) {
    this.stages = recipeInputs(kind, options).map((s) => ({ ...s }));
    this.off = host.onStatus((s) => {
      const st = this.stages.find((x) => x.runId === s.runId);
      if (!st) return;
      Object.assign(st, { status: s.status, step: s.step, total: s.total });
      if (s.status === 'running' && this.state === 'paused') {
        this.state = 'running';
        this.resumed?.();
      }
      this.onChange();
    });
    this.done = this.run().finally(() => this.off());
  }

  get current(): RecipeStageState | undefined {
    return this.stages[this.index];
  }

  private async run(): Promise<string | undefined> {
    try {
      for (this.index = 0; this.index < this.stages.length; this.index++) {
        const st = this.stages[this.index]!;
        if (st.stage === 'ppo') st.input = { ...st.input, rewardRunId: this.stages.find((x) => x.stage === 'rm')!.runId! };
        if (this.cancelled) return this.end('cancelled');
        st.runId = await this.host.startRun(st.stage, st.input);
        st.status = 'running';
        this.onChange();
        if (this.cancelled) await this.host.cancelRun(st.runId); // cancelled while it was starting
        let status = await this.host.wait(st.runId);
        while (status === 'paused' && !this.cancelled) {
          this.state = 'paused';
          st.status = 'paused';
          this.onChange();
          await this.untilResumed(st.runId);
          if (this.cancelled) break;
          status = await this.host.wait(st.runId);
        }
        st.status = this.cancelled && status === 'paused' ? await this.host.cancelRun(st.runId) : status;
        if (st.status !== 'done') {
          if (st.status === 'failed') this.error = `${STAGE_NAMES[st.stage]} run ${st.runId.slice(0, 8)} failed`;
          return this.end(st.status === 'failed' ? 'failed' : 'cancelled');
        }
        this.state = 'running';
        this.onChange();
      }
      this.index = this.stages.length - 1;
      this.state = 'done';
      this.onChange();
      return this.stages.at(-1)!.runId;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
      return this.end('failed');
    }
  }

  private end(state: RecipeState): undefined {
    this.state = state;
    this.onChange();
    return undefined;
  }

  /** Waits until the paused run trains again (resumed here or anywhere) or the recipe is cancelled. */
  private untilResumed(runId: string): Promise<void> {
    return new Promise((resolve) => {
      this.resumed = () => {
        this.resumed = undefined;
        resolve();
      };
      if (this.host.liveRun === runId || this.cancelled) this.resumed();
    });
  }

  async pause(): Promise<void> {
    const id = this.current?.runId;
    if (id && this.state === 'running') await this.host.pauseRun(id);
  }

  async resume(): Promise<void> {
    const id = this.current?.runId;
    if (id && this.state === 'paused') await this.host.resumeRun(id);
  }

  /** Cancels the stage training now (or paused) and the stages after it. */
  async cancel(): Promise<void> {
    if (this.state !== 'running' && this.state !== 'paused') return;
    this.cancelled = true;
    const id = this.current?.runId;
    if (this.state === 'paused') this.resumed?.();
    else if (id) await this.host.cancelRun(id);
  }
}
