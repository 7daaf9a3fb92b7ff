// <train-view>: choose a stage, see what data it will use (and what is missing), set its hyperparameters,
// and start, pause, resume or cancel a run; watch it live (progress, tokens/s, time left, curves); list
// earlier runs to resume them or to sample from them.
//
// Why it is built this way:
//  - The defaults shown are resolveConfig's, the same table the worker and the CLI resolve, so what the
//    form shows is what a run gets. Only the fields the user changed (and LoRA rank 8, the playground's
//    default) are sent; the engine fills the rest and saves the resolved config with the run.
//  - One run is "viewed": the live one, else the one picked in the list. Its curves come from the store
//    (db.getMetrics) and then from ctx's metric events; rows are keyed by step, so a step that arrives by
//    both ways, or again after a resume, is drawn once.
//  - The curves are the metric names the stages emit (src/train/stages.ts, TRL's names).
//  - "The whole recipe" (src/ui/recipe.ts) runs a reward model then PPO, or DPO, from the rankings as
//    ordinary runs one after the other (RecipeRunner, through ctx.startRun like the Start button), with
//    an estimate of the time before it starts; at its end the tuned policy is selected (as "Use this
//    model") and the Compare tab opens on it with a blind comparison.
//  - GRPO and RLOO score with reward functions the user writes in a textarea (a JavaScript module, sent as
//    config.rewardModule; the engine runs it in a sandbox worker and uses every export). The engine
//    reads it when the editor is left (checkRewardModule), so the names of its functions, or why it does
//    not load, show before a run starts; they also size the check of reward_weights.
//  - All text (errors, run data) is bound as text, never as HTML.
import { css, html, type PropertyValues } from 'lit';
import { keyed } from 'lit/directives/keyed.js';
import type { Record as DataRecord } from '../io/datasets.ts';
import * as db from '../store/db.ts';
import { AUTO_EPOCHS, isGroup, resolveConfig, type Stage, type TrainConfig, type TrainInput } from '../shared/config.ts';
import { formFields, type FormField } from '../shared/schema.ts';
import { rankingPairs } from '../io/datasets.ts';
import { plural } from './data-io.ts';
import type { LineChart } from './chart.ts';
import './chart.ts';
import { fmtBytes, fmtSeconds, type AppContext } from './context.ts';
import type { RunPhase } from '../worker/api.ts';
import { CtxView, errText } from './ctx-view.ts';
import { sharedStyles } from './styles.ts';
import {
  correction,
  dataLens,
  estimateStage,
  measuredStepSeconds,
  RECIPE_RANK,
  recipeConfigs,
  RecipeRunner,
  RECIPES,
  roughDuration,
  speedFrom,
  STAGE_NAMES,
  stageWork,
  stepSeconds,
  textsOf,
  type DataLens,
  type RecipeHost,
  type RecipeKind,
  type RecipeOptions,
  type Speed,
  type StageEstimate,
  type StageWork,
} from './recipe.ts';

const STAGES: { id: Stage; name: string; what: string }[] = [
  { id: 'sft', name: 'SFT', what: 'imitates your demonstrations: next-token loss on the answers of your prompt/answer pairs.' },
  { id: 'rm', name: 'Reward model', what: 'learns to score answers the way you ranked them: in every pair of a ranking the better answer must score higher.' },
  {
    id: 'ppo',
    name: 'PPO',
    what: 'samples answers to your prompts, scores them with a reward model and moves toward higher scores, on a KL leash to the starting model.',
  },
  {
    id: 'grpo',
    name: 'GRPO',
    what: 'samples G answers per prompt, scores them with your reward functions (below) or a reward model, and judges each against the others of its prompt: no value model.',
  },
  {
    id: 'rloo',
    name: 'RLOO',
    what: "the same sampling and scoring; each answer's baseline is the mean of the other samples of its prompt, with the KL to the starting model folded into the reward.",
  },
  {
    id: 'dpo',
    name: 'DPO',
    what: 'learns straight from the pairs of your rankings, without a reward model: the better answer becomes likelier than the worse, relative to the starting model.',
  },
];

/** The shape the defaults are shown for until a model is loaded: the built-in model's. */
const NO_MODEL = { maxPositions: 256, hidden: 128 };

/** LoRA rank the playground starts from: small adapters train fast and PPO's four roles share one base. */
const DEFAULT_RANK = 8;

/** The reward module the editor starts with (GRPO, RLOO): the contract in a comment, a rule for every answer, one that applies to some prompts only. */
export const EXAMPLE_REWARDS = `// Reward functions for GRPO and RLOO. Every function this module exports scores each step's answers.
// It receives { prompts, completions, completion_ids }: one entry per answer (the prompt as you wrote
// it, the answer as text, the answer's token ids) and returns one number per answer, higher is
// better, or null where it does not apply. Each is charted as rewards/<name>/mean; the reward is
// their sum (weighted by "reward weights" under Advanced). The module runs in a worker of its own,
// with fetch and storage switched off; a call that takes over 30 s fails the run.

// 1 for an answer of at most 12 words, falling to 0 at 24 words
export function concise({ completions }) {
  return completions.map((c) => {
    const words = c.split(/\\s+/).filter(Boolean).length;
    return words <= 12 ? 1 : Math.max(0, 1 - (words - 12) / 12);
  });
}

// only for prompts that ask to thank someone: 1 when the answer says thank you, else 0;
// null for every other prompt (it does not apply there)
export function thanks({ prompts, completions }) {
  return completions.map((c, i) => (/thank/i.test(prompts[i]) ? (/thank/i.test(c) ? 1 : 0) : null));
}
`;

/** The recipe's settings: empty = the recipe's defaults (shown as the placeholder). */
const RECIPE_FIELDS: { key: keyof RecipeOptions; label: string; help: string; ppo?: true }[] = [
  { key: 'steps', label: 'steps per stage', help: 'optimizer steps of each run; empty: passes over the data, enough for at least 32 steps (at most 8)' },
  { key: 'batchSize', label: 'batch size', help: 'rankings (reward model), pairs (DPO) or prompts (PPO) per step' },
  { key: 'lr', label: 'learning rate', help: "AdamW step size; empty: each stage's default for LoRA" },
  { key: 'seqLen', label: 'sequence length', help: 'prompt + answer tokens per example; longer text is cut' },
  { key: 'loraRank', label: 'LoRA rank', help: 'size of the adapters (PPO needs them: its roles share one base)' },
  { key: 'numSamples', label: 'samples per prompt', ppo: true, help: "PPO's answers sampled for each prompt at each step (1 to 9)" },
  { key: 'maxNewTokens', label: 'max new tokens', ppo: true, help: "PPO's longest sampled answer" },
];

/** The curves of each stage, by the metric names its step reports. */
const CHARTS: Record<Stage, { cls: string; label: string; series: string[] }[]> = {
  sft: [{ cls: 'loss', label: 'Loss on the answers', series: ['loss'] }],
  rm: [
    { cls: 'loss', label: 'Pairwise loss', series: ['loss'] },
    // held-out accuracy (eval_accuracy) comes about ten times a run when 10 or more rankings leave some
    // out; the final one is also the run's result, shown as text below the progress
    { cls: 'accuracy', label: 'Pair accuracy: training batch and held-out', series: ['accuracy', 'eval_accuracy'] },
  ],
  dpo: [
    { cls: 'loss', label: 'DPO loss', series: ['loss'] },
    { cls: 'margins', label: 'Implicit reward margin (better - worse)', series: ['rewards/margins'] },
    { cls: 'accuracy', label: 'Pairs ordered right', series: ['rewards/accuracies'] },
  ],
  ppo: [
    { cls: 'loss', label: 'Policy and value losses', series: ['loss/policy_avg', 'loss/value_avg'] },
    { cls: 'reward', label: 'Reward (mean reward-model score)', series: ['objective/scores'] },
    { cls: 'kl', label: 'KL to the starting model (nats per answer)', series: ['objective/kl'] },
  ],
  grpo: [
    { cls: 'reward', label: 'Reward (mean over the completions)', series: ['reward'] },
    { cls: 'kl', label: 'KL to the starting model (nats per token; measured when beta > 0)', series: ['kl'] },
    { cls: 'loss', label: 'Completion length (tokens)', series: ['completions/mean_length'] },
  ],
  rloo: [
    { cls: 'reward', label: 'Reward (mean over the completions)', series: ['reward'] },
    { cls: 'kl', label: 'KL to the starting model (nats per token)', series: ['kl'] },
    { cls: 'loss', label: 'Completion length (tokens)', series: ['completions/mean_length'] },
  ],
};

