// The training options, in one table: for every TrainConfig field its type, its default (per stage where
// it differs, or a function of the model's shape for the learning rate and the sequence length), one help
// line, its group, its command-line flag, its name in TRL (where TRL has the same setting) and its label on
// the page and in the model card. Everything else derives from it:
//   - resolveConfig (src/shared/config.ts): the defaults of a stage for a model, then the input over them;
//   - the CLI's training flags and each stage's --help (src/cli/train.ts: stageFlags here);
//   - the Train tab's form (src/ui/train-view.ts: formFields here);
//   - the model card's hyperparameter list (src/io/model-card.ts: cardRows here);
//   - PpoTrainer's own defaults (src/train/ppo-defaults.ts) where they are the same setting.
// Pure data and arithmetic: the page imports it without the GPU code.
//
// Names: TrainConfig mixes camelCase (the playground's first fields) and TRL's snake_case (the PPO, GRPO
// and RLOO fields, named after TRL's configs). The stored runs and checkpoints keep their configs under
// these names, so they stay; `trl` gives each one's TRL (or transformers TrainingArguments) name.
//
// Help lines may name another option as {key}: the CLI writes its flag (--epochs), the page its label.
import type { TrainConfig } from './config.ts';

/** GRPO's reward scaling and loss normalisations (TRL's scale_rewards and loss_type); the math is src/train/grpo-math.ts. */
export type ScaleRewards = 'group' | 'batch' | 'none';
export type LossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';
export const SCALE_REWARDS: readonly ScaleRewards[] = ['group', 'batch', 'none'];
export const LOSS_TYPES: readonly LossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo'];
/** DPO's pairwise losses (TRL's DPOConfig loss_type; the math is src/train/dpo-math.ts). */
export type DpoLossType =
  'sigmoid' | 'hinge' | 'ipo' | 'robust' | 'exo_pair' | 'nca_pair' | 'bco_pair' | 'sppo_hard' | 'apo_zero' | 'apo_down' | 'sigmoid_norm' | 'sft';
export const DPO_LOSS_TYPES: readonly DpoLossType[] = [
  'sigmoid',
  'hinge',
  'ipo',
  'robust',
  'exo_pair',
  'nca_pair',
  'bco_pair',
  'sppo_hard',
  'apo_zero',
  'apo_down',
  'sigmoid_norm',
  'sft',
];

/** The loss types a comma-separated `lossType` names, each checked; the error names the bad one. */
export function dpoLossTypes(lossType: string): DpoLossType[] {
  const types = lossType.split(',').map((x) => x.trim());
  for (const t of types)
    if (!(DPO_LOSS_TYPES as readonly string[]).includes(t))
      throw new Error(`DPO loss type '${t}' is not one of ${DPO_LOSS_TYPES.map((x) => `'${x}'`).join(', ')}`);
  if (new Set(types).size !== types.length) throw new Error(`DPO loss type '${lossType}' names a loss twice`);
  return types as DpoLossType[];
}

/** The label smoothing each loss reads: robust and exo_pair only. */
export const READS_LABEL_SMOOTHING: readonly DpoLossType[] = ['robust', 'exo_pair'];

export type Stage = 'sft' | 'rm' | 'dpo' | 'ppo' | 'grpo' | 'rloo';
export const STAGES: readonly Stage[] = ['sft', 'rm', 'dpo', 'ppo', 'grpo', 'rloo'];
/** The online stages: they sample from the policy at every step and train on prompts. */
export const ONLINE: readonly Stage[] = ['ppo', 'grpo', 'rloo'];
export const isOnline = (s: Stage): boolean => ONLINE.includes(s);
/** GRPO and RLOO: a baseline from the other samples of the prompt, no value model. */
export const isGroup = (s: Stage): s is 'grpo' | 'rloo' => s === 'grpo' || s === 'rloo';
const GROUP: readonly Stage[] = ['grpo', 'rloo'];

/** What the defaults depend on: the model's positions (seqLen) and its width (the learning rates). */
export interface ModelShape {
  maxPositions: number;
  hidden: number;
}

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

/**
 * The sequence length's default: min(SEQ_LEN, the model's positions). PpoTrainer's own table
 * (PPO_DEFAULTS) said 128 while resolveConfig gave 256; resolveConfig's wins, since it is what every run
 * of the page, the CLI and the experiment got (the PPO stage passes its own length to the trainer, so
 * the 128 was never a run's), and 256 positions hold a prompt and a 32-token completion of the
 * playground's data with room to spare.
 */
export const SEQ_LEN = 256;

