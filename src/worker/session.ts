// The session: what the engine holds on the GPU. The device (asked again after a loss), the loaded model
// with its files, tokenizer and identity (a fingerprint of the files, or after merges a digest of the
// chain), the runs merged into it (adoptRun, resetModel), the last run's stage and an opened adapter (what
// generation samples), their generators, and rewardScores' reward model (reward-scores.ts). It rebuilds a run's stage from the
// store (open), loading and merging the run's starting model again when it can.
//
// Weights and GPU memory change only between generations: `between` (the generation queue's exclusive)
// runs such work, and runs it at once when the session is used alone. Whether a run trains is the
// engine's check (run-driver.ts), made before it calls in here.
import type { Gpu } from '../gpu/runtime.ts';
import type { Record as DataRecord } from '../io/datasets.ts';
import { readPeftAdapter, type PeftAdapter } from '../io/peft.ts';
import { checkModelId } from '../io/hub.ts';
import type { ModelFiles, Progress as LoadProgress } from '../io/sources.ts';
import { Tok } from '../io/tokenizer.ts';
import { unzipFiles } from '../io/zip.ts';
import { parseConfig } from '../shared/model-config.ts';
import { loadModel as buildModel } from '../model/index.ts';
import { copyWeights, loadAdapter, mergeLora, type LoraSet } from '../model/lora.ts';
import { playgroundMemory } from '../shared/memory.ts';
import { Transformer } from '../model/transformer.ts';
import { readCheckpoint, readCheckpointAll } from '../store/checkpoints.ts';
import * as db from '../store/db.ts';
import { restoreFrom, type Checkpoint } from '../train/checkpoint.ts';
import { isGroup, type Stage, type TrainConfig } from '../shared/config.ts';
import { Generator } from '../train/generate.ts';
import type { Between } from '../train/package.ts';
import { buildStage, type StageRun } from '../train/stages.ts';
import type { GpuProblem, ModelInfo, PolicyInfo } from './api.ts';
import { errText, notify, runOf } from './common.ts';
import { loadRewardModule, type RewardModule } from './reward-sandbox.ts';
import { RewardScores } from './reward-scores.ts';
import { adapterFiles, fingerprint, loadSource, sourceName, textFingerprint, type ModelSource } from './source.ts';

/** The model a run trains: enough to check, on resume, that the engine holds the same one. */
export interface RunModel {
  source: string;
  fingerprint: string; // of the starting model: the loaded files' fingerprint, or after merges, a digest of the chain
  url?: string;
  reloadable: boolean;
  root?: string; // the loaded files' fingerprint (absent in runs saved before merging existed: = fingerprint)
  chain?: string[]; // runs merged into the loaded weights before this run started, oldest first
}

export interface Loaded {
  files: ModelFiles;
  tok: Tok;
  base: Transformer; // the weights of `files`, plus the runs of `chain` merged in
  info: ModelInfo;
  rootInfo: ModelInfo; // the model as loaded from `files`
  chain: string[];
  url?: string;
  reloadable: boolean;
}

/** An adapter shared by someone else, opened on the loaded model. */
export interface Imported {
  name: string;
  lora: LoraSet;
  files: Map<string, Uint8Array>;
  reward?: true;
}

export type GpuDep = Gpu | Promise<Gpu> | (() => Promise<Gpu>);

/** A fully fine-tuned reward model opened as the model: it would replace the loaded one with a trunk that has no LM head. */
const rewardModelError = (name: string, what: string) =>
  new Error(
    `${name} is a fully fine-tuned reward model (${what}): it scores text and does not generate, so it cannot be the loaded model. ` +
      'PPO here trains against a reward model trained in this page; `rlhf-playground ppo --reward DIR` takes this one',
  );

/** A PEFT adapter of a reward model: task_type SEQ_CLS, or (older exports) a score head in modules_to_save. */
const isRewardAdapter = (peft: PeftAdapter) => peft.config.taskType === 'SEQ_CLS' || peft.extraTensors.some((t) => /(^|\.)score\.weight$/.test(t.name));

