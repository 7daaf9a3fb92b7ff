// The engine: the contract of api.ts, composed of the session (session.ts: the device, the loaded model and
// the last run's stage), the generation queue (generation.ts) and the run driver (run-driver.ts), with the
// export packager (src/train/package.ts). src/worker/worker.ts exposes one to the page; Node tests make
// their own. This file checks and orders (no model change while a run trains, weights changed only between
// generations); the units do the work.
//
// Runs: startStage reads the user's data from the store (prompts, rankings, their dataset, in one
// transaction), takes the stage's records by the one policy (src/io/stage-data.ts: the page counts by it
// and asks the same through stageData), builds a stage on them (src/train/stages.ts), saves the resolved config
// and those records with the run (its snapshot, `run:<id>`: resume trains on them, whatever the user changed
// meanwhile), and hands it to the run driver. GRPO/RLOO: the reward functions are the JavaScript source in
// config.rewardModule, run in a sandbox worker of their own (reward-sandbox.ts), built again when a run
// is opened or resumed.
import type { AdapterSummary } from '../gpu/device.ts';
import type { Record as DataRecord } from '../io/datasets.ts';
import type { Progress as LoadProgress } from '../io/sources.ts';
import { zipFiles } from '../io/zip.ts';
import { checkStageFits, stageMemoryOf, type StageMemory } from '../shared/memory.ts';
import { cleanOrphanChunks, deleteCheckpointFiles } from '../store/checkpoints.ts';
import * as db from '../store/db.ts';
import { isGroup, resolveConfig, type Stage, type TrainConfig, type TrainInput } from '../shared/config.ts';
import { carriesBase, packageModel, packageRun } from '../train/package.ts';
import { stageRecords } from '../io/stage-data.ts';
import type { StageRun } from '../train/stages.ts';
import type { Engine, GenerateOptions, GenerateResult, GpuProblem, ModelInfo, PolicyInfo, RunCallbacks } from './api.ts';
import { newId, runOf } from './common.ts';
import { GenerationQueue, notStarted, sample, type OnToken } from './generation.ts';
import { loadRewardModule, type RewardModule } from './reward-sandbox.ts';
import { RunDriver } from './run-driver.ts';
import { Session, type GpuDep } from './session.ts';
import type { ModelSource } from './source.ts';

export interface EngineDeps {
  /** A promise: a worker starts at once, and a missing WebGPU fails the first call. A function: asked again
   *  for a new device when the GPU is lost (reconnectGpu). */
  gpu: GpuDep;
  store: db.Store | Promise<db.Store>;
}

export class PlaygroundEngine implements Engine {
  private readonly queue = new GenerationQueue();
  private readonly session: Session;
  private readonly runs: RunDriver;
  private readonly storeP: Promise<db.Store>;

  constructor(deps: EngineDeps) {
    // a checkpoint write cut short (a crash, a closed tab) left chunks no manifest points at: gone on start
    this.storeP = Promise.resolve(deps.store).then(async (s) => (await cleanOrphanChunks(s), s));
    this.storeP.catch(() => {});
    this.session = new Session({ gpu: deps.gpu, store: this.storeP, between: (f) => this.queue.exclusive(f) });
    this.runs = new RunDriver(this.storeP);
  }

  /** The last built stage and its run (generation and export use it). */
  private get current() {
    return this.session.current;
  }

  // ---- model ----

  async loadModel(source: ModelSource, onProgress?: LoadProgress): Promise<ModelInfo> {
    await this.session.gpu;
    this.runs.idle('pause or cancel it before loading another model');
    return this.session.loadModel(source, onProgress);
  }

  async reconnectGpu(): Promise<{ model?: ModelInfo; lostRun?: string }> {
    if (await this.session.gpuWorks()) return { model: this.session.info };
    const keep = await this.session.newDevice(() => this.runs.settled()); // the run the loss stopped ends as failed first
    const lostRun = this.runs.takeLost();
    if (!keep) return { lostRun };
    return { model: await this.session.reinstall(keep), ...(lostRun ? { lostRun } : {}) };
  }

  watchGpu(onProblem: (p: GpuProblem) => unknown): Promise<void> {
    return this.session.watchGpu(onProblem);
  }

  async adapterInfo(): Promise<AdapterSummary> {
    return (await this.session.gpu).adapter;
  }

  modelInfo(): ModelInfo | undefined {
    return this.session.info;
  }

  policyInfo(): PolicyInfo | undefined {
    return this.session.policyInfo();
  }

  async selectRun(runId: string): Promise<PolicyInfo> {
    this.runs.idle();
    return this.session.selectRun(runId);
  }

  selectBase(): PolicyInfo | undefined {
    this.runs.idle();
    this.session.dropStage();
    return this.session.policyInfo();
  }

  async openCheckpoint(source: ModelSource, onProgress?: LoadProgress): Promise<{ model: ModelInfo; policy: PolicyInfo }> {
    this.runs.idle();
    return this.session.openCheckpoint(source, onProgress);
  }

