// The engine's contract: what the UI calls through comlink (src/worker/worker.ts exposes an engine.ts
// engine), what the CLI and Node tests call directly, and the types that cross. Types only: importing this
// file brings no engine code into the page (tests/worker-api.test.ts keeps it so).
//
// Plain async methods; callbacks are plain functions here and `Comlink.proxy(...)` objects on the page's
// side. One run trains at a time (one GPU); generation waits for no run and refuses while one trains.
// The implementation: engine.ts composes session.ts (the loaded model), generation.ts (the generation
// queue) and run-driver.ts (the run loop; its header says how pause, cancel and resume work).
import type { AdapterSummary } from '../shared/types.ts';
import type { Record as DataRecord } from '../io/datasets.ts';
import type { Progress as LoadProgress } from '../io/sources.ts';
import type { ModelType } from '../shared/model-config.ts';
import type { MetricRecord, RunRecord, RunStatus } from '../store/db.ts';
import type { Stage, TrainInput } from '../shared/config.ts';
import type { FinishReason } from '../train/generate.ts';
import type { StepPhase } from '../train/rollouts.ts';
import type { StepOut } from '../train/stages.ts';
import type { ModelSource } from './source.ts';

export type { ModelSource } from './source.ts';
export type { Stage, TrainInput } from '../shared/config.ts';
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
export interface PolicyInfo {
  kind: 'base' | 'run' | 'adapter';
  name: string;
  runId?: string;
  stage?: string;
  reward?: true;
}

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
export interface GenerateResult {
  texts: string[];
  finish: FinishReason[];
}

/** What watchGpu reports. */
export interface GpuProblem {
  kind: 'lost' | 'error';
  message: string;
}

export interface RunProgress {
  runId: string;
  step: number;
  total: number;
  tokensPerSec: number;
  secondsLeft: number;
}
/** Inside step `step` (1-based) of an online run: where it is (StepPhase), at most a few times a second. */
export interface RunPhase extends StepPhase {
  runId: string;
  step: number;
}
export interface RunStatusEvent {
  runId: string;
  status: RunStatus;
  step: number;
  total: number;
  error?: string;
}

export interface RunCallbacks {
  onMetrics?(m: MetricRecord): unknown;
  onProgress?(p: RunProgress): unknown;
  onPhase?(p: RunPhase): unknown;
  onStatus?(s: RunStatusEvent): unknown;
  /** An online step's rollouts: PPO's few decoded rollouts with their scores and per-token KL, value and
   *  advantage; GRPO and RLOO add every completion with each reward and its advantage. */
  onSamples?(step: number, samples: NonNullable<StepOut['samples']>, runId: string, completions?: StepOut['completions']): unknown;
}

export interface Engine {
  // ---- model ----

  /** Loads a model (and its tokenizer) as the base of the next runs; reports architecture and size. */
  loadModel(source: ModelSource, onProgress?: LoadProgress): Promise<ModelInfo>;

  /**
   * After the GPU was lost: a new device, and the loaded model built on it again from its files (still in
   * memory) with the runs that were merged into it merged again, so the page goes on without a reload. Says
   * which run the loss stopped (resume it: it goes on from its checkpoint). Does nothing while the GPU works.
   */
  reconnectGpu(): Promise<{ model?: ModelInfo; lostRun?: string }>;

  /**
   * Tells `onProblem` when the GPU stops working ('lost': a driver reset or timeout, GPU memory exhausted;
   * nothing runs until reconnectGpu gets a new device or the page is reloaded, and a training run fails with a message saying how to resume it)
   * or reports an error outside the engine's checks ('error': a bug to report). Resolves once watching.
   */
  watchGpu(onProblem: (p: GpuProblem) => unknown): Promise<void>;

  /** The adapter's name, features and the limits the engine asked for. */
  adapterInfo(): Promise<AdapterSummary>;

  /** The model the engine has loaded, if any. */
  modelInfo(): ModelInfo | undefined;

  /** What `generate` samples from: an opened adapter, else the last run's policy, else the loaded model. */
  policyInfo(): PolicyInfo | undefined;

  /** Makes a run's last checkpoint the policy that `generate` samples (its model must be the one loaded). */
  selectRun(runId: string): Promise<PolicyInfo>;

  /** Back to sampling the loaded model itself (drops the last run's stage and any opened adapter). */
  selectBase(): PolicyInfo | undefined;

  /**
   * Opens a shared checkpoint and uses it at once: a full model (a zipped Hugging Face folder, a URL, a Hub
   * id, picked files) is loaded like loadModel; a PEFT LoRA adapter is put on its base model, which is
   * the loaded one when it has the adapter's shapes, else loaded from the adapter's base_model_name_or_path
   * when that is a Hub id. Returns the model and what generate now samples. A reward model's adapter (PEFT
   * SEQ_CLS, or a score head in modules_to_save) opens the same way, marked `reward` in the policy; a fully
   * fine-tuned reward model (*ForSequenceClassification, or an older folder with score.json) is refused.
   */
  openCheckpoint(source: ModelSource, onProgress?: LoadProgress): Promise<{ model: ModelInfo; policy: PolicyInfo }>;

