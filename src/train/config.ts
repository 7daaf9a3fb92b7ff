// Stage configs: what a caller may set, and the resolved config saved with every run and checkpoint.
// One table of defaults for the command line and the worker.
import { LOSS_TYPES, SCALE_REWARDS, type LossType, type ScaleRewards } from './grpo-math.ts';
import { PPO_DEFAULTS } from './ppo-defaults.ts';

export type Stage = 'sft' | 'rm' | 'dpo' | 'ppo' | 'grpo' | 'rloo';
export const STAGES: readonly Stage[] = ['sft', 'rm', 'dpo', 'ppo', 'grpo', 'rloo'];
/** The online stages: they sample from the policy at every step and train on prompts. */
export const ONLINE: readonly Stage[] = ['ppo', 'grpo', 'rloo'];
export const isOnline = (s: Stage): boolean => ONLINE.includes(s);
/** GRPO and RLOO: a baseline from the other samples of the prompt, no value model. */
export const isGroup = (s: Stage): s is 'grpo' | 'rloo' => s === 'grpo' || s === 'rloo';

export interface TrainConfig {
  // ---- data and schedule ----
  seed: number; // 0: data order per epoch, adapter and head initialisation
  epochs: number; // 0 = auto (autoEpochs: at least 32 steps, at most 8 passes); N = N passes over the data
  steps: number; // 0 = what the epochs give; N = exactly N optimizer steps, cycling through the data (Hugging Face's max_steps: overrides epochs)
  batchSize: number; // 8 (PPO 4): examples / rankings / pairs / prompts per optimizer step
  seqLen: number; // prompt + completion tokens; default min(256, the model's positions)
  // ---- optimizer (AdamW, warmup + cosine decay) ----
  lr: number; // the paper's (full) or LoRA's usual value for a 4096-wide model, scaled by width: see defaultLr
  weightDecay: number; // 0.1 (DPO and PPO 0)
  maxGradNorm: number; // 1
  beta1: number; // 0.9
  beta2: number; // 0.95
  eps: number; // 1e-8
  warmupRatio: number; // 0.03 of the steps (DPO 0.1)
  minLrRatio: number; // 0.1: the cosine's floor
  headLrRatio: number; // reward model: the score head's learning rate over the trunk's (1: the same)
  // ---- LoRA ----
  loraRank: number; // 0 = full fine-tuning
  loraAlpha: number; // 2 * rank
  loraDropout: number; // 0.05 (PPO 0)
  // ---- run control ----
  checkpointEvery: number; // 0 = only at pause and at the end
  onNonFinite: 'skip' | 'stop'; // a NaN/Inf gradient: skip the step (weights untouched) or end the run as failed
  // ---- DPO, GRPO, RLOO ----
  beta: number; // DPO 0.1; GRPO 0 (no KL term, no reference pass); RLOO 0.05 (TRL's)
  // ---- PPO (TRL's names) ----
  rewardRunId: string; // a finished reward-model run on the same base (PPO: required; GRPO/RLOO: one of the reward functions)
  numSamples: number; // 4 rollouts per prompt (GRPO/RLOO: num_generations)
  maxNewTokens: number; // 32 (TRL's max_completion_length)
  temperature: number; // 1
  kl_coef: number; // 0.05 on the normalised reward (the paper's 0.02: see PPO_KL_COEF)
  kl_target: number; // 0 = fixed kl_coef
  cliprange: number; // 0.2
  cliprange_value: number; // 0.2
  vf_coef: number; // 0.1
  gamma: number; // 1
  lam: number; // 0.95
  ppo_epochs: number; // 4 (TRL's num_ppo_epochs; PpoTrainer's own default is 1: see PPO_EPOCHS)
  minibatches: number; // 1
  ptx_coef: number; // 0 = PPO; > 0 = PPO-ptx on the {"prompt","completion"} records given with the prompts
  ema_decay: number; // 0 = off; the paper's EMA of the policy used 0.992
  // ---- GRPO and RLOO (TRL's GRPOConfig / RLOOConfig names; num_generations is numSamples) ----
  reward_funcs: string[]; // the reward functions' names, besides rewardRunId's reward model
  reward_module: string; // the page: the JavaScript module (source) that exports them, kept with the run ('' = given otherwise: the CLI's --reward-fn)
  reward_weights: number[]; // [] = 1 each, in the order: reward_funcs, then the reward model
  scale_rewards: ScaleRewards; // GRPO: 'group'
  loss_type: LossType; // GRPO: 'dapo' (TRL's default)
  normalize_advantages: boolean; // RLOO: false
  epsilon: number; // 0.2
  epsilon_high: number; // 0 = epsilon (DAPO uses 0.28)
  num_iterations: number; // 4 updates per batch of rollouts (TRL's 1: see GROUP_ITERATIONS)
  mask_truncated_completions: boolean; // false
  // ---- PPO, GRPO and RLOO: TRL's early-stopping guard (the names of TRL's older PPOConfig, whose PPO had it; its rewritten PPO trainer does not) ----
  early_stopping: boolean; // true here (TRL's default is false: see EARLY_STOPPING)
  target_kl: number; // 4 (TRL's 1: see EARLY_STOPPING): a step's remaining updates are skipped once approx KL > 1.5 x target_kl
}

