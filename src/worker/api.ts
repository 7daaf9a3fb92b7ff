// The engine's one API: what the UI calls through comlink (src/worker/worker.ts exposes it), and what
// Node tests call directly. Plain async methods; callbacks are plain functions here and
// `Comlink.proxy(...)` objects on the page's side.
//
// Runs: startStage builds a stage (stages.ts), saves the resolved config and the data (text) to the
// store, and drives it step by step in the background:
//   step -> metrics row to the store -> onMetrics, onProgress (awaited: a callback that calls pause()
//   stops the run right after this step) -> checkpoint every `checkpointEvery` steps.
// pause() and cancel() set a small shared state that the loop reads between steps. pause ends with a
// checkpoint; cancel leaves the last good one. resume() rebuilds the stage from the store (also in a
// fresh engine after a reload), restores the checkpoint and continues bit for bit.
// One run trains at a time (one GPU); generation waits for no run and refuses while one trains.
// GRPO/RLOO: the reward functions are the JavaScript source in config.reward_module, run in a sandbox
// worker of their own (reward-sandbox.ts), built again when a run is opened or resumed.
import { releaseProxy } from 'comlink';
import { GpuLostError, type Gpu } from '../gpu/runtime.ts';
import type { Record as DataRecord } from '../io/datasets.ts';
import { zipFiles } from '../io/zip.ts';
import type { ModelFiles, Progress as LoadProgress } from '../io/sources.ts';
import { findStop, StreamDecoder, Tok } from '../io/tokenizer.ts';
import { exportModelFiles } from '../model/export.ts';
import { parseConfig, type ModelType } from '../model/config.ts';
import { loadModel as buildModel } from '../model/index.ts';
import type { LoraSet } from '../model/lora.ts';
import type { Transformer } from '../model/transformer.ts';
import { restoreFrom, tensorBytes, tensorsOf, type Checkpoint } from '../train/checkpoint.ts';
import { cleanOrphanChunks, deleteCheckpointFiles, readCheckpoint, readCheckpointAll, writeCheckpoint } from '../store/checkpoints.ts';
import { GENERATE_DEFAULTS, Generator, type FinishReason } from '../train/generate.ts';
import * as db from '../store/db.ts';
import { isGroup, resolveConfig, type Stage, type TrainConfig, type TrainInput } from '../train/config.ts';
import { adapterFiles, fingerprint, loadSource, sourceName, textFingerprint, type ModelSource } from './source.ts';
import type { AdapterSummary } from '../gpu/device.ts';
import { checkStageFits, playgroundMemory, stageMemory, type StageMemory } from '../model/memory.ts';
import { copyWeights, loadAdapter, LORA_DEFAULTS, mergeLora, restoreWeights } from '../model/lora.ts';
import { readPeftAdapter, type PeftAdapter } from '../io/peft.ts';
import { unzipFiles } from '../io/zip.ts';
import { checkModelId } from '../io/hub.ts';
import { hubIdOf } from '../io/model-card.ts';
import { buildStage, rewardModelRole, type StageRun, type StepOut } from '../train/stages.ts';
import { ModelReward } from '../train/grpo.ts';
import type { StepPhase } from '../train/rollouts.ts';
import { loadRewardModule, type RewardModule } from './reward-sandbox.ts';

export type { ModelSource } from './source.ts';
export type { Stage, TrainInput } from '../train/config.ts';
export type { RunStatus } from '../store/db.ts';

export interface ModelInfo {
  source: string;
  /** The block the engine runs (code branches on it); modelType is config.json's model_type, which users see. */
  arch: 'gpt2' | 'llama';
  modelType: ModelType;
  params: number;
  layers: number;
  hidden: number;
  heads: number;
  vocabSize: number;
  maxPositions: number;
  hasTokenizer: boolean;
  hasChatTemplate: boolean;
  fingerprint: string; // SHA-256 of config, weights and tokenizer files
  /** Runs merged into the loaded weights, oldest first (adoptRun): the starting model of the next runs. */
  merged: { runId: string; stage: string; step: number }[];
  /** GPU bytes to sample 4 x seqLen with the KV cache, to train LoRA r=8 and to train every weight (batch 8 x seqLen). */
  memory: { seqLen: number; inference: number; lora: number; full: number };
}

/** What `generate` samples from now. `reward`: the opened adapter is a reward model's (PEFT SEQ_CLS, a score
 *  head): generation samples the loaded model with its LoRA, which was trained to score text, not to write it. */
export interface PolicyInfo { kind: 'base' | 'run' | 'adapter'; name: string; runId?: string; stage?: string; reward?: true }

export interface GenerateOptions {
  numSamples: number; // K, 1
  maxNewTokens: number; // 64
  temperature: number; // 1; 0 = greedy
  topK: number; // 0 = off
  topP: number; // 1 = off
  seed: number; // 0; sample i depends only on (seed, i)
  stop: string[]; // stop strings, cut from the text
  model: 'policy' | 'base'; // 'policy': the current policy (see policyInfo); 'base': the loaded model as it was loaded
  /** a name for stopGeneration (unique per call); '' = none */
  id: string;
  /** false; true for work nobody waits on yet (the Rank tab's next prompt): anything asked of the engine
   *  meanwhile goes first, and this generation starts over after it, with the same seed, so the same text */
  background: boolean;
}

/** finish: per sample 'eos', 'stop' (a stop string), 'length', or 'interrupted' (stopGeneration, texts so far) */
export interface GenerateResult { texts: string[]; finish: FinishReason[] }

/** What watchGpu reports. */
export interface GpuProblem { kind: 'lost' | 'error'; message: string }

export interface RunProgress { runId: string; step: number; total: number; tokensPerSec: number; secondsLeft: number }
/** Inside step `step` (1-based) of an online run: where it is (StepPhase), at most a few times a second. */
export interface RunPhase extends StepPhase { runId: string; step: number }
export interface RunStatusEvent { runId: string; status: db.RunStatus; step: number; total: number; error?: string }