/** A duration as an estimate says it: to 5 s under a minute, to the minute under an hour. */
const about = (s: number) => `about ${s < 60 ? `${Math.max(5, Math.round(s / 5) * 5)} s` : s < 3600 ? `${Math.round(s / 60)} min` : fmtSeconds(s)}`;

/**
 * The ETA the phase line of a long online step writes. Before a step has finished, from the phase under way:
 * its rate so far over what is left of it (sampling: the rest of the token budget, so at most; updating: the
 * passes left). Once one has, from the measured seconds per step: what is left of this step and of the run.
 */
export function phaseEta(p: {
  phase: RunPhase['phase'];
  done: number;
  total: number;
  phaseSecs: number;
  stepSecs: number;
  secondsPerStep?: number;
  stepsAfter: number;
}): string {
  if (p.secondsPerStep !== undefined && Number.isFinite(p.secondsPerStep)) {
    const step = Math.max(0, p.secondsPerStep - p.stepSecs);
    return `${about(step)} left in this step, ${about(step + p.stepsAfter * p.secondsPerStep)} in the run`;
  }
  if (p.phase === 'scoring' || p.done <= 0 || p.phaseSecs < 1 || p.done >= p.total) return '';
  return `${p.phase === 'sampling' ? 'at most ' : ''}${about((p.phaseSecs / p.done) * (p.total - p.done))} left in this phase`;
}

/** What a stage's data amounts to, and what is missing before it can start. */
export function dataSummary(
  stage: Stage,
  records: DataRecord[],
  o: { batchSize: number; rewardModels: number },
): { text: string; missing?: string; hint?: string } {
  const count = (kind: DataRecord['kind']) => records.filter((r) => r.kind === kind).length;
  const pairs = records.reduce((n, r) => n + (r.kind === 'ranking' ? rankingPairs(r.completions.length, r.ranks).length : r.kind === 'preference' ? 1 : 0), 0);
  if (stage === 'sft') {
    const n = records.length;
    return {
      text: plural(n, 'demonstration'),
      missing: n ? undefined : 'write or import at least one demonstration (a prompt with the answer you want) first',
    };
  }
  if (stage === 'grpo' || stage === 'rloo') {
    return {
      text: plural(records.length, 'prompt'),
      missing: records.length < o.batchSize ? `add at least ${o.batchSize} prompts first (one step takes a batch of ${o.batchSize})` : undefined,
    };
  }
  if (stage === 'ppo') {
    const demos = records.filter((r) => r.kind === 'completion' && r.completion).length;
    const missing =
      records.length < o.batchSize
        ? `add at least ${o.batchSize} prompts first (one step takes a batch of ${o.batchSize})`
        : !o.rewardModels
          ? 'train a reward model with LoRA on this model first'
          : undefined;
    return { text: `${plural(records.length, 'prompt')} (${demos} with a demonstration, for PPO-ptx)`, missing };
  }
  const rankings = count('ranking') + count('preference');
  const text = `${plural(rankings, 'ranking')}, ${plural(pairs, 'pair')}`;
  if (stage === 'rm') {
    return {
      text,
      missing: rankings ? undefined : 'rank at least one prompt first',
      hint: rankings < 10 ? 'Rank at least 10 prompts to get a held-out accuracy' : undefined,
    };
  }
  return { text, missing: pairs ? undefined : 'rank at least one prompt (with answers not all tied) first' };
}

const resumable = (r: db.RunRecord) => r.status !== 'done';
/**
 * Whether a run has a checkpoint to sample from, as far as its record tells: done and paused runs write
 * one; others only when `checkpointEvery` has passed (a run without one would sample the untrained start).
 */
const hasCheckpoint = (r: db.RunRecord) => {
  const every = Number(r.config.checkpointEvery ?? 0),
    step = r.step ?? 0;
  return r.status === 'done' || r.status === 'paused' || (every > 0 && step >= every);
};
const pct = (x: unknown) => (typeof x === 'number' ? `${Math.round(x * 100)}%` : '–');

/** A select's choices: `options`, and the current value as one more where they lack it (DPO's loss types joined by
 *  commas, from a config or the CLI), so the form shows what the run will use. */
export const selectChoices = (options: readonly string[], value: string): readonly string[] => (options.includes(value) ? options : [...options, value]);

/** A reward model in PPO's list, short enough for the field (about 35 characters): id, when, and its held-out accuracy if it has one. */
export function rewardModelLabel(r: Pick<db.RunRecord, 'id' | 'createdAt' | 'result'>, now = Date.now()): string {
  const d = new Date(r.createdAt),
    today = new Date(now).toDateString() === d.toDateString();
  const when = today ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleDateString();
  const acc = typeof r.result?.eval_accuracy === 'number' ? ` · held-out ${pct(r.result.eval_accuracy)}` : '';
  return `${r.id.slice(0, 8)} · ${when}${acc}`;
}

export class TrainView extends CtxView {
  private stage: Stage = 'sft';
  private input: TrainInput = {}; // the fields the user changed
  private records: Partial<Record<Stage, DataRecord[]>> = {};
  private runs: db.RunRecord[] = [];
  private viewId?: string; // the run whose progress and curves are shown
  private rows = new Map<number, db.MetricRecord>(); // its metrics by step
  private progress?: { step: number; total: number; tokensPerSec?: number; secondsLeft?: number };
  /** inside the live step of the viewed run (online stages): sampling, scoring, updating, and since when */
  private phase?: RunPhase & { since: number; stepSince: number };
  private errors = new Map<string, string>(); // run id -> error of a 'failed' status event
  private busy?: string; // the action under way ('start', 'pause', ...)
  // ---- GRPO / RLOO: the reward module in the editor, and what the engine found in it ----
  private rewardModule = EXAMPLE_REWARDS;
  private moduleEdited = false; // the user typed in it: a stored run's module no longer replaces it
  private moduleCheck?: { source: string; names?: string[]; error?: string };
  private rewardSeries = new Map<string, string[]>(); // run id -> its per-function curves
  private actionError?: string;
  // ---- the whole recipe ----
  private recipeKind: RecipeKind = 'dpo';
  private recipeOpts: RecipeOptions = {};
  private recipe?: RecipeRunner;
  /** the estimate shown when the recipe started: the progress of the whole recipe is measured in it */
  private recipePlan?: StageEstimate[];
  private recipeLive?: { runId: string; step: number; total: number; secondsLeft?: number };
  private lens?: { key: string; lens: DataLens };
  /** this GPU's speed on the loaded model (by source and size: merged runs change no shapes) */
  private speed?: { key: string; speed?: Speed; error?: string };
  /** the latest earlier run of each stage on this model: its measured seconds per step and its work */
  private earlier: Partial<Record<Stage, { runId: string; measured: number; work: StageWork }>> = {};
  private visible = false;
  private observer?: IntersectionObserver;

