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
//  - All text (errors, run data) is bound as text, never as HTML.
import { css, html, type PropertyValues } from 'lit';
import { keyed } from 'lit/directives/keyed.js';
import type { Record as DataRecord } from '../io/datasets.ts';
import * as db from '../store/db.ts';
import { resolveConfig, type Stage, type TrainConfig, type TrainInput } from '../train/config.ts';
import { rankingPairs } from '../io/datasets.ts';
import { plural } from './data-io.ts';
import type { LineChart } from './chart.ts';
import './chart.ts';
import { fmtSeconds, type AppContext } from './context.ts';
import { CtxView, errText } from './ctx-view.ts';
import { sharedStyles } from './styles.ts';

const STAGES: { id: Stage; name: string; what: string }[] = [
  { id: 'sft', name: 'SFT', what: 'imitates your demonstrations: next-token loss on the answers of your prompt/answer pairs.' },
  { id: 'rm', name: 'Reward model', what: 'learns to score answers the way you ranked them: in every pair of a ranking the better answer must score higher.' },
  { id: 'ppo', name: 'PPO', what: 'samples answers to your prompts, scores them with a reward model and moves toward higher scores, on a KL leash to the starting model.' },
  { id: 'dpo', name: 'DPO', what: 'learns straight from the pairs of your rankings, without a reward model: the better answer becomes likelier than the worse, relative to the starting model.' },
];

/** LoRA rank the playground starts from: small adapters train fast and PPO's four roles share one base. */
const DEFAULT_RANK = 8;

interface Field { key: keyof TrainConfig; label: string; help: string; stages?: Stage[]; advanced?: true; options?: string[] }

