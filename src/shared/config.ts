// Stage configs: what a caller may set, and the resolved config saved with every run and checkpoint.
// The defaults, help lines, flags and TRL names of every field are one table, src/shared/schema.ts; here
// the config's type, the resolution (the stage's defaults, then the input over them) and its rules.
import {
  AUTO_EPOCHS,
  isGroup,
  isOnline,
  LOSS_TYPES,
  SCALE_REWARDS,
  stageDefaults,
  type LossType,
  type ModelShape,
  type ScaleRewards,
  type Stage,
} from './schema.ts';

export { AUTO_EPOCHS, defaultLr, EARLY_STOPPING, isGroup, isOnline, ONLINE, STAGES, TARGET_KL, widthScale, type ModelShape, type Stage } from './schema.ts';

/** A stage's resolved config. Each field's default, help line, flag and TRL name: OPTION[key] in src/shared/schema.ts. */
export interface TrainConfig {
  // ---- data and schedule ----
  seed: number; // data order per epoch, adapter and head initialisation, sampling
  epochs: number; // 0 = auto (autoEpochs); N = N passes over the data
  steps: number; // 0 = what the epochs give; N = exactly N optimizer steps (Hugging Face's max_steps: overrides epochs)
  batchSize: number; // examples / rankings / pairs / prompts per optimizer step
  seqLen: number; // prompt + completion tokens
  // ---- optimizer (AdamW, warmup + cosine decay) ----
  lr: number;
  weightDecay: number;
  maxGradNorm: number; // 0 = no clipping
  beta1: number;
  beta2: number;
  eps: number;
  warmupRatio: number; // of the steps
  minLrRatio: number; // the cosine's floor
  headLrRatio: number; // reward model: the score head's learning rate over the trunk's
  // ---- LoRA ----
  loraRank: number; // 0 = full fine-tuning
  loraAlpha: number;
  loraDropout: number;
  // ---- run control ----
  checkpointEvery: number; // 0 = only at pause and at the end
  onNonFinite: 'skip' | 'stop'; // a NaN/Inf gradient: skip the step (weights untouched) or end the run as failed
  // ---- DPO, GRPO, RLOO ----
  beta: number; // DPO's beta; GRPO's and RLOO's KL coefficient
  // ---- PPO (TRL's names) ----
  rewardRunId: string; // a finished reward-model run on the same base (PPO: required; GRPO/RLOO: one of the rewards)
  numSamples: number; // rollouts per prompt (GRPO/RLOO: num_generations)
  maxNewTokens: number; // TRL's max_completion_length
  temperature: number;
  kl_coef: number;
  kl_target: number; // 0 = fixed kl_coef
  cliprange: number;
  cliprange_value: number;
  vf_coef: number;
  gamma: number;
  lam: number;
  ppo_epochs: number; // TRL's num_ppo_epochs
  minibatches: number; // TRL's num_mini_batches
  ptx_coef: number; // 0 = PPO; > 0 = PPO-ptx on the {"prompt","completion"} records given with the prompts
  ema_decay: number; // 0 = off
  // ---- GRPO and RLOO (TRL's GRPOConfig / RLOOConfig names; num_generations is numSamples) ----
  reward_funcs: string[]; // the reward functions' names, besides rewardRunId's reward model
  reward_module: string; // the page: the JavaScript module (source) that exports them, kept with the run ('' = given otherwise: the CLI's --reward-fn)
  reward_weights: number[]; // [] = 1 each, in the order: reward_funcs, then the reward model
  scale_rewards: ScaleRewards;
  loss_type: LossType;
  normalize_advantages: boolean;
  epsilon: number;
  epsilon_high: number; // 0 = epsilon
  num_iterations: number;
  mask_truncated_completions: boolean;
  // ---- PPO, GRPO and RLOO: TRL's early-stopping guard ----
  early_stopping: boolean;
  target_kl: number; // a step's remaining updates are skipped once approx KL > 1.5 x target_kl
}

export type TrainInput = Partial<TrainConfig>;

/** Passes over data that make `perEpoch` steps each, for epochs = 0: enough for 32 steps, at most 8. */
export function autoEpochs(perEpoch: number): number {
  return Math.min(AUTO_EPOCHS.maxEpochs, Math.max(1, Math.ceil(AUTO_EPOCHS.minSteps / Math.max(1, perEpoch))));
}

/** The passes a run of `c` makes over data of `perEpoch` steps each (before `steps` overrides them). */
export const epochsFor = (c: TrainConfig, perEpoch: number): number => c.epochs || autoEpochs(perEpoch);

