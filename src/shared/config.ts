// Stage configs: what a caller may set, and the resolved config saved with every run and checkpoint.
// The defaults, help lines, flags and TRL names of every field are one table, src/shared/schema.ts; here
// the config's type, the resolution (the stage's defaults, then the input over them) and its rules.
import {
  AUTO_EPOCHS,
  isGroup,
  isOnline,
  DPO_LOSS_TYPES,
  dpoLossTypes,
  LOSS_TYPES,
  OPTION,
  READS_LABEL_SMOOTHING,
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
  klCoef: number;
  klTarget: number; // 0 = fixed klCoef
  cliprange: number;
  cliprangeValue: number;
  vfCoef: number;
  gamma: number;
  lam: number;
  ppoEpochs: number; // TRL's num_ppo_epochs
  minibatches: number; // TRL's num_mini_batches
  ptxCoef: number; // 0 = PPO; > 0 = PPO-ptx on the {"prompt","completion"} records given with the prompts
  emaDecay: number; // 0 = off
  // ---- GRPO and RLOO (TRL's GRPOConfig / RLOOConfig names; num_generations is numSamples) ----
  rewardFuncs: string[]; // the reward functions' names, besides rewardRunId's reward model
  rewardModule: string; // the page: the JavaScript module (source) that exports them, kept with the run ('' = given otherwise: the CLI's --reward-fn)
  rewardWeights: number[]; // [] = 1 each, in the order: rewardFuncs, then the reward model
  scaleRewards: ScaleRewards;
  lossType: LossType | string; // GRPO: a LossType; DPO: DPO_LOSS_TYPES, several joined by commas (TRL's list)
  lossWeights: number[]; // DPO: one per loss of lossType; [] = 1 each
  ldAlpha: number; // DPO: LD-DPO's alpha; 1 = off
  labelSmoothing: number; // DPO: robust and exo_pair's label smoothing
  normalizeAdvantages: boolean;
  epsilon: number;
  epsilonHigh: number; // 0 = epsilon
  numIterations: number;
  maskTruncatedCompletions: boolean;
  // ---- PPO, GRPO and RLOO: TRL's early-stopping guard ----
  earlyStopping: boolean;
  targetKl: number; // a step's remaining updates are skipped once approx KL > 1.5 x targetKl
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

/**
 * The keys that runs saved, and configs were written with, before every key was camelCase (the store's
 * version 8 renames them in saved runs): their old spelling -> today's. A config that uses them still reads
 * as it meant (resolveConfig takes them, upgradeConfig renames them); TRL's own names are the schema's `trl`.
 */
export const RENAMED_KEYS: Readonly<Record<string, keyof TrainConfig>> = {
  kl_coef: 'klCoef',
  kl_target: 'klTarget',
  cliprange_value: 'cliprangeValue',
  vf_coef: 'vfCoef',
  ppo_epochs: 'ppoEpochs',
  ptx_coef: 'ptxCoef',
  ema_decay: 'emaDecay',
  reward_funcs: 'rewardFuncs',
  reward_module: 'rewardModule',
  reward_weights: 'rewardWeights',
  scale_rewards: 'scaleRewards',
  loss_type: 'lossType',
  normalize_advantages: 'normalizeAdvantages',
  epsilon_high: 'epsilonHigh',
  num_iterations: 'numIterations',
  mask_truncated_completions: 'maskTruncatedCompletions',
  early_stopping: 'earlyStopping',
  target_kl: 'targetKl',
};

/** `config` with its old keys (RENAMED_KEYS) under today's names, in place of the old; one key under both names with different values is an error. */
export function upgradeConfig<T extends Readonly<Record<string, unknown>>>(config: T): T {
  if (!Object.keys(config).some((k) => k in RENAMED_KEYS)) return config;
  const out: Record<string, unknown> = {},
    as: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    const key = RENAMED_KEYS[k] ?? k;
    if (key in out && JSON.stringify(out[key]) !== JSON.stringify(v))
      throw new Error(`config.${key}: given twice, as ${as[key]} and as ${k}, with different values`);
    out[key] = v;
    as[key] = k;
  }
  return out as T;
}

/** A config as given (a JSON file, a flag, a saved run): its old keys renamed (upgradeConfig), and an error for a key that is no option. */
export function configInput(input: Readonly<Record<string, unknown>>): TrainInput {
  const given = upgradeConfig(input);
  const unknown = Object.keys(given).filter((k) => !(k in OPTION));
  if (unknown.length) throw new Error(`config.${unknown[0]}: not a training option${unknown.length > 1 ? ` (nor ${unknown.slice(1).join(', ')})` : ''}`);
  return given as TrainInput;
}