// PPO, measured the same way (cheerful labeler, 200 comparisons, lr 3e-4, 32 steps): one pass over each
// batch of rollouts won 69% against the SFT model at 17 nats of KL; four passes (TRL's num_ppo_epochs)
// 94% at 35 nats with the paper's kl_coef 0.02, and 82% at 22 nats with 0.2. Those reward models scored
// their samples with a standard deviation of about 5.6, so the coefficient leashed little. Since the
// reward model is normalised (its samples score with standard deviation 1: RewardTrainer.normalize), the
// coefficient is per unit of that spread. Measured on the normalised scale (same labeler, seed 1; win
// rate judged / expected from the labeler's odds, KL in nats): 0.2 -> 0.55 / 0.61 at 5.3; 0.1 -> 0.67 /
// 0.75 at 13.7; 0.05 -> 0.79 / 0.85 at 17.0, against the unnormalised 0.2's 0.82 / 0.83 at 21.9. So 0.05:
// as far as 0.2 went before in expectation, for less KL. None reaches 0.8 at 10 nats.
/** The KL penalty's coefficient on the normalised reward (the paper's: 0.02, on a scale it does not give). */
export const PPO_KL_COEF = 0.05;
/** Passes over each batch of rollouts (PpoTrainer's own default, PPO_DEFAULTS, is 1; TRL's num_ppo_epochs is 4). */
export const PPO_EPOCHS = 4;

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

// ---------------------------------------------------------------------------------------------
// The schema

/** What a default may depend on: the stage, the LoRA rank given (0 = full fine-tuning) and the model. */
export interface DefaultContext {
  stage: Stage;
  rank: number;
  shape: ModelShape;
}

/** Where an option sits: the CLI's and the form's order follows the table, the group says what it is about. */
export type OptionGroup = 'schedule' | 'optimizer' | 'lora' | 'run' | 'preference' | 'ppo' | 'group' | 'online';

/** A value that may differ per stage: one for all, or a function of the stage. */
type ByStage<T> = T | ((stage: Stage) => T);

export interface OptionSpec<K extends keyof TrainConfig = keyof TrainConfig> {
  key: K;
  /** 'int' and 'number' are numbers (the rules are resolveConfig's); 'numbers' a list of them; 'strings' a list of names. */
  type: 'int' | 'number' | 'bool' | 'string' | 'numbers' | 'strings';
  /** The values a string option takes (a select on the page), per stage where they differ. */
  choices?: ByStage<readonly string[]>;
  default: TrainConfig[K] | ((x: DefaultContext) => TrainConfig[K]);
  group: OptionGroup;
  /** The stages that read it; absent: every stage. Only these get its flag and its field. */
  stages?: readonly Stage[];
  help: ByStage<string>;
  /** The default in words, where its value alone does not say it (the CLI's "(default: ...)", and the form's help after the line). */
  defaultText?: string;
  /** The command-line flag (commander's spelling, with aliases: '--max-steps, --steps <N>'); absent: the CLI sets it otherwise. */
  cli?: ByStage<string>;
  /** The Train tab's label; absent: not on the form. */
  label?: ByStage<string>;
  /** Under the form's "Advanced" (for every stage, or for those listed). */
  advanced?: boolean | readonly Stage[];
  /** The form's placeholder for an empty list. */
  placeholder?: string;
  /** TRL's (or transformers TrainingArguments') name for the same setting, per stage where it differs; absent: TRL has none. */
  trl?: ByStage<string | undefined>;
  /** The model card's label; absent: not listed on the card. */
  card?: ByStage<string>;
}

/** One entry, its default typed by its key's field. */
type AnyOption = { [K in keyof TrainConfig]: OptionSpec<K> }[keyof TrainConfig];

const byStage = <T>(x: ByStage<T>, stage: Stage): T => (typeof x === 'function' ? (x as (s: Stage) => T)(stage) : x);
/** A default (or any value) that differs on some stages: `otherwise` elsewhere. */
const perStage =
  <T>(otherwise: T, on: Partial<Record<Stage, T>>) =>
  ({ stage }: { stage: Stage }): T =>
    stage in on ? on[stage]! : otherwise;

const BATCH_OF: Record<Stage, string> = { sft: 'demonstrations', rm: 'rankings', dpo: 'preference pairs', ppo: 'prompts', grpo: 'prompts', rloo: 'prompts' };