/** A run's optimizer steps over data of `perEpoch` steps per pass: `steps` when set (Hugging Face's max_steps overrides the epochs), else the passes'. */
export const stepsFor = (c: TrainConfig, perEpoch: number): number => c.steps || epochsFor(c, perEpoch) * perEpoch;

/** Fills the defaults of `stage` for `model` (a ModelConfig or the worker's ModelInfo), and checks the values. */
export function resolveConfig(stage: Stage, input: TrainInput, model: ModelShape): TrainConfig {
  const { maxPositions } = model;
  const c: TrainConfig = {
    ...stageDefaults(stage, input.loraRank ?? 0, model),
    ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
  };
  const bad = (k: keyof TrainConfig, rule: string) => {
    throw new Error(`config.${k}: ${JSON.stringify(c[k])} is not ${rule}`);
  };
  const int = (k: keyof TrainConfig, min: number) => (Number.isInteger(c[k]) && (c[k] as number) >= min) || bad(k, `an integer >= ${min}`);
  const pos = (k: keyof TrainConfig) => (typeof c[k] === 'number' && Number.isFinite(c[k]) && (c[k] as number) > 0) || bad(k, 'a finite number > 0');
  const nonneg = (k: keyof TrainConfig) => (typeof c[k] === 'number' && Number.isFinite(c[k]) && (c[k] as number) >= 0) || bad(k, 'a finite number >= 0');
  int('seed', 0);
  int('epochs', 0);
  int('steps', 0);
  int('batchSize', 1);
  int('seqLen', 4);
  int('loraRank', 0);
  int('checkpointEvery', 0);
  pos('lr');
  pos('eps');
  if (isGroup(stage)) nonneg('beta');
  else pos('beta');
  nonneg('weightDecay');
  nonneg('maxGradNorm');
  nonneg('warmupRatio');
  nonneg('minLrRatio');
  nonneg('loraAlpha');
  pos('headLrRatio');
  if (!(c.loraDropout >= 0 && c.loraDropout < 1)) bad('loraDropout', 'in [0, 1)');
  if (c.seqLen > maxPositions) bad('seqLen', `within the model's ${maxPositions} positions`);
  if (c.onNonFinite !== 'skip' && c.onNonFinite !== 'stop') bad('onNonFinite', "'skip' or 'stop'");
  if (isOnline(stage)) {
    if (typeof c.early_stopping !== 'boolean') bad('early_stopping', 'true or false');
    pos('target_kl');
  }
  if (stage === 'ppo') {
    int('numSamples', 1);
    int('maxNewTokens', 1);
    int('ppo_epochs', 1);
    int('minibatches', 1);
    nonneg('ptx_coef');
    if (!(c.ema_decay >= 0 && c.ema_decay < 1)) bad('ema_decay', 'in [0, 1)');
    if (c.numSamples > 9) bad('numSamples', 'at most 9');
    if (!c.rewardRunId) bad('rewardRunId', 'the id of a reward-model run');
  }
  if (isGroup(stage)) {
    int('numSamples', stage === 'rloo' ? 2 : 1);
    int('maxNewTokens', 1);
    int('num_iterations', 1);
    pos('temperature');
    if (c.numSamples > 16) bad('numSamples', 'at most 16');
    if (!(c.epsilon > 0 && c.epsilon < 1)) bad('epsilon', 'in (0, 1)');
    nonneg('epsilon_high');
    if (!SCALE_REWARDS.includes(c.scale_rewards)) bad('scale_rewards', SCALE_REWARDS.map((x) => `'${x}'`).join(', '));
    if (!LOSS_TYPES.includes(c.loss_type)) bad('loss_type', LOSS_TYPES.map((x) => `'${x}'`).join(', '));
    if (!Array.isArray(c.reward_funcs) || c.reward_funcs.some((x) => typeof x !== 'string' || !x)) bad('reward_funcs', 'a list of reward function names');
    if (typeof c.reward_module !== 'string') bad('reward_module', 'the source of a JavaScript module');
    if (!c.reward_funcs.length && !c.rewardRunId) bad('reward_funcs', 'given: GRPO and RLOO need reward functions, a reward model (rewardRunId), or both');
    const n = c.reward_funcs.length + (c.rewardRunId ? 1 : 0);
    if (!Array.isArray(c.reward_weights) || c.reward_weights.some((x) => typeof x !== 'number' || !Number.isFinite(x)))
      bad('reward_weights', 'a list of finite numbers');
    if (c.reward_weights.length && c.reward_weights.length !== n) bad('reward_weights', `one weight per reward function (${n})`);
    if (typeof c.normalize_advantages !== 'boolean') bad('normalize_advantages', 'true or false');
    if (typeof c.mask_truncated_completions !== 'boolean') bad('mask_truncated_completions', 'true or false');
  }
  return c;
}