  static override styles = [
    sharedStyles,
    css`
    #stage label { display: flex; gap: 0.5rem; align-items: baseline; padding: 0.3rem 0; }
    #stage .uses { font-size: 0.85em; }
    .fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: 0.6rem 1rem; margin: 0.5rem 0; }
    .field .name { display: block; font-weight: 600; font-size: 0.9em; }
    .field input, .field select { width: 100%; }
    .field .help { display: block; color: #6e6e73; font-size: 0.8em; }
    .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(20rem, 1fr)); gap: 1rem; }
    #recipe .kinds label { display: flex; gap: 0.5rem; align-items: baseline; padding: 0.3rem 0; }
    #recipe-stages { margin: 0.5rem 0; padding-left: 1.4rem; }
    #recipe-stages li[data-status='running'] { font-weight: 600; }
    #recipe-estimate { font-variant-numeric: tabular-nums; }
    #reward-module { display: block; width: 100%; box-sizing: border-box; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.85em; line-height: 1.4; tab-size: 2; resize: vertical; }
    #reward-module-status code, #rewards code { font-size: 0.95em; }
    #run-error { white-space: pre-wrap; border: 1px solid #f1b8b2; background: #fdf0ef; border-radius: 8px; padding: 0.5rem 0.75rem; }
    tr.viewed { background: #f4f8fd; }
  `,
  ];

  // ---- the context ----

  protected listen(ctx: AppContext) {
    return [
      ctx.on('model', () => void this.loadData(ctx)),
      ctx.on('data', () => void this.loadData(ctx)),
      ctx.on('rankings', () => void this.loadData(ctx)),
      ctx.on('runs', () => void this.loadRuns(ctx)),
      ctx.on('metrics', (m) => this.onMetrics(m)),
      ctx.on('progress', (p) => {
        if (p.runId === this.recipe?.current?.runId) this.recipeLive = { runId: p.runId, step: p.step, total: p.total, secondsLeft: p.secondsLeft };
        if (p.runId !== this.viewId) return;
        this.progress = p;
        this.phase = undefined; // the step is done
        this.requestUpdate();
      }),
      ctx.on('phase', (p) => {
        if (p.runId !== this.viewId) return;
        const now = Date.now(),
          same = p.step === this.phase?.step;
        this.phase = { ...p, since: same && p.phase === this.phase!.phase ? this.phase!.since : now, stepSince: same ? this.phase!.stepSince : now };
        this.requestUpdate();
      }),
      ctx.on('status', (s) => {
        if (s.status === 'failed' && s.error) this.errors.set(s.runId, s.error);
        if (s.status === 'running') this.errors.delete(s.runId);
        if (s.runId === this.viewId) this.progress = { ...this.progress, step: s.step, total: s.total };
        if (s.runId === this.viewId && s.status !== 'running') this.phase = undefined;
        // a run started or resumed anywhere is the one to watch
        if (s.status === 'running' && s.runId !== this.viewId) void this.view(s.runId);
        this.requestUpdate();
      }),
    ];
  }

  protected async reload(ctx: AppContext): Promise<void> {
    await Promise.all([this.loadData(ctx), this.loadRuns(ctx)]);
    if (!this.viewId) await this.view(ctx.liveRun ?? this.runs[0]?.id);
  }

  override connectedCallback(): void {
    super.connectedCallback();
    // the GPU is timed for the estimate when the tab is first seen (not at page load, when other work waits)
    this.observer ??= new IntersectionObserver((es) => {
      this.visible = es.some((e) => e.isIntersecting);
      if (this.visible && this.ctx) void this.measure(this.ctx);
    });
    this.observer.observe(this);
  }

  override disconnectedCallback(): void {
    this.observer?.disconnect();
    this.observer = undefined;
    super.disconnectedCallback();
  }

  private async loadData(ctx: AppContext): Promise<void> {
    const all = await Promise.all(STAGES.map(async (s) => [s.id, await ctx.stageData(s.id)] as const));
    this.records = Object.fromEntries(all);
    this.requestUpdate();
    await this.countData(ctx);
  }

  private async loadRuns(ctx: AppContext): Promise<void> {
    this.runs = await db.listRuns(ctx.store);
    // the editor starts from the reward module of the latest GRPO/RLOO run, until the user edits it
    const last = this.runs.find((r) => isGroup(r.stage as Stage) && typeof r.config.rewardModule === 'string' && r.config.rewardModule.trim());
    if (!this.moduleEdited && last && last.config.rewardModule !== this.rewardModule) {
      this.rewardModule = last.config.rewardModule as string;
      if (isGroup(this.stage)) void this.checkModule();
    }
    const r = this.viewed;
    if (r && r.id !== ctx.liveRun) this.progress = { step: r.step ?? 0, total: r.totalSteps ?? 0 };
    this.requestUpdate();
    if (this.visible && !ctx.liveRun) void this.measure(ctx); // a run that kept it from being timed has ended
    await this.findEarlier(ctx);
  }

  // ---- the recipe's estimate: the data in tokens, this GPU's speed, earlier runs ----

  private modelKey(ctx: AppContext): string | undefined {
    return ctx.model ? `${ctx.model.source}|${ctx.model.params}` : undefined;
  }

  /** The token lengths of the recipe's data (rankings, PPO's prompts) on the loaded model. */
  private async countData(ctx: AppContext): Promise<void> {
    const ranked = this.records.dpo,
      prompts = this.records.ppo;
    if (!ctx.model || !ranked || !prompts) return;
    const texts = textsOf(ranked, prompts);
    const key = `${ctx.model.fingerprint}|${JSON.stringify(texts).length}|${ranked.length}|${prompts.length}`;
    if (this.lens?.key === key) return;
    const counts = await ctx.attempt('Counting the tokens of your data', () => ctx.engine.countTokens(texts.prompts, texts.completions));
    if (counts) this.lens = { key, lens: dataLens(ranked, prompts, texts, counts) };
    this.requestUpdate();
    if (this.visible) void this.measure(ctx);
  }

  /** Times two forward passes of the loaded model (once per model; not while a run trains). */
  private async measure(ctx: AppContext): Promise<void> {
    const key = this.modelKey(ctx),
      m = ctx.model;
    if (!key || !m || ctx.liveRun || this.speed?.key === key) return;
    this.speed = { key };
    this.requestUpdate();
    try {
      const len = Math.min(64, m.maxPositions);
      const a = { tokens: 16, seconds: await ctx.engine.timeForward(1, 16) };
      const b = { tokens: 4 * len, seconds: await ctx.engine.timeForward(4, len) };
      if (this.speed?.key === key) this.speed = { key, speed: speedFrom(a, b, m.vocabSize) };
    } catch (e) {
      // a run that started meanwhile: measure again later
      if (this.speed?.key === key) this.speed = ctx.liveRun ? undefined : { key, error: errText(e) };
    }
    this.requestUpdate();
  }