/** Every training option, in the order the CLI's --help and the Train form list them (the form: its plain fields, then Advanced). */
export const OPTIONS: readonly AnyOption[] = [
  // ---- data and schedule ----
  // 0 = auto (TRL's num_train_epochs is 3): see AUTO_EPOCHS
  {
    key: 'epochs',
    type: 'int',
    default: 0,
    group: 'schedule',
    cli: '--epochs <E>',
    label: 'epochs',
    trl: 'num_train_epochs',
    card: 'epochs',
    help: 'passes over the data',
    defaultText: `0 = auto: passes for at least ${AUTO_EPOCHS.minSteps} steps, at most ${AUTO_EPOCHS.maxEpochs}`,
  },
  // Hugging Face's max_steps: when set it overrides the epochs (TRL's -1 = unset is 0 here)
  {
    key: 'steps',
    type: 'int',
    default: 0,
    group: 'schedule',
    cli: '--max-steps, --steps <N>',
    label: 'steps',
    trl: 'max_steps',
    card: 'step cap',
    help: "optimizer steps (Hugging Face's max_steps): overrides {epochs}, cycling through the data as often as needed; 0 = what the epochs give",
  },
  // 8, but PPO's and GRPO's 4 prompts (x 4 samples: 16 rollouts a step); RLOO's 8 prompts x 2. TRL's
  // per_device_train_batch_size counts examples offline, and completions (prompts x num_generations) online.
  {
    key: 'batchSize',
    type: 'int',
    default: perStage(8, { ppo: 4, grpo: 4 }),
    group: 'schedule',
    cli: '--batch-size <B>',
    label: 'batch size',
    card: 'batch size',
    trl: (s) => (isOnline(s) ? undefined : 'per_device_train_batch_size'),
    help: (s) => `${BATCH_OF[s]} per optimizer step`,
  },
  {
    key: 'lr',
    type: 'number',
    default: ({ stage, rank, shape }) => defaultLr(stage, rank > 0, shape.hidden),
    group: 'optimizer',
    cli: '--lr <X>',
    label: 'learning rate',
    trl: 'learning_rate',
    card: 'learning rate',
    help: 'peak learning rate (AdamW, warmup then cosine decay); adapters take larger ones than full fine-tuning',
  },
  {
    key: 'loraRank',
    type: 'int',
    default: 0,
    group: 'lora',
    cli: '--lora-rank <R>',
    label: 'LoRA rank',
    trl: 'lora_r',
    card: 'LoRA rank',
    help: 'train a LoRA adapter of this rank (written as a PEFT adapter); 0 = full fine-tuning (far more memory; PPO needs LoRA)',
  },
  {
    key: 'seqLen',
    type: 'int',
    default: ({ shape }) => Math.min(SEQ_LEN, shape.maxPositions),
    group: 'schedule',
    cli: '--seq-len <T>',
    label: 'sequence length',
    card: 'sequence length',
    trl: (s) => (isOnline(s) ? undefined : 'max_length'),
    help: 'prompt + completion tokens per example; longer text is cut',
  },
  // ---- PPO, GRPO and RLOO: sampling ----
  {
    key: 'rewardRunId',
    type: 'string',
    default: '',
    group: 'online',
    stages: ONLINE,
    trl: (s) => (isGroup(s) ? 'reward_model_name_or_path' : undefined),
    label: (s) => (s === 'ppo' ? 'reward model' : 'reward model (optional)'),
    help: (s) =>
      s === 'ppo'
        ? 'a finished LoRA reward-model run on this model: it scores the samples'
        : 'a finished LoRA reward-model run on this model, scoring beside the reward functions (as reward_model); none: the functions alone',
  },
  {
    key: 'klCoef',
    type: 'number',
    default: PPO_KL_COEF,
    group: 'ppo',
    stages: ['ppo'],
    cli: '--kl-coef <C>',
    label: 'KL coefficient',
    trl: 'kl_coef',
    card: 'KL coefficient',
    help: 'per-token KL penalty to the reference (the starting model): the leash',
  },
  // PPO 4 rollouts per prompt; GRPO / RLOO: TRL's num_generations (GROUP_SIZE)
  {
    key: 'numSamples',
    type: 'int',
    default: ({ stage }) => (isGroup(stage) ? GROUP_SIZE[stage] : 4),
    group: 'online',
    stages: ONLINE,
    cli: (s) => (s === 'ppo' ? '--num-samples <K>' : '--num-generations <G>'),
    label: (s) => (s === 'ppo' ? 'samples per prompt' : 'completions per prompt'),
    trl: (s) => (isGroup(s) ? 'num_generations' : undefined),
    card: (s) => (s === 'ppo' ? 'samples per prompt' : 'completions per prompt'),
    help: (s) =>
      s === 'ppo'
        ? 'rollouts sampled per prompt at each step (1 to 9)'
        : "G, completions sampled per prompt at each step: the group whose other members are each one's baseline (GRPO 1 to 16, RLOO 2 to 16)",
  },
  // 32 (TRL's max_completion_length; its older PPOConfig's response_length)
  {
    key: 'maxNewTokens',
    type: 'int',
    default: 32,
    group: 'online',
    stages: ONLINE,
    cli: (s) => (s === 'ppo' ? '--max-new-tokens <N>' : '--max-completion-length, --max-new-tokens <N>'),
    label: (s) => (s === 'ppo' ? 'max new tokens' : 'max completion length'),
    trl: (s) => (isGroup(s) ? 'max_completion_length' : 'response_length'),
    card: (s) => (s === 'ppo' ? 'max new tokens' : 'max completion length'),
    help: 'tokens per completion at most',
  },
  // ---- DPO, GRPO, RLOO ----
  // DPO 0.1 (the DPO paper's and TRL's); GRPO 0 (TRL's: no KL term, no reference pass); RLOO 0.05 (TRL's)
  {
    key: 'beta',
    type: 'number',
    default: perStage(0.1, { grpo: 0, rloo: 0.05 }),
    group: 'preference',
    stages: ['dpo', 'grpo', 'rloo'],
    cli: '--beta <B>',
    trl: 'beta',
    label: (s) => (s === 'dpo' ? 'beta' : 'beta (KL)'),
    card: (s) => (s === 'dpo' ? 'DPO beta' : 'KL coefficient (beta)'),
    help: (s) =>
      s === 'dpo'
        ? "DPO's beta: how tightly the policy is held to the reference (the starting model); lower lets it move further"
        : s === 'grpo'
          ? 'KL coefficient (k3 estimator, per token) to the reference, the starting model; 0 = no KL term and no reference pass'
          : "KL coefficient: beta x the completion's KL to the reference (the starting model) is taken off its reward",
  },
  // ---- optimizer (AdamW, warmup + cosine decay) ----
  {
    key: 'seed',
    type: 'int',
    default: 0,
    group: 'run',
    cli: '--seed <S>',
    label: 'seed',
    advanced: true,
    trl: 'seed',
    card: 'seed',
    help: (s) => `data order, adapter and head initialisation${isOnline(s) ? ', sampling' : ''}: same seed, same run`,
  },
  // 0.1 (InstructGPT's); DPO and the online stages 0 (TRL's)
  {
    key: 'weightDecay',
    type: 'number',
    default: ({ stage }) => (stage === 'dpo' || isOnline(stage) ? 0 : 0.1),
    group: 'optimizer',
    cli: '--weight-decay <W>',
    label: 'weight decay',
    advanced: true,
    trl: 'weight_decay',
    card: 'weight decay',
    help: "AdamW's pull of the weights toward zero",
  },
  {
    key: 'maxGradNorm',
    type: 'number',
    default: 1,
    group: 'optimizer',
    cli: '--max-grad-norm <N>',
    label: 'max gradient norm',
    advanced: true,
    trl: 'max_grad_norm',
    card: 'gradient clip norm',
    help: 'larger gradients are scaled down to this norm; 0 = no clipping',
  },
  // 0.03 of the steps (DPO 0.1, TRL's DPO examples')
  {
    key: 'warmupRatio',
    type: 'number',
    default: perStage(0.03, { dpo: 0.1 }),
    group: 'optimizer',
    cli: '--warmup-ratio <X>',
    label: 'warmup ratio',
    advanced: true,
    trl: 'warmup_ratio',
    card: 'warmup ratio',
    help: 'share of the steps over which the learning rate ramps up',
  },
  // the cosine's floor; transformers' cosine_with_min_lr takes it as lr_scheduler_kwargs.min_lr_rate
  {
    key: 'minLrRatio',
    type: 'number',
    default: 0.1,
    group: 'optimizer',
    cli: '--min-lr-ratio <X>',
    label: 'min lr ratio',
    advanced: true,
    help: 'where the cosine decay ends, as a share of the learning rate',
  },
  {
    key: 'headLrRatio',
    type: 'number',
    default: 1,
    group: 'optimizer',
    stages: ['rm'],
    cli: '--head-lr-ratio <X>',
    label: 'head lr ratio',
    advanced: true,
    help: "the score head's learning rate over the rest of the model's ({lr}); 1 = the same",
  },
  // 0.9, 0.95 (GPT-3 / InstructGPT), 1e-8
  {
    key: 'beta1',
    type: 'number',
    default: 0.9,
    group: 'optimizer',
    cli: '--adam-beta1 <B>',
    label: 'Adam beta1',
    advanced: true,
    trl: 'adam_beta1',
    help: 'momentum of the gradient average',
  },
  {
    key: 'beta2',
    type: 'number',
    default: 0.95,
    group: 'optimizer',
    cli: '--adam-beta2 <B>',
    label: 'Adam beta2',
    advanced: true,
    trl: 'adam_beta2',
    help: 'momentum of the squared-gradient average',
  },
  {
    key: 'eps',
    type: 'number',
    default: 1e-8,
    group: 'optimizer',
    cli: '--adam-epsilon <E>',
    label: 'Adam epsilon',
    advanced: true,
    trl: 'adam_epsilon',
    help: 'keeps the update finite where gradients are tiny',
  },
  // ---- LoRA ----
  {
    key: 'loraAlpha',
    type: 'number',
    default: ({ rank }) => 2 * rank,
    group: 'lora',
    cli: '--lora-alpha <A>',
    label: 'LoRA alpha',
    advanced: true,
    trl: 'lora_alpha',
    card: 'LoRA alpha',
    help: 'scale of the adapter: the update is scaled by alpha / rank',
  },
  // 0.05 (PEFT's examples); the online stages 0: their policy samples and trains in the same step
  {
    key: 'loraDropout',
    type: 'number',
    default: ({ stage }) => (isOnline(stage) ? 0 : 0.05),
    group: 'lora',
    cli: '--lora-dropout <P>',
    label: 'LoRA dropout',
    advanced: true,
    trl: 'lora_dropout',
    card: 'LoRA dropout',
    help: "dropout on the adapter's input while training",
  },
  // ---- run control ----
  {
    key: 'checkpointEvery',
    type: 'int',
    default: 0,
    group: 'run',
    cli: '--checkpoint-every <N>',
    label: 'checkpoint every',
    advanced: true,
    trl: 'save_steps',
    help: 'also checkpoint every N steps (the CLI: checkpoint.safetensors; the page: the browser storage); 0 = only at the end and when stopped',
  },
  {
    key: 'onNonFinite',
    type: 'string',
    choices: ['skip', 'stop'],
    default: 'skip',
    group: 'run',
    cli: '--on-non-finite <A>',
    label: 'on NaN/Inf gradient',
    advanced: true,
    help: "a NaN or Inf gradient: 'skip' that step (weights untouched) or 'stop' the run as failed",
  },
  // ---- PPO, GRPO and RLOO: the sampling temperature (here so that PPO's, under Advanced, comes after the run control, and GRPO's and RLOO's last of the plain fields) ----
  {
    key: 'temperature',
    type: 'number',
    default: 1,
    group: 'online',
    stages: ONLINE,
    cli: '--temperature <T>',
    label: 'temperature',
    advanced: ['ppo'],
    trl: 'temperature',
    card: 'sampling temperature',
    help: 'sampling temperature of the completions; lower samples them more alike',
  },
  // ---- PPO (TRL's older PPOConfig names) ----
  {
    key: 'klTarget',
    type: 'number',
    default: 0,
    group: 'ppo',
    stages: ['ppo'],
    cli: '--kl-target <X>',
    label: 'KL target',
    advanced: true,
    card: 'KL target (0 = fixed coefficient)',
    help: 'nats per completion; > 0 adapts the KL coefficient toward it, 0 keeps it fixed',
  },
  {
    key: 'cliprange',
    type: 'number',
    default: 0.2,
    group: 'ppo',
    stages: ['ppo'],
    cli: '--cliprange <X>',
    label: 'clip range',
    advanced: true,
    trl: 'cliprange',
    card: 'policy clip range',
    help: "how far one update may move the policy's probability ratio from 1",
  },
  {
    key: 'cliprangeValue',
    type: 'number',
    default: 0.2,
    group: 'ppo',
    stages: ['ppo'],
    cli: '--cliprange-value <X>',
    label: 'value clip range',
    advanced: true,
    trl: 'cliprange_value',
    card: 'value clip range',
    help: 'the same for the value model',
  },
  {
    key: 'vfCoef',
    type: 'number',
    default: 0.1,
    group: 'ppo',
    stages: ['ppo'],
    cli: '--vf-coef <X>',
    label: 'value loss weight',
    advanced: true,
    trl: 'vf_coef',
    card: 'value loss coefficient',
    help: "scale of the value model's loss",
  },
  {
    key: 'gamma',
    type: 'number',
    default: 1,
    group: 'ppo',
    stages: ['ppo'],
    cli: '--gamma <X>',
    label: 'gamma',
    advanced: true,
    trl: 'gamma',
    card: 'gamma',
    help: 'discount over completion tokens (1: none)',
  },
  {
    key: 'lam',
    type: 'number',
    default: 0.95,
    group: 'ppo',
    stages: ['ppo'],
    cli: '--lam <X>',
    label: 'GAE lambda',
    advanced: true,
    trl: 'lam',
    card: 'GAE lambda',
    help: 'bias/variance trade-off of the advantages',
  },
  // 4 (TRL's num_ppo_epochs; PpoTrainer's own default is 1: see PPO_EPOCHS)
  {
    key: 'ppoEpochs',
    type: 'int',
    default: PPO_EPOCHS,
    group: 'ppo',
    stages: ['ppo'],
    cli: '--num-ppo-epochs, --ppo-epochs <N>',
    label: 'PPO epochs',
    advanced: true,
    trl: 'num_ppo_epochs',
    card: 'PPO epochs',
    help: 'passes over each batch of rollouts',
  },
  {
    key: 'minibatches',
    type: 'int',
    default: 1,
    group: 'ppo',
    stages: ['ppo'],
    cli: '--num-mini-batches, --minibatches <N>',
    label: 'minibatches',
    advanced: true,
    trl: 'num_mini_batches',
    card: 'minibatches',
    help: 'updates per pass over a batch of rollouts',
  },
  {
    key: 'ptxCoef',
    type: 'number',
    default: 0,
    group: 'ppo',
    stages: ['ppo'],
    cli: '--ptx-coef <G>',
    label: 'pretraining mix (ptx)',
    advanced: true,
    card: 'pretraining-mix (PPO-ptx) coefficient',
    help: 'PPO-ptx: weight of an SFT loss on the {"prompt","completion"} records given with the prompts, to keep what SFT taught; 0 = plain PPO',
  },
  // ---- PPO, GRPO and RLOO: TRL's early-stopping guard (the names of TRL's older PPOConfig, whose PPO had it; its rewritten PPO trainer does not) ----
  {
    key: 'targetKl',
    type: 'number',
    default: TARGET_KL,
    group: 'online',
    stages: ONLINE,
    cli: '--target-kl <X>',
    label: 'target KL',
    advanced: true,
    trl: (s) => (s === 'ppo' ? 'target_kl' : undefined),
    card: 'early-stopping target KL',
    help: "early stopping: a step's updates stop once their approx KL to the policy that sampled exceeds 1.5 x this",
  },
  {
    key: 'earlyStopping',
    type: 'bool',
    default: EARLY_STOPPING,
    group: 'online',
    stages: ONLINE,
    cli: '--no-early-stopping',
    label: 'early stopping',
    advanced: true,
    trl: (s) => (s === 'ppo' ? 'early_stopping' : undefined),
    card: 'early stopping',
    help: "TRL's early-stopping guard on a step's updates ({targetKl}); off lets every update run",
  },
  // 0 = off; the paper's EMA of the policy used 0.992
  {
    key: 'emaDecay',
    type: 'number',
    default: 0,
    group: 'ppo',
    stages: ['ppo'],
    cli: '--ema-decay <D>',
    label: 'EMA decay',
    advanced: true,
    card: 'policy EMA decay',
    help: "keep an average of the policy with this decay as the result (the paper's 0.992); 0 = the last iterate",
  },
  // ---- GRPO and RLOO (TRL's GRPOConfig / RLOOConfig names; num_generations is numSamples) ----
  {
    key: 'scaleRewards',
    type: 'string',
    choices: SCALE_REWARDS,
    default: 'group',
    group: 'group',
    stages: ['grpo'],
    cli: '--scale-rewards <S>',
    label: 'scale rewards',
    advanced: true,
    trl: 'scale_rewards',
    card: 'scale rewards',
    help: "advantages divided by the std of the prompt's group ('group'), of the batch ('batch'), or not at all ('none', Dr. GRPO)",
  },
  // DPO: 'sigmoid' (TRL's default, the DPO paper's). Measured on the built-in model (seed 1, 200 comparisons; README,
  // "DPO's other losses"): ipo, sigmoid_norm, LD-DPO and RPO (sigmoid,sft) did not reach 0.8 within 10 nats for
  // concise or cheerful either, and sigmoid won most for cheerful. GRPO: 'dapo' (TRL's default)
  {
    key: 'lossType',
    type: 'string',
    choices: (st) => (st === 'dpo' ? DPO_LOSS_TYPES : LOSS_TYPES),
    default: perStage<string>('dapo', { dpo: 'sigmoid' }),
    group: 'group',
    stages: ['dpo', 'grpo'],
    cli: '--loss-type <L>',
    label: 'loss type',
    advanced: true,
    trl: 'loss_type',
    card: 'loss type',
    help: (st) =>
      st === 'dpo'
        ? "the preference loss (TRL's): 'sigmoid' (DPO), 'ipo' (per-token averages held to a margin of 1 / (2 {beta})), 'hinge', 'robust' and 'exo_pair' (with {labelSmoothing}), 'nca_pair', 'bco_pair', 'sppo_hard', 'apo_zero', 'apo_down', 'sigmoid_norm', 'sft' (the chosen completions' likelihood); several joined by commas add up, weighted by {lossWeights}"
        : "how token losses are averaged: 'grpo' over each completion's tokens, then the completions; 'bnpo' and 'dapo' (TRL's default) over the batch's tokens; 'dr_grpo' by completions x max completion length",
  },
  // [] = 1 each (TRL's None)
  {
    key: 'lossWeights',
    type: 'numbers',
    default: () => [],
    group: 'preference',
    stages: ['dpo'],
    cli: '--loss-weights <W,...>',
    label: 'loss weights',
    advanced: true,
    placeholder: '1 each',
    trl: 'loss_weights',
    card: 'loss weights',
    help: 'one weight per loss of {lossType}, commas between (MPO: sigmoid,bco_pair,sft with 0.8,0.2,1; RPO: sigmoid,sft with 1,alpha); default 1 each',
  },
  // 1 = no weighting (TRL's None)
  {
    key: 'ldAlpha',
    type: 'number',
    default: 1,
    group: 'preference',
    stages: ['dpo'],
    cli: '--ld-alpha <A>',
    label: 'LD alpha',
    advanced: true,
    trl: 'ld_alpha',
    card: 'LD-DPO alpha',
    help: "LD-DPO: the tokens of the longer completion past the shorter one's length count this much in its log-probability (0 to 1; 1 = all fully, plain DPO): less reward for length alone",
  },
  // 0 (TRL's)
  {
    key: 'labelSmoothing',
    type: 'number',
    default: 0,
    group: 'preference',
    stages: ['dpo'],
    cli: '--label-smoothing <E>',
    label: 'label smoothing',
    advanced: true,
    trl: 'label_smoothing',
    card: 'label smoothing',
    help: "the share of rankings taken to be flipped: 'robust' (below 0.5; its paper suggests 0.1) and 'exo_pair' (above 0; its paper suggests 1e-3) read it",
  },
  {
    key: 'normalizeAdvantages',
    type: 'bool',
    default: false,
    group: 'group',
    stages: ['rloo'],
    cli: '--normalize-advantages',
    label: 'normalize advantages',
    advanced: true,
    trl: 'normalize_advantages',
    card: 'normalize advantages',
    help: 'whiten the advantages over the batch',
  },
  {
    key: 'epsilon',
    type: 'number',
    default: 0.2,
    group: 'group',
    stages: GROUP,
    cli: '--epsilon <E>',
    label: 'epsilon (clip)',
    advanced: true,
    trl: 'epsilon',
    card: 'epsilon (clip)',
    help: "how far one update may move a completion's probability ratio from 1: clipped below at 1 - epsilon (and above, unless {epsilonHigh} is set)",
  },
  // 0 = epsilon (TRL's None); DAPO uses 0.28
  {
    key: 'epsilonHigh',
    type: 'number',
    default: 0,
    group: 'group',
    stages: GROUP,
    cli: '--epsilon-high <E>',
    label: 'epsilon high',
    advanced: true,
    trl: 'epsilon_high',
    card: 'epsilon high',
    help: 'the ratio is clipped above at 1 + this, when it differs (DAPO: 0.28); 0 = {epsilon}',
  },
  // 4 updates per batch of rollouts (TRL's 1: see GROUP_ITERATIONS)
  {
    key: 'numIterations',
    type: 'int',
    default: GROUP_ITERATIONS,
    group: 'group',
    stages: GROUP,
    cli: '--num-iterations <N>',
    label: 'updates per batch',
    advanced: true,
    trl: 'num_iterations',
    card: 'updates per batch',
    help: 'optimizer updates on each batch of completions; the clip keeps later ones near the sampling policy',
  },
  {
    key: 'maskTruncatedCompletions',
    type: 'bool',
    default: false,
    group: 'group',
    stages: GROUP,
    cli: '--mask-truncated-completions',
    label: 'mask truncated completions',
    advanced: true,
    trl: 'mask_truncated_completions',
    help: 'leave completions cut at the length limit out of the loss',
  },
  // [] = 1 each, in the order: reward_funcs, then the reward model
  {
    key: 'rewardWeights',
    type: 'numbers',
    default: () => [],
    group: 'group',
    stages: GROUP,
    cli: '--reward-weights <W,...>',
    label: 'reward weights',
    advanced: true,
    placeholder: '1 each',
    trl: 'reward_weights',
    help: 'one weight per reward, commas between: the reward functions in order, then the reward model; default 1 each',
  },
  // the CLI sets these with --reward-fn, the page with its editor
  {
    key: 'rewardFuncs',
    type: 'strings',
    default: () => [],
    group: 'group',
    stages: GROUP,
    trl: 'reward_funcs',
    help: "the reward functions' names, besides the reward model's",
  },
  {
    key: 'rewardModule',
    type: 'string',
    default: '',
    group: 'group',
    stages: GROUP,
    help: "the page: the JavaScript module (source) that exports the reward functions, kept with the run ('' = given otherwise: the CLI's --reward-fn)",
  },
];