export class Session {
  private loaded?: Loaded;
  private cur?: { runId: string; stage: StageRun }; // the last built stage: generate and export use it
  private gens: { model: Transformer; lora?: LoraSet; g: Generator }[] = []; // at most one per model/adapter pair
  private opened?: Imported; // a shared adapter opened on the loaded model
  /** rewardScores' reward model, kept between calls */
  private readonly scorer: RewardScores;
  private gpuP: Promise<Gpu>;
  /** Asks for a new device after a loss (the browser's navigator.gpu); none when the session was given one device. */
  private readonly newGpu?: () => Promise<Gpu>;
  private readonly watchers: ((p: GpuProblem) => unknown)[] = [];
  private readonly storeP: Promise<db.Store>;
  private readonly between: Between;

  /** `gpu` given as a function is asked again for a new device when the GPU is lost (newDevice). */
  constructor(deps: { gpu: GpuDep; store: db.Store | Promise<db.Store>; between?: Between }) {
    if (typeof deps.gpu === 'function') this.newGpu = deps.gpu;
    this.gpuP = typeof deps.gpu === 'function' ? deps.gpu() : Promise.resolve(deps.gpu);
    this.gpuP.catch(() => {});
    this.storeP = Promise.resolve(deps.store);
    this.between = deps.between ?? ((f) => f());
    this.scorer = new RewardScores(this.between);
  }

  /** The device now (a rejected promise when there is none: a missing WebGPU). */
  get gpu(): Promise<Gpu> {
    return this.gpuP;
  }

  get info(): ModelInfo | undefined {
    return this.loaded?.info;
  }

  get current(): { readonly runId: string; readonly stage: StageRun } | undefined {
    return this.cur;
  }

  get imported(): Readonly<Imported> | undefined {
    return this.opened;
  }

  need(): Loaded {
    if (!this.loaded) throw new Error('no model loaded: call loadModel first');
    return this.loaded;
  }

  // ---- the model ----

  /** Loads a model (and its tokenizer) as the base of the next runs. */
  async loadModel(source: ModelSource, onProgress?: LoadProgress): Promise<ModelInfo> {
    const gpu = await this.gpuP;
    const files = await loadSource(source, onProgress ? (p) => void notify(() => onProgress(p)) : undefined);
    return this.install(gpu, files, 'url' in source ? source.url : undefined, 'url' in source && !source.files);
  }

  /** The model of `files` built on `gpu` as the loaded one (the runs merged into the old one are not). */
  private async install(gpu: Gpu, files: ModelFiles, url: string | undefined, reloadable: boolean): Promise<ModelInfo> {
    if (!files.tokenizer) throw new Error(`${files.source}: no tokenizer.json; the playground reads and writes text`);
    const tok = Tok.fromJson(files.tokenizer, files.tokenizerConfig, `${files.source}/tokenizer.json`);
    if (parseConfig(files.config, `${files.source}/config.json`).sequenceClassification) {
      throw rewardModelError(files.source, 'a *ForSequenceClassification model: a score head instead of the LM head');
    }
    // frozen (generation, LoRA runs): f16 linear weights where the device has them; a full run gets f32 (baseFor)
    const { model } = buildModel(gpu, { ...files, configFile: `${files.source}/config.json` }, { frozenF16: true });
    this.unload();
    const c = model.cfg;
    const uses = playgroundMemory(c, model.f16Weights);
    const memory = { seqLen: uses.seqLen, inference: uses.inference.bytes.total, lora: uses.lora.bytes.total, full: uses.full.bytes.total };
    const info: ModelInfo = {
      source: files.source,
      arch: c.arch,
      modelType: c.modelType,
      params: model.params.count,
      layers: c.layers,
      hidden: c.hidden,
      heads: c.heads,
      vocabSize: c.vocabSize,
      maxPositions: c.maxPositions,
      hasTokenizer: true,
      hasChatTemplate: tok.hasChatTemplate,
      fingerprint: await fingerprint(files),
      memory,
      merged: [],
    };
    // a run on a plain URL can load its model again by itself after a reload
    this.loaded = { files, tok, base: model, info, rootInfo: info, chain: [], url, reloadable };
    return info;
  }