  async adoptRun(runId: string): Promise<ModelInfo> {
    this.runs.idle();
    return this.session.adoptRun(runId);
  }

  async resetModel(): Promise<ModelInfo> {
    this.runs.idle();
    return this.session.resetModel();
  }

  async dispose(): Promise<void> {
    await this.runs.stop();
    this.session.unload();
  }

  // ---- generation ----

  generate(prompt: string, opts: Partial<GenerateOptions> = {}, onToken?: OnToken): Promise<GenerateResult> {
    return this.queue.generate(opts, onToken, async (stream, interrupt) => {
      const { tok } = this.session.need();
      const stopped = () => this.queue.isStopped(opts.id);
      if (stopped()) return notStarted({ numSamples: 1, ...opts }.numSamples);
      this.runs.idle('pause it to sample');
      return sample(this.session.generatorFor(opts.model ?? 'policy'), tok, prompt, opts, stream, interrupt, stopped);
    });
  }

  stopGeneration(id: string): void {
    this.queue.stop(id);
  }

  async rewardScores(rmRunId: string, items: { prompt: string; completion: string }[], opts: { background?: boolean } = {}): Promise<number[]> {
    this.runs.idle();
    return this.session.rewardScores(rmRunId, items, (f) =>
      this.queue.exclusive(() => {
        this.runs.idle();
        return f();
      }, !opts.background),
    );
  }

  // ---- what a run will cost ----

  async timeForward(rows: number, len: number): Promise<number> {
    this.runs.idle();
    const { base } = this.session.need();
    return this.queue.exclusive(async () => {
      const gpu = base.gpu,
        plan = await base.plan(rows, len);
      try {
        plan.setBatch(new Array<number>(rows * len).fill(0));
        await gpu.checkAsync('timing a forward pass', () => gpu.timeRun(plan.forward));
        const ms: number[] = [];
        for (let i = 0; i < 3; i++) ms.push((await gpu.timeRun(plan.forward)).wallMs);
        return ms.sort((a, b) => a - b)[1]! / 1000;
      } finally {
        plan.destroy();
      }
    }, true);
  }

  async stageMemory(stage: Stage, input: TrainInput): Promise<{ total: number; parts: Record<string, number>; seqLen: number }> {
    const m = this.session.need();
    // the reward functions are named when the run starts (the module's exports): stand-ins, as many as the weights say
    const fns = Math.max(input.rewardRunId ? 0 : 1, (input.rewardWeights?.length ?? 0) - (input.rewardRunId ? 1 : 0));
    const c = resolveConfig(
      stage,
      {
        ...input,
        ...(stage === 'ppo' && !input.rewardRunId ? { rewardRunId: 'unset' } : {}),
        ...(isGroup(stage) && !input.rewardFuncs?.length ? { rewardFuncs: Array.from({ length: fns }, (_, i) => `f${i}`) } : {}),
      },
      m.info,
    );
    const { total, parts } = this.memoryOf(stage, c);
    return { total, parts, seqLen: c.seqLen };
  }

  private memoryOf(stage: Stage, c: TrainConfig): StageMemory {
    // the stage's base as the session gives it (Session.baseFor): f16 linear weights under LoRA where the device has them
    const { base } = this.session.need();
    return stageMemoryOf(base.cfg, stage, c, !!c.rewardRunId, c.loraRank > 0 && base.gpu.f16Weights);
  }

  countTokens(prompts: string[], completions: string[]): { prompts: number[]; completions: number[] } {
    const { tok } = this.session.need();
    return {
      prompts: prompts.map((p) => tok.encodePrompt(p).length),
      completions: completions.map((c) => tok.encode(c, { addSpecialTokens: false }).length + 1),
    };
  }

  // ---- runs ----

  async checkRewardModule(source: string): Promise<string[]> {
    const fns = await loadRewardModule(source);
    fns.dispose();
    return fns.functions.map((f) => f.name);
  }

  async stageData(stage: Stage): Promise<DataRecord[]> {
    return stageRecords(stage, await db.userData(await this.storeP));
  }