/** Each TrainConfig key's entry (one each: the schema test checks that every field has one). */
export const OPTION: { readonly [K in keyof TrainConfig]: OptionSpec<K> } = Object.fromEntries(OPTIONS.map((o) => [o.key, o])) as never;

/** Whether `stage` reads `o`. */
export const appliesTo = (o: OptionSpec, stage: Stage): boolean => !o.stages || o.stages.includes(stage);

/** The defaults of `stage` for a model of `shape` with LoRA rank `rank` (0 = full fine-tuning), in TrainConfig's field order. */
export function stageDefaults(stage: Stage, rank: number, shape: ModelShape): TrainConfig {
  const x: DefaultContext = { stage, rank, shape };
  const c = Object.fromEntries(OPTIONS.map((o) => [o.key, typeof o.default === 'function' ? (o.default as (x: DefaultContext) => unknown)(x) : o.default]));
  return Object.fromEntries(CONFIG_ORDER.map((k) => [k, c[k]])) as unknown as TrainConfig;
}

/** The order of the resolved config's fields, as runs saved it before the schema (the JSON stored with a run). */
const CONFIG_ORDER: readonly (keyof TrainConfig)[] = [
  'seed',
  'epochs',
  'steps',
  'batchSize',
  'seqLen',
  'lr',
  'weightDecay',
  'maxGradNorm',
  'beta1',
  'beta2',
  'eps',
  'warmupRatio',
  'minLrRatio',
  'headLrRatio',
  'loraRank',
  'loraAlpha',
  'loraDropout',
  'checkpointEvery',
  'onNonFinite',
  'beta',
  'rewardRunId',
  'numSamples',
  'maxNewTokens',
  'temperature',
  'klCoef',
  'klTarget',
  'cliprange',
  'cliprangeValue',
  'vfCoef',
  'gamma',
  'lam',
  'ppoEpochs',
  'minibatches',
  'ptxCoef',
  'emaDecay',
  'rewardFuncs',
  'rewardModule',
  'rewardWeights',
  'scaleRewards',
  'lossType',
  'lossWeights',
  'ldAlpha',
  'labelSmoothing',
  'normalizeAdvantages',
  'epsilon',
  'epsilonHigh',
  'numIterations',
  'maskTruncatedCompletions',
  'earlyStopping',
  'targetKl',
];