  /** The latest earlier run of each stage on this model with a few steps: how long its steps took. */
  private async findEarlier(ctx: AppContext): Promise<void> {
    const m = ctx.model;
    if (!m) return;
    const found: typeof this.earlier = {};
    for (const stage of ['rm', 'dpo', 'ppo'] as const) {
      const r = this.runs.find((x) => x.stage === stage && x.id !== ctx.liveRun && (x.step ?? 0) >= 3 && x.model?.source === m.source);
      if (!r) continue;
      const old = this.earlier[stage];
      if (old?.runId === r.id) {
        found[stage] = old;
        continue;
      }
      // a snapshot the rules refuse (an older version's) only leaves this run out of the estimate
      const [rows, data] = await Promise.all([
        db.getMetrics(ctx.store, r.id),
        r.datasetId ? db.getDataset(ctx.store, r.datasetId).catch(() => undefined) : undefined,
      ]);
      const measured = measuredStepSeconds(rows.map((x) => x.time));
      const records = data?.records ?? [];
      if (measured === undefined || !records.length) continue;
      const texts = stage === 'ppo' ? textsOf([], records) : textsOf(records, []);
      const counts = await ctx.engine.countTokens(texts.prompts, texts.completions).catch(() => undefined);
      if (!counts) continue;
      const lens = stage === 'ppo' ? dataLens([], records, texts, counts) : dataLens(records, [], texts, counts);
      const work = stageWork(stage, r.config as unknown as TrainConfig, lens);
      if (work) found[stage] = { runId: r.id, measured, work };
    }
    this.earlier = found;
    this.requestUpdate();
  }

  private get viewed(): db.RunRecord | undefined {
    return this.runs.find((r) => r.id === this.viewId);
  }

  // ---- the viewed run's curves ----

  private async view(id: string | undefined): Promise<void> {
    const ctx = this.ctx;
    this.viewId = id;
    this.rows = new Map();
    const r = this.viewed;
    this.progress = r ? { step: r.step ?? 0, total: r.totalSteps ?? 0 } : undefined;
    this.requestUpdate();
    if (!id || !ctx) return;
    const history = await db.getMetrics(ctx.store, id);
    if (this.viewId !== id) return; // another run was picked meanwhile
    for (const m of history) if (!this.rows.has(m.step)) this.rows.set(m.step, m);
    await this.updateComplete;
    for (const c of this.charts()) c.setHistory([...this.rows.values()]);
  }

  private onMetrics(m: db.MetricRecord): void {
    if (m.runId !== this.viewId) return;
    this.rows.set(m.step, m);
    for (const c of this.charts()) c.addStep(m.step, m.values);
  }

  /** The charts of the viewed run (during a switch, the old run's charts are still in the page). */
  private charts(): LineChart[] {
    return [...this.renderRoot.querySelectorAll('line-chart')].filter((c) => c.dataset.run === this.viewId);
  }

  // ---- the GPU memory a run of the form's settings would hold, asked of the engine as they change ----
  private memoryKey = '';
  private memory?: { key: string; text: string };

  /** The estimate for the form as it stands (asked for once per distinct stage and settings). */
  private memoryEstimate(): string | undefined {
    const ctx = this.ctx;
    if (!ctx?.model) return undefined;
    const input = this.startInput();
    const key = JSON.stringify([ctx.model.fingerprint, this.stage, { ...input, rewardModule: undefined }]);
    if (key !== this.memoryKey) {
      this.memoryKey = key;
      const stage = this.stage;
      ctx.engine.stageMemory(stage, input).then(
        (e) => {
          const names: Record<string, string> = {
            base: 'the model',
            policy: stage === 'rm' ? 'the reward model in training' : 'the trained weights and their step',
            value: 'the value model',
            reference: 'the reference',
            reward: 'the reward model',
            rollouts: "the rollouts' KV cache",
            head: 'the score head',
          };
          const parts = Object.entries(e.parts)
            .map(([k, v]) => `${names[k] ?? k} ${fmtBytes(v)}`)
            .join(', ');
          this.memory = { key, text: `GPU memory: at most about ${fmtBytes(e.total)} at ${e.seqLen} positions (${parts}).` };
          this.requestUpdate();
        },
        () => {
          this.memory = undefined; // the form's own error says what is wrong
          this.requestUpdate();
        },
      );
    }
    return this.memory?.key === key ? this.memory.text : undefined;
  }

  protected override updated(changed: PropertyValues<this>): void {
    super.updated(changed);
    // charts made by this render (a new run, a new stage) start from the rows already read
    for (const c of this.charts()) {
      if (c.dataset.filled) continue;
      c.dataset.filled = '1';
      c.setHistory([...this.rows.values()]);
    }
  }

  // ---- the form ----

  /** The defaults shown: resolveConfig's for this stage and LoRA rank on the loaded model. */
  private defaults(): TrainConfig {
    const rank = Number.isInteger(this.input.loraRank) && this.input.loraRank! >= 0 ? this.input.loraRank! : DEFAULT_RANK;
    return resolveConfig(this.stage, { loraRank: rank, rewardRunId: 'unset' }, this.ctx?.model ?? NO_MODEL);
  }

  /** Finished LoRA reward models trained on the loaded model: what PPO can train against. */
  private rewardModels(): db.RunRecord[] {
    const fp = this.ctx?.model?.fingerprint;
    return this.runs.filter((r) => r.stage === 'rm' && r.status === 'done' && Number(r.config.loraRank) > 0 && (!fp || r.model?.fingerprint === fp));
  }

  /** A stage's data summary, with the batch size the form sets for the chosen stage (else the default). */
  private summary(stage: Stage, rewardModels: number) {
    const records = this.records[stage];
    if (!records) return undefined;
    const batchSize = (stage === this.stage ? this.startInput().batchSize : undefined) ?? resolveConfig(stage, { rewardRunId: 'unset' }, NO_MODEL).batchSize;
    return dataSummary(stage, records, { batchSize, rewardModels });
  }

  private startInput(): TrainInput {
    const { rewardRunId, ...rest } = this.input;
    const input: TrainInput = { loraRank: DEFAULT_RANK, ...rest };
    if (this.stage === 'ppo') input.rewardRunId = rewardRunId ?? this.rewardModels()[0]?.id ?? '';
    if (isGroup(this.stage)) {
      // the engine runs the module's functions (all of them: reward_funcs is left to it) and keeps the source with the run
      input.rewardModule = this.rewardModule;
      if (rewardRunId) input.rewardRunId = rewardRunId;
    }
    return input;
  }

  /** Why the config cannot start, in resolveConfig's words (undefined when it can). */
  private configError(): string | undefined {
    try {
      let input = this.startInput();
      if (isGroup(this.stage)) {
        const check = this.moduleCheck?.source === this.rewardModule ? this.moduleCheck : undefined;
        if (check?.error) return check.error;
        const empty = !this.rewardModule.trim();
        if (empty && !input.rewardRunId) return 'write reward functions in the editor, or choose a reward model';
        // the functions' names once the engine has read the module; until then one stands for them (and the weights wait for the count)
        const names = empty ? [] : check?.names;
        input = { ...input, rewardFuncs: names ?? ['reward_module'], ...(names ? {} : { rewardWeights: [] }) };
      }
      resolveConfig(this.stage, input, this.ctx?.model ?? NO_MODEL);
      return undefined;
    } catch (e) {
      return errText(e);
    }
  }

  /** `as`: how the text becomes the config's value (a number, the text, true/false, numbers separated by commas or spaces). */
  private setField(key: keyof TrainConfig, raw: string, as: 'number' | 'text' | 'bool' | 'list'): void {
    const input = this.input as Record<string, unknown>;
    if (raw.trim() === '') delete input[key];
    else
      input[key] =
        as === 'number'
          ? Number(raw)
          : as === 'bool'
            ? raw === 'true'
            : as === 'list'
              ? raw
                  .split(/[\s,]+/)
                  .filter(Boolean)
                  .map(Number)
              : raw;
    this.requestUpdate();
  }

  private pickStage(stage: Stage): void {
    this.stage = stage;
    this.input = {}; // each stage has its own defaults (lr, batch size): start from them
    if (isGroup(stage) && this.moduleCheck?.source !== this.rewardModule) void this.checkModule();
    this.requestUpdate();
  }

  // ---- the reward module (GRPO, RLOO) ----