export interface RunCallbacks {
  onMetrics?(m: db.MetricRecord): unknown;
  onProgress?(p: RunProgress): unknown;
  onPhase?(p: RunPhase): unknown;
  onStatus?(s: RunStatusEvent): unknown;
  /** PPO: a few decoded rollouts of each step with their scores and per-token KL, value and advantage. */
  /** An online step's rollouts; GRPO and RLOO add every completion with each reward and its advantage. */
  onSamples?(step: number, samples: NonNullable<StepOut['samples']>, runId: string, completions?: StepOut['completions']): unknown;
}

/** The model a run trains: enough to check, on resume, that the engine holds the same one. */
interface RunModel {
  source: string;
  fingerprint: string; // of the starting model: the loaded files' fingerprint, or after merges, a digest of the chain
  url?: string;
  reloadable: boolean;
  root?: string; // the loaded files' fingerprint (absent in runs saved before merging existed: = fingerprint)
  chain?: string[]; // runs merged into the loaded weights before this run started, oldest first
}

interface Loaded {
  files: ModelFiles;
  tok: Tok;
  base: Transformer; // the weights of `files`, plus the runs of `chain` merged in
  info: ModelInfo;
  rootInfo: ModelInfo; // the model as loaded from `files`
  chain: string[];
  url?: string;
  reloadable: boolean;
}
interface Live { runId: string; ctl: { pause: boolean; cancel: boolean }; done: Promise<db.RunStatus> }

/** A fully fine-tuned reward model opened as the model: it would replace the loaded one with a trunk that has no LM head. */
const rewardModelError = (name: string, what: string) => new Error(
  `${name} is a fully fine-tuned reward model (${what}): it scores text and does not generate, so it cannot be the loaded model. `
  + 'PPO here trains against a reward model trained in this page; `rlhf-playground ppo --reward DIR` takes this one');

/** A PEFT adapter of a reward model: task_type SEQ_CLS, or (older exports) a score head in modules_to_save. */
const isRewardAdapter = (peft: PeftAdapter) => peft.config.taskType === 'SEQ_CLS' || peft.extraTensors.some((t) => /(^|\.)score\.weight$/.test(t.name));

const newId = () => globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Calls a UI callback; a failing one (a closed page, a bug) never stops training. */
async function notify(f: (() => unknown) | undefined): Promise<void> {
  try {
    await f?.();
  } catch {
    /* the UI's problem, not the run's */
  }
}

export class Engine {
  private loaded?: Loaded;
  private current?: { runId: string; stage: StageRun }; // the last built stage: generate and export use it
  private live?: Live;
  private gens: { model: Transformer; lora?: LoraSet; g: Generator }[] = []; // at most one per model/adapter pair
  private imported?: { name: string; lora: LoraSet; files: Map<string, Uint8Array>; reward?: true }; // a shared adapter opened on the loaded model
  /** rewardScores' reward model, kept between calls: its run, the model it sits on, and a plan of `rows` x `T` */
  private rewardScorer?: RewardScorerCache;
  private gpuP: Promise<Gpu>;
  /** Asks for a new device after a loss (the browser's navigator.gpu); none when the engine was given one device. */
  private readonly newGpu?: () => Promise<Gpu>;
  private readonly watchers: ((p: GpuProblem) => unknown)[] = [];
  /** The run the last GPU loss stopped: resumed after reconnectGpu. */
  private lostRun?: string;
  private readonly storeP: Promise<db.Store>;

  /**
   * `gpu` and `store` may be promises (a worker starts at once; a missing WebGPU fails the first call); `gpu`
   * given as a function is asked again for a new device when the GPU is lost (reconnectGpu).
   */
  constructor(deps: { gpu: Gpu | Promise<Gpu> | (() => Promise<Gpu>); store: db.Store | Promise<db.Store> }) {
    if (typeof deps.gpu === 'function') this.newGpu = deps.gpu;
    this.gpuP = typeof deps.gpu === 'function' ? deps.gpu() : Promise.resolve(deps.gpu);
    // a checkpoint write cut short (a crash, a closed tab) left chunks no manifest points at: gone on start
    this.storeP = Promise.resolve(deps.store).then(async (s) => (await cleanOrphanChunks(s), s));
    this.gpuP.catch(() => {});
    this.storeP.catch(() => {});
  }

  // ---- model ----

  /** Loads a model (and its tokenizer) as the base of the next runs; reports architecture and size. */
  async loadModel(source: ModelSource, onProgress?: LoadProgress): Promise<ModelInfo> {
    const gpu = await this.gpuP;
    if (this.live) throw new Error(`run ${this.live.runId} is training: pause or cancel it before loading another model`);
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
    const { model } = buildModel(gpu, { ...files, configFile: `${files.source}/config.json` });
    this.unload();
    const c = model.cfg;
    const uses = playgroundMemory(c);
    const memory = { seqLen: uses.seqLen, inference: uses.inference.bytes.total, lora: uses.lora.bytes.total, full: uses.full.bytes.total };
    const info: ModelInfo = {
      source: files.source, arch: c.arch, modelType: c.modelType, params: model.params.count, layers: c.layers, hidden: c.hidden, heads: c.heads,
      vocabSize: c.vocabSize, maxPositions: c.maxPositions, hasTokenizer: true, hasChatTemplate: tok.hasChatTemplate, fingerprint: await fingerprint(files), memory, merged: [],
    };
    // a run on a plain URL can load its model again by itself after a reload
    this.loaded = { files, tok, base: model, info, rootInfo: info, chain: [], url, reloadable };
    return info;
  }

  /**
   * After the GPU was lost: a new device, and the loaded model built on it again from its files (still in
   * memory) with the runs that were merged into it merged again, so the page goes on without a reload. Says
   * which run the loss stopped (resume it: it goes on from its checkpoint). Does nothing while the GPU works.
   */
  async reconnectGpu(): Promise<{ model?: ModelInfo; lostRun?: string }> {
    const old = await this.gpuP.catch(() => undefined);
    if (old && !old.lost) return { model: this.loaded?.info };
    if (!this.newGpu) throw new Error('this engine was given one GPU device and cannot ask for another: reload the page');
    await this.live?.done; // the run the loss stopped ends as failed first
    const keep = this.loaded;
    this.unload(); // its buffers belong to the lost device: nothing to free, nothing to read
    this.gpuP = this.newGpu();
    const gpu = await this.gpuP;
    for (const w of this.watchers) this.watch(gpu, w);
    const lostRun = this.lostRun;
    this.lostRun = undefined;
    if (!keep) return { lostRun };
    await this.install(gpu, keep.files, keep.url, keep.reloadable);
    for (const id of keep.chain) await this.adoptRun(id);
    return { model: this.loaded!.info, ...(lostRun ? { lostRun } : {}) };
  }