/** `{key}` in a help line as a surface names that option (the CLI: its flag; the page: its label). */
const refs = (help: string, name: (o: OptionSpec) => string): string =>
  help.replace(/\{(\w+)\}/g, (_, k: string) => {
    const o = (OPTION as Record<string, OptionSpec | undefined>)[k];
    if (!o) throw new Error(`schema: help names an unknown option {${k}}`);
    return name(o);
  });

/** An option's flag for `stage` (its first spelling, e.g. '--max-steps'), or undefined where the CLI sets it otherwise. */
export function flagOf(o: OptionSpec, stage: Stage): string | undefined {
  return o.cli === undefined ? undefined : byStage(o.cli, stage).split(/[ ,]/)[0];
}

/** The help line of `o` for `stage`, as the CLI or the page writes it. */
export function helpOf(o: OptionSpec, stage: Stage, surface: 'cli' | 'form'): string {
  return refs(byStage(o.help, stage), (r) => (surface === 'cli' ? (flagOf(r, stage) ?? r.key) : r.label ? byStage(r.label, stage) : r.key));
}

/** One CLI flag of a stage: commander's spelling, the config field it sets, its help line (without the default) and the value's type. */
export interface StageFlag {
  key: keyof TrainConfig;
  flags: string;
  help: string;
  type: OptionSpec['type'];
}