  private editModule(text: string): void {
    this.rewardModule = text;
    this.moduleEdited = true;
    this.requestUpdate();
  }

  /** Has the engine load the editor's module in its sandbox: the names of its functions, or why it does not load. */
  private async checkModule(): Promise<void> {
    const ctx = this.ctx,
      source = this.rewardModule;
    if (!ctx) return;
    if (!source.trim()) {
      this.moduleCheck = { source, names: [] };
      this.requestUpdate();
      return;
    }
    let check: NonNullable<typeof this.moduleCheck>;
    try {
      check = { source, names: await ctx.engine.checkRewardModule(source) };
    } catch (e) {
      check = { source, error: errText(e) };
    }
    if (this.rewardModule === source) this.moduleCheck = check;
    this.requestUpdate();
  }

  // ---- actions ----

  /** Runs an action, showing its error here and as a notice; returns undefined on error. */
  private async act<R>(what: string, f: () => Promise<R>): Promise<R | undefined> {
    this.busy = what;
    this.actionError = undefined;
    this.requestUpdate();
    try {
      return await f();
    } catch (e) {
      this.actionError = `${what}: ${errText(e)}`;
      this.ctx?.notify(this.actionError, 'error');
      return undefined;
    } finally {
      this.busy = undefined;
      this.requestUpdate();
    }
  }

  private async start(): Promise<void> {
    const ctx = this.ctx!;
    const id = await this.act('start', () => ctx.startRun(this.stage, this.startInput()));
    if (id && id !== this.viewId) await this.view(id);
  }

  private async resume(id: string): Promise<void> {
    const ctx = this.ctx!;
    if (id !== this.viewId) await this.view(id);
    await this.act('resume', () => ctx.resumeRun(id));
  }

  private async stop(kind: 'pause' | 'cancel', id: string): Promise<void> {
    const ctx = this.ctx!;
    await this.act(kind, () => (kind === 'pause' ? ctx.pauseRun(id) : ctx.cancelRun(id)));
    ctx.changed('runs'); // a run that was not training changes status without a status event
  }

  private async use(id: string): Promise<void> {
    const ctx = this.ctx!;
    const policy = await this.act('use this model', async () => {
      await ctx.engine.selectRun(id);
      await ctx.refreshPolicy();
      return ctx.policy;
    });
    if (policy) ctx.notify(`Sampling now from ${policy.name}.`);
  }

  private async deleteRun(id: string): Promise<void> {
    const ctx = this.ctx!;
    if (!confirm(`Delete run ${id.slice(0, 8)} with its checkpoint and metrics? Runs that train against it or start from it can no longer be resumed.`)) return;
    await this.act('delete the run', async () => {
      await ctx.engine.deleteRun(id);
      if (this.viewId === id) this.viewId = undefined;
      ctx.changed('runs');
      await ctx.refreshPolicy();
    });
  }

  // ---- the whole recipe ----

  private get recipeActive(): boolean {
    return this.recipe?.state === 'running' || this.recipe?.state === 'paused';
  }

  /** What the recipe will use, what is missing, and how long it will take (or what the estimate waits for). */
  private recipeEstimate(): { data?: string; missing?: string; configError?: string; waiting?: string; stages?: StageEstimate[]; basis?: string } {
    const ctx = this.ctx,
      m = ctx?.model;
    if (!ctx || !m) return { waiting: 'load a model first' };
    let configs: ReturnType<typeof recipeConfigs>;
    try {
      configs = recipeConfigs(this.recipeKind, this.recipeOpts, m);
    } catch (e) {
      return { configError: errText(e) };
    }
    const ranked = this.records.dpo,
      prompts = this.records.ppo;
    if (!ranked || !prompts) return { waiting: 'reading your data' };
    const ppo = configs.find((c) => c.stage === 'ppo');
    const sums = configs.map((c) => dataSummary(c.stage, c.stage === 'ppo' ? prompts : ranked, { batchSize: c.config.batchSize, rewardModels: 1 }));
    const data = `${dataSummary('dpo', ranked, { batchSize: 1, rewardModels: 0 }).text}${ppo ? `, and ${sums.at(-1)!.text.replace(/ \(.*\)$/, '')} for PPO` : ''}`;
    const missing = sums.find((x) => x.missing)?.missing;
    if (missing) return { data, missing };
    if (!this.lens) return { data, waiting: 'counting your data' };
    const works = configs.map((c) => stageWork(c.stage, c.config, this.lens!.lens));
    if (works.some((w) => !w)) return { data, missing: 'more data: a stage has nothing to train on' };
    const sp = this.speed?.speed;
    if (!sp)
      return {
        data,
        waiting: this.speed?.error ? `could not time this GPU (${this.speed.error})` : ctx.liveRun ? 'timing this GPU once no run trains' : 'timing this GPU',
      };
    const stages = works.map((w) => {
      const e = this.earlier[w!.stage];
      return estimateStage(w!, sp, e ? correction(e.measured, stepSeconds(e.work, sp)) : undefined);
    });
    const ms = (x: number) => `${(x * 1000).toFixed(x < 0.01 ? 1 : 0)} ms`;
    const calibrated = stages.filter((x) => x.calibrated).map((x) => `${STAGE_NAMES[x.stage]} run ${this.earlier[x.stage]!.runId.slice(0, 8)}`);
    const basis = `from the size of your data and this GPU's speed, timed just now on the loaded model (a forward pass of 16 tokens: ${ms(sp.overhead + 16 * sp.perToken)}, of ${
      Math.min(64, m.maxPositions) * 4
    } tokens: ${ms(sp.overhead + Math.min(64, m.maxPositions) * 4 * sp.perToken)})${calibrated.length ? `, corrected by the measured steps of your earlier ${calibrated.join(' and ')}` : ''}`;
    return { data, stages, basis };
  }