/** Fills the defaults of `stage` for `model` (a ModelConfig or the worker's ModelInfo), and checks the values. Keys under their old names (RENAMED_KEYS) are read as today's; a key that is no option is refused. */
export function resolveConfig(stage: Stage, input: TrainInput, model: ModelShape): TrainConfig {
  const { maxPositions } = model;
  const given = configInput(input);
  const c: TrainConfig = {
    ...stageDefaults(stage, given.loraRank ?? 0, model),
    ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)),
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
    if (typeof c.earlyStopping !== 'boolean') bad('earlyStopping', 'true or false');
    pos('targetKl');
  }
  if (stage === 'ppo') {
    int('numSamples', 1);
    int('maxNewTokens', 1);
    int('ppoEpochs', 1);
    int('minibatches', 1);
    nonneg('ptxCoef');
    if (!(c.emaDecay >= 0 && c.emaDecay < 1)) bad('emaDecay', 'in [0, 1)');
    if (c.numSamples > 9) bad('numSamples', 'at most 9');
    if (!c.rewardRunId) bad('rewardRunId', 'the id of a reward-model run');
  }
  if (isGroup(stage)) {
    int('numSamples', stage === 'rloo' ? 2 : 1);
    int('maxNewTokens', 1);
    int('numIterations', 1);
    pos('temperature');
    if (c.numSamples > 16) bad('numSamples', 'at most 16');
    if (!(c.epsilon > 0 && c.epsilon < 1)) bad('epsilon', 'in (0, 1)');
    nonneg('epsilonHigh');
    if (!SCALE_REWARDS.includes(c.scaleRewards)) bad('scaleRewards', SCALE_REWARDS.map((x) => `'${x}'`).join(', '));
    if (!(LOSS_TYPES as readonly string[]).includes(c.lossType)) bad('lossType', LOSS_TYPES.map((x) => `'${x}'`).join(', '));
    if (!Array.isArray(c.rewardFuncs) || c.rewardFuncs.some((x) => typeof x !== 'string' || !x)) bad('rewardFuncs', 'a list of reward function names');
    if (typeof c.rewardModule !== 'string') bad('rewardModule', 'the source of a JavaScript module');
    if (!c.rewardFuncs.length && !c.rewardRunId) bad('rewardFuncs', 'given: GRPO and RLOO need reward functions, a reward model (rewardRunId), or both');
    const n = c.rewardFuncs.length + (c.rewardRunId ? 1 : 0);
    if (!Array.isArray(c.rewardWeights) || c.rewardWeights.some((x) => typeof x !== 'number' || !Number.isFinite(x)))
      bad('rewardWeights', 'a list of finite numbers');
    if (c.rewardWeights.length && c.rewardWeights.length !== n) bad('rewardWeights', `one weight per reward function (${n})`);
    if (typeof c.normalizeAdvantages !== 'boolean') bad('normalizeAdvantages', 'true or false');
    if (typeof c.maskTruncatedCompletions !== 'boolean') bad('maskTruncatedCompletions', 'true or false');
  }
  if (stage === 'dpo') {
    // a DPO config saved before DPO had loss types holds GRPO's default ('dapo'), which DPO never read: it meant DPO's own
    if ((LOSS_TYPES as readonly string[]).includes(c.lossType)) c.lossType = 'sigmoid';
    const names = String(c.lossType)
      .split(',')
      .map((x) => x.trim());
    const unknown = names.find((x) => !(DPO_LOSS_TYPES as readonly string[]).includes(x));
    if (unknown !== undefined) bad('lossType', `made of DPO's loss types (${DPO_LOSS_TYPES.join(', ')}) joined by commas: '${unknown}' is none of them`);
    if (new Set(names).size !== names.length) bad('lossType', 'a list that names each loss once');
    const types = dpoLossTypes(String(c.lossType));
    if (!Array.isArray(c.lossWeights) || c.lossWeights.some((x) => typeof x !== 'number' || !Number.isFinite(x)))
      bad('lossWeights', 'a list of finite numbers');
    if (c.lossWeights.length && c.lossWeights.length !== types.length) bad('lossWeights', `one weight per loss type (${types.length})`);
    if (!(c.ldAlpha >= 0 && c.ldAlpha <= 1)) bad('ldAlpha', 'in [0, 1]');
    if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 0.5)) bad('labelSmoothing', 'in [0, 0.5)');
    const reads = types.filter((t) => (READS_LABEL_SMOOTHING as readonly string[]).includes(t));
    if (c.labelSmoothing > 0 && !reads.length) bad('labelSmoothing', `0: only the 'robust' and 'exo_pair' losses read it`);
    if (types.includes('exo_pair') && !(c.labelSmoothing > 0)) bad('labelSmoothing', `above 0 for 'exo_pair' (its paper suggests 1e-3)`);
  }
  return c;
}