export type TrainInput = Partial<TrainConfig>;

// ---- defaults for small models ----
// InstructGPT's hyperparameters are for models 4096 wide (its 1.3B and 6B) and datasets of 13k
// demonstrations and 33k comparisons. The playground trains models 128 (the built-in one) to 1024 wide
// on a few hundred of a person's rankings, and with the paper's values nothing moves: measured with the
// efficacy experiment (rlhf-playground experiment) on the built-in model, the reward model's held-out
// accuracy stayed at chance after 4 steps of lr 9e-6, and PPO (lr 1e-5, 16 steps) and DPO (9e-6, one
// pass) won 49% and 47% against the SFT model with 0.06 and 0.27 nats of KL. Two rules fix that:
//  - the learning rate is scaled by width, 4096 / hidden (at most 32x, at least 1x): Adam's best step
//    size falls about as 1 / width (the rule muP makes exact), so a 128-wide model gets 32x the paper's
//    value and GPT-2 (768) 5.3x, i.e. 5e-5, the usual rate for fine-tuning it;
//  - the passes over the data follow its size (autoEpochs): at least 32 optimizer steps, at most 8 passes.
//    The paper's one pass over 33k comparisons is hundreds of steps; one pass over 200 comparisons is 4.

/** The paper's (full fine-tuning) or LoRA's usual learning rate for a 4096-wide model, per stage. */
const BASE_LR = {
  // InstructGPT: SFT 9.65e-6 (1.3B, 6B); RM 9e-6 (6B); PPO 9.65e-6 (1.3B, 6B). DPO has no InstructGPT
  // value (TRL's default is 1e-6, for 7B-class models); measured on the built-in model (cheerful labeler,
  // 200 comparisons), the RM's 9e-6 (2.9e-4 there) won 63% against SFT at 1.1 nats of KL after 75
  // steps, 1e-3 there 87% at 34 nats after 50: DPO gets 3e-5 (9.6e-4 there)
  // GRPO and RLOO take PPO's rates: TRL's 1e-6 default is for full fine-tuning of 7B-class models.
  // The reward model gets 3.1e-5, not the paper's 9e-6 (measured on the built-in model, 200 comparisons,
  // seed 1, held-out pair accuracy against each labeler's noise-free order): 9e-6 (2.9e-4 there) ranked
  // 0.823 / 0.658 / 0.588 (cheerful / concise / thorough), 3.1e-5 (9.9e-4 there) 0.843 / 0.723 / 0.633,
  // 6.2e-5 0.788 for cheerful, 3.1e-6 0.603 / 0.552 (concise / thorough); more passes, a batch of 4 and
  // LoRA r 8 did not do better (README, Does it align?)
  full: { sft: 9.65e-6, rm: 3.1e-5, dpo: 3e-5, ppo: 9.65e-6, grpo: 9.65e-6, rloo: 9.65e-6 },
  // LoRA's usual rates on 7B-class models (PEFT's and TRL's examples): 2e-4 for SFT, 1e-4 for the rest
  lora: { sft: 2e-4, rm: 1e-4, dpo: 1e-4, ppo: 1e-4, grpo: 1e-4, rloo: 1e-4 },
} as const;