/** The training flags of `stage`, in the schema's order. */
export function stageFlags(stage: Stage): StageFlag[] {
  return OPTIONS.filter((o) => o.cli !== undefined && appliesTo(o, stage)).map((o) => ({
    key: o.key,
    flags: byStage(o.cli!, stage),
    help: helpOf(o, stage, 'cli'),
    type: o.type,
  }));
}

/** One field of the Train form. */
export interface FormField {
  key: keyof TrainConfig;
  label: string;
  help: string;
  advanced: boolean;
  type: OptionSpec['type'];
  options?: readonly string[];
  placeholder?: string;
}

/** The Train form's fields for `stage`, in the schema's order. */
export function formFields(stage: Stage): FormField[] {
  return OPTIONS.filter((o) => o.label !== undefined && appliesTo(o, stage)).map((o) => ({
    key: o.key,
    label: byStage(o.label!, stage),
    help: helpOf(o, stage, 'form') + (o.defaultText ? `; ${o.defaultText}` : ''),
    type: o.type,
    advanced: Array.isArray(o.advanced) ? o.advanced.includes(stage) : !!o.advanced,
    ...(o.choices ? { options: byStage(o.choices, stage) } : {}),
    ...(o.placeholder ? { placeholder: o.placeholder } : {}),
  }));
}