  /** Whether the device works (false: lost, or none could be had). */
  async gpuWorks(): Promise<boolean> {
    const old = await this.gpuP.catch(() => undefined);
    return !!old && !old.lost;
  }

  /**
   * After a loss: forgets the model's buffers (they belong to the lost device: nothing to free, nothing to
   * read) and asks for a new device, watched as the old one was, once `settle` (the run the loss stopped
   * ending) has resolved. Resolves with what reinstall builds again.
   */
  async newDevice(settle?: () => Promise<void>): Promise<Loaded | undefined> {
    if (!this.newGpu) throw new Error('this engine was given one GPU device and cannot ask for another: reload the page');
    await settle?.();
    const keep = this.loaded;
    this.unload();
    this.gpuP = this.newGpu();
    const gpu = await this.gpuP;
    for (const w of this.watchers) this.watch(gpu, w);
    return keep;
  }

  /** The model `keep` held (newDevice) built on the new device from its files, with its merged runs merged again. */
  async reinstall(keep: Loaded): Promise<ModelInfo> {
    await this.install(await this.gpuP, keep.files, keep.url, keep.reloadable);
    for (const id of keep.chain) await this.adoptRun(id);
    return this.loaded!.info;
  }

  /** Tells `onProblem` when the GPU stops working or reports an error (see Engine.watchGpu), on every device. */
  async watchGpu(onProblem: (p: GpuProblem) => unknown): Promise<void> {
    this.watchers.push(onProblem); // and on every device newDevice gets
    this.watch(await this.gpuP, onProblem);
  }

  private watch(gpu: Gpu, onProblem: (p: GpuProblem) => unknown): void {
    void gpu.whenLost.then((e) => notify(() => onProblem({ kind: 'lost', message: e.message })));
    gpu.device.addEventListener('uncapturederror', (ev) => {
      void notify(() => onProblem({ kind: 'error', message: (ev as GPUUncapturedErrorEvent).error.message }));
    });
  }

  /** Forgets the model and the last stage; their GPU memory is freed between generations. */
  unload(): void {
    const base = this.loaded?.base;
    this.dropStage();
    this.loaded = undefined;
    if (base) void this.between(async () => base.destroy());
  }

  /**
   * Forgets the last stage, its generators and an opened adapter. Their GPU memory is freed once the
   * generation in flight (a view may be streaming) has finished: freeing it under a running Generator breaks it.
   */
  dropStage(): void {
    const gens = this.gens,
      stage = this.cur?.stage,
      imported = this.opened;
    this.gens = [];
    this.cur = undefined;
    this.opened = undefined;
    this.scorer.drop(); // a run may need the memory; the next rewardScores loads it again
    if (gens.length || stage || imported) {
      void this.between(async () => {
        for (const x of gens) x.g.destroy();
        stage?.destroy();
        imported?.lora.destroy();
      });
    }
  }

  /** What generation samples from: an opened adapter, else the last run's policy, else the loaded model. */
  policyInfo(): PolicyInfo | undefined {
    if (!this.loaded) return undefined;
    if (this.opened) return { kind: 'adapter', name: this.opened.name, ...(this.opened.reward ? { reward: true as const } : {}) };
    // a reward-model run has no policy: generate samples the starting model then
    if (this.cur?.stage.policy) return { kind: 'run', name: `run ${this.cur.runId.slice(0, 8)}`, runId: this.cur.runId };
    return { kind: 'base', name: this.loaded.info.source };
  }

  /** Makes a run's last checkpoint the policy generation samples. */
  async selectRun(runId: string): Promise<PolicyInfo> {
    if (this.cur?.runId !== runId || this.opened) await this.open(runId);
    return this.policyInfo()!;
  }

  /** The generator of the model `generate` samples: the policy (see policyInfo), or the loaded model itself. */
  generatorFor(which: 'policy' | 'base'): Generator {
    const { base } = this.need();
    const policy: { model: Transformer; lora?: LoraSet } =
      which === 'base' ? { model: base } : this.opened ? { model: base, lora: this.opened.lora } : (this.cur?.stage.policy ?? { model: base });
    let gen = this.gens.find((x) => x.model === policy.model && x.lora === policy.lora);
    if (!gen) {
      gen = { ...policy, g: new Generator(policy.model, policy.lora) };
      this.gens.push(gen);
    }
    return gen.g;
  }