  private setRecipeField(key: keyof RecipeOptions, raw: string): void {
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v)) delete this.recipeOpts[key];
    else this.recipeOpts[key] = v;
    this.recipeOpts = { ...this.recipeOpts };
    this.requestUpdate();
  }

  private recipeHost(ctx: AppContext): RecipeHost {
    return {
      startRun: (stage, input) => ctx.startRun(stage, input),
      wait: (id) => ctx.engine.wait(id),
      resumeRun: (id) => ctx.resumeRun(id),
      pauseRun: (id) => ctx.pauseRun(id),
      cancelRun: (id) => ctx.cancelRun(id),
      onStatus: (fn) => ctx.on('status', fn),
      get liveRun() {
        return ctx.liveRun;
      },
    };
  }

  private async startRecipe(): Promise<void> {
    const ctx = this.ctx!;
    this.recipePlan = this.recipeEstimate().stages;
    this.recipeLive = undefined;
    const runner = new RecipeRunner(this.recipeHost(ctx), this.recipeKind, { ...this.recipeOpts }, () => this.requestUpdate());
    this.recipe = runner;
    this.requestUpdate();
    await this.updateComplete;
    (this.renderRoot.querySelector('#recipe-pause') as HTMLElement | null)?.focus(); // the start button is disabled now
    const last = await runner.done;
    if (runner.state === 'failed') ctx.notify(`The whole recipe stopped: ${runner.error ?? 'a run failed'}.`, 'error');
    if (!last || this.recipe !== runner) return;
    // the tuned policy is what generate samples (as "Use this model"), and Compare opens on it, blind
    const ok = await ctx.attempt('Opening the tuned model', async () => {
      await ctx.engine.selectRun(last);
      await ctx.refreshPolicy();
      return true;
    });
    if (!ok) return;
    const ranked = (this.records.dpo ?? []).filter((r) => r.kind === 'ranking' || r.kind === 'preference');
    const prompt = ranked[Math.floor(Math.random() * ranked.length)]?.prompt ?? '';
    ctx.notify(
      `The whole recipe is done: ${STAGE_NAMES[runner.stages.at(-1)!.stage]} run ${last.slice(0, 8)} is the tuned model. Vote blind: which answer is better?`,
    );
    ctx.changed('navigate', 'compare');
    ctx.changed('compare', { prompt });
  }

  /** How far the recipe is, in the estimated seconds of its stages (equal shares without an estimate). */
  private recipeProgress(r: RecipeRunner): { value: number; max: number; left?: number } {
    const plan = this.recipePlan,
      live = this.recipeLive;
    const weight = (i: number) => plan?.[i]?.seconds ?? 1;
    let value = 0,
      max = 0,
      left = 0;
    r.stages.forEach((st, i) => {
      const w = weight(i);
      max += w;
      const lv = live?.runId === st.runId ? live : undefined;
      const step = lv ? lv.step : (st.step ?? 0),
        total = lv ? lv.total : (st.total ?? 0);
      const frac = st.status === 'done' ? 1 : total ? step / total : 0;
      value += w * frac;
      if (st.status === 'done') return;
      left += lv?.secondsLeft !== undefined && step > 0 ? lv.secondsLeft : w * (1 - frac);
    });
    return { value, max, left: plan ? left : undefined };
  }

  private recipeCard(live: string | undefined) {
    const ctx = this.ctx!,
      r = this.recipe,
      active = this.recipeActive;
    const est = this.recipeEstimate();
    const total = est.stages?.reduce((s, x) => s + x.seconds, 0);
    const canStart = !!ctx.model && !live && !active && !this.busy && !est.missing && !est.configError && (!!est.stages || !!this.speed?.error);
    const kindStages = RECIPES.find((k) => k.id === this.recipeKind)!.stages;
    const defaults = (() => {
      try {
        return recipeConfigs(this.recipeKind, { loraRank: this.recipeOpts.loraRank }, ctx.model ?? NO_MODEL);
      } catch {
        return recipeConfigs(this.recipeKind, {}, ctx.model ?? NO_MODEL);
      }
    })();
    const placeholder = (key: keyof RecipeOptions) => {
      if (key === 'steps') return `auto: at least ${AUTO_EPOCHS.minSteps}, at most ${AUTO_EPOCHS.maxEpochs} passes`;
      if (key === 'loraRank') return String(RECIPE_RANK);
      const vals = defaults
        .filter((c) => !RECIPE_FIELDS.find((f) => f.key === key)?.ppo || c.stage === 'ppo')
        .map((c) => [c.stage, c.config[key as keyof TrainConfig]] as const);
      return new Set(vals.map((v) => v[1])).size === 1 ? String(vals[0]![1]) : vals.map(([st, v]) => `${STAGE_NAMES[st]} ${v}`).join(' · ');
    };
    const progress = r ? this.recipeProgress(r) : undefined;
    return html`
      <section class="card" id="recipe" data-state=${r?.state ?? ''}>
        <h3>The whole recipe</h3>
        <p class="muted small">From your rankings to a tuned model in one go: the runs start one after the other (each is an ordinary run, listed below), and when they are done the Compare tab opens on the result with a blind A/B vote.</p>
        <div class="kinds" role="radiogroup" aria-label="Recipe">
          ${RECIPES.map(
            (k) => html`<label>
            <input type="radio" name="recipe" value=${k.id} .checked=${k.id === this.recipeKind} ?disabled=${active}
              @change=${() => {
                this.recipeKind = k.id;
                this.requestUpdate();
              }}>
            <span><b>${k.name}</b>: ${k.what}</span>
          </label>`,
          )}
        </div>
        ${est.data ? html`<p class="small" id="recipe-data">Uses ${est.data}.</p>` : null}
        <details id="recipe-settings"><summary>Settings (empty: the recipe's defaults)</summary>
          <div class="fields">${RECIPE_FIELDS.filter((f) => !f.ppo || kindStages.includes('ppo')).map(
            (f) => html`
            <label class="field"><span class="name">${f.label}</span>
              <input id="recipe-${f.key}" type="number" step="any" placeholder=${placeholder(f.key)} .value=${this.recipeOpts[f.key] === undefined ? '' : String(this.recipeOpts[f.key])}
                ?disabled=${active} @change=${(e: Event) => this.setRecipeField(f.key, (e.target as HTMLInputElement).value)}>
              <span class="help">${f.help}</span></label>`,
          )}
          </div>
        </details>
        ${est.configError ? html`<p id="recipe-error" class="error">${est.configError}</p>` : null}
        ${est.missing ? html`<p id="recipe-missing" class="error small">Missing: ${est.missing}.</p>` : null}
        ${
          est.stages && total !== undefined
            ? html`<p id="recipe-estimate" data-seconds=${Math.round(total)}>
            About <b>${roughDuration(total)}</b> in all: ${est.stages.map((x) => `${STAGE_NAMES[x.stage]} ${roughDuration(x.seconds)} (${x.steps} steps)`).join(', then ')}.
            <span class="muted small">An estimate, ${est.basis}; each run shows its real speed and time left as it trains.</span></p>`
            : est.waiting && !est.missing && !est.configError
              ? html`<p id="recipe-estimate" class="muted small">Estimate of the time: ${est.waiting}…</p>`
              : null
        }
        <div class="row">
          <button id="recipe-start" class="primary" ?disabled=${!canStart}
            title=${live ? 'a run is training: pause or cancel it first (one GPU, one run)' : ''} @click=${() => void this.startRecipe()}>Run the whole recipe: ${RECIPES.find((k) => k.id === this.recipeKind)!.name}</button>
          <button id="recipe-pause" ?disabled=${r?.state !== 'running' || !r.current?.runId || live !== r.current.runId || !!this.busy}
            @click=${() => void this.act('pause', () => r!.pause())}>Pause</button>
          <button id="recipe-resume" ?disabled=${r?.state !== 'paused' || !!live || !!this.busy} @click=${() => void this.act('resume', () => r!.resume())}>Resume</button>
          <button id="recipe-cancel" class="danger" ?disabled=${!active || !!this.busy} @click=${() => void this.act('cancel', () => r!.cancel())}>Cancel the recipe</button>
        </div>
        ${
          r
            ? html`
          <ol id="recipe-stages">${r.stages.map((st, i) => {
            const lv = this.recipeLive?.runId === st.runId ? this.recipeLive : undefined;
            const step = lv?.step ?? st.step,
              tot = lv?.total ?? st.total;
            return html`<li data-stage=${st.stage} data-status=${st.status ?? 'waiting'} data-run=${st.runId ?? ''}>
              ${STAGE_NAMES[st.stage]}: ${st.status ?? (i > r.index ? 'waiting' : 'starting')}${st.runId ? ` · run ${st.runId.slice(0, 8)} · step ${step ?? 0} / ${tot ?? '?'}` : ''}</li>`;
          })}</ol>
          ${progress ? html`<progress id="recipe-progress" max=${progress.max} .value=${progress.value} aria-label="The whole recipe"></progress>` : null}
          <p id="recipe-state" class="small" role="status">${this.recipeStateText(r, progress?.left)}</p>`
            : null
        }
      </section>
    `;
  }

  private recipeStateText(r: RecipeRunner, left: number | undefined): string {
    const n = r.stages.length,
      i = Math.min(r.index, n - 1),
      name = STAGE_NAMES[r.stages[i]!.stage];
    switch (r.state) {
      case 'running':
        return `Stage ${i + 1} of ${n}: ${name}${left !== undefined ? ` · about ${roughDuration(left)} left in all (an estimate)` : ''}.`;
      case 'paused':
        return `Paused in stage ${i + 1} of ${n} (${name}): Resume goes on from its checkpoint.`;
      case 'done':
        return `Done: ${name} run ${r.stages[i]!.runId?.slice(0, 8)} is the tuned model; Compare is open on it.`;
      case 'cancelled':
        return `Cancelled in stage ${i + 1} of ${n} (${name}). Its runs stay in the list.`;
      case 'failed':
        return `Stopped in stage ${i + 1} of ${n} (${name}): ${r.error ?? 'the run failed'}.`;
    }
  }

  // ---- rendering ----

  override render() {
    const ctx = this.ctx;
    if (!ctx) return html``;
    const live = ctx.liveRun;
    const cfg = this.defaults();
    const rms = this.rewardModels();
    const summary = this.summary(this.stage, rms.length);
    const cfgError = this.configError();
    const blocked = !ctx.model ? 'load a model first' : !summary ? 'reading your data' : (summary.missing ?? cfgError);
    const fields = formFields(this.stage); // the schema's (src/shared/schema.ts): labels, help lines, Advanced
    return html`
      <h2>Train</h2>
      ${ctx.model ? null : html`<p id="no-model" class="error">Load a model first (Model tab): every stage trains the loaded model.</p>`}
      ${this.recipeCard(live)}
      <section class="card">
        <h3>Stage</h3>
        <div id="stage" role="radiogroup">
          ${STAGES.map((s) => {
            const sum = this.summary(s.id, rms.length);
            return html`<label>
              <input type="radio" name="stage" value=${s.id} .checked=${s.id === this.stage} @change=${() => this.pickStage(s.id)}>
              <span><b>${s.name}</b> ${s.what}
                <span class="uses muted">Uses ${sum?.text ?? '…'}.</span>
                ${sum?.missing ? html`<span class="uses error">Missing: ${sum.missing}.</span>` : sum?.hint ? html`<span class="uses muted">${sum.hint}.</span>` : null}
              </span>
            </label>`;
          })}
        </div>
      </section>
      ${isGroup(this.stage) ? this.rewardCard() : null}
      <section class="card">
        <h3>Hyperparameters</h3>
        <div class="fields">${fields.filter((f) => !f.advanced).map((f) => this.field(f, cfg, rms))}</div>
        <details id="advanced"><summary>Advanced</summary>
          <div class="fields">${fields.filter((f) => f.advanced).map((f) => this.field(f, cfg, rms))}</div>
        </details>
        ${cfgError && !summary?.missing ? html`<p id="form-error" class="error">${cfgError}</p>` : null}
        <div class="row">
          <button id="start" class="primary" ?disabled=${!!live || !!blocked || !!this.busy || this.recipeActive}
            title=${live ? 'a run is training: pause or cancel it first (one GPU, one run)' : this.recipeActive ? 'the whole recipe is under way: cancel it first' : (blocked ?? '')} @click=${() => this.start()}>Start ${STAGES.find((s) => s.id === this.stage)!.name}</button>
          ${this.controls(live)}
        </div>
        ${blocked && !live ? html`<p class="muted small" id="blocked">Cannot start: ${blocked}.</p>` : null}
        ${(() => {
          const m = this.memoryEstimate();
          return m ? html`<p class="muted small" id="memory-estimate">${m}</p>` : null;
        })()}
        ${this.actionError ? html`<p id="action-error" class="error">${this.actionError}</p>` : null}
      </section>
      ${this.runView()}
      ${this.runList(live)}
    `;
  }

  /** GRPO/RLOO: the editor of the reward module, and the functions the engine found in it. */
  private rewardCard() {
    const check = this.moduleCheck?.source === this.rewardModule ? this.moduleCheck : undefined;
    const status = !this.rewardModule.trim()
      ? html`<span class="muted">No reward functions: choose a reward model, or write some.</span>`
      : check?.error
        ? html`<span class="error">${check.error}</span>`
        : check?.names
          ? html`Exports ${check.names.map((n, i) => html`${i ? ', ' : ''}<code>${n}</code>`)}: each is charted as <code>rewards/&lt;name&gt;/mean</code>.`
          : html`<span class="muted">Reading the module…</span>`;
    return html`
      <section class="card" id="rewards">
        <h3><label for="reward-module">Reward functions</label></h3>
        <p id="reward-module-help" class="muted small">A JavaScript module: every function it exports gets <code>{ prompts, completions, completion_ids }</code> (one entry per answer)
          and returns one number per answer, or <code>null</code> where it does not apply. It runs in a worker of its own, apart from training, and is saved with the run.
          Tab leaves the editor.</p>
        <textarea id="reward-module" rows="16" spellcheck="false" autocomplete="off" autocapitalize="off" aria-describedby="reward-module-help reward-module-status"
          .value=${this.rewardModule}
          @input=${(e: Event) => this.editModule((e.target as HTMLTextAreaElement).value)}
          @change=${() => void this.checkModule()}></textarea>
        <div class="row">
          <button id="reward-check" @click=${() => void this.checkModule()}>Check the module</button>
          <button id="reward-example" ?disabled=${this.rewardModule === EXAMPLE_REWARDS} @click=${() => {
            this.editModule(EXAMPLE_REWARDS);
            void this.checkModule();
          }}>Back to the example</button>
        </div>
        <p id="reward-module-status" class="small" role="status" aria-live="polite">${status}</p>
      </section>
    `;
  }

  private field(f: FormField, cfg: TrainConfig, rms: db.RunRecord[]) {
    const id = `cfg-${f.key}`;
    const cur = this.input[f.key] ?? cfg[f.key];
    const value = Array.isArray(cur) ? cur.join(', ') : String(cur);
    const picked = (e: Event) => (e.target as HTMLSelectElement).value;
    const control =
      f.key === 'rewardRunId' && isGroup(this.stage)
        ? // GRPO/RLOO: a reward model is optional, beside (or instead of) the reward functions
          html`<select id=${id} @change=${(e: Event) => this.setField(f.key, picked(e), 'text')}>
          <option value="" ?selected=${!this.input.rewardRunId}>none: the reward functions alone</option>
          ${rms.map((r) => html`<option value=${r.id} ?selected=${r.id === this.input.rewardRunId}>${rewardModelLabel(r)}</option>`)}
        </select>`
        : f.key === 'rewardRunId'
          ? html`<select id=${id} ?disabled=${!rms.length} @change=${(e: Event) => this.setField(f.key, picked(e), 'text')}>
          ${
            rms.length
              ? rms.map((r) => html`<option value=${r.id} ?selected=${r.id === (this.input.rewardRunId ?? rms[0]!.id)}>${rewardModelLabel(r)}</option>`)
              : html`<option value="">no finished LoRA reward model yet</option>`
          }
        </select>`
          : f.options || f.type === 'bool'
            ? html`<select id=${id} @change=${(e: Event) => this.setField(f.key, picked(e), f.type === 'bool' ? 'bool' : 'text')}>
            ${selectChoices(f.options ?? ['false', 'true'], value).map((o) => html`<option value=${o} ?selected=${o === value}>${o}</option>`)}
          </select>`
            : f.type === 'numbers'
              ? html`<input id=${id} type="text" inputmode="decimal" autocomplete="off" placeholder=${f.placeholder ?? ''} .value=${value}
              @change=${(e: Event) => this.setField(f.key, (e.target as HTMLInputElement).value, 'list')}>`
              : html`<input id=${id} type="number" step="any" .value=${value} @change=${(e: Event) => this.setField(f.key, (e.target as HTMLInputElement).value, 'number')}>`;
    return html`<label class="field"><span class="name">${f.label}</span>${control}<span class="help">${f.help}</span></label>`;
  }

  /** Pause / resume / cancel act on the live run, else on the viewed one. */
  private controls(live: string | undefined) {
    const r = this.viewed;
    const idle = r && !live && resumable(r) ? r : undefined;
    const cancellable = live ?? (idle && idle.status !== 'cancelled' && idle.status !== 'failed' ? idle.id : undefined);
    return html`
      <button id="pause" ?disabled=${!live || !!this.busy} @click=${() => this.stop('pause', live!)}>${this.busy === 'pause' ? 'Pausing…' : 'Pause'}</button>
      <button id="resume" ?disabled=${!idle || !!this.busy} @click=${() => this.resume(idle!.id)}>Resume</button>
      <button id="cancel" class="danger" ?disabled=${!cancellable || !!this.busy} @click=${() => this.stop('cancel', cancellable!)}>${this.busy === 'cancel' ? 'Cancelling…' : 'Cancel'}</button>
    `;
  }

  /** A sign of life inside a long online step: what it is doing, how far, and for how long. */
  private phaseView(ph: RunPhase & { since: number; stepSince: number }) {
    const what =
      ph.phase === 'sampling'
        ? `sampling the rollouts: ${ph.done} of at most ${ph.total} tokens`
        : ph.phase === 'scoring'
          ? 'scoring the rollouts (reward, reference and old policy)'
          : `updating: minibatch update ${ph.done + 1} of ${ph.total}`;
    const now = Date.now(),
      secs = Math.round((now - ph.since) / 1000),
      p = this.progress;
    // the engine's estimate after a step: the seconds left over the steps left
    const secondsPerStep = p?.secondsLeft !== undefined && p.total > p.step ? p.secondsLeft / (p.total - p.step) : undefined;
    const eta = phaseEta({
      ...ph,
      phaseSecs: (now - ph.since) / 1000,
      stepSecs: (now - ph.stepSince) / 1000,
      secondsPerStep,
      stepsAfter: Math.max(0, (p?.total ?? ph.step) - ph.step),
    });
    return html`<div id="phase" data-phase=${ph.phase}>
      <progress id="phase-progress" max=${ph.total || 1} .value=${ph.phase === 'scoring' ? 0 : ph.done}></progress>
      <p class="small muted">step ${ph.step}: ${what}${secs >= 2 ? ` (${fmtSeconds(secs)} so far)` : ''}${eta ? html` · <span id="phase-eta">${eta}</span>` : ''}</p></div>`;
  }

  private runView() {
    const r = this.viewed,
      p = this.progress;
    // from the click on: building a stage (its plans, a reference or value model) takes seconds
    if (this.busy === 'start')
      return html`<section class="card" id="run" data-status="starting">
      <h3>Starting a run <span class="pill">${this.stage}</span> <span class="pill status">starting</span></h3>
      <progress id="progress"></progress><p id="progress-text" class="small">preparing the models and plans on the GPU…</p></section>`;
    if (!r || !this.viewId) return html`<section class="card"><div class="empty">No run yet: pick a stage and start one.</div></section>`;
    const stage = r.stage as Stage;
    // the status event's error shows at once; the record's after a reload
    const error = this.errors.get(r.id) ?? (r.status === 'failed' ? (r.error ?? 'the run failed') : undefined);
    const speed =
      p?.tokensPerSec !== undefined && this.ctx?.liveRun === r.id ? ` · ${Math.round(p.tokensPerSec)} tokens/s · ${fmtSeconds(p.secondsLeft ?? NaN)} left` : '';
    return html`
      <section class="card" id="run" data-run=${r.id} data-status=${r.status}>
        <h3>Run ${r.id.slice(0, 8)} <span class="pill">${stage}</span> <span class="pill status">${r.status}</span></h3>
        <progress id="progress" max=${p?.total || 1} .value=${p?.step ?? 0}></progress>
        <p id="progress-text" class="small">step ${p?.step ?? 0} / ${p?.total ?? 0}${speed}</p>
        ${this.phase && this.ctx?.liveRun === r.id ? this.phaseView(this.phase) : null}
        ${error ? html`<p id="run-error" class="error" role="alert">Failed: ${error}</p>` : null}
        ${
          stage === 'rm' && r.status === 'done'
            ? html`<p id="heldout">${
                typeof r.result?.eval_accuracy === 'number'
                  ? `Held-out pair accuracy ${pct(r.result.eval_accuracy)} on ${typeof r.result.eval_pairs === 'number' ? plural(r.result.eval_pairs, 'pair') : '? pairs'} (loss ${Number(r.result.eval_loss).toFixed(3)}).`
                  : 'No held-out accuracy: fewer than 10 rankings, so none was held out.'
              }</p>`
            : null
        }
        ${keyed(
          r.id,
          html`<div class="charts">${[...(CHARTS[stage] ?? []), ...this.rewardCharts(r)].map(
            (c) => html`
          <line-chart class=${c.cls} data-run=${r.id} .label=${c.label} .series=${c.series}></line-chart>`,
          )}</div>`,
        )}
      </section>
    `;
  }

  /** GRPO/RLOO: one curve per reward function (and the reward model), the names in the run's config. */
  private rewardCharts(r: db.RunRecord): { cls: string; label: string; series: string[] }[] {
    if (!isGroup(r.stage as Stage)) return [];
    let series = this.rewardSeries.get(r.id); // one array per run: a new one would redraw the chart from scratch
    if (!series) {
      const names = [...(Array.isArray(r.config.rewardFuncs) ? (r.config.rewardFuncs as string[]) : []), ...(r.config.rewardRunId ? ['reward_model'] : [])];
      series = names.map((n) => `rewards/${n}/mean`);
      this.rewardSeries.set(r.id, series);
    }
    return series.length > 1 ? [{ cls: 'rewards', label: 'Each reward (mean over the answers it applies to)', series }] : [];
  }

  private runList(live: string | undefined) {
    if (!this.runs.length) return null;
    return html`
      <section class="card">
        <h3>Runs</h3>
        <table id="runs">
          <thead><tr><th>status</th><th>stage</th><th>steps</th><th>started</th><th></th></tr></thead>
          <tbody>${this.runs.map(
            (r) => html`
            <tr class="run ${r.id === this.viewId ? 'viewed' : ''}" data-run=${r.id} data-status=${r.status}>
              <td>${r.id === live ? 'training' : r.status}${r.error ? html`<div class="error small">${r.error}</div>` : null}</td>
              <td>${r.stage}</td>
              <td>${r.id === live && r.id === this.viewId && this.progress ? this.progress.step : (r.step ?? 0)} / ${r.totalSteps ?? '?'}</td>
              <td>${new Date(r.createdAt).toLocaleString()}</td>
              <td class="row">
                <button class="show" ?disabled=${r.id === this.viewId} @click=${() => this.view(r.id)}>Show</button>
                ${resumable(r) ? html`<button class="resume" ?disabled=${!!live || !!this.busy} @click=${() => this.resume(r.id)}>Resume</button>` : null}
                ${
                  r.stage !== 'rm'
                    ? html`<button class="use" ?disabled=${!!live || !!this.busy || !hasCheckpoint(r)} title="sample from this run's last checkpoint"
                  @click=${() => this.use(r.id)}>Use this model</button>`
                    : null
                }
                <button class="delete danger" ?disabled=${r.id === live || !!this.busy} title="delete the run with its checkpoint and metrics"
                  @click=${() => this.deleteRun(r.id)}>Delete</button>
              </td>
            </tr>`,
          )}
          </tbody>
        </table>
      </section>
    `;
  }
}

if (!customElements.get('train-view')) customElements.define('train-view', TrainView);

declare global {
  interface HTMLElementTagNameMap {
    'train-view': TrainView;
  }
}
