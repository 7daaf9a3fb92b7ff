// What every view of the playground shares: the engine in the worker (through comlink), the store
// (IndexedDB, opened on the page too), the model and policy the engine holds, and one place where
// training runs are started so that every view sees their events.
//
// Views never touch the GPU or each other: they call `ctx.engine`, read and write `ctx.store`, and
// listen to `ctx.on(topic, fn)`. A view that changes shared data says so with `ctx.changed(topic)`.
import * as Comlink from 'comlink';
import type { AdapterSummary } from '../shared/types.ts';
import type { Record as DataRecord } from '../io/datasets.ts';
import { readGeneration, type GenerationConfig } from '../io/generation-config.ts';
import type { CompletionRow } from '../shared/types.ts';
import * as db from '../store/db.ts';
import { DATA_BUNDLE, dataBundle, recordKey } from './data-io.ts';
import { loadGuidelines } from './labeling.ts';
import type { Engine, GpuProblem, ModelInfo, PolicyInfo, RunPhase, RunProgress, RunStatusEvent, Stage, TrainInput } from '../worker/api.ts';

export type EngineRemote = Comlink.Remote<Engine>;

/** A PPO rollout the engine reports during training, with its per-token diagnostics (the engine stores them too). */
export type RolloutSample = db.RolloutSample;

export interface Events {
  model: ModelInfo | undefined; // a model was loaded (or failed: undefined)
  policy: PolicyInfo | undefined; // what generate samples changed
  data: void; // prompts or the user's dataset changed
  rankings: void; // a ranking was saved or deleted
  votes: void;
  runs: void; // a run was created, changed status or was deleted
  metrics: db.MetricRecord; // a live run's step
  progress: RunProgress;
  /** where a live online run is inside its step */
  phase: RunPhase;
  status: RunStatusEvent;
  samples: { runId: string; step: number; samples: RolloutSample[] };
  notice: { text: string; kind: 'info' | 'error' };
  /** completions someone wants ranked now (e.g. PPO's rollouts of one prompt, from the Inspect view) */
  rank: { prompt: string; completions: string[] };
  /** a view asks the shell to show another tab */
  navigate: string;
  /** the Compare tab is to start a blind comparison of this prompt now (the whole recipe ended) */
  compare: { prompt: string };
  /** the Hub address (src/ui/hub-address.ts) changed */
  hub: string;
  /** the GPU was lost, or reported an error outside the engine's checks */
  gpu: GpuProblem;
  /** the sampling settings changed (ctx.generation) */
  generation: GenerationConfig;
}
export type Topic = keyof Events;

/** Where the sampling settings are kept between visits (this origin's localStorage). */
export const GENERATION_STORAGE_KEY = 'rlhf-playground.generation';

export class AppContext {
  model?: ModelInfo;
  policy?: PolicyInfo;
  adapter?: AdapterSummary;
  /** the run training now (one at a time) */
  liveRun?: string;
  /** PPO rollouts of the live (or last) run, newest last, bounded */
  readonly samples: { runId: string; step: number; sample: RolloutSample }[] = [];
  /** GRPO/RLOO: the latest steps' completions tables (every completion with each reward), this session's. */
  readonly completions: { runId: string; step: number; rows: CompletionRow[] }[] = [];
  private readonly target = new EventTarget();

  /** why the GPU stopped working, once it has: nothing runs until reconnectGpu (or a reload) */
  gpuLost?: string;

  /** The one set of sampling settings of every view that draws samples for the user (Rank, Compare); kept across reloads. */
  generation: GenerationConfig = loadGeneration();

  constructor(
    readonly engine: EngineRemote,
    readonly store: db.Store,
  ) {
    void engine
      .watchGpu(
        Comlink.proxy((p: GpuProblem) => {
          if (p.kind === 'lost') this.gpuLost = p.message;
          this.changed('gpu', p);
        }),
      )
      .catch(() => {}); // no GPU at all: the first call that needs one says so
  }

  on<T extends Topic>(topic: T, fn: (detail: Events[T]) => void): () => void {
    const h = (e: Event) => fn((e as CustomEvent<Events[T]>).detail);
    this.target.addEventListener(topic, h);
    return () => this.target.removeEventListener(topic, h);
  }

  changed<T extends Topic>(topic: T, ...detail: Events[T] extends void ? [] : [Events[T]]): void {
    this.target.dispatchEvent(new CustomEvent(topic, { detail: detail[0] }));
  }

  /** Changes some sampling settings (values already in range), keeps them for the next visit and tells every view. */
  setGeneration(patch: Partial<GenerationConfig>): void {
    const next = { ...this.generation, ...patch };
    if ((Object.keys(patch) as (keyof GenerationConfig)[]).every((k) => next[k] === this.generation[k])) return;
    this.generation = next;
    try {
      globalThis.localStorage?.setItem(GENERATION_STORAGE_KEY, JSON.stringify(next));
    } catch {
      /* storage refused (private mode, quota): the settings hold for this visit */
    }
    this.changed('generation', next);
  }

  notify(text: string, kind: 'info' | 'error' = 'info'): void {
    this.changed('notice', { text, kind });
  }

  /** Runs `f`, shows its error as a notice (naming what failed) instead of losing it; returns undefined on error. */
  async attempt<R>(what: string, f: () => Promise<R>): Promise<R | undefined> {
    try {
      return await f();
    } catch (e) {
      this.notify(`${what}: ${e instanceof Error ? e.message : String(e)}`, 'error');
      return undefined;
    }
  }