  /** Opens a shared checkpoint: a full model, or a PEFT adapter on its base (see Engine.openCheckpoint). */
  async openCheckpoint(source: ModelSource, onProgress?: LoadProgress): Promise<{ model: ModelInfo; policy: PolicyInfo }> {
    if ('zip' in source) {
      // our export of an adapter over merged runs: the starting model beside the adapter (exportModel)
      const all = unzipFiles(source.zip, source.name);
      if (all.has('score.json')) throw rewardModelError(source.name, 'a model folder with score.json');
      if (all.has('starting-model/config.json')) {
        const sub = (dir: string) => new Map([...all].filter(([k]) => k.startsWith(dir)).map(([k, v]) => [k.slice(dir.length), v]));
        const model = await this.loadModel({ files: sub('starting-model/'), name: `${source.name}/starting-model` }, onProgress);
        if (!all.has('adapter/adapter_config.json')) return { model, policy: this.policyInfo()! };
        return this.openCheckpoint({ files: sub('adapter/'), name: `${source.name}/adapter` });
      }
    }
    if ('files' in source && !('url' in source) && source.files.has('score.json')) throw rewardModelError(sourceName(source), 'a model folder with score.json');
    const adapter = await adapterFiles(source);
    if (!adapter) {
      const model = await this.loadModel(source, onProgress);
      return { model, policy: this.policyInfo()! };
    }
    const name = sourceName(source);
    const peft = readPeftAdapter(adapter, name);
    const reward = isRewardAdapter(peft);
    const tryOn = (m: Loaded) => {
      const lora = loadAdapter(m.base, adapter, name);
      this.dropStage();
      this.opened = { name, lora, files: adapter, ...(reward ? { reward } : {}) };
    };
    let firstError: unknown;
    if (this.loaded) {
      try {
        tryOn(this.loaded);
        return { model: this.loaded.info, policy: this.policyInfo()! };
      } catch (e) {
        firstError = e;
      }
    }
    const base = peft.config.baseModel;
    let hubId: string | undefined;
    try {
      hubId = base ? checkModelId(base) : undefined;
    } catch {
      hubId = undefined;
    }
    if (!hubId) {
      const why = firstError ? `it does not fit the loaded model (${errText(firstError)})` : 'no model is loaded';
      throw new Error(`${name} is a LoRA adapter for ${JSON.stringify(base || 'an unnamed base model')}, and ${why}: load its base model first`);
    }
    const revision = peft.config.baseRevision;
    const model = await this.loadModel({ hub: hubId, ...(revision !== null ? { revision } : {}) }, onProgress);
    tryOn(this.need());
    return { model, policy: this.policyInfo()! };
  }

  // ---- merged runs ----

  /** Merges a trained policy into the loaded model as the starting model of the next runs (see Engine.adoptRun). */
  async adoptRun(runId: string): Promise<ModelInfo> {
    const run = await runOf(await this.storeP, runId);
    if (run.stage === 'rm') throw new Error(`run ${runId} is a reward model; a policy (an SFT, DPO or PPO run) can be the starting model`);
    const { stage, from } = await this.open(runId);
    if (!from) throw new Error(`run ${runId} has no checkpoint yet: there are no trained weights to start from`);
    const m = this.need(),
      pol = stage.policy!;
    await this.between(async () => {
      if (pol.lora) await mergeLora(pol.lora);
      else await copyWeights(pol.model, m.base);
    });
    this.dropStage();
    m.chain = [...m.chain, runId];
    m.info = {
      ...m.info,
      merged: [...m.info.merged, { runId, stage: run.stage, step: from }],
      fingerprint: await textFingerprint(`${m.info.fingerprint}|${runId}|${from}`),
    };
    return m.info;
  }