const FIELDS: Field[] = [
  { key: 'epochs', label: 'epochs', help: 'passes over the data' },
  { key: 'steps', label: 'steps', help: 'optimizer steps, overriding the epochs (cycles through the data as needed); 0 = what the epochs give' },
  { key: 'batchSize', label: 'batch size', help: 'demonstrations (SFT), rankings (RM), pairs (DPO) or prompts (PPO) per step' },
  { key: 'lr', label: 'learning rate', help: 'AdamW step size, with warmup and cosine decay; adapters take larger ones than full fine-tuning' },
  { key: 'loraRank', label: 'LoRA rank', help: 'size of the low-rank adapters; 0 trains every weight (far more memory; PPO needs LoRA)' },
  { key: 'seqLen', label: 'sequence length', help: 'prompt + answer tokens per example; longer text is cut' },
  { key: 'beta', label: 'beta', stages: ['dpo'], help: "how tightly DPO stays near the starting model; lower lets it move further" },
  { key: 'rewardRunId', label: 'reward model', stages: ['ppo'], help: 'a finished LoRA reward-model run on this model: it scores the samples' },
  { key: 'kl_coef', label: 'KL coefficient', stages: ['ppo'], help: 'penalty per token for drifting from the starting model (the leash)' },
  { key: 'numSamples', label: 'samples per prompt', stages: ['ppo'], help: 'answers sampled for each prompt at each step (1 to 9)' },
  { key: 'maxNewTokens', label: 'max new tokens', stages: ['ppo'], help: 'longest answer sampled' },
  // ---- advanced ----
  { key: 'seed', label: 'seed', advanced: true, help: 'data order, adapter and head initialisation: same seed, same run' },
  { key: 'weightDecay', label: 'weight decay', advanced: true, help: "AdamW's pull of the weights toward zero" },
  { key: 'maxGradNorm', label: 'max gradient norm', advanced: true, help: 'larger gradients are scaled down to this norm; 0 = no clipping' },
  { key: 'warmupRatio', label: 'warmup ratio', advanced: true, help: 'share of the steps over which the learning rate ramps up' },
  { key: 'minLrRatio', label: 'min lr ratio', advanced: true, help: 'where the cosine decay ends, as a share of the learning rate' },
  { key: 'beta1', label: 'Adam beta1', advanced: true, help: 'momentum of the gradient average' },
  { key: 'beta2', label: 'Adam beta2', advanced: true, help: 'momentum of the squared-gradient average' },
  { key: 'eps', label: 'Adam epsilon', advanced: true, help: 'keeps the update finite where gradients are tiny' },
  { key: 'loraAlpha', label: 'LoRA alpha', advanced: true, help: 'scale of the adapter (alpha / rank); 2 x rank by default' },
  { key: 'loraDropout', label: 'LoRA dropout', advanced: true, help: "dropout on the adapter's input while training" },
  { key: 'checkpointEvery', label: 'checkpoint every', advanced: true, help: 'steps between checkpoints to the browser storage; 0 = only at pause and at the end' },
  { key: 'onNonFinite', label: 'on NaN/Inf gradient', advanced: true, options: ['skip', 'stop'], help: 'skip that step (weights untouched) or stop the run as failed' },
  { key: 'temperature', label: 'temperature', stages: ['ppo'], advanced: true, help: 'sampling temperature of the rollouts' },
  { key: 'kl_target', label: 'KL target', stages: ['ppo'], advanced: true, help: 'nats per answer; > 0 adapts the KL coefficient toward it, 0 keeps it fixed' },
  { key: 'cliprange', label: 'clip range', stages: ['ppo'], advanced: true, help: "how far one update may move the policy's probability ratio from 1" },
  { key: 'cliprange_value', label: 'value clip range', stages: ['ppo'], advanced: true, help: 'the same for the value model' },
  { key: 'vf_coef', label: 'value loss weight', stages: ['ppo'], advanced: true, help: "scale of the value model's loss" },
  { key: 'gamma', label: 'gamma', stages: ['ppo'], advanced: true, help: 'discount over answer tokens (1: none)' },
  { key: 'lam', label: 'GAE lambda', stages: ['ppo'], advanced: true, help: 'bias/variance trade-off of the advantages' },
  { key: 'ppo_epochs', label: 'PPO epochs', stages: ['ppo'], advanced: true, help: 'passes over each batch of rollouts' },
  { key: 'minibatches', label: 'minibatches', stages: ['ppo'], advanced: true, help: 'updates per pass over a batch of rollouts' },
  { key: 'ptx_coef', label: 'pretraining mix (ptx)', stages: ['ppo'], advanced: true, help: '> 0 mixes the demonstrations\' loss in (PPO-ptx), to keep what SFT taught' },
  { key: 'ema_decay', label: 'EMA decay', stages: ['ppo'], advanced: true, help: 'keep an average of the policy as the result (the paper: 0.992); 0 = off' },
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
};

/** What a stage's data amounts to, and what is missing before it can start. */
export function dataSummary(stage: Stage, records: DataRecord[], o: { batchSize: number; rewardModels: number }): { text: string; missing?: string; hint?: string } {
  const count = (kind: DataRecord['kind']) => records.filter((r) => r.kind === kind).length;
  const pairs = records.reduce((n, r) => n + (r.kind === 'ranking' ? rankingPairs(r.completions.length, r.ranks).length : r.kind === 'preference' ? 1 : 0), 0);
  if (stage === 'sft') {
    const n = records.length;
    return { text: plural(n, 'demonstration'), missing: n ? undefined : 'write or import at least one demonstration (a prompt with the answer you want) first' };
  }
  if (stage === 'ppo') {
    const demos = records.filter((r) => r.kind === 'completion' && r.completion).length;
    const missing = records.length < o.batchSize ? `add at least ${o.batchSize} prompts first (one step takes a batch of ${o.batchSize})`
      : !o.rewardModels ? 'train a reward model with LoRA on this model first' : undefined;
    return { text: `${plural(records.length, 'prompt')} (${demos} with a demonstration, for PPO-ptx)`, missing };
  }
  const rankings = count('ranking') + count('preference');
  const text = `${plural(rankings, 'ranking')}, ${plural(pairs, 'pair')}`;
  if (stage === 'rm') {
    return { text, missing: rankings ? undefined : 'rank at least one prompt first', hint: rankings < 10 ? 'Rank at least 10 prompts to get a held-out accuracy' : undefined };
  }
  return { text, missing: pairs ? undefined : 'rank at least one prompt (with answers not all tied) first' };
}