  private unload(): void {
    const base = this.loaded?.base;
    this.dropStage();
    this.loaded = undefined;
    if (base) void this.exclusive(async () => base.params.destroy());
  }

  /**
   * Forgets the last stage, its generators and an opened adapter. Their GPU memory is freed once the
   * generation in flight (a view may be streaming) has finished: freeing it under a running Generator breaks it.
   */
  private dropStage(): void {
    const gens = this.gens, stage = this.current?.stage, imported = this.imported;
    this.gens = [];
    this.current = undefined;
    this.imported = undefined;
    this.dropRewardScorer(); // a run may need the memory; the next rewardScores loads it again
    if (gens.length || stage || imported) {
      void this.exclusive(async () => {
        for (const x of gens) x.g.destroy();
        stage?.destroy();
        imported?.lora.destroy();
      });
    }
  }

  /** Forgets rewardScores' reward model; its GPU memory is freed between generations, as dropStage's. */
  private dropRewardScorer(): void {
    const sc = this.rewardScorer;
    this.rewardScorer = undefined;
    if (sc) void this.exclusive(async () => freeScorer(sc));
  }

  /**
   * Tells `onProblem` when the GPU stops working ('lost': a driver reset or timeout, GPU memory exhausted;
   * nothing runs until reconnectGpu gets a new device or the page is reloaded, and a training run fails with a message saying how to resume it)
   * or reports an error outside the engine's checks ('error': a bug to report). Resolves once watching.
   */
  async watchGpu(onProblem: (p: GpuProblem) => unknown): Promise<void> {
    this.watchers.push(onProblem); // and on every device reconnectGpu gets
    this.watch(await this.gpuP, onProblem);
  }

  private watch(gpu: Gpu, onProblem: (p: GpuProblem) => unknown): void {
    void gpu.whenLost.then((e) => notify(() => onProblem({ kind: 'lost', message: e.message })));
    gpu.device.addEventListener('uncapturederror', (ev) => {
      void notify(() => onProblem({ kind: 'error', message: (ev as GPUUncapturedErrorEvent).error.message }));
    });
  }

  /** The adapter's name, features and the limits the engine asked for. */
  async adapterInfo(): Promise<AdapterSummary> {
    return (await this.gpuP).adapter;
  }

  /** The model the engine has loaded, if any. */
  modelInfo(): ModelInfo | undefined {
    return this.loaded?.info;
  }

  /** What `generate` samples from: an opened adapter, else the last run's policy, else the loaded model. */
  policyInfo(): PolicyInfo | undefined {
    if (!this.loaded) return undefined;
    if (this.imported) return { kind: 'adapter', name: this.imported.name, ...(this.imported.reward ? { reward: true as const } : {}) };
    // a reward-model run has no policy: generate samples the starting model then
    if (this.current?.stage.policy) return { kind: 'run', name: `run ${this.current.runId.slice(0, 8)}`, runId: this.current.runId };
    return { kind: 'base', name: this.loaded.info.source };
  }

  /** Makes a run's last checkpoint the policy that `generate` samples (its model must be the one loaded). */
  async selectRun(runId: string): Promise<PolicyInfo> {
    this.idle();
    if (this.current?.runId !== runId || this.imported) await this.open(runId);
    return this.policyInfo()!;
  }

  /** Back to sampling the loaded model itself (drops the last run's stage and any opened adapter). */
  selectBase(): PolicyInfo | undefined {
    this.idle();
    this.dropStage();
    return this.policyInfo();
  }