/** The width factor of the learning rates: 4096 / hidden, within [1, 32]. */
export const widthScale = (hidden: number): number => Math.min(32, Math.max(1, 4096 / hidden));

/** The default learning rate of `stage` for a model `hidden` wide. */
export function defaultLr(stage: Stage, lora: boolean, hidden: number): number {
  return Number((BASE_LR[lora ? 'lora' : 'full'][stage] * widthScale(hidden)).toPrecision(2));
}

/** Fewest optimizer steps and most passes of epochs = 0 (auto). */
export const AUTO_EPOCHS = { minSteps: 32, maxEpochs: 8 };

/** Passes over data that make `perEpoch` steps each, for epochs = 0: enough for 32 steps, at most 8. */
export function autoEpochs(perEpoch: number): number {
  return Math.min(AUTO_EPOCHS.maxEpochs, Math.max(1, Math.ceil(AUTO_EPOCHS.minSteps / Math.max(1, perEpoch))));
}

/** The passes a run of `c` makes over data of `perEpoch` steps each (before `steps` overrides them). */
export const epochsFor = (c: TrainConfig, perEpoch: number): number => c.epochs || autoEpochs(perEpoch);

/** A run's optimizer steps over data of `perEpoch` steps per pass: `steps` when set (Hugging Face's max_steps overrides the epochs), else the passes'. */
export const stepsFor = (c: TrainConfig, perEpoch: number): number => c.steps || epochsFor(c, perEpoch) * perEpoch;

// PPO, measured the same way (cheerful labeler, 200 comparisons, lr 3e-4, 32 steps): one pass over each
// batch of rollouts won 69% against the SFT model at 17 nats of KL; four passes (TRL's num_ppo_epochs)
// 94% at 35 nats with the paper's kl_coef 0.02, and 82% at 22 nats with 0.2. Those reward models scored
// their samples with a standard deviation of about 5.6, so the coefficient leashed little. Since the
// reward model is normalised (its samples score with standard deviation 1: RewardTrainer.normalize), the
// coefficient is per unit of that spread. Measured on the normalised scale (same labeler, seed 1; win
// rate judged / expected from the labeler's odds, KL in nats): 0.2 -> 0.55 / 0.61 at 5.3; 0.1 -> 0.67 /
// 0.75 at 13.7; 0.05 -> 0.79 / 0.85 at 17.0, against the unnormalised 0.2's 0.82 / 0.83 at 21.9. So 0.05:
// as far as 0.2 went before in expectation, for less KL. None reaches 0.8 at 10 nats.
/**
 * TRL's early-stopping guard, on by default here (TRL's older PPOConfig had early_stopping false, target_kl 1; its rewritten PPO trainer has no such guard): the
 * playground runs 4 passes over each batch (PPO_EPOCHS, GROUP_ITERATIONS) with learning rates scaled up for
 * small models, where one bad batch can throw the policy far from the one that sampled; the guard stops the
 * step's updates once their approx KL to that policy exceeds 1.5 x target_kl, and says so in the metrics
 * (policy/early_stop). target_kl is 4, not TRL's 1: in the experiment's PPO runs on the built-in model
 * (2026-12-04, three labelers, 32 steps each) policy/approxkl_avg, the mean over a step's 4 passes, was
 * 0.08-0.10 on average and up to 0.80, so a later pass of a healthy step can pass 1.5; 6 catches only a
 * policy that runs away.
 */
export const EARLY_STOPPING = true;
export const TARGET_KL = 4;