const resumable = (r: db.RunRecord) => r.status !== 'done';
/**
 * Whether a run has a checkpoint to sample from, as far as its record tells: done and paused runs write
 * one; others only when `checkpointEvery` has passed (a run without one would sample the untrained start).
 */
const hasCheckpoint = (r: db.RunRecord) => {
  const every = Number(r.config.checkpointEvery ?? 0), step = r.step ?? 0;
  return r.status === 'done' || r.status === 'paused' || (every > 0 && step >= every);
};
const pct = (x: unknown) => (typeof x === 'number' ? `${Math.round(x * 100)}%` : '–');

/** A reward model in PPO's list, short enough for the field (about 35 characters): id, when, and its held-out accuracy if it has one. */
export function rewardModelLabel(r: Pick<db.RunRecord, 'id' | 'createdAt' | 'result'>, now = Date.now()): string {
  const d = new Date(r.createdAt), today = new Date(now).toDateString() === d.toDateString();
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
  private errors = new Map<string, string>(); // run id -> error of a 'failed' status event
  private busy?: string; // the action under way ('start', 'pause', ...)
  private actionError?: string;

  static override styles = [sharedStyles, css`
    .card > h3:first-child { margin-top: 0; }
    #stage label { display: flex; gap: 0.5rem; align-items: baseline; padding: 0.3rem 0; }
    #stage .uses { font-size: 0.85em; }
    .fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: 0.6rem 1rem; margin: 0.5rem 0; }
    .field .name { display: block; font-weight: 600; font-size: 0.9em; }
    .field input, .field select { width: 100%; }
    .field .help { display: block; color: #6e6e73; font-size: 0.8em; }
    .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(20rem, 1fr)); gap: 1rem; }
    #run-error { white-space: pre-wrap; border: 1px solid #f1b8b2; background: #fdf0ef; border-radius: 8px; padding: 0.5rem 0.75rem; }
    tr.viewed { background: #f4f8fd; }
  `];

  // ---- the context ----

  protected listen(ctx: AppContext) {
    return [
      ctx.on('model', () => void this.loadData(ctx)),
      ctx.on('data', () => void this.loadData(ctx)),
      ctx.on('rankings', () => void this.loadData(ctx)),
      ctx.on('runs', () => void this.loadRuns(ctx)),
      ctx.on('metrics', (m) => this.onMetrics(m)),
      ctx.on('progress', (p) => {
        if (p.runId !== this.viewId) return;
        this.progress = p;
        this.requestUpdate();
      }),
      ctx.on('status', (s) => {
        if (s.status === 'failed' && s.error) this.errors.set(s.runId, s.error);
        if (s.status === 'running') this.errors.delete(s.runId);
        if (s.runId === this.viewId) this.progress = { ...this.progress, step: s.step, total: s.total };
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

  private async loadData(ctx: AppContext): Promise<void> {
    const all = await Promise.all(STAGES.map(async (s) => [s.id, await ctx.stageData(s.id)] as const));
    this.records = Object.fromEntries(all);
    this.requestUpdate();
  }

  private async loadRuns(ctx: AppContext): Promise<void> {
    this.runs = await db.listRuns(ctx.store);
    const r = this.viewed;
    if (r && r.id !== ctx.liveRun) this.progress = { step: r.step ?? 0, total: r.totalSteps ?? 0 };
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
    return resolveConfig(this.stage, { loraRank: rank, rewardRunId: 'unset' }, this.ctx?.model?.maxPositions ?? 256);
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
    const batchSize = (stage === this.stage ? this.startInput().batchSize : undefined) ?? resolveConfig(stage, { rewardRunId: 'unset' }, 256).batchSize;
    return dataSummary(stage, records, { batchSize, rewardModels });
  }

  private startInput(): TrainInput {
    const { rewardRunId, ...rest } = this.input;
    const input: TrainInput = { loraRank: DEFAULT_RANK, ...rest };
    if (this.stage === 'ppo') input.rewardRunId = rewardRunId ?? this.rewardModels()[0]?.id ?? '';
    return input;
  }

  /** Why the config cannot start, in resolveConfig's words (undefined when it can). */
  private configError(): string | undefined {
    try {
      resolveConfig(this.stage, this.startInput(), this.ctx?.model?.maxPositions ?? 256);
      return undefined;
    } catch (e) {
      return errText(e);
    }
  }

  private setField(key: keyof TrainConfig, raw: string, numeric: boolean): void {
    const input = this.input as Record<string, unknown>;
    if (raw === '') delete input[key];
    else input[key] = numeric ? Number(raw) : raw;
    this.requestUpdate();
  }

  private pickStage(stage: Stage): void {
    this.stage = stage;
    this.input = {}; // each stage has its own defaults (lr, batch size): start from them
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

  // ---- rendering ----

  override render() {
    const ctx = this.ctx;
    if (!ctx) return html``;
    const live = ctx.liveRun;
    const cfg = this.defaults();
    const rms = this.rewardModels();
    const summary = this.summary(this.stage, rms.length);
    const cfgError = this.configError();
    const blocked = !ctx.model ? 'load a model first' : !summary ? 'reading your data' : summary.missing ?? cfgError;
    const fields = FIELDS.filter((f) => !f.stages || f.stages.includes(this.stage));
    return html`
      <h2>Train</h2>
      ${ctx.model ? null : html`<p id="no-model" class="error">Load a model first (Model tab): every stage trains the loaded model.</p>`}
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
      <section class="card">
        <h3>Hyperparameters</h3>
        <div class="fields">${fields.filter((f) => !f.advanced).map((f) => this.field(f, cfg, rms))}</div>
        <details id="advanced"><summary>Advanced</summary>
          <div class="fields">${fields.filter((f) => f.advanced).map((f) => this.field(f, cfg, rms))}</div>
        </details>
        ${cfgError && !summary?.missing ? html`<p id="form-error" class="error">${cfgError}</p>` : null}
        <div class="row">
          <button id="start" class="primary" ?disabled=${!!live || !!blocked || !!this.busy}
            title=${live ? 'a run is training: pause or cancel it first (one GPU, one run)' : blocked ?? ''} @click=${() => this.start()}>Start ${STAGES.find((s) => s.id === this.stage)!.name}</button>
          ${this.controls(live)}
        </div>
        ${blocked && !live ? html`<p class="muted small" id="blocked">Cannot start: ${blocked}.</p>` : null}
        ${this.actionError ? html`<p id="action-error" class="error">${this.actionError}</p>` : null}
      </section>
      ${this.runView()}
      ${this.runList(live)}
    `;
  }

  private field(f: Field, cfg: TrainConfig, rms: db.RunRecord[]) {
    const id = `cfg-${f.key}`;
    const value = String(this.input[f.key] ?? cfg[f.key]);
    const control = f.key === 'rewardRunId'
      ? html`<select id=${id} ?disabled=${!rms.length} @change=${(e: Event) => this.setField(f.key, (e.target as HTMLSelectElement).value, false)}>
          ${rms.length ? rms.map((r) => html`<option value=${r.id} ?selected=${r.id === (this.input.rewardRunId ?? rms[0]!.id)}>${rewardModelLabel(r)}</option>`)
            : html`<option value="">no finished LoRA reward model yet</option>`}
        </select>`
      : f.options
        ? html`<select id=${id} @change=${(e: Event) => this.setField(f.key, (e.target as HTMLSelectElement).value, false)}>
            ${f.options.map((o) => html`<option value=${o} ?selected=${o === value}>${o}</option>`)}
          </select>`
        : html`<input id=${id} type="number" step="any" .value=${value} @change=${(e: Event) => this.setField(f.key, (e.target as HTMLInputElement).value, true)}>`;
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

  private runView() {
    const r = this.viewed, p = this.progress;
    if (!r || !this.viewId) return html`<section class="card"><div class="empty">No run yet: pick a stage and start one.</div></section>`;
    const stage = r.stage as Stage;
    // the status event's error shows at once; the record's after a reload
    const error = this.errors.get(r.id) ?? (r.status === 'failed' ? r.error ?? 'the run failed' : undefined);
    const speed = p?.tokensPerSec !== undefined && this.ctx?.liveRun === r.id ? ` · ${Math.round(p.tokensPerSec)} tokens/s · ${fmtSeconds(p.secondsLeft ?? NaN)} left` : '';
    return html`
      <section class="card" id="run" data-run=${r.id} data-status=${r.status}>
        <h3>Run ${r.id.slice(0, 8)} <span class="pill">${stage}</span> <span class="pill status">${r.status}</span></h3>
        <progress id="progress" max=${p?.total || 1} .value=${p?.step ?? 0}></progress>
        <p id="progress-text" class="small">step ${p?.step ?? 0} / ${p?.total ?? 0}${speed}</p>
        ${error ? html`<p id="run-error" class="error" role="alert">Failed: ${error}</p>` : null}
        ${stage === 'rm' && r.status === 'done' ? html`<p id="heldout">${typeof r.result?.eval_accuracy === 'number'
          ? `Held-out pair accuracy ${pct(r.result.eval_accuracy)} on ${typeof r.result.eval_pairs === 'number' ? plural(r.result.eval_pairs, 'pair') : '? pairs'} (loss ${Number(r.result.eval_loss).toFixed(3)}).`
          : 'No held-out accuracy: fewer than 10 rankings, so none was held out.'}</p>` : null}
        ${keyed(r.id, html`<div class="charts">${(CHARTS[stage] ?? []).map((c) => html`
          <line-chart class=${c.cls} data-run=${r.id} .label=${c.label} .series=${c.series}></line-chart>`)}</div>`)}
      </section>
    `;
  }

  private runList(live: string | undefined) {
    if (!this.runs.length) return null;
    return html`
      <section class="card">
        <h3>Runs</h3>
        <table id="runs">
          <thead><tr><th>status</th><th>stage</th><th>steps</th><th>started</th><th></th></tr></thead>
          <tbody>${this.runs.map((r) => html`
            <tr class="run ${r.id === this.viewId ? 'viewed' : ''}" data-run=${r.id} data-status=${r.status}>
              <td>${r.id === live ? 'training' : r.status}${r.error ? html`<div class="error small">${r.error}</div>` : null}</td>
              <td>${r.stage}</td>
              <td>${r.id === live && r.id === this.viewId && this.progress ? this.progress.step : r.step ?? 0} / ${r.totalSteps ?? '?'}</td>
              <td>${new Date(r.createdAt).toLocaleString()}</td>
              <td class="row">
                <button class="show" ?disabled=${r.id === this.viewId} @click=${() => this.view(r.id)}>Show</button>
                ${resumable(r) ? html`<button class="resume" ?disabled=${!!live || !!this.busy} @click=${() => this.resume(r.id)}>Resume</button>` : null}
                ${r.stage !== 'rm' ? html`<button class="use" ?disabled=${!!live || !!this.busy || !hasCheckpoint(r)} title="sample from this run's last checkpoint"
                  @click=${() => this.use(r.id)}>Use this model</button>` : null}
                <button class="delete danger" ?disabled=${r.id === live || !!this.busy} title="delete the run with its checkpoint and metrics"
                  @click=${() => this.deleteRun(r.id)}>Delete</button>
              </td>
            </tr>`)}
          </tbody>
        </table>
      </section>
    `;
  }
}

if (!customElements.get('train-view')) customElements.define('train-view', TrainView);

declare global {
  interface HTMLElementTagNameMap { 'train-view': TrainView }
}