/** The model card's hyperparameters for a stage (an unknown stage name: the options every stage has): config key, label and TRL's name (or ''). */
export function cardRows(stage: string): [key: keyof TrainConfig, label: string, trl: string][] {
  // an unknown stage's labels are read as SFT's (only options every stage has, whose labels do not vary)
  const known = (STAGES as readonly string[]).includes(stage),
    as = known ? (stage as Stage) : 'sft';
  return OPTIONS.filter((o) => o.card !== undefined && (known ? appliesTo(o, as) : !o.stages)).map((o) => [o.key, byStage(o.card!, as), trlName(o, as) ?? '']);
}

/** TRL's name of `o` for `stage`, or undefined where TRL has no such setting. */
export const trlName = (o: OptionSpec, stage: Stage): string | undefined => (o.trl === undefined ? undefined : byStage(o.trl, stage));

// ---------------------------------------------------------------------------------------------
// Sampling: the generation options (Generator's, src/train/generate.ts: GENERATE_DEFAULTS) and the
// `generate` command's flags. The rollouts of the online stages take their own length, temperature and
// count from the training options above, and these for the rest (top-k and top-p off). The page's Rank and
// Compare tabs sample with a model's generation_config.json or their own defaults (src/io/generation-config.ts).

export type GenerateKey = 'maxNewTokens' | 'temperature' | 'topK' | 'topP' | 'seed' | 'numSamples';