  /** Back to the model as it was loaded (undoes adoptRun); the merged runs stay in the store. */
  async resetModel(): Promise<ModelInfo> {
    const m = this.need();
    if (m.chain.length) {
      this.dropStage();
      const { model } = buildModel(await this.gpuP, { ...m.files, configFile: `${m.files.source}/config.json` }, { frozenF16: true });
      const old = m.base;
      void this.between(async () => old.destroy());
      m.base = model;
      m.chain = [];
      m.info = m.rootInfo;
    }
    return m.info;
  }

  /** Refuses to forget a run merged into the model; forgets the stage and the reward model built from it. */
  forgetRun(runId: string): void {
    if (this.loaded?.chain.includes(runId)) throw new Error(`run ${runId} is merged into the starting model: go back to the model as loaded first`);
    if (this.cur?.runId === runId) this.dropStage();
    if (this.scorer.runId === runId) this.scorer.drop();
  }

  /** The model a new run trains, as its record keeps it. */
  runModel(): RunModel {
    const m = this.need();
    return { source: m.info.source, fingerprint: m.info.fingerprint, url: m.url, reloadable: m.reloadable, root: m.rootInfo.fingerprint, chain: [...m.chain] };
  }

  /** Gets the starting model of a run back: its files (reloaded from its URL if need be), then its merged runs. */
  private async rebuild(runId: string, rm: RunModel): Promise<void> {
    const root = rm.root ?? rm.fingerprint,
      chain = rm.chain ?? [];
    if (this.loaded?.rootInfo.fingerprint !== root) {
      if (!rm.reloadable || !rm.url)
        throw new Error(`run ${runId} trains ${rm.source}: load that model first (the one loaded now is ${this.loaded?.info.source ?? 'none'})`);
      await this.loadModel({ url: rm.url, name: rm.source });
      if (this.loaded?.rootInfo.fingerprint !== root) throw new Error(`${rm.url} no longer serves the model run ${runId} was trained on`);
    }
    const m = this.need();
    if (!(m.chain.length <= chain.length && m.chain.every((id, i) => chain[i] === id))) await this.resetModel();
    for (const id of chain.slice(m.chain.length)) await this.adoptRun(id);
    if (m.info.fingerprint !== rm.fingerprint) throw new Error(`run ${runId}: merging its ${chain.length} earlier runs again did not give its starting model`);
  }

  // ---- stages ----

  /** The finished LoRA reward-model run that PPO trains against. */
  async rewardOf(runId: string): Promise<{ config: TrainConfig; checkpoint: Checkpoint }> {
    const store = await this.storeP;
    const run = await runOf(store, runId);
    if (run.stage !== 'rm') throw new Error(`rewardRunId ${runId} is a ${run.stage} run, not a reward model`);
    if ((run.model as unknown as RunModel | undefined)?.fingerprint !== this.need().info.fingerprint) {
      throw new Error(
        `reward model ${runId} was trained on another starting model than the one loaded now (PPO's roles share one base): ` +
          'train the reward model after choosing the starting model',
      );
    }
    const cfg = run.config as unknown as TrainConfig;
    if (!(cfg.loraRank > 0)) throw new Error(`reward model ${runId} is fully fine-tuned; PPO shares one base and needs a LoRA reward model`);
    const ck = await readCheckpointAll(store, runId);
    if (!ck) throw new Error(`reward model ${runId} has no checkpoint`);
    return { config: cfg, checkpoint: { state: ck.state, tensors: ck.tensors } };
  }

  /** A stage on the loaded model, in place of the last one (not yet the current one: setCurrent). `fns` stops with it. */
  async buildStage(
    stage: Stage,
    cfg: TrainConfig,
    records: DataRecord[],
    reward: { config: TrainConfig; checkpoint: Checkpoint } | undefined,
    fns: RewardModule | undefined,
  ): Promise<StageRun> {
    const m = this.need();
    this.dropStage();
    await this.baseFor(cfg.loraRank > 0);
    const run = await buildStage(
      { gpu: await this.gpuP, files: m.files, tok: m.tok, base: m.base, reward, adopted: m.chain.length > 0, rewardFunctions: fns?.functions },
      stage,
      cfg,
      records,
    );
    return withModule(run, fns);
  }