  /**
   * Makes a trained policy (an SFT, DPO or PPO run with a checkpoint) the starting model of the next runs:
   * its weights are merged into the loaded model (LoRA: W += (alpha/r) B A; full fine-tuning: the weights
   * copied). Later stages start from it and PPO and DPO hold their policy to it, as InstructGPT's PPO
   * starts from and is leashed to the SFT model. The model's identity becomes a digest of (the loaded
   * files, the merged runs), so runs trained on it resume only on it; after a reload, resume rebuilds it
   * by loading the files again (URL models) and merging the same runs. `resetModel` goes back.
   */
  adoptRun(runId: string): Promise<ModelInfo>;

  /** Back to the model as it was loaded (undoes adoptRun); the merged runs stay in the store. */
  resetModel(): Promise<ModelInfo>;

  /** Frees the GPU memory of the model and the last stage (the engine can load another model after). */
  dispose(): Promise<void>;

  // ---- generation ----

  /** K samples of one prompt from the current policy (the last run's, else the loaded model), streamed as text. */
  generate(prompt: string, opts?: Partial<GenerateOptions>, onToken?: (sample: number, textSoFar: string) => unknown): Promise<GenerateResult>;

  /** Ends the generation named `id` (GenerateOptions.id) after the token being drawn: it resolves with the
   *  text so far, 'interrupted' where a sample had not ended. One not started yet resolves with no text. */
  stopGeneration(id: string): void;

  /**
   * The score a finished reward-model run gives each (prompt, completion), as its own stage scores them
   * (the prompt with the chat template, the completion with its end of text; the bias included): the Rank
   * tab's active selection. The run must be a LoRA reward model trained on the loaded model (as PPO's);
   * it is loaded once and kept until the stage or the model changes. Text past the positions the reward
   * model was trained with (its seqLen) is cut. Runs between generations; `background` (scoring
   * completions drawn ahead) lets a generation someone waits for go first. Refused while a run trains.
   */
  rewardScores(rmRunId: string, items: { prompt: string; completion: string }[], opts?: { background?: boolean }): Promise<number[]>;

  // ---- what a run will cost (the Train tab's time estimates) ----

  /** Seconds of one forward pass of the loaded model over `rows` x `len` tokens: the median of three after a warm-up, between generations. */
  timeForward(rows: number, len: number): Promise<number>;

  /**
   * The GPU bytes a run of `stage` with `input` would hold on the loaded model (stageMemory), at its
   * sequence length (a run fits its positions to its data, so this is at most what it holds). Throws
   * resolveConfig's message when the config is not valid.
   */
  stageMemory(stage: Stage, input: TrainInput): Promise<{ total: number; parts: Record<string, number>; seqLen: number }>;

  /** Token counts as the stages encode text: a prompt with the chat template, a completion with its end of text. */
  countTokens(prompts: string[], completions: string[]): { prompts: number[]; completions: number[] };

  // ---- runs ----

  /** The names of the reward functions a GRPO/RLOO reward module exports, as a run would use them
   *  (loaded in its sandbox worker and stopped again); throws with the module's problem. */
  checkRewardModule(source: string): Promise<string[]>;

  /**
   * The records a run of `stage` would train on now: the user's data in the store (the prompts, the Rank
   * tab's rankings, their own dataset) through the one policy (src/io/stage-data.ts), as startStage takes
   * them. For the page's summaries; needs no model.
   */
  stageData(stage: Stage): Promise<DataRecord[]>;

  /**
   * Starts a training stage on the loaded model, on the records stageData gives now, read from the store by
   * the engine (no data crosses from the page); resolves with the run id once the run and those records (its
   * snapshot, which resume trains on) are saved and it trains.
   */
  startStage(stage: Stage, config: TrainInput, callbacks?: RunCallbacks): Promise<string>;

  /** Continues a paused, cancelled, failed or interrupted run from its last checkpoint in the store. */
  resume(runId: string, callbacks?: RunCallbacks): Promise<void>;

  /** Stops the run after its current step and writes a checkpoint; resolves with the status once stopped. */
  pause(runId: string): Promise<RunStatus>;

  /** Stops the run for good; its last checkpoint stays (export it, or resume anyway). */
  cancel(runId: string): Promise<RunStatus>;

  /** Resolves with the run's status once it stops training (at once when it is not training here). */
  wait(runId: string): Promise<RunStatus>;

  getRun(runId: string): Promise<RunRecord>;

  /** Deletes a run with its metrics, checkpoint, data and spot checks (not one training, nor one merged into the model). */
  deleteRun(runId: string): Promise<void>;

  // ---- export ----

  /**
   * A zip of the trained model: a PEFT adapter (LoRA) or a Hugging Face folder (full fine-tuning). With a
   * run id, that run's last checkpoint; without, the last run of this engine, else the loaded model.
   * Every zip holds the tokenizer beside the weights and, given `card`, the model card as README.md. An
   * adapter whose base is neither on the Hub nor the loaded files' own (merged runs), or is a small model
   * that is not on the Hub (the built-in one), carries that base: starting-model/ beside adapter/ (merged
   * runs always; the small base unless `bundleBase` is false, as for a Hub repo, whose adapter sits at its top).
   */
  exportModel(runId?: string, opts?: { card?: string; bundleBase?: boolean }): Promise<{ name: string; zip: Uint8Array }>;

  /**
   * How exportModel will lay out this run (the model card's loading code follows it): whether it is an
   * adapter, and whether that adapter comes with its base model in starting-model/.
   */
  exportLayout(runId?: string, bundleBase?: boolean): Promise<{ adapter: boolean; bundledBase: boolean }>;
}