  async startStage(stage: Stage, config: TrainInput, callbacks: RunCallbacks = {}): Promise<string> {
    const store = await this.storeP;
    const m = this.session.need();
    this.runs.idle();
    const data = await this.stageData(stage); // the records the page's summaries counted, by the same policy
    // GRPO / RLOO: the reward functions of config.rewardModule (every export when rewardFuncs names none,
    // and the saved config then names them all)
    const fns: RewardModule | undefined =
      isGroup(stage) && typeof config.rewardModule === 'string' && config.rewardModule.trim() ? await loadRewardModule(config.rewardModule) : undefined;
    let run: StageRun, cfg: TrainConfig;
    try {
      cfg = resolveConfig(stage, fns && !config.rewardFuncs?.length ? { ...config, rewardFuncs: fns.functions.map((f) => f.name) } : config, m.info);
      // refused before anything is allocated when a buffer could not exist on this adapter (needed vs its
      // limit); buildStage checks again, for the CLI and the experiment: this one is before the reward model loads
      const gpu = await this.session.gpu;
      checkStageFits(stage, this.memoryOf(stage, cfg), { maxBufferSize: gpu.maxBuffer, maxStorageBufferBindingSize: gpu.maxBinding });
      const reward = stage === 'ppo' || (isGroup(stage) && cfg.rewardRunId) ? await this.session.rewardOf(cfg.rewardRunId) : undefined;
      run = await this.session.buildStage(stage, cfg, data, reward, fns);
    } catch (e) {
      fns?.dispose();
      throw e;
    }
    const id = newId(),
      now = Date.now();
    this.session.setCurrent(id, run);
    await db.saveDataset(store, { id: `run:${id}`, name: `${stage} data`, records: data, createdAt: now });
    await db.putRun(store, {
      // the settings as the run uses them: auto epochs (0) resolved; no epochs when the step count overrides them
      id,
      stage,
      config: { ...cfg, epochs: run.epochs ?? 0 },
      status: 'running',
      createdAt: now,
      updatedAt: now,
      step: 0,
      totalSteps: run.totalSteps,
      datasetId: `run:${id}`,
      model: { ...this.session.runModel() },
    });
    this.runs.drive(id, run, cfg, 0, callbacks);
    return id;
  }

  async resume(runId: string, callbacks: RunCallbacks = {}): Promise<void> {
    this.runs.idle();
    if ((await this.getRun(runId)).status === 'done') throw new Error(`run ${runId} is done; start a new run to train further`);
    const { run, stage, from } = await this.session.open(runId);
    this.runs.drive(runId, stage, run.config as unknown as TrainConfig, from, callbacks);
  }

  pause(runId: string): Promise<db.RunStatus> {
    return this.runs.pause(runId);
  }

  cancel(runId: string): Promise<db.RunStatus> {
    return this.runs.cancel(runId);
  }

  wait(runId: string): Promise<db.RunStatus> {
    return this.runs.wait(runId);
  }

  async getRun(runId: string): Promise<db.RunRecord> {
    return runOf(await this.storeP, runId);
  }

  async deleteRun(runId: string): Promise<void> {
    if (this.runs.training === runId) throw new Error(`run ${runId} is training: cancel it first`);
    this.session.forgetRun(runId);
    await db.deleteRun(await this.storeP, runId);
    await deleteCheckpointFiles(runId);
  }

  // ---- export ----

  async exportModel(runId?: string, opts: { card?: string; bundleBase?: boolean } = {}): Promise<{ name: string; zip: Uint8Array }> {
    const r = await this.exportFilesOf(runId, opts.bundleBase ?? true);
    if (opts.card !== undefined) r.files.set('README.md', new TextEncoder().encode(opts.card));
    return { name: `${r.name}.zip`, zip: zipFiles(r.files, r.folder) };
  }

  async exportLayout(runId?: string, bundleBase = true): Promise<{ adapter: boolean; bundledBase: boolean }> {
    if (runId && this.current?.runId !== runId) {
      this.runs.idle();
      await this.session.open(runId);
    }
    const cur = this.current;
    const run = cur ? await this.getRun(cur.runId) : undefined;
    // an adapter over merged runs is exported as the whole model
    const merged = () => this.session.need().info.merged;
    const adapter = !!run && Number(run.config.loraRank) > 0 && !(merged().length && cur!.stage.policy?.lora);
    return { adapter, bundledBase: adapter && carriesBase(this.session.need().rootInfo, merged(), bundleBase) };
  }

  private async exportFilesOf(runId: string | undefined, bundleBase: boolean): Promise<{ name: string; folder?: string; files: Map<string, Uint8Array> }> {
    const m = this.session.need();
    if (runId && this.current?.runId !== runId) {
      this.runs.idle();
      await this.session.open(runId);
    }
    const cur = this.current,
      imported = this.session.imported;
    if (!runId && imported) return { name: 'adapter', folder: 'adapter', files: new Map(imported.files) };
    const between = <R>(f: () => Promise<R>) => this.queue.exclusive(f);
    if (!cur) return { name: 'model', files: await packageModel(m.base, m.files, m.info.merged, between) };
    const run = await this.getRun(cur.runId);
    const name = `${run.stage}-${cur.runId.slice(0, 8)}`;
    const files = await packageRun({
      stage: cur.stage,
      runStage: run.stage,
      step: run.step ?? 0,
      base: m.base,
      files: m.files,
      root: m.rootInfo,
      merged: m.info.merged,
      bundleBase,
      between,
    });
    return { name, folder: name, files };
  }
}

export function createEngine(deps: EngineDeps): PlaygroundEngine {
  return new PlaygroundEngine(deps);
}