  /**
   * The loaded model's weights as a stage needs them (after dropStage: nothing else holds the base then). The
   * base is loaded frozen, with its linear weights in f16 where the device has 'shader-f16' (GpuOptions.f16Weights):
   * half the memory, for generation, LoRA runs and the reward scores of a LoRA reward model alike; a full
   * fine-tune gets it in f32, so that its reference computes what the CLI's and the experiment's do. A change
   * builds the base again from its weights (exact: an f16 base keeps its f32 values on the host), the merged runs
   * included; the old one is freed between generations.
   */
  private async baseFor(lora: boolean): Promise<void> {
    const m = this.need(),
      gpu = await this.gpuP;
    const want = lora && gpu.f16Weights;
    if (m.base.f16Weights === want) return;
    const model = new Transformer(gpu, m.base.cfg, { frozenF16: want });
    try {
      await copyWeights(m.base, model);
    } catch (e) {
      model.destroy();
      throw e;
    }
    const old = m.base;
    m.base = model;
    void this.between(async () => old.destroy());
  }

  /** Makes `stage` (run `runId`'s) the one generation and export use. */
  setCurrent(runId: string, stage: StageRun): void {
    this.cur = { runId, stage };
  }

  /** Rebuilds a run's stage from the store and restores its checkpoint (loads its model when it can). */
  async open(runId: string): Promise<{ run: db.RunRecord; stage: StageRun; from: number }> {
    const store = await this.storeP;
    const run = await runOf(store, runId);
    const rm = run.model as unknown as RunModel;
    if (this.loaded?.info.fingerprint !== rm.fingerprint) await this.rebuild(runId, rm);
    const data = run.datasetId ? await db.getDataset(store, run.datasetId) : undefined;
    if (!data) throw new Error(`run ${runId} has no data in the store`);
    const cfg = run.config as unknown as TrainConfig;
    const group = isGroup(run.stage as Stage);
    const reward = run.stage === 'ppo' || (group && cfg.rewardRunId) ? await this.rewardOf(cfg.rewardRunId) : undefined;
    const fns = group && typeof cfg.rewardModule === 'string' && cfg.rewardModule.trim() ? await loadRewardModule(cfg.rewardModule) : undefined;
    let stage: StageRun;
    try {
      stage = await this.buildStage(run.stage as Stage, cfg, data.records as DataRecord[], reward, fns);
    } catch (e) {
      fns?.dispose();
      throw e;
    }
    let from = 0;
    try {
      const ck = await readCheckpoint<Record<string, unknown>>(store, runId);
      if (ck) {
        await restoreFrom(stage.trainables, ck.tensors(), `checkpoint of run ${runId}`);
        stage.setState(structuredClone(ck.state));
        from = ck.step;
      }
    } catch (e) {
      stage.destroy();
      throw e;
    }
    this.setCurrent(runId, stage);
    return { run, stage, from };
  }

  // ---- reward scores ----

  /**
   * The scores a finished LoRA reward-model run gives (prompt, completion) pairs (see Engine.rewardScores).
   * `turn` runs the scoring between generations (the engine's queue, which also checks that no run trains).
   */
  async rewardScores(rmRunId: string, items: { prompt: string; completion: string }[], turn: Between = (f) => f()): Promise<number[]> {
    const { tok, base } = this.need();
    if (!items.length) return [];
    const eos = tok.eosTokenIds,
      pad = eos[0] ?? 0;
    const seqs = items.map((x) => ({
      prompt: tok.encodePrompt(x.prompt),
      response: [...tok.encode(x.completion, { addSpecialTokens: false }), ...eos.slice(0, 1)],
      entropy: [],
    }));
    return turn(() =>
      this.scorer.score({
        runId: rmRunId,
        base,
        seqs,
        pad,
        gpu: () => this.gpuP,
        now: () => this.need(),
        load: () => this.rewardOf(rmRunId),
      }),
    );
  }
}

/** The stage, whose destroy also stops its reward functions' sandbox worker. */
function withModule(stage: StageRun, fns: RewardModule | undefined): StageRun {
  if (!fns) return stage;
  const destroy = stage.destroy;
  stage.destroy = () => {
    fns.dispose();
    destroy.call(stage);
  };
  return stage;
}