/** Passes over each batch of rollouts (PpoTrainer's own default, PPO_DEFAULTS, is 1; TRL's num_ppo_epochs is 4). */
const PPO_EPOCHS = 4;
/** The KL penalty's coefficient on the normalised reward (the paper's: 0.02, on a scale it does not give). */
const PPO_KL_COEF = 0.05;

// GRPO's num_generations is 4 here (TRL's 8): a step costs prompts x G rollouts to decode and to train
// on, and 4 prompts x 4 samples keeps a GRPO step the size of a PPO step (16 rollouts), which fits the
// memory of a laptop GPU for GPT-2 124M; three other samples still give each one a baseline. RLOO's is
// TRL's 2 ("which of these two is better"), over 8 prompts: the same 16 rollouts.
const GROUP_SIZE = { grpo: 4, rloo: 2 } as const;
// Updates per batch of completions: TRL's num_iterations is 1. Measured on the built-in model (GRPO, LoRA
// rank 8, max_words:8, 12 steps of 4 prompts x 4, beta 0.04, llvmpipe): with 1 the reward went 0.38 ->
// 0.52 and back (flat within noise), with 4 0.38 -> 0.73 (last three steps) at 0.30 nats per token of KL,
// and the wall time hardly changed (2m46s vs 2m26s): decoding the completions costs more than the
// updates. So 4, as PPO's passes over its rollouts (TRL's num_ppo_epochs); the clipped ratio keeps the
// later passes near the policy that sampled.
const GROUP_ITERATIONS = 4;

/** What the defaults depend on: the model's positions (seqLen) and its width (the learning rates). */
export interface ModelShape { maxPositions: number; hidden: number }