  /** Sends completions to the Rank tab and shows it (2 to 9 of them; more are cut to the first 9). */
  offerForRanking(prompt: string, completions: string[]): void {
    if (completions.length < 2) throw new Error('a ranking needs at least 2 completions');
    this.changed('navigate', 'rank'); // first: the Rank tab is visible when it takes the keyboard
    this.changed('rank', { prompt, completions: completions.slice(0, 9) });
  }

  async refreshPolicy(): Promise<void> {
    this.policy = await this.engine.policyInfo();
    this.changed('policy', this.policy);
  }

  // ---- the user's data ----

  async userRecords(): Promise<DataRecord[]> {
    return (await db.getDataset(this.store, db.USER_DATASET))?.records ?? [];
  }

  /** Everything the user made as one zip (data-io's dataBundle), saved as a download; false when there is nothing yet. */
  async downloadUserData(): Promise<boolean> {
    const [records, rankings, prompts, votes, spotChecks] = await Promise.all([
      this.userRecords(),
      db.listRankings(this.store),
      db.listPrompts(this.store),
      db.listVotes(this.store),
      db.listAllSpotChecks(this.store),
    ]);
    const zip = dataBundle({ records, rankings, prompts, votes, spotChecks, guidelines: loadGuidelines(globalThis.localStorage, this.store.name) });
    if (zip) download(`${DATA_BUNDLE}.zip`, zip, 'application/zip');
    return !!zip;
  }

  async saveUserRecords(records: DataRecord[]): Promise<void> {
    const old = await db.getDataset(this.store, db.USER_DATASET);
    await db.saveDataset(this.store, { id: db.USER_DATASET, name: 'My data', records, createdAt: old?.createdAt ?? Date.now() });
    this.changed('data');
  }

  /** A demonstration ({"prompt","completion"}) added to the user's dataset as the Data tab adds one: not twice. True when added. */
  async addDemonstration(prompt: string, completion: string): Promise<boolean> {
    const rec: DataRecord = { kind: 'completion', prompt, completion };
    const own = await this.userRecords();
    if (own.some((r) => recordKey(r) === recordKey(rec))) return false;
    await this.saveUserRecords([...own, rec]);
    return true;
  }

  /**
   * The records a run of `stage` would train on now: the engine reads the store and applies the one policy
   * (src/io/stage-data.ts), as startStage does; the page only shows them (summaries, token counts).
   */
  stageData(stage: Stage): Promise<DataRecord[]> {
    return this.engine.stageData(stage);
  }

  // ---- runs: started here so every view sees their events ----

  private callbacks() {
    return Comlink.proxy({
      onMetrics: (m: db.MetricRecord) => this.changed('metrics', m),
      onProgress: (p: RunProgress) => this.changed('progress', p),
      onPhase: (p: RunPhase) => this.changed('phase', p),
      onStatus: (s: RunStatusEvent) => {
        if (s.status !== 'running' && this.liveRun === s.runId) this.liveRun = undefined;
        this.changed('status', s);
        this.changed('runs');
        if (s.status !== 'running') void this.refreshPolicy();
      },
      onSamples: (step: number, samples: RolloutSample[], runId: string, completions?: CompletionRow[]) => {
        for (const sample of samples) this.samples.push({ runId, step, sample });
        if (completions) {
          this.completions.push({ runId, step, rows: completions });
          if (this.completions.length > 20) this.completions.splice(0, this.completions.length - 20);
        }
        if (this.samples.length > 200) this.samples.splice(0, this.samples.length - 200);
        this.changed('samples', { runId, step, samples });
      },
    });
  }

  /** Starts a run: the engine takes the stage's records from the store itself (and keeps them with the run). */
  async startRun(stage: Stage, config: TrainInput): Promise<string> {
    const id = await this.engine.startStage(stage, config, this.callbacks());
    this.liveRun = id;
    this.changed('runs');
    return id;
  }

  /**
   * After a GPU loss, the one click that goes on: the engine gets a new device and builds the model on it
   * again, and the run the loss stopped resumes from its checkpoint.
   */
  async reconnectGpu(): Promise<void> {
    const { model, lostRun } = await this.engine.reconnectGpu();
    this.gpuLost = undefined;
    if (model) {
      this.model = model;
      this.changed('model', model);
    }
    await this.refreshPolicy();
    if (lostRun) await this.resumeRun(lostRun);
  }

  async resumeRun(runId: string): Promise<void> {
    await this.engine.resume(runId, this.callbacks());
    this.liveRun = runId;
    this.changed('runs');
  }

  async pauseRun(runId: string): Promise<db.RunStatus> {
    const s = await this.engine.pause(runId);
    this.changed('runs');
    return s;
  }

  async cancelRun(runId: string): Promise<db.RunStatus> {
    const s = await this.engine.cancel(runId);
    this.changed('runs');
    return s;
  }
}

function loadGeneration(): GenerationConfig {
  try {
    const saved = globalThis.localStorage?.getItem(GENERATION_STORAGE_KEY);
    return readGeneration(saved ? JSON.parse(saved) : undefined);
  } catch {
    return readGeneration(undefined);
  }
}

// ---- small shared formatting ----

export const fmtBytes = (n: number) =>
  n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
export const fmtCount = (n: number) =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
export const fmtSeconds = (s: number) =>
  !Number.isFinite(s)
    ? '–'
    : s >= 3600
      ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`
      : s >= 60
        ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
        : `${Math.round(s)} s`;

/** Saves bytes as a file download. */
export function download(name: string, bytes: Uint8Array | string, type = 'application/octet-stream'): void {
  const blob = new Blob([bytes as BlobPart], { type });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
