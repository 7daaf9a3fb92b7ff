// Stage configs: what a caller may set, and the resolved config saved with every run and checkpoint.
// One table of defaults for the command line and the worker.
import { PPO_DEFAULTS } from './ppo-defaults.ts';

export type Stage = 'sft' | 'rm' | 'dpo' | 'ppo';

export interface TrainConfig {
  // ---- data and schedule ----
  seed: number; // 0: data order per epoch, adapter and head initialisation
  epochs: number; // 1
  steps: number; // 0 = what the epochs give; N = exactly N optimizer steps, cycling through the data (Hugging Face's max_steps: overrides epochs)
  batchSize: number; // 8 (PPO 4): examples / rankings / pairs / prompts per optimizer step
  seqLen: number; // prompt + completion tokens; default min(256, the model's positions)
  // ---- optimizer (AdamW, warmup + cosine decay) ----
  lr: number; // SFT 2e-4 LoRA / 1e-5 full; RM, DPO 1e-4 / 9e-6; PPO 1e-4 / 1e-5
  weightDecay: number; // 0.1 (DPO and PPO 0)
  maxGradNorm: number; // 1
  beta1: number; // 0.9
  beta2: number; // 0.95
  eps: number; // 1e-8
  warmupRatio: number; // 0.03 of the steps (DPO 0.1)
  minLrRatio: number; // 0.1: the cosine's floor
  // ---- LoRA ----
  loraRank: number; // 0 = full fine-tuning
  loraAlpha: number; // 2 * rank
  loraDropout: number; // 0.05 (PPO 0)
  // ---- run control ----
  checkpointEvery: number; // 0 = only at pause and at the end
  onNonFinite: 'skip' | 'stop'; // a NaN/Inf gradient: skip the step (weights untouched) or end the run as failed
  // ---- DPO ----
  beta: number; // 0.1
  // ---- PPO (TRL's names) ----
  rewardRunId: string; // a finished LoRA reward-model run on the same base
  numSamples: number; // 4 rollouts per prompt
  maxNewTokens: number; // 32
  temperature: number; // 1
  kl_coef: number; // 0.02
  kl_target: number; // 0 = fixed kl_coef
  cliprange: number; // 0.2
  cliprange_value: number; // 0.2
  vf_coef: number; // 0.1
  gamma: number; // 1
  lam: number; // 0.95
  ppo_epochs: number; // 1
  minibatches: number; // 1
  ptx_coef: number; // 0 = PPO; > 0 = PPO-ptx on the {"prompt","completion"} records given with the prompts
  ema_decay: number; // 0 = off; the paper's EMA of the policy used 0.992
}

export type TrainInput = Partial<TrainConfig>;

/** Fills the defaults of `stage` for a model with `maxPositions` positions, and checks the values. */
export function resolveConfig(stage: Stage, input: TrainInput, maxPositions: number): TrainConfig {
  const rank = input.loraRank ?? 0, lora = rank > 0;
  const lr = { sft: lora ? 2e-4 : 1e-5, rm: lora ? 1e-4 : 9e-6, dpo: lora ? 1e-4 : 9e-6, ppo: lora ? 1e-4 : 1e-5 }[stage];
  const c: TrainConfig = {
    seed: 0, epochs: 1, steps: 0, batchSize: stage === 'ppo' ? 4 : 8, seqLen: Math.min(256, maxPositions),
    lr, weightDecay: stage === 'dpo' || stage === 'ppo' ? 0 : 0.1, maxGradNorm: 1, beta1: 0.9, beta2: 0.95, eps: 1e-8,
    warmupRatio: stage === 'dpo' ? 0.1 : 0.03, minLrRatio: 0.1,
    loraRank: rank, loraAlpha: 2 * rank, loraDropout: stage === 'ppo' ? 0 : 0.05,
    checkpointEvery: 0, onNonFinite: 'skip',
    beta: 0.1,
    rewardRunId: '', numSamples: PPO_DEFAULTS.numSamples, maxNewTokens: PPO_DEFAULTS.maxNewTokens, temperature: PPO_DEFAULTS.temperature,
    kl_coef: PPO_DEFAULTS.kl_coef, kl_target: PPO_DEFAULTS.kl_target, cliprange: PPO_DEFAULTS.cliprange, cliprange_value: PPO_DEFAULTS.cliprange_value,
    vf_coef: PPO_DEFAULTS.vf_coef, gamma: PPO_DEFAULTS.gamma, lam: PPO_DEFAULTS.lam, ppo_epochs: PPO_DEFAULTS.ppo_epochs, minibatches: PPO_DEFAULTS.minibatches,
    ptx_coef: 0, ema_decay: 0,
    ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
  };
  const bad = (k: keyof TrainConfig, rule: string) => {
    throw new Error(`config.${k}: ${JSON.stringify(c[k])} is not ${rule}`);
  };
  const int = (k: keyof TrainConfig, min: number) => (Number.isInteger(c[k]) && (c[k] as number) >= min) || bad(k, `an integer >= ${min}`);
  const pos = (k: keyof TrainConfig) => (typeof c[k] === 'number' && Number.isFinite(c[k]) && (c[k] as number) > 0) || bad(k, 'a finite number > 0');
  const nonneg = (k: keyof TrainConfig) => (typeof c[k] === 'number' && Number.isFinite(c[k]) && (c[k] as number) >= 0) || bad(k, 'a finite number >= 0');
  int('seed', 0); int('epochs', 1); int('steps', 0); int('batchSize', 1); int('seqLen', 4); int('loraRank', 0); int('checkpointEvery', 0);
  pos('lr'); pos('eps'); pos('beta'); nonneg('weightDecay'); nonneg('maxGradNorm'); nonneg('warmupRatio'); nonneg('minLrRatio'); nonneg('loraAlpha');
  if (!(c.loraDropout >= 0 && c.loraDropout < 1)) bad('loraDropout', 'in [0, 1)');
  if (c.seqLen > maxPositions) bad('seqLen', `within the model's ${maxPositions} positions`);
  if (c.onNonFinite !== 'skip' && c.onNonFinite !== 'stop') bad('onNonFinite', "'skip' or 'stop'");
  if (stage === 'ppo') {
    int('numSamples', 1); int('maxNewTokens', 1); int('ppo_epochs', 1); int('minibatches', 1); nonneg('ptx_coef');
    if (!(c.ema_decay >= 0 && c.ema_decay < 1)) bad('ema_decay', 'in [0, 1)');
    if (c.numSamples > 9) bad('numSamples', 'at most 9');
    if (!c.rewardRunId) bad('rewardRunId', 'the id of a reward-model run');
  }
  return c;
}