export interface GenerateOptionSpec {
  key: GenerateKey;
  default: number;
  /** The values the flag takes (the CLI refuses others as it reads them). */
  valid: (x: number) => boolean;
  help: string;
  cli: string;
  /** The name in transformers' GenerationConfig (generation_config.json), where it has one. */
  hf?: string;
}

const intIn =
  (min: number, max = Infinity) =>
  (x: number) =>
    Number.isInteger(x) && x >= min && x <= max;

/** The generation options, in the order `generate --help` lists them. */
export const GENERATE_OPTIONS: readonly GenerateOptionSpec[] = [
  { key: 'maxNewTokens', default: 64, valid: intIn(1), cli: '--max-new-tokens <N>', hf: 'max_new_tokens', help: 'tokens per sample at most' },
  { key: 'temperature', default: 1, valid: (x) => x >= 0, cli: '--temperature <T>', hf: 'temperature', help: 'sampling temperature; 0 = greedy' },
  { key: 'topK', default: 0, valid: intIn(0), cli: '--top-k <K>', hf: 'top_k', help: 'sample from the K likeliest tokens; 0 = all' },
  {
    key: 'topP',
    default: 1,
    valid: (x) => x > 0 && x <= 1,
    cli: '--top-p <P>',
    hf: 'top_p',
    help: 'nucleus sampling: the likeliest tokens holding P of the probability',
  },
  { key: 'seed', default: 0, valid: Number.isInteger, cli: '--seed <S>', help: 'random seed' },
  { key: 'numSamples', default: 1, valid: intIn(1, 64), cli: '--num-samples <K>', hf: 'num_return_sequences', help: 'samples of the prompt (1 to 64)' },
];

/** The generation defaults, by key. */
export const GENERATE_OPTION_DEFAULTS = Object.fromEntries(GENERATE_OPTIONS.map((o) => [o.key, o.default])) as Readonly<Record<GenerateKey, number>>;