  /**
   * Opens a shared checkpoint and uses it at once: a full model (a zipped Hugging Face folder, a URL, a Hub
   * id, picked files) is loaded like loadModel; a PEFT LoRA adapter is put on its base model, which is
   * the loaded one when it has the adapter's shapes, else loaded from the adapter's base_model_name_or_path
   * when that is a Hub id. Returns the model and what generate now samples. A reward model's adapter (PEFT
   * SEQ_CLS, or a score head in modules_to_save) opens the same way, marked `reward` in the policy; a fully
   * fine-tuned reward model (*ForSequenceClassification, or an older folder with score.json) is refused.
   */
  async openCheckpoint(source: ModelSource, onProgress?: LoadProgress): Promise<{ model: ModelInfo; policy: PolicyInfo }> {
    this.idle();
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
      this.imported = { name, lora, files: adapter, ...(reward ? { reward } : {}) };
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

  private need(): Loaded {
    if (!this.loaded) throw new Error('no model loaded: call loadModel first');
    return this.loaded;
  }

  // ---- generation ----

  /** K samples of one prompt from the current policy (the last run's, else the loaded model), streamed as text. */
  async generate(prompt: string, opts: Partial<GenerateOptions> = {}, onToken?: (sample: number, textSoFar: string) => unknown): Promise<GenerateResult> {
    const id = opts.id || undefined;
    if (id) this.generating.add(id);
    const stopped = () => !!id && this.stopped.has(id);
    try {
      if (!opts.background) return (await this.exclusive(() => this.generateNow(prompt, opts, onToken, stopped), true))!;
      // Background work yields to generation someone waits for: it waits while such a call is queued, and
      // when one arrives mid-generation it stops and queues again behind it (other work, a run starting or
      // an export, waits for it as for any generation). A rerun streams the same tokens (same seed),
      // so only text longer than what was sent before goes out: the page sees one steady stream.
      const sent: string[] = [];
      const stream = (k: number, text: string) => {
        if (text.length <= (sent[k]?.length ?? 0)) return;
        sent[k] = text;
        return onToken?.(k, text);
      };
      for (;;) {
        const r = await this.exclusive(async () => this.waiting > 0 && !stopped() ? undefined
          : this.generateNow(prompt, opts, stream, () => stopped() || this.waiting > 0));
        // stopped in a rerun: what an earlier run wrote may be further along
        if (r) return { ...r, texts: r.texts.map((t, k) => r.finish[k] === 'interrupted' && (sent[k]?.length ?? 0) > t.length ? sent[k]! : t) };
      }
    } finally {
      if (id) {
        this.generating.delete(id);
        this.stopped.delete(id);
      }
      // a callback that came through comlink is a proxy to the page: let it go with the generation
      (onToken as { [releaseProxy]?: () => void } | undefined)?.[releaseProxy]?.();
    }
  }

  /** Ends the generation named `id` (GenerateOptions.id) after the token being drawn: it resolves with the
   *  text so far, 'interrupted' where a sample had not ended. One not started yet resolves with no text. */
  stopGeneration(id: string): void {
    if (this.generating.has(id)) this.stopped.add(id);
  }

  /**
   * The score a finished reward-model run gives each (prompt, completion), as its own stage scores them
   * (the prompt with the chat template, the completion with its end of text; the bias included): the Rank
   * tab's active selection. The run must be a LoRA reward model trained on the loaded model (as PPO's);
   * it is loaded once and kept until the stage or the model changes. Text past the positions the reward
   * model was trained with (its seqLen) is cut. Runs between generations; `background` (scoring
   * completions drawn ahead) lets a generation someone waits for go first. Refused while a run trains.
   */
  async rewardScores(rmRunId: string, items: { prompt: string; completion: string }[], opts: { background?: boolean } = {}): Promise<number[]> {
    this.idle();
    const { tok, base } = this.need();
    if (!items.length) return [];
    const eos = tok.eosTokenIds, pad = eos[0] ?? 0;
    const seqs = items.map((x) => ({ prompt: tok.encodePrompt(x.prompt), response: [...tok.encode(x.completion, { addSpecialTokens: false }), ...eos.slice(0, 1)], entropy: [] }));
    return this.exclusive(async () => {
      this.idle();
      let sc = this.rewardScorer;
      if (sc && (sc.runId !== rmRunId || sc.base !== this.need().base)) {
        freeScorer(sc);
        sc = this.rewardScorer = undefined;
      }
      if (!sc) {
        const rw = await this.rewardOf(rmRunId);
        if (this.need().base !== base) throw new Error('the loaded model changed while the reward model was loading');
        sc = this.rewardScorer = { runId: rmRunId, base, seqLen: rw.config.seqLen, role: rewardModelRole({ gpu: await this.gpuP, files: this.need().files, base }, rw), rows: 0, T: 0 };
      }
      const rows = Math.min(seqs.length, 16);
      const longest = Math.max(...seqs.map((x) => x.prompt.length + x.response.length));
      const T = Math.max(8, Math.min(sc.seqLen, Math.ceil(longest / 16) * 16));
      if (!sc.plan || sc.rows < rows || sc.T < T) { // a plan as large as the largest call so far
        sc.plan?.destroy();
        sc.plan = undefined;
        sc.rows = Math.max(sc.rows, rows);
        sc.T = Math.max(sc.T, T);
        sc.plan = await ModelReward.create('reward_model', sc.role.role, sc.rows, sc.T, sc.role.bias, pad);
      }
      return sc.plan.score(seqs);
    }, !opts.background);
  }

  private genQueue: Promise<unknown> = Promise.resolve();
  /** generations someone waits for (not background ones), queued and not started: background generation gives way to them */
  private waiting = 0;
  private readonly generating = new Set<string>();
  private readonly stopped = new Set<string>();

  /** One generation. `interrupt` ends it between tokens: with the text so far when the call was stopped
   *  (stopGeneration), else undefined (a background generation giving way, to be run again). */
  private async generateNow(prompt: string, opts: Partial<GenerateOptions>, onToken: ((sample: number, textSoFar: string) => unknown) | undefined,
    interrupt: () => boolean): Promise<GenerateResult | undefined> {
    const { tok, base } = this.need();
    const o = { numSamples: 1, maxNewTokens: 64, temperature: 1, topK: 0, topP: 1, seed: 0, stop: [], model: 'policy', ...opts };
    const stopped = () => !!opts.id && this.stopped.has(opts.id);
    if (stopped()) return { texts: Array<string>(o.numSamples).fill(''), finish: Array<FinishReason>(o.numSamples).fill('interrupted') };
    if (this.live) throw new Error(`run ${this.live.runId} is training: pause it to sample`);
    const policy: { model: Transformer; lora?: LoraSet } = o.model === 'base' ? { model: base }
      : this.imported ? { model: base, lora: this.imported.lora } : this.current?.stage.policy ?? { model: base };
    let gen = this.gens.find((x) => x.model === policy.model && x.lora === policy.lora);
    if (!gen) {
      gen = { ...policy, g: new Generator(policy.model, policy.lora) };
      this.gens.push(gen);
    }
    const ids = tok.encodePrompt(prompt);
    const streams = Array.from({ length: o.numSamples }, () => new StreamDecoder(tok, ids, { skipSpecialTokens: true }));
    const texts = Array<string>(o.numSamples).fill('');
    const r = await gen.g.generate(ids, {
      ...GENERATE_DEFAULTS, numSamples: o.numSamples, maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, topP: o.topP,
      seed: o.seed, stopTokenIds: tok.eosTokenIds, stopWhen: (k) => findStop(texts[k]!, o.stop) >= 0, interrupt,
    }, (k, id) => {
      const piece = streams[k]!.push(id);
      if (!piece) return;
      texts[k] += piece;
      void notify(() => onToken?.(k, cut(texts[k]!, o.stop)));
    });
    if (r.interrupted && !stopped()) return undefined;
    return { texts: texts.map((t, k) => cut(t + streams[k]!.flush(), o.stop)), finish: r.finish };
  }

  // ---- what a run will cost (the Train tab's time estimates) ----

  /** Seconds of one forward pass of the loaded model over `rows` x `len` tokens: the median of three after a warm-up, between generations. */
  async timeForward(rows: number, len: number): Promise<number> {
    this.idle();
    const { base } = this.need();
    return this.exclusive(async () => {
      const gpu = base.gpu, plan = await base.plan(rows, len);
      try {
        plan.setBatch(new Array<number>(rows * len).fill(0));
        await gpu.check('timing a forward pass', () => gpu.timeRun(plan.forward));
        const ms: number[] = [];
        for (let i = 0; i < 3; i++) ms.push((await gpu.timeRun(plan.forward)).wallMs);
        return ms.sort((a, b) => a - b)[1]! / 1000;
      } finally {
        plan.destroy();
      }
    }, true);
  }

  /** Token counts as the stages encode text: a prompt with the chat template, a completion with its end of text. */
  /**
   * The GPU bytes a run of `stage` with `input` would hold on the loaded model (stageMemory), at its
   * sequence length (a run fits its positions to its data, so this is at most what it holds). Throws
   * resolveConfig's message when the config is not valid.
   */
  async stageMemory(stage: Stage, input: TrainInput): Promise<{ total: number; parts: Record<string, number>; seqLen: number }> {
    const m = this.need();
    // the reward functions are named when the run starts (the module's exports): stand-ins, as many as the weights say
    const fns = Math.max(input.rewardRunId ? 0 : 1, (input.reward_weights?.length ?? 0) - (input.rewardRunId ? 1 : 0));
    const c = resolveConfig(stage, {
      ...input, ...(stage === 'ppo' && !input.rewardRunId ? { rewardRunId: 'unset' } : {}),
      ...(isGroup(stage) && !input.reward_funcs?.length ? { reward_funcs: Array.from({ length: fns }, (_, i) => `f${i}`) } : {}),
    }, m.info);
    const { total, parts } = this.memoryOf(stage, c);
    return { total, parts, seqLen: c.seqLen };
  }

  private memoryOf(stage: Stage, c: TrainConfig): StageMemory {
    const cfg = this.need().base.cfg;
    return stageMemory(cfg, {
      stage, batch: c.batchSize, seqLen: c.seqLen, samples: c.numSamples, loraRank: c.loraRank, loraDropout: c.loraDropout,
      loraTargets: c.loraRank > 0 ? [...LORA_DEFAULTS[cfg.arch].targets] : undefined, beta: c.beta, rewardModel: !!c.rewardRunId,
    });
  }

  countTokens(prompts: string[], completions: string[]): { prompts: number[]; completions: number[] } {
    const { tok } = this.need();
    return { prompts: prompts.map((p) => tok.encodePrompt(p).length), completions: completions.map((c) => tok.encode(c, { addSpecialTokens: false }).length + 1) };
  }

  // ---- runs ----

  /** The names of the reward functions a GRPO/RLOO reward module exports, as a run would use them
   *  (loaded in its sandbox worker and stopped again); throws with the module's problem. */
  async checkRewardModule(source: string): Promise<string[]> {
    const fns = await loadRewardModule(source);
    fns.dispose();
    return fns.functions.map((f) => f.name);
  }

  /** Starts a training stage on the loaded model; resolves with the run id once it is saved and training. */
  async startStage(stage: Stage, config: TrainInput, data: DataRecord[], callbacks: RunCallbacks = {}): Promise<string> {
    const store = await this.storeP;
    const m = this.need();
    this.idle();
    // GRPO / RLOO: the reward functions of config.reward_module (every export when reward_funcs names none,
    // and the saved config then names them all)
    const fns = isGroup(stage) && typeof config.reward_module === 'string' && config.reward_module.trim() ? await loadRewardModule(config.reward_module) : undefined;
    let run: StageRun, cfg: TrainConfig;
    try {
      cfg = resolveConfig(stage, fns && !config.reward_funcs?.length ? { ...config, reward_funcs: fns.functions.map((f) => f.name) } : config, m.info);
      // refused before anything is allocated when a buffer could not exist on this adapter (needed vs its limit)
      const gpu = await this.gpuP;
      checkStageFits(stage, this.memoryOf(stage, cfg), { maxBufferSize: gpu.maxBuffer, maxStorageBufferBindingSize: gpu.maxBinding });
      const reward = stage === 'ppo' || (isGroup(stage) && cfg.rewardRunId) ? await this.rewardOf(cfg.rewardRunId) : undefined;
      this.dropStage();
      run = withModule(await buildStage({ gpu: await this.gpuP, files: m.files, tok: m.tok, base: m.base, reward, adopted: m.chain.length > 0, rewardFunctions: fns?.functions }, stage, cfg, data), fns);
    } catch (e) {
      fns?.dispose();
      throw e;
    }
    const id = newId(), now = Date.now();
    this.current = { runId: id, stage: run };
    await db.saveDataset(store, { id: `run:${id}`, name: `${stage} data`, records: data, createdAt: now });
    const model: RunModel = { source: m.info.source, fingerprint: m.info.fingerprint, url: m.url, reloadable: m.reloadable, root: m.rootInfo.fingerprint, chain: [...m.chain] };
    await db.putRun(store, {
      // the settings as the run uses them: auto epochs (0) resolved; no epochs when the step count overrides them
      id, stage, config: { ...cfg, epochs: run.epochs ?? 0 }, status: 'running', createdAt: now, updatedAt: now, step: 0, totalSteps: run.totalSteps,
      datasetId: `run:${id}`, model: { ...model },
    });
    this.drive(id, run, cfg, 0, callbacks);
    return id;
  }

  /** Continues a paused, cancelled, failed or interrupted run from its last checkpoint in the store. */
  async resume(runId: string, callbacks: RunCallbacks = {}): Promise<void> {
    this.idle();
    if ((await this.getRun(runId)).status === 'done') throw new Error(`run ${runId} is done; start a new run to train further`);
    const { run, stage, from } = await this.open(runId);
    this.drive(runId, stage, run.config as unknown as TrainConfig, from, callbacks);
  }

  /** Stops the run after its current step and writes a checkpoint; resolves with the status once stopped. */
  async pause(runId: string): Promise<db.RunStatus> {
    if (this.live?.runId === runId) {
      this.live.ctl.pause = true;
      return this.live.done;
    }
    return (await this.getRun(runId)).status;
  }

  /** Stops the run for good; its last checkpoint stays (export it, or resume anyway). */
  async cancel(runId: string): Promise<db.RunStatus> {
    if (this.live?.runId === runId) {
      this.live.ctl.cancel = true;
      return this.live.done;
    }
    const run = await this.getRun(runId);
    if (run.status === 'done') return run.status;
    return (await db.updateRun(await this.storeP, runId, { status: 'cancelled' })).status;
  }

  /** Resolves with the run's status once it stops training (at once when it is not training here). */
  async wait(runId: string): Promise<db.RunStatus> {
    if (this.live?.runId === runId) return this.live.done;
    return (await this.getRun(runId)).status;
  }

  async getRun(runId: string): Promise<db.RunRecord> {
    const run = await db.getRun(await this.storeP, runId);
    if (!run) throw new Error(`no run ${runId} in the store`);
    return run;
  }

  /**
   * A zip of the trained model: a PEFT adapter (LoRA) or a Hugging Face folder (full fine-tuning). With a
   * run id, that run's last checkpoint; without, the last run of this engine, else the loaded model.
   * Every zip holds the tokenizer beside the weights and, given `card`, the model card as README.md. An
   * adapter whose base is neither on the Hub nor the loaded files' own (merged runs), or is a small model
   * that is not on the Hub (the built-in one), carries that base: starting-model/ beside adapter/ (merged
   * runs always; the small base unless `bundleBase` is false, as for a Hub repo, whose adapter sits at its top).
   */
  async exportModel(runId?: string, opts: { card?: string; bundleBase?: boolean } = {}): Promise<{ name: string; zip: Uint8Array }> {
    const r = await this.exportFilesOf(runId, opts.bundleBase ?? true);
    if (opts.card !== undefined) r.files.set('README.md', new TextEncoder().encode(opts.card));
    return { name: `${r.name}.zip`, zip: zipFiles(r.files, r.folder) };
  }

  /** Whether exportModel of the current run's adapter carries its base (starting-model/ beside adapter/): see there. */
  private bundlesBase(small = true): boolean {
    const m = this.need(), cur = this.current;
    if (!cur || (m.info.merged.length && cur.stage.policy?.lora)) return false; // no run, or a whole model
    const offHub = small && hubIdOf(m.rootInfo.source) === undefined && m.rootInfo.params * 4 <= 64 * 2 ** 20;
    return m.info.merged.length > 0 || offHub;
  }

  /**
   * How exportModel will lay out this run (the model card's loading code follows it): whether it is an
   * adapter, and whether that adapter comes with its base model in starting-model/.
   */
  async exportLayout(runId?: string, bundleBase = true): Promise<{ adapter: boolean; bundledBase: boolean }> {
    if (runId && this.current?.runId !== runId) {
      this.idle();
      await this.open(runId);
    }
    const run = this.current ? await this.getRun(this.current.runId) : undefined;
    const adapter = !!run && Number(run.config.loraRank) > 0 && !(this.need().info.merged.length && this.current!.stage.policy?.lora);
    return { adapter, bundledBase: adapter && this.bundlesBase(bundleBase) };
  }

  private async exportFilesOf(runId: string | undefined, bundleBase: boolean): Promise<{ name: string; folder?: string; files: Map<string, Uint8Array> }> {
    const m = this.need();
    if (runId && this.current?.runId !== runId) {
      this.idle();
      await this.open(runId);
    }
    const cur = this.current;
    if (!runId && this.imported) return { name: 'adapter', folder: 'adapter', files: new Map(this.imported.files) };
    const tokenizerFiles = new Map([...m.files.raw].filter(([k]) => k.startsWith('tokenizer') || k === 'special_tokens_map.json'));
    const merged = m.info.merged;
    const meta = (stage: string, steps: number) => ({
      producer: 'rlhf-playground', stage: [...merged.map((x) => x.stage), stage].join('+'), steps, baseModel: m.rootInfo.source, date: new Date().toISOString(),
      ...(merged.length ? { merged_runs: merged.map((x) => `${x.stage}:${x.runId}@${x.step}`).join(',') } : {}),
    });
    if (!cur) {
      const files = await this.exclusive(() => exportModelFiles(m.base, { meta: meta(merged.length ? merged.at(-1)!.stage : 'base', merged.at(-1)?.step ?? 0), tokenizerFiles }));
      return { name: 'model', files };
    }
    const run = await this.getRun(cur.runId);
    const name = `${run.stage}-${cur.runId.slice(0, 8)}`;
    const lora = cur.stage.policy?.lora;
    if (merged.length && lora) {
      // an adapter over merged runs: PEFT could not rebuild that base from a Hub id, so this is the whole model
      const files = await this.exclusive(async () => {
        const saved = await mergeLora(lora);
        try {
          return await exportModelFiles(m.base, { meta: meta(run.stage, run.step ?? 0), tokenizerFiles });
        } finally {
          restoreWeights(m.base, saved);
        }
      });
      return { name, folder: name, files };
    }
    const files = await cur.stage.exportFiles(run.step ?? 0);
    if (!files.has('adapter_config.json')) return { name, folder: name, files };
    for (const [k, v] of tokenizerFiles) if (!files.has(k)) files.set(k, v); // the adapter's tokenizer, as PEFT repos carry it
    // the base travels with the adapter when PEFT could not fetch it: merged runs (a reward model over them),
    // or a small model that is not on the Hub (the built-in one: a few MiB)
    if (this.bundlesBase(bundleBase)) {
      const start = await this.exclusive(() => exportModelFiles(m.base, { meta: meta(merged.at(-1)?.stage ?? 'base', merged.at(-1)?.step ?? 0), tokenizerFiles }));
      const cfg = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json'))) as Record<string, unknown>;
      cfg.base_model_name_or_path = 'starting-model'; // PEFT reads it relative to where it is loaded from: unzip, load from that folder
      cfg.revision = null; // a folder has no revision
      const both = new Map<string, Uint8Array>([
        ...[...start].map(([k, v]) => [`starting-model/${k}`, v] as const),
        ...[...files].map(([k, v]) => [`adapter/${k}`, k === 'adapter_config.json' ? new TextEncoder().encode(JSON.stringify(cfg, null, 2)) : v] as const),
      ]);
      return { name, folder: name, files: both };
    }
    return { name, folder: name, files };
  }

  /** Frees the GPU memory of the model and the last stage (the engine can load another model after). */
  async dispose(): Promise<void> {
    if (this.live) {
      this.live.ctl.cancel = true;
      await this.live.done;
    }
    this.unload();
  }

  /**
   * Makes a trained policy (an SFT, DPO or PPO run with a checkpoint) the starting model of the next runs:
   * its weights are merged into the loaded model (LoRA: W += (alpha/r) B A; full fine-tuning: the weights
   * copied). Later stages start from it and PPO and DPO hold their policy to it, as InstructGPT's PPO
   * starts from and is leashed to the SFT model. The model's identity becomes a digest of (the loaded
   * files, the merged runs), so runs trained on it resume only on it; after a reload, resume rebuilds it
   * by loading the files again (URL models) and merging the same runs. `resetModel` goes back.
   */
  async adoptRun(runId: string): Promise<ModelInfo> {
    this.idle();
    const run = await this.getRun(runId);
    if (run.stage === 'rm') throw new Error(`run ${runId} is a reward model; a policy (an SFT, DPO or PPO run) can be the starting model`);
    const { stage, from } = await this.open(runId);
    if (!from) throw new Error(`run ${runId} has no checkpoint yet: there are no trained weights to start from`);
    const m = this.need(), pol = stage.policy!;
    await this.exclusive(async () => {
      if (pol.lora) await mergeLora(pol.lora);
      else await copyWeights(pol.model, m.base);
    });
    this.dropStage();
    m.chain = [...m.chain, runId];
    m.info = {
      ...m.info, merged: [...m.info.merged, { runId, stage: run.stage, step: from }],
      fingerprint: await textFingerprint(`${m.info.fingerprint}|${runId}|${from}`),
    };
    return m.info;
  }

  /** Deletes a run with its metrics, checkpoint, data and spot checks (not one training, nor one merged into the model). */
  async deleteRun(runId: string): Promise<void> {
    if (this.live?.runId === runId) throw new Error(`run ${runId} is training: cancel it first`);
    if (this.loaded?.chain.includes(runId)) throw new Error(`run ${runId} is merged into the starting model: go back to the model as loaded first`);
    if (this.current?.runId === runId) this.dropStage();
    if (this.rewardScorer?.runId === runId) this.dropRewardScorer();
    await db.deleteRun(await this.storeP, runId);
    await deleteCheckpointFiles(runId);
  }

  /** Back to the model as it was loaded (undoes adoptRun); the merged runs stay in the store. */
  async resetModel(): Promise<ModelInfo> {
    this.idle();
    const m = this.need();
    if (m.chain.length) {
      this.dropStage();
      const { model } = buildModel(await this.gpuP, { ...m.files, configFile: `${m.files.source}/config.json` });
      const old = m.base;
      void this.exclusive(async () => old.params.destroy());
      m.base = model;
      m.chain = [];
      m.info = m.rootInfo;
    }
    return m.info;
  }

  /** Gets the starting model of a run back: its files (reloaded from its URL if need be), then its merged runs. */
  private async rebuild(runId: string, rm: RunModel): Promise<void> {
    const root = rm.root ?? rm.fingerprint, chain = rm.chain ?? [];
    if (this.loaded?.rootInfo.fingerprint !== root) {
      if (!rm.reloadable || !rm.url) throw new Error(`run ${runId} trains ${rm.source}: load that model first (the one loaded now is ${this.loaded?.info.source ?? 'none'})`);
      await this.loadModel({ url: rm.url, name: rm.source });
      if (this.loaded?.rootInfo.fingerprint !== root) throw new Error(`${rm.url} no longer serves the model run ${runId} was trained on`);
    }
    const m = this.need();
    if (!(m.chain.length <= chain.length && m.chain.every((id, i) => chain[i] === id))) await this.resetModel();
    for (const id of chain.slice(m.chain.length)) await this.adoptRun(id);
    if (m.info.fingerprint !== rm.fingerprint) throw new Error(`run ${runId}: merging its ${chain.length} earlier runs again did not give its starting model`);
  }

  /** Runs `f` between generations (a Generator reading weights that `f` changes would mix the two).
   *  `urgent`: a generation someone waits for, which a background one gives way to (see generate). */
  private exclusive<R>(f: () => Promise<R>, urgent = false): Promise<R> {
    if (urgent) this.waiting++;
    const turn = this.genQueue.then(() => {
      if (urgent) this.waiting--;
      return f();
    });
    this.genQueue = turn.catch(() => {});
    return turn;
  }

  // ---- internals ----

  private idle(): void {
    if (this.live) throw new Error(`run ${this.live.runId} is training: pause or cancel it first`);
  }

  /** The finished LoRA reward-model run that PPO trains against. */
  private async rewardOf(runId: string): Promise<{ config: TrainConfig; checkpoint: Checkpoint }> {
    const store = await this.storeP;
    const run = await this.getRun(runId);
    if (run.stage !== 'rm') throw new Error(`rewardRunId ${runId} is a ${run.stage} run, not a reward model`);
    if ((run.model as unknown as RunModel | undefined)?.fingerprint !== this.need().info.fingerprint) {
      throw new Error(`reward model ${runId} was trained on another starting model than the one loaded now (PPO's roles share one base): `
        + 'train the reward model after choosing the starting model');
    }
    const cfg = run.config as unknown as TrainConfig;
    if (!(cfg.loraRank > 0)) throw new Error(`reward model ${runId} is fully fine-tuned; PPO shares one base and needs a LoRA reward model`);
    const ck = await readCheckpointAll(store, runId);
    if (!ck) throw new Error(`reward model ${runId} has no checkpoint`);
    return { config: cfg, checkpoint: { state: ck.state, tensors: ck.tensors } };
  }

  /** Rebuilds a run's stage from the store and restores its checkpoint (loads its model when it can). */
  private async open(runId: string): Promise<{ run: db.RunRecord; stage: StageRun; from: number }> {
    const store = await this.storeP;
    const run = await this.getRun(runId);
    const rm = run.model as unknown as RunModel;
    if (this.loaded?.info.fingerprint !== rm.fingerprint) await this.rebuild(runId, rm);
    const m = this.need();
    const data = run.datasetId ? await db.getDataset(store, run.datasetId) : undefined;
    if (!data) throw new Error(`run ${runId} has no data in the store`);
    const cfg = run.config as unknown as TrainConfig;
    const group = isGroup(run.stage as Stage);
    const reward = run.stage === 'ppo' || (group && cfg.rewardRunId) ? await this.rewardOf(cfg.rewardRunId) : undefined;
    const fns = group && typeof cfg.reward_module === 'string' && cfg.reward_module.trim() ? await loadRewardModule(cfg.reward_module) : undefined;
    this.dropStage();
    let stage: StageRun;
    try {
      stage = withModule(await buildStage({ gpu: await this.gpuP, files: m.files, tok: m.tok, base: m.base, reward, adopted: m.chain.length > 0, rewardFunctions: fns?.functions },
        run.stage as Stage, cfg, data.records as DataRecord[]), fns);
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
    this.current = { runId, stage };
    return { run, stage, from };
  }

  /** The training loop of one run, in the background; `live.done` resolves with its final status. */
  private drive(runId: string, stage: StageRun, cfg: TrainConfig, from: number, cb: RunCallbacks): void {
    const ctl = { pause: false, cancel: false };
    const total = stage.totalSteps;
    let done = from;
    const status = async (s: db.RunStatus, patch: Partial<db.RunRecord> = {}) => {
      await db.updateRun(await this.storeP, runId, { status: s, step: done, ...patch });
      await notify(() => cb.onStatus?.({ runId, status: s, step: done, total, ...(patch.error ? { error: patch.error } : {}) }));
      return s;
    };
    const checkpoint = async (step: number) => {
      // tensor by tensor from the GPU into the store: never the whole checkpoint in one array
      await writeCheckpoint(await this.storeP, runId, { step, state: { step, ...stage.state() }, tensors: tensorsOf(stage.trainables), bytes: tensorBytes(stage.trainables) });
      await db.updateRun(await this.storeP, runId, { checkpointStep: step });
    };
    const loop = async (): Promise<db.RunStatus> => {
      const store = await this.storeP;
      await status('running', { error: undefined });
      const t0 = performance.now();
      let tokens = 0;
      for (let s = from; s < total; s++) {
        if (ctl.pause || ctl.cancel) break;
        let told = 0, last = '';
        const out = await stage.step(s, cb.onPhase && ((ph) => {
          // each new phase at once; within one, at most four times a second (every call crosses to the page)
          const now = performance.now();
          if (ph.phase === last && now - told < 250) return;
          told = now;
          last = ph.phase;
          void notify(() => cb.onPhase?.({ runId, step: s + 1, ...ph }));
        }));
        const values = out.skipped ? { ...out.metrics, skipped: 1 } : out.metrics;
        const row: db.MetricRecord = { runId, step: s + 1, time: Date.now(), values };
        await db.appendMetrics(store, [row]);
        if (out.skipped && cfg.onNonFinite === 'stop') {
          const ck = await db.checkpointManifest(store, runId);
          return status('failed', {
            error: `step ${s + 1}: the gradient is NaN or infinite (loss ${values.loss ?? values['loss/policy_avg']}); the step was skipped and the run stopped (onNonFinite: 'stop'). `
              + (ck ? `The checkpoint of step ${ck.step} is intact; ` : '') + 'try a lower learning rate or check the data.',
          });
        }
        done = s + 1;
        tokens += out.tokens;
        const secs = (performance.now() - t0) / 1000;
        await notify(() => cb.onMetrics?.(row));
        if (out.samples) {
          await db.saveRollouts(store, { runId, step: done, samples: out.samples, ...(out.completions ? { completions: out.completions } : {}) });
          await notify(() => cb.onSamples?.(done, out.samples!, runId, out.completions));
        }
        await notify(() => cb.onProgress?.({ runId, step: done, total, tokensPerSec: tokens / Math.max(secs, 1e-9), secondsLeft: (secs / (done - from)) * (total - done) }));
        if (cfg.checkpointEvery && done % cfg.checkpointEvery === 0 && done < total) {
          await checkpoint(done);
          await db.updateRun(store, runId, { step: done });
        }
      }
      if (ctl.cancel) return status('cancelled');
      if (done < total) {
        await checkpoint(done);
        return status('paused');
      }
      const result = await stage.finish();
      await checkpoint(total);
      return status('done', { result });
    };
    const live: Live = {
      runId, ctl,
      done: loop().catch(async (e) => {
        let error = errText(e);
        if (e instanceof GpuLostError) {
          const at = (await db.getRun(await this.storeP, runId).catch(() => undefined))?.checkpointStep; // the step, not the checkpoint's bytes
          error += `. Reconnect the GPU (or reload the page), then resume the run: it goes on from ${at ? `its checkpoint of step ${at}` : 'the start'}.`;
          this.lostRun = runId;
        }
        return status('failed', { error }).catch(() => 'failed' as const);
      }).finally(() => {
        if (this.live === live) this.live = undefined;
        // callbacks that came through comlink are proxies to the page: let them go with the run
        for (const f of Object.values(cb)) (f as { [releaseProxy]?: () => void } | undefined)?.[releaseProxy]?.();
      }),
    };
    this.live = live;
  }
}

/** rewardScores' reward model: its run, the model it sits on, its positions, and a plan of `rows` x `T` (made on first use). */
interface RewardScorerCache { runId: string; base: Transformer; seqLen: number; role: ReturnType<typeof rewardModelRole>; plan?: ModelReward; rows: number; T: number }

function freeScorer(sc: RewardScorerCache): void {
  sc.plan?.destroy();
  sc.role.destroy();
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

/** Text up to the first stop string. */
const cut = (text: string, stop: string[]) => {
  const i = findStop(text, stop);
  return i < 0 ? text : text.slice(0, i);
};

export function createEngine(deps: { gpu: Gpu | Promise<Gpu> | (() => Promise<Gpu>); store: db.Store | Promise<db.Store> }): Engine {
  return new Engine(deps);
}