/** Fills the defaults of `stage` for `model` (a ModelConfig or the worker's ModelInfo), and checks the values. */
export function resolveConfig(stage: Stage, input: TrainInput, model: ModelShape): TrainConfig {
  const { maxPositions } = model;
  const rank = input.loraRank ?? 0, lora = rank > 0;
  const lr = defaultLr(stage, lora, model.hidden);
  const c: TrainConfig = {
    seed: 0, epochs: 0, steps: 0, batchSize: stage === 'ppo' || stage === 'grpo' ? 4 : 8, seqLen: Math.min(256, maxPositions),
    lr, weightDecay: stage === 'dpo' || isOnline(stage) ? 0 : 0.1, maxGradNorm: 1, beta1: 0.9, beta2: 0.95, eps: 1e-8,
    warmupRatio: stage === 'dpo' ? 0.1 : 0.03, minLrRatio: 0.1, headLrRatio: 1,
    loraRank: rank, loraAlpha: 2 * rank, loraDropout: isOnline(stage) ? 0 : 0.05,
    checkpointEvery: 0, onNonFinite: 'skip',
    beta: stage === 'grpo' ? 0 : stage === 'rloo' ? 0.05 : 0.1,
    rewardRunId: '', numSamples: isGroup(stage) ? GROUP_SIZE[stage] : PPO_DEFAULTS.numSamples, maxNewTokens: PPO_DEFAULTS.maxNewTokens, temperature: PPO_DEFAULTS.temperature,
    kl_coef: PPO_KL_COEF, kl_target: PPO_DEFAULTS.kl_target, cliprange: PPO_DEFAULTS.cliprange, cliprange_value: PPO_DEFAULTS.cliprange_value,
    vf_coef: PPO_DEFAULTS.vf_coef, gamma: PPO_DEFAULTS.gamma, lam: PPO_DEFAULTS.lam, ppo_epochs: PPO_EPOCHS, minibatches: PPO_DEFAULTS.minibatches,
    ptx_coef: 0, ema_decay: 0,
    reward_funcs: [], reward_module: '', reward_weights: [], scale_rewards: 'group', loss_type: 'dapo', normalize_advantages: false,
    epsilon: 0.2, epsilon_high: 0, num_iterations: GROUP_ITERATIONS, mask_truncated_completions: false,
    early_stopping: EARLY_STOPPING, target_kl: TARGET_KL,
    ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
  };
  const bad = (k: keyof TrainConfig, rule: string) => {
    throw new Error(`config.${k}: ${JSON.stringify(c[k])} is not ${rule}`);
  };
  const int = (k: keyof TrainConfig, min: number) => (Number.isInteger(c[k]) && (c[k] as number) >= min) || bad(k, `an integer >= ${min}`);
  const pos = (k: keyof TrainConfig) => (typeof c[k] === 'number' && Number.isFinite(c[k]) && (c[k] as number) > 0) || bad(k, 'a finite number > 0');
  const nonneg = (k: keyof TrainConfig) => (typeof c[k] === 'number' && Number.isFinite(c[k]) && (c[k] as number) >= 0) || bad(k, 'a finite number >= 0');
  int('seed', 0); int('epochs', 0); int('steps', 0); int('batchSize', 1); int('seqLen', 4); int('loraRank', 0); int('checkpointEvery', 0);
  pos('lr'); pos('eps'); if (isGroup(stage)) nonneg('beta'); else pos('beta'); nonneg('weightDecay'); nonneg('maxGradNorm'); nonneg('warmupRatio'); nonneg('minLrRatio'); nonneg('loraAlpha'); pos('headLrRatio');
  if (!(c.loraDropout >= 0 && c.loraDropout < 1)) bad('loraDropout', 'in [0, 1)');
  if (c.seqLen > maxPositions) bad('seqLen', `within the model's ${maxPositions} positions`);
  if (c.onNonFinite !== 'skip' && c.onNonFinite !== 'stop') bad('onNonFinite', "'skip' or 'stop'");
  if (isOnline(stage)) {
    if (typeof c.early_stopping !== 'boolean') bad('early_stopping', 'true or false');
    pos('target_kl');
  }
  if (stage === 'ppo') {
    int('numSamples', 1); int('maxNewTokens', 1); int('ppo_epochs', 1); int('minibatches', 1); nonneg('ptx_coef');
    if (!(c.ema_decay >= 0 && c.ema_decay < 1)) bad('ema_decay', 'in [0, 1)');
    if (c.numSamples > 9) bad('numSamples', 'at most 9');
    if (!c.rewardRunId) bad('rewardRunId', 'the id of a reward-model run');
  }
  if (isGroup(stage)) {
    int('numSamples', stage === 'rloo' ? 2 : 1); int('maxNewTokens', 1); int('num_iterations', 1); pos('temperature');
    if (c.numSamples > 16) bad('numSamples', 'at most 16');
    if (!(c.epsilon > 0 && c.epsilon < 1)) bad('epsilon', 'in (0, 1)');
    nonneg('epsilon_high');
    if (!SCALE_REWARDS.includes(c.scale_rewards)) bad('scale_rewards', SCALE_REWARDS.map((x) => `'${x}'`).join(', '));
    if (!LOSS_TYPES.includes(c.loss_type)) bad('loss_type', LOSS_TYPES.map((x) => `'${x}'`).join(', '));
    if (!Array.isArray(c.reward_funcs) || c.reward_funcs.some((x) => typeof x !== 'string' || !x)) bad('reward_funcs', 'a list of reward function names');
    if (typeof c.reward_module !== 'string') bad('reward_module', 'the source of a JavaScript module');
    if (!c.reward_funcs.length && !c.rewardRunId) bad('reward_funcs', 'given: GRPO and RLOO need reward functions, a reward model (rewardRunId), or both');
    const n = c.reward_funcs.length + (c.rewardRunId ? 1 : 0);
    if (!Array.isArray(c.reward_weights) || c.reward_weights.some((x) => typeof x !== 'number' || !Number.isFinite(x))) bad('reward_weights', 'a list of finite numbers');
    if (c.reward_weights.length && c.reward_weights.length !== n) bad('reward_weights', `one weight per reward function (${n})`);
    if (typeof c.normalize_advantages !== 'boolean') bad('normalize_advantages', 'true or false');
    if (typeof c.mask_truncated_completions !== 'boolean') bad('mask_truncated_completions', 'true or false');
  }
  return c;
}
