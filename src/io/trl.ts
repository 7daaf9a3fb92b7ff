// "Export for a cluster": the user's data as JSONL plus YAML configs for TRL's command line
// (`trl sft|reward|dpo|grpo|rloo --config X.yaml`), so a run prototyped in the browser continues on many
// GPUs. Pure string work: runs in browsers and in Node (no fs, no network).
//
// Field names checked against TRL's main branch at f2cd577 (2026-07-24; v1.9.0 + 26 commits, 1.10.0.dev0);
// every key this file writes also exists in TRL v0.22 (checked at the v0.22.0, v0.26.0 and v1.0.0 tags).
// TRL depends on transformers >= 4.56.2. Sources:
//   - trl/scripts/utils.py          ScriptArguments (dataset_name, dataset_train_split, ...) and
//                                   DatasetMixtureConfig (`datasets:` list, added by TRL PR #3791, 2025-07)
//   - trl/trainer/model_config.py   ModelConfig (model_name_or_path, use_peft, lora_*; trust_remote_code
//                                   moved from it to the trainer configs in TRL PR #5802, v1.7)
//   - trl/trainer/sft_config.py     SFTConfig     (max_length; TRL < 0.16 called it max_seq_length)
//   - trl/trainer/reward_config.py  RewardConfig  (max_length)
//   - trl/trainer/dpo_config.py     DPOConfig     (beta, max_length; max_prompt_length and
//                                   max_completion_length went with TRL PR #3906, v0.29)
//   - trl/trainer/grpo_config.py    GRPOConfig    (num_generations, max_completion_length, temperature, beta,
//                                   num_iterations, epsilon, epsilon_high, reward_weights, scale_rewards,
//                                   loss_type, mask_truncated_completions)
//   - trl/scripts/grpo.py           GRPOScriptArguments (reward_model_name_or_path, reward_funcs)
//   - trl/trainer/rloo_config.py    RLOOConfig    (the GRPO generation and clipping fields above but
//                                   scale_rewards and loss_type, plus normalize_advantages; beta = KL
//                                   coefficient) — the RLOOTrainer rewritten in TRL PR #3801 (2025-08). The
//                                   older PPO-style RLOOConfig (TRL <= 0.21) used rloo_k, kl_coef,
//                                   response_length, reward_model_path / sft_model_path and had no `trl rloo`.
//   - trl/scripts/rloo.py           RLOOScriptArguments (reward_model_name_or_path, reward_funcs)
//   - trl/cli/commands/__init__.py  the `trl` subcommands: dpo, grpo, kto, reward, rloo, sft (no ppo: TRL's
//                                   PPOTrainer sat in trl/experimental/ppo and went in PR #7020, 2026-09), so
//                                   the playground's PPO stage continues as TRL's RLOO, the online trainer
//                                   closest to it
//   - transformers TrainingArguments (output_dir, learning_rate, ...) which every TRL config extends
//                                   (through trl/trainer/base_config.py _BaseConfig).
//
// Local JSONL: `dataset_name` goes to datasets.load_dataset(dataset_name), which accepts a hub id or
// a local *directory*, not a single .jsonl file. So the configs use the `datasets:` mixture section,
// whose entries are passed to load_dataset(path=..., data_files=..., split=...), i.e.
// load_dataset("json", data_files="data/sft.jsonl", split="train") — the documented way to load local
// JSON Lines. get_dataset() returns it as the "train" split, which `dataset_train_split: train` picks.
// This needs a TRL with DatasetMixtureConfig (about v0.21+); older TRL rejects the `datasets` key.
//
// The TRL CLI parses the YAML with yaml.safe_load (PyYAML, YAML 1.1) and sets the values as argparse
// defaults as they are (lists stay lists). YAML 1.1 quirks shape the emitter below: every string is
// double-quoted (so "no", "on", "1e5" or "null" stay strings) and floats always carry a '.' and a signed
// exponent ("1.0e-5"), since PyYAML reads "1e-5" as a string. Keys a script does not know are ignored
// silently when it runs as a module (fail_with_unknown_args=False), and the `trl` command passes them on
// to `accelerate launch` as options (trl/cli/commands/training.py), hence TRL_FIELDS and the check in
// trlConfigYaml.
//
// Reward functions: GRPO and RLOO here score completions with functions written in JavaScript, which
// TRL cannot run. The export writes each one's source as rewards/<name>.js and names its Python port in
// the config: trl/scripts/grpo.py (and rloo.py) takes a `reward_funcs` entry with a dot as an import path,
// `module.function`, imported with the current folder on sys.path, so "rewards.<name>.<name>" is the
// function <name> in rewards/<name>.py beside the config. TRL calls it with keyword arguments
// (prompts=, completions=, completion_ids=, the dataset's other columns, trainer_state=), the same
// contract as ours (src/shared/rewards.ts), and reads None as "does not apply", as we read null.

import { yamlQuote } from './yaml.ts';
import { exportJsonl, toPreferencePairs, toSftRows, type Prompt, type Record as DataRecord } from './datasets.ts';
import { BUILTIN_REWARDS } from '../shared/rewards.ts';
import { DPO_LOSS_TYPES } from '../shared/schema.ts';

export type TrlStage = 'sft' | 'reward' | 'dpo' | 'rloo' | 'grpo';
export const TRL_STAGES: readonly TrlStage[] = ['sft', 'reward', 'dpo', 'rloo', 'grpo'];
/** The online stages: prompts in, completions sampled and scored by a reward model and/or reward functions. */
const ONLINE: readonly TrlStage[] = ['rloo', 'grpo'];

// The values of TRL's GRPOConfig that the playground implements (src/train/grpo-math.ts), so a run's
// setting means the same there. TRL also takes scale_rewards true/false (= group/none) and the loss types
// cispo, sapo, luspo and vespo, which have no counterpart here.
export const TRL_SCALE_REWARDS = ['group', 'batch', 'none'] as const;
export const TRL_LOSS_TYPES = ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as const;

export interface RunHyper {
  model: string; // base model hub id (or a path on the cluster, e.g. the SFT stage's output_dir)
  modelRevision?: string; // the base's Hub revision (model_revision) when it is not the default branch
  outputDir: string;
  lr: number;
  epochs: number;
  batchSize: number; // per device
  gradAccum: number;
  maxLength: number;
  warmupRatio: number;
  weightDecay: number;
  maxGradNorm: number;
  seed: number;
  loraRank: number; // 0 = full fine-tuning
  loraAlpha: number;
  loraDropout: number;
  loraTargets: string[]; // empty = PEFT's default for the architecture
  beta?: number; // DPO
  dpoLossTypes?: string[]; // DPO: loss_type (TRL's list; DPO_LOSS_TYPES), written where not ['sigmoid']
  lossWeights?: number[]; // DPO: loss_weights, one per loss type
  ldAlpha?: number; // DPO: ld_alpha; 1 = TRL's None (no weighting), left out
  labelSmoothing?: number; // DPO: label_smoothing, written where > 0
  klCoef?: number; // online stages: the KL coefficient (TRL's beta in RLOOConfig and GRPOConfig)
  numGenerations?: number; // K samples per prompt
  maxNewTokens?: number;
  temperature?: number;
  rewardModel?: string; // hub id or path of the reward model (RLOO; GRPO: optional beside rewardFuncs)
  // ---- GRPO and RLOO (written under TRL's names: the comments) ----
  rewardFuncs?: string[]; // names of our reward functions -> reward_funcs import paths of their Python ports
  rewardWeights?: number[]; // reward_weights, in the playground's order: rewardFuncs', then the reward model's
  scaleRewards?: (typeof TRL_SCALE_REWARDS)[number]; // scale_rewards (GRPO only)
  lossType?: (typeof TRL_LOSS_TYPES)[number]; // loss_type (GRPO only)
  normalizeAdvantages?: boolean; // normalize_advantages (RLOO only)
  epsilon?: number; // epsilon: the clip range's lower side
  epsilonHigh?: number; // epsilon_high; 0 = epsilon (TRL's None)
  numIterations?: number; // num_iterations: updates per generation batch
  maskTruncatedCompletions?: boolean; // mask_truncated_completions
}

// transformers/training_args.py TrainingArguments (fields the TRL CLI accepts for every trainer).
// Note: transformers v5 deprecates warmup_ratio in favour of a fractional warmup_steps (uncertain
// timing; 4.5x still accepts warmup_ratio).
const TRAINING_ARGUMENTS = [
  'output_dir',
  'overwrite_output_dir',
  'learning_rate',
  'num_train_epochs',
  'max_steps',
  'per_device_train_batch_size',
  'per_device_eval_batch_size',
  'gradient_accumulation_steps',
  'warmup_ratio',
  'warmup_steps',
  'weight_decay',
  'max_grad_norm',
  'seed',
  'data_seed',
  'lr_scheduler_type',
  'optim',
  'adam_beta1',
  'adam_beta2',
  'adam_epsilon',
  'bf16',
  'fp16',
  'tf32',
  'gradient_checkpointing',
  'logging_steps',
  'logging_first_step',
  'save_strategy',
  'save_steps',
  'save_total_limit',
  'eval_strategy',
  'eval_steps',
  'report_to',
  'run_name',
  'push_to_hub',
  'hub_model_id',
  'dataloader_num_workers',
  'remove_unused_columns',
  'resume_from_checkpoint',
] as const;

// trl/trainer/model_config.py ModelConfig (torch_dtype was renamed dtype in late 2025).
const MODEL_CONFIG = [
  'model_name_or_path',
  'model_revision',
  'dtype',
  'trust_remote_code',
  'attn_implementation',
  'use_peft',
  'lora_r',
  'lora_alpha',
  'lora_dropout',
  'lora_target_modules',
  'lora_modules_to_save',
  'lora_task_type',
  'use_rslora',
  'use_dora',
  'load_in_8bit',
  'load_in_4bit',
  'bnb_4bit_quant_type',
  'use_bnb_nested_quant',
] as const;

// trl/scripts/utils.py ScriptArguments + DatasetMixtureConfig (top-level keys).
const SCRIPT_ARGUMENTS = [
  'dataset_name',
  'dataset_config',
  'dataset_train_split',
  'dataset_test_split',
  'dataset_streaming',
  'datasets',
  'streaming',
  'test_split_size',
] as const;

/** Keys of one `datasets:` entry: trl/scripts/utils.py DatasetConfig (mirrors datasets.load_dataset). */
export const TRL_DATASET_ENTRY_FIELDS: readonly string[] = ['path', 'name', 'data_dir', 'data_files', 'split', 'columns'];

const COMMON = [...SCRIPT_ARGUMENTS, ...MODEL_CONFIG, ...TRAINING_ARGUMENTS];

// The fields RLOOConfig and GRPOConfig share (both trainers generate and clip alike), and the script
// arguments of trl/scripts/rloo.py RLOOScriptArguments and trl/scripts/grpo.py GRPOScriptArguments.
const ONLINE_FIELDS = [
  'reward_model_name_or_path',
  'reward_funcs',
  'num_generations',
  'max_completion_length',
  'temperature',
  'top_p',
  'top_k',
  'beta',
  'num_iterations',
  'epsilon',
  'epsilon_high',
  'reward_weights',
  'mask_truncated_completions',
  'steps_per_generation',
  'generation_batch_size',
  'use_vllm',
  'vllm_mode',
  'log_completions',
] as const;

/**
 * The top-level keys each stage's YAML may use: ScriptArguments / DatasetMixtureConfig
 * (trl/scripts/utils.py), ModelConfig (trl/trainer/model_config.py), transformers TrainingArguments,
 * plus the stage's own config class:
 *   sft    trl/trainer/sft_config.py     SFTConfig
 *   reward trl/trainer/reward_config.py  RewardConfig
 *   dpo    trl/trainer/dpo_config.py     DPOConfig
 *   rloo   trl/trainer/rloo_config.py    RLOOConfig, and RLOOScriptArguments from trl/scripts/rloo.py
 *   grpo   trl/trainer/grpo_config.py    GRPOConfig, and GRPOScriptArguments from trl/scripts/grpo.py
 * (read at TRL f2cd577, 2026-07). RLOOConfig has no scale_rewards nor loss_type; GRPOConfig no
 * normalize_advantages.
 */
export const TRL_FIELDS: Record<TrlStage, readonly string[]> = {
  sft: [...COMMON, 'max_length', 'packing', 'completion_only_loss', 'assistant_only_loss', 'dataset_text_field', 'eos_token', 'pad_token'],
  reward: [...COMMON, 'max_length', 'center_rewards_coefficient', 'disable_dropout'],
  dpo: [...COMMON, 'beta', 'max_length', 'loss_type', 'loss_weights', 'ld_alpha', 'label_smoothing', 'precompute_ref_log_probs'],
  rloo: [...COMMON, ...ONLINE_FIELDS, 'normalize_advantages'],
  grpo: [...COMMON, ...ONLINE_FIELDS, 'scale_rewards', 'loss_type'],
};

// ---------------------------------------------------------------------------------------------
// A small YAML emitter for what these configs need: scalars, lists of scalars, lists of flat maps.

type Scalar = string | number | boolean;
type YamlValue = Scalar | readonly Scalar[] | readonly { readonly [k: string]: Scalar }[];
interface Entry {
  key: string;
  value: YamlValue;
  comment?: string;
}

/** A number PyYAML (YAML 1.1) reads back as int or float. */
function yamlNumber(n: number, key: string): string {
  if (!Number.isFinite(n)) throw new RangeError(`${key}: ${n} cannot be written to YAML`);
  if (Object.is(n, -0)) return '0';
  const s = String(n);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-])(\d+)$/.exec(s); // JS writes 1e-7, 1.5e+21
  return m ? `${m[1]}${m[2]}.${m[3] ?? '0'}e${m[4]}${m[5]}` : s;
}

function yamlScalar(v: Scalar, key: string): string {
  if (typeof v === 'string') return yamlQuote(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return yamlNumber(v, key);
}

function yamlEntries(entries: readonly Entry[]): string {
  let out = '';
  for (const { key, value, comment } of entries) {
    if (!/^[a-z_][a-z0-9_]*$/.test(key)) throw new Error(`bad YAML key ${JSON.stringify(key)}`);
    if (comment)
      out += comment
        .split('\n')
        .map((l) => (l === '' ? '\n' : `# ${l}\n`))
        .join('');
    if (!Array.isArray(value)) {
      out += `${key}: ${yamlScalar(value as Scalar, key)}\n`;
      continue;
    }
    if (value.length === 0) {
      out += `${key}: []\n`;
      continue;
    }
    out += `${key}:\n`;
    for (const item of value as readonly (Scalar | { readonly [k: string]: Scalar })[]) {
      if (typeof item !== 'object') {
        out += `  - ${yamlScalar(item, key)}\n`;
        continue;
      }
      Object.entries(item).forEach(([k, v], i) => {
        if (!/^[a-z_][a-z0-9_]*$/.test(k)) throw new Error(`bad YAML key ${JSON.stringify(k)}`);
        out += `${i === 0 ? '  - ' : '    '}${k}: ${yamlScalar(v, `${key}.${k}`)}\n`;
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

function check(ok: boolean, stage: TrlStage, field: string, value: unknown, want: string): void {
  if (!ok) throw new RangeError(`${stage}: ${field} must be ${want}, got ${JSON.stringify(value) ?? String(value)}`);
}
const isInt = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;
const isNum = (v: unknown, lo: number, hi = Infinity, loOpen = false, hiOpen = false) =>
  typeof v === 'number' && Number.isFinite(v) && (loOpen ? v > lo : v >= lo) && (hiOpen ? v < hi : v <= hi);
const isText = (v: unknown) => typeof v === 'string' && v.trim() !== '';
const isBool = (v: unknown) => typeof v === 'boolean';
const oneOf = (v: unknown, xs: readonly string[]) => typeof v === 'string' && xs.includes(v);

// ---- reward functions: our names, their files, and the Python names TRL imports ----

/** A reward function's name as it may name a file: a JavaScript export or a module file's stem. */
const REWARD_NAME = /^[A-Za-z0-9_$][A-Za-z0-9_$.-]*$/;

// Words Python will not take as a function name (`def class(...)` is a syntax error).
const PY_KEYWORDS = new Set([
  'False',
  'None',
  'True',
  'and',
  'as',
  'assert',
  'async',
  'await',
  'break',
  'class',
  'continue',
  'def',
  'del',
  'elif',
  'else',
  'except',
  'finally',
  'for',
  'from',
  'global',
  'if',
  'import',
  'in',
  'is',
  'lambda',
  'nonlocal',
  'not',
  'or',
  'pass',
  'raise',
  'return',
  'try',
  'while',
  'with',
  'yield',
]);

/** The Python identifier of a reward function's port: `$`, `.` and `-` (fine in a JS name or a file stem) become `_`. */
export function pythonName(name: string): string {
  const id = name.replace(/[^A-Za-z0-9_]/g, '_').replace(/^(?=[0-9])/, '_');
  return PY_KEYWORDS.has(id) ? `${id}_` : id;
}

/** The `reward_funcs` entry for a reward function: trl/scripts/grpo.py splits it at its last dot into
 *  module and attribute, so this is the function `py` in rewards/<py>.py (imported with the run's folder,
 *  the current directory, put first on sys.path). The export writes rewards/__init__.py: a namespace
 *  package (a folder without one) would lose to any installed package named `rewards`. */
export const rewardImportPath = (name: string): string => `rewards.${pythonName(name)}.${pythonName(name)}`;

function checkRewardFuncs(stage: TrlStage, names: unknown): void {
  check(
    Array.isArray(names) && names.every((n) => typeof n === 'string' && REWARD_NAME.test(n)),
    stage,
    'rewardFuncs',
    names,
    'a list of reward function names (letters, digits, _ $ . -)',
  );
  const py = (names as string[]).map(pythonName);
  const dup = py.findIndex((p, i) => py.indexOf(p) !== i);
  check(dup < 0, stage, 'rewardFuncs', names, `names with distinct Python names (${JSON.stringify((names as string[])[dup])} is ${py[dup]} too)`);
}

/** Checks DPO's loss settings, and that the other stages take none of them. */
function validateDpo(stage: TrlStage, h: RunHyper): void {
  for (const field of ['dpoLossTypes', 'lossWeights', 'ldAlpha', 'labelSmoothing'] as const)
    check(h[field] === undefined || stage === 'dpo', stage, field, h[field], 'unset (a DPO setting)');
  const types = h.dpoLossTypes;
  if (types !== undefined)
    check(
      Array.isArray(types) && types.length > 0 && types.every((t) => (DPO_LOSS_TYPES as readonly string[]).includes(t)),
      stage,
      'dpoLossTypes',
      types,
      `a list of ${DPO_LOSS_TYPES.join(' | ')}`,
    );
  if (h.lossWeights !== undefined)
    check(
      Array.isArray(h.lossWeights) && h.lossWeights.every((w) => isNum(w, -Infinity)) && h.lossWeights.length === (types ?? ['sigmoid']).length,
      stage,
      'lossWeights',
      h.lossWeights,
      'one finite number per loss type',
    );
  if (h.ldAlpha !== undefined) check(isNum(h.ldAlpha, 0, 1), stage, 'ldAlpha', h.ldAlpha, 'a number in [0, 1]');
  if (h.labelSmoothing !== undefined) check(isNum(h.labelSmoothing, 0, 0.5, false, true), stage, 'labelSmoothing', h.labelSmoothing, 'a number in [0, 0.5)');
}

/** Checks what only the online stages (GRPO, RLOO) take, and that the other stages take none of it. */
function validateOnline(stage: TrlStage, h: RunHyper): void {
  const online = ONLINE.includes(stage);
  // A GRPO-only or RLOO-only setting on the other stage would be dropped in silence: refuse it instead.
  const only = (field: keyof RunHyper, owner: TrlStage, trl: string) =>
    check(h[field] === undefined || stage === owner, stage, field, h[field], `unset (${trl} is a ${owner.toUpperCase()} setting)`);
  only('scaleRewards', 'grpo', 'scale_rewards');
  only('lossType', 'grpo', 'loss_type');
  only('normalizeAdvantages', 'rloo', 'normalize_advantages');
  if (!online) return;
  const funcs = h.rewardFuncs ?? [];
  if (h.rewardFuncs !== undefined) checkRewardFuncs(stage, h.rewardFuncs);
  if (h.rewardModel !== undefined || funcs.length === 0) {
    check(
      isText(h.rewardModel),
      stage,
      'rewardModel',
      h.rewardModel,
      `a reward model hub id or path${funcs.length ? '' : ' (or give rewardFuncs: reward function names)'}`,
    );
  }
  if (h.rewardWeights !== undefined) {
    const n = funcs.length + (h.rewardModel !== undefined ? 1 : 0);
    check(
      Array.isArray(h.rewardWeights) && h.rewardWeights.every((w) => isNum(w, -Infinity)),
      stage,
      'rewardWeights',
      h.rewardWeights,
      'a list of finite numbers',
    );
    check(
      h.rewardWeights.length === 0 || h.rewardWeights.length === n,
      stage,
      'rewardWeights',
      h.rewardWeights,
      `one weight per reward (${n}: rewardFuncs, then the reward model), or empty`,
    );
  }
  if (h.scaleRewards !== undefined) check(oneOf(h.scaleRewards, TRL_SCALE_REWARDS), stage, 'scaleRewards', h.scaleRewards, TRL_SCALE_REWARDS.join(' | '));
  if (h.lossType !== undefined) check(oneOf(h.lossType, TRL_LOSS_TYPES), stage, 'lossType', h.lossType, TRL_LOSS_TYPES.join(' | '));
  if (h.epsilon !== undefined) check(isNum(h.epsilon, 0, 1, true, true), stage, 'epsilon', h.epsilon, 'a number in (0, 1)');
  if (h.epsilonHigh !== undefined) check(isNum(h.epsilonHigh, 0), stage, 'epsilonHigh', h.epsilonHigh, 'a number >= 0 (0 = epsilon)');
  if (h.numIterations !== undefined) check(isInt(h.numIterations, 1), stage, 'numIterations', h.numIterations, 'an integer >= 1');
  if (h.normalizeAdvantages !== undefined) check(isBool(h.normalizeAdvantages), stage, 'normalizeAdvantages', h.normalizeAdvantages, 'true or false');
  if (h.maskTruncatedCompletions !== undefined)
    check(isBool(h.maskTruncatedCompletions), stage, 'maskTruncatedCompletions', h.maskTruncatedCompletions, 'true or false');
}

function validate(stage: TrlStage, h: RunHyper, datasetPath: string): void {
  check(isText(h.model), stage, 'model', h.model, 'a non-empty string');
  if (h.modelRevision !== undefined) check(isText(h.modelRevision), stage, 'modelRevision', h.modelRevision, 'a non-empty string');
  check(isText(h.outputDir), stage, 'outputDir', h.outputDir, 'a non-empty string');
  check(isText(datasetPath), stage, 'datasetPath', datasetPath, 'a non-empty string');
  check(isNum(h.lr, 0, Infinity, true), stage, 'lr', h.lr, 'a number > 0');
  check(isNum(h.epochs, 0, Infinity, true), stage, 'epochs', h.epochs, 'a number > 0');
  check(isInt(h.batchSize, 1), stage, 'batchSize', h.batchSize, 'an integer >= 1');
  check(isInt(h.gradAccum, 1), stage, 'gradAccum', h.gradAccum, 'an integer >= 1');
  check(isInt(h.maxLength, 1), stage, 'maxLength', h.maxLength, 'an integer >= 1');
  check(isNum(h.warmupRatio, 0, 1, false, true), stage, 'warmupRatio', h.warmupRatio, 'a number in [0, 1)');
  check(isNum(h.weightDecay, 0), stage, 'weightDecay', h.weightDecay, 'a number >= 0');
  check(isNum(h.maxGradNorm, 0, Infinity, true), stage, 'maxGradNorm', h.maxGradNorm, 'a number > 0');
  check(isInt(h.seed, 0), stage, 'seed', h.seed, 'an integer >= 0');
  check(isInt(h.loraRank, 0), stage, 'loraRank', h.loraRank, 'an integer >= 0 (0 = full fine-tuning)');
  if (h.loraRank > 0) {
    check(isNum(h.loraAlpha, 0, Infinity, true), stage, 'loraAlpha', h.loraAlpha, 'a number > 0');
    check(isNum(h.loraDropout, 0, 1, false, true), stage, 'loraDropout', h.loraDropout, 'a number in [0, 1)');
    check(Array.isArray(h.loraTargets) && h.loraTargets.every(isText), stage, 'loraTargets', h.loraTargets, 'a list of module names');
  }
  if (h.beta !== undefined) check(isNum(h.beta, 0), stage, 'beta', h.beta, 'a number >= 0');
  validateDpo(stage, h);
  if (h.klCoef !== undefined) check(isNum(h.klCoef, 0), stage, 'klCoef', h.klCoef, 'a number >= 0');
  if (h.numGenerations !== undefined) check(isInt(h.numGenerations, 2), stage, 'numGenerations', h.numGenerations, 'an integer >= 2');
  if (h.maxNewTokens !== undefined) check(isInt(h.maxNewTokens, 1), stage, 'maxNewTokens', h.maxNewTokens, 'an integer >= 1');
  if (h.temperature !== undefined) check(isNum(h.temperature, 0, Infinity, true), stage, 'temperature', h.temperature, 'a number > 0');
  validateOnline(stage, h);
}

const COMMAND: Record<TrlStage, string> = { sft: 'trl sft', reward: 'trl reward', dpo: 'trl dpo', rloo: 'trl rloo', grpo: 'trl grpo' };
const WHAT: Record<TrlStage, string> = {
  sft: 'supervised fine-tuning (SFTTrainer)',
  reward: 'reward model training (RewardTrainer)',
  dpo: 'direct preference optimization (DPOTrainer)',
  rloo: 'online RL with REINFORCE leave-one-out (RLOOTrainer)',
  grpo: 'online RL with group relative policy optimization (GRPOTrainer)',
};

type Add = (key: string, value: YamlValue, comment?: string) => void;

/** The rewards, generation and policy-loss fields RLOO and GRPO share (RLOOConfig, GRPOConfig, and the scripts' arguments). */
function onlineEntries(stage: 'rloo' | 'grpo', h: RunHyper, add: Add): void {
  const script = `trl/scripts/${stage}.py ${stage === 'rloo' ? 'RLOO' : 'GRPO'}ScriptArguments`;
  const funcs = h.rewardFuncs ?? [];
  if (h.rewardModel !== undefined) {
    add(
      'reward_model_name_or_path',
      h.rewardModel,
      `\n${stage.toUpperCase()} rewards (${script}${stage === 'rloo' ? '; TRL <= 0.21 used reward_model_path in RLOOConfig' : ''})`,
    );
  }
  if (funcs.length > 0) {
    add(
      'reward_funcs',
      funcs.map(rewardImportPath),
      `${h.rewardModel === undefined ? `\n${stage.toUpperCase()} rewards (${script})\n` : ''}` +
        'Our reward functions are JavaScript, which TRL cannot run: each entry is the import path of a Python\n' +
        'port you write, the function NAME in rewards/NAME.py beside this file (see rewards/NAME.js and the README).\n' +
        "Until those files exist TRL stops with ModuleNotFoundError. TRL's own accuracy_reward or\n" +
        'think_format_reward, or any module.function on the Python path, may stand in their place.',
    );
  }
  const w = h.rewardWeights ?? [];
  if (w.length > 0) {
    // TRL's scripts put the reward model first (reward_funcs.append(reward_model_name_or_path) before the
    // functions); the playground scores with the functions first, then the reward model.
    const trlOrder = h.rewardModel !== undefined ? [w.at(-1)!, ...w.slice(0, -1)] : w;
    add('reward_weights', trlOrder, `One per reward, in TRL's order: ${h.rewardModel !== undefined ? 'the reward model, then ' : ''}reward_funcs`);
  }

  const k = h.numGenerations;
  let kNote =
    `${stage === 'rloo' ? 'RLOOConfig' : 'GRPOConfig'}: K completions sampled per prompt${stage === 'rloo' ? ' (TRL <= 0.21: rloo_k)' : ''}.\n` +
    'per_device_train_batch_size counts completions: a step holds that x gradient_accumulation_steps x GPUs / K prompts';
  if (k !== undefined && (h.batchSize * h.gradAccum) % k !== 0) {
    kNote += `\nWARNING: per_device_train_batch_size * gradient_accumulation_steps * num_processes must be divisible by ${k}`;
  }
  if (k !== undefined) add('num_generations', k, `\n${kNote}`);
  if (h.maxNewTokens !== undefined) add('max_completion_length', h.maxNewTokens, stage === 'rloo' ? 'TRL <= 0.21: response_length' : undefined);
  if (h.temperature !== undefined) add('temperature', h.temperature);
  if (h.klCoef !== undefined) {
    add('beta', h.klCoef, stage === 'rloo' ? 'KL coefficient (TRL <= 0.21: kl_coef)' : 'KL coefficient; 0 = no reference model is loaded');
  }
  if (h.numIterations !== undefined) add('num_iterations', h.numIterations, "Updates per batch of completions (TRL's default 1)");
  if (h.epsilon !== undefined) add('epsilon', h.epsilon);
  // ours 0 = TRL's None (= epsilon): leave the key out
  if (h.epsilonHigh !== undefined && h.epsilonHigh > 0) add('epsilon_high', h.epsilonHigh);
  if (h.scaleRewards !== undefined) add('scale_rewards', h.scaleRewards);
  if (h.lossType !== undefined) add('loss_type', h.lossType);
  if (h.normalizeAdvantages !== undefined) add('normalize_advantages', h.normalizeAdvantages);
  if (h.maskTruncatedCompletions !== undefined) add('mask_truncated_completions', h.maskTruncatedCompletions);
}

/** The YAML config for `trl <stage> --config <stage>.yaml`; every key is in TRL_FIELDS[stage]. */
export function trlConfigYaml(stage: TrlStage, h: RunHyper, datasetPath: string): string {
  if (!TRL_STAGES.includes(stage)) throw new RangeError(`unknown TRL stage ${JSON.stringify(stage)}`);
  validate(stage, h, datasetPath);
  const e: Entry[] = [];
  const add: Add = (key, value, comment) => e.push({ key, value, comment });

  add('model_name_or_path', h.model);
  if (h.modelRevision !== undefined) add('model_revision', h.modelRevision);
  add(
    'datasets',
    [{ path: 'json', data_files: datasetPath, split: 'train' }],
    'Local JSON Lines through the DatasetMixtureConfig section: load_dataset("json", data_files=..., split="train").',
  );
  add('dataset_train_split', 'train');
  add('output_dir', h.outputDir);

  add('learning_rate', h.lr, '\nOptimisation (transformers TrainingArguments)');
  add('num_train_epochs', h.epochs);
  add('per_device_train_batch_size', h.batchSize);
  add('gradient_accumulation_steps', h.gradAccum);
  add('lr_scheduler_type', 'cosine');
  add('warmup_ratio', h.warmupRatio);
  add('weight_decay', h.weightDecay);
  add('max_grad_norm', h.maxGradNorm);
  add('seed', h.seed);
  add('bf16', true);
  add('gradient_checkpointing', true);
  add('logging_steps', 10);
  add('save_strategy', 'epoch');
  add('report_to', 'none');

  if (h.loraRank > 0) {
    add('use_peft', true, '\nLoRA (TRL ModelConfig -> peft.LoraConfig)');
    add('lora_r', h.loraRank);
    add('lora_alpha', h.loraAlpha);
    add('lora_dropout', h.loraDropout);
    if (h.loraTargets.length > 0) add('lora_target_modules', h.loraTargets);
    // A reward model is a sequence classifier whose "score" head is new: train and save it with the
    // adapter (TRL's reward_trainer docs: LoraConfig(modules_to_save=["score"]); SEQ_CLS does the same
    // through PEFT's PeftModelForSequenceClassification).
    if (stage === 'reward') {
      add('lora_task_type', 'SEQ_CLS');
      add('lora_modules_to_save', ['score']);
    }
  } else {
    add('use_peft', false, '\nFull fine-tuning (loraRank 0)');
  }

  switch (stage) {
    case 'sft':
      add('max_length', h.maxLength, '\nSFTConfig (TRL < 0.16 called this max_seq_length)');
      break;
    case 'reward':
      add('max_length', h.maxLength, '\nRewardConfig');
      break;
    case 'dpo':
      add('max_length', h.maxLength, '\nDPOConfig');
      if (h.beta !== undefined) add('beta', h.beta);
      if (h.dpoLossTypes !== undefined && h.dpoLossTypes.join() !== 'sigmoid')
        add(
          'loss_type',
          h.dpoLossTypes.length === 1 ? h.dpoLossTypes[0]! : h.dpoLossTypes,
          h.dpoLossTypes.length > 1 ? 'Summed, weighted by loss_weights' : undefined,
        );
      if (h.lossWeights?.length) add('loss_weights', h.lossWeights);
      if (h.ldAlpha !== undefined && h.ldAlpha < 1) add('ld_alpha', h.ldAlpha, 'LD-DPO');
      if (h.labelSmoothing) add('label_smoothing', h.labelSmoothing);
      break;
    case 'rloo':
    case 'grpo':
      onlineEntries(stage, h, add);
      break;
  }

  const allowed = TRL_FIELDS[stage];
  for (const { key } of e) if (!allowed.includes(key)) throw new Error(`internal: ${key} is not in TRL_FIELDS.${stage}`);

  const header =
    `# ${WHAT[stage]}, written by rlhf-playground.\n` +
    `# Run from the folder holding this file: ${COMMAND[stage]} --config ${stage}.yaml\n` +
    `# Field names follow TRL (checked at f2cd577, 2026-07; all present since v0.22) and transformers TrainingArguments.\n`;
  return header + yamlEntries(e);
}

// ---------------------------------------------------------------------------------------------

export interface ClusterExportInput {
  hyper: Record<TrlStage, RunHyper>;
  /** prompts: TRL's prompt-only lines, a text or a conversation ({"prompt": [messages]}) each */
  datasets: { sft: DataRecord[]; preferences: DataRecord[]; prompts: Prompt[] };
  /**
   * The JavaScript source of reward functions that hyper.grpo / hyper.rloo name (rewardFuncs), as the
   * user wrote them; a module that defines several goes in under each of their names. Each is written as
   * rewards/<name>.js with a note on its Python port. A name without source gets a note only: a built-in
   * rule (BUILTIN_REWARDS) its rule's text, any other a request for the source.
   */
  rewardFunctions?: { name: string; source: string }[];
}

const enc = new TextEncoder();

/** SFT rows for data/sft.jsonl; one file must hold one format, so a mix of prompt-completion and
 *  messages records is written all as messages (prompt -> user turn, completion -> assistant turn). */
function sftRecords(records: DataRecord[]): DataRecord[] {
  records.forEach((r, i) => {
    if (r.kind !== 'completion' && r.kind !== 'messages') {
      throw new RangeError(`datasets.sft[${i}] is a ${r.kind} record; SFT data must be completion or messages records`);
    }
  });
  const rows = toSftRows(records);
  const mixed = rows.some((r) => 'messages' in r) && rows.some((r) => 'prompt' in r);
  return rows.map((r): DataRecord => {
    if ('messages' in r) return { kind: 'messages', messages: r.messages };
    if (!mixed) return { kind: 'completion', prompt: r.prompt, completion: r.completion };
    return {
      kind: 'messages',
      messages: [
        { role: 'user', content: r.prompt },
        { role: 'assistant', content: r.completion },
      ],
    };
  });
}

function preferenceRecords(records: DataRecord[]): DataRecord[] {
  records.forEach((r, i) => {
    if (r.kind !== 'preference' && r.kind !== 'ranking') {
      throw new RangeError(`datasets.preferences[${i}] is a ${r.kind} record; preference data must be preference or ranking records`);
    }
  });
  return toPreferencePairs(records).map((p) => ({ kind: 'preference', ...p }));
}

function promptLines(prompts: Prompt[]): string {
  return prompts
    .map((p, i) => {
      if (typeof p !== 'string' && !Array.isArray(p)) throw new RangeError(`datasets.prompts[${i}] must be a text or a list of messages`);
      return JSON.stringify({ prompt: p }) + '\n';
    })
    .join('');
}

// ---- reward functions ----

interface RewardFile {
  name: string;
  source?: string;
  usedBy: TrlStage[];
}

/** The reward functions the export writes: every name the online configs use, and every source given. */
function rewardFiles(x: ClusterExportInput): RewardFile[] {
  const given = x.rewardFunctions ?? [];
  if (!Array.isArray(given)) throw new RangeError('rewardFunctions must be a list of { name, source }');
  given.forEach((f, i) => {
    if (!f || typeof f.name !== 'string' || !REWARD_NAME.test(f.name)) {
      throw new RangeError(`rewardFunctions[${i}].name must be a reward function name (letters, digits, _ $ . -), got ${JSON.stringify(f?.name)}`);
    }
    if (typeof f.source !== 'string') throw new RangeError(`rewardFunctions[${i}].source must be the function's JavaScript source`);
    if (given.findIndex((g) => g.name === f.name) !== i) throw new RangeError(`rewardFunctions[${i}]: a second function named ${JSON.stringify(f.name)}`);
  });
  const names = [...new Set([...ONLINE.flatMap((s) => x.hyper[s].rewardFuncs ?? []), ...given.map((f) => f.name)])];
  const files = names.map((name): RewardFile => ({
    name,
    source: given.find((f) => f.name === name)?.source,
    usedBy: ONLINE.filter((s) => x.hyper[s].rewardFuncs?.includes(name)),
  }));
  // two names, one Python port (a-b and a_b): the configs could not tell them apart
  const py = files.map((f) => pythonName(f.name));
  const dup = py.findIndex((p, i) => py.indexOf(p) !== i);
  if (dup >= 0)
    throw new RangeError(
      `reward functions ${JSON.stringify(files[py.indexOf(py[dup]!)]!.name)} and ${JSON.stringify(files[dup]!.name)} would both be the Python function ${py[dup]}; rename one`,
    );
  return files;
}

/** What a reward function is, for its note: the user's code, a built-in rule's text, or a missing source. */
function rewardWhat(f: RewardFile): string {
  if (f.source !== undefined) return `the reward function "${f.name}" as written for rlhf-playground, in JavaScript (below)`;
  const rule = BUILTIN_REWARDS[f.name];
  if (!rule) return `the reward function "${f.name}". Its source was not saved with the run: paste the module that defines it below`;
  // max_words:N and contains:REGEX take an argument, which the run's saved config (reward_funcs: names) does not keep
  const arg = /^\w+:[A-Z]+:/.test(rule.help) ? '\nThe argument the run used is not in its saved config: use the one you trained with.' : '';
  return `"${f.name}", a built-in rule of rlhf-playground: ${rule.help}.${arg}`;
}

/** rewards/<name>.js: the note on the Python port TRL needs, then the function's JavaScript source (if any). */
function rewardFile(f: RewardFile): string {
  const py = pythonName(f.name),
    path = rewardImportPath(f.name);
  const where = f.usedBy.length
    ? `${f.usedBy.map((s) => `${s}.yaml`).join(' and ')} name${f.usedBy.length === 1 ? 's' : ''} it in reward_funcs as "${path}":`
    : `No config here names it; to use it, add "${path}" to reward_funcs in grpo.yaml or rloo.yaml:`;
  const note = [
    `${rewardWhat(f)}`,
    '',
    `TRL cannot run JavaScript. ${where}`,
    `the function ${py} in rewards/${py}.py, which trl/scripts/grpo.py (and rloo.py) imports from the folder`,
    'the trl command runs in. Write that file, a Python port of this function:',
    '',
    `    def ${py}(prompts, completions, completion_ids, **kwargs):`,
    '        # prompts, completions: lists of strings (data/prompts.jsonl holds plain-text prompts);',
    '        # completion_ids: lists of token ids; kwargs: trainer_state, log_extra, log_metric',
    '        return [1.0 for c in completions]  # one float per completion, or None where it does not apply',
    '',
    'TRL calls it with the prompts, completions and completion_ids this function gets in its one object,',
    'and reads None as this playground reads null. Or point reward_funcs at any other module.function:',
    'trl grpo --config grpo.yaml --reward_funcs my_rewards.my_function',
  ].join('\n');
  const comment =
    note
      .split('\n')
      .map((l) => (l ? `// ${l}` : '//'))
      .join('\n') + '\n';
  return f.source === undefined ? comment : `${comment}\n${f.source}${f.source.endsWith('\n') ? '' : '\n'}`;
}

const REWARDS_INIT =
  '# Makes rewards/ a package, so that reward_funcs entries "rewards.NAME.NAME" in grpo.yaml and rloo.yaml\n' +
  '# import the function NAME from rewards/NAME.py here (TRL puts the current folder first on sys.path).\n';

function rewardsSection(files: RewardFile[]): string {
  if (!files.length) return '';
  const rows = files.map((f) => {
    const kind =
      f.source !== undefined
        ? 'your JavaScript'
        : BUILTIN_REWARDS[f.name]
          ? `built-in rule: ${BUILTIN_REWARDS[f.name]!.help}`
          : 'source not saved with the run';
    return `| rewards/${f.name}.js | ${kind.replace(/\|/g, '\\|')} | \`${rewardImportPath(f.name)}\` | ${f.usedBy.join(', ') || '-'} |`;
  });
  return `
## Reward functions

GRPO and RLOO scored completions here with reward functions written in JavaScript. **TRL cannot run
JavaScript: it needs a Python equivalent of each.** \`rewards/NAME.js\` holds each function's source (or a
built-in rule's text) and the signature of its port. The configs list them under \`reward_funcs\` as
import paths, \`rewards.NAME.NAME\`, i.e. the function NAME in \`rewards/NAME.py\`: TRL's scripts import an
entry with a dot as \`module.function\`, with the current folder first on \`sys.path\`, so run \`trl\` from
this folder. Until those files exist, \`trl grpo\` / \`trl rloo\` stop with ModuleNotFoundError. To use
other functions, override the list: \`trl grpo --config grpo.yaml --reward_funcs my_rewards.concise\`
(TRL's own \`accuracy_reward\`, \`think_format_reward\`, ... are accepted by name).

| file | what | reward_funcs entry (write the .py) | used by |
| --- | --- | --- | --- |
${rows.join('\n')}

A reward model and reward functions together: TRL scores with the reward model first, then the functions;
\`reward_weights\` is written in that order.
`;
}

function readme(x: ClusterExportInput, counts: { sft: number; pairs: number; prompts: number }, rewards: RewardFile[]): string {
  const h = x.hyper;
  const rewardOf = (s: RunHyper) => [s.rewardModel, ...(s.rewardFuncs ?? []).map((n) => `rewards/${pythonName(n)}.py`)].filter(Boolean).join(' + ');
  return `# RLHF run exported from rlhf-playground

Continue this run on a GPU cluster with Hugging Face TRL's command line. Run every command from this
folder: the configs refer to \`data/...\` by relative path.

| file | contents | rows |
| --- | --- | --- |
| data/sft.jsonl | SFT rows: \`{"prompt","completion"}\` or \`{"messages":[...]}\` | ${counts.sft} |
| data/preference.jsonl | preference pairs \`{"prompt","chosen","rejected"}\` (rankings expanded to all untied pairs) | ${counts.pairs} |
| data/prompts.jsonl | prompts \`{"prompt"}\` for the online stage | ${counts.prompts} |
| sft.yaml, reward.yaml, dpo.yaml, rloo.yaml, grpo.yaml | TRL configs | |
${rewards.length ? '| `rewards/*.js`, `rewards/__init__.py` | the reward functions GRPO / RLOO used here, in JavaScript: see "Reward functions" | |\n' : ''}
## Setup

\`\`\`bash
pip install "trl>=0.22" peft accelerate   # the configs use TRL's \`datasets:\` section and the new RLOO trainer
accelerate config                          # once per machine: GPUs, mixed precision, DeepSpeed / FSDP
\`\`\`

## Stages

\`\`\`bash
trl sft --config sft.yaml        # 1. supervised fine-tuning      -> ${h.sft.outputDir}
trl reward --config reward.yaml  # 2. reward model on preferences  -> ${h.reward.outputDir}
trl dpo --config dpo.yaml        # 3a. offline: DPO on preferences -> ${h.dpo.outputDir}
trl rloo --config rloo.yaml      # 3b. online: RLOO on the prompts   -> ${h.rloo.outputDir}
trl grpo --config grpo.yaml      # 3c. online: GRPO on the prompts   -> ${h.grpo.outputDir}
\`\`\`

Policy models: sft ${h.sft.model}, dpo ${h.dpo.model}, rloo ${h.rloo.model}, grpo ${h.grpo.model}; rewards for
rloo: ${rewardOf(h.rloo)}; for grpo: ${rewardOf(h.grpo)}.

### Many GPUs

The \`trl\` command launches through Accelerate and takes its options:

\`\`\`bash
trl sft --config sft.yaml --num_processes 8
trl dpo --config dpo.yaml --num_processes 8 --accelerate_config zero3   # or fsdp2, multi_gpu, or a path to an accelerate YAML
\`\`\`

or with \`accelerate launch\` running TRL's scripts as modules:

\`\`\`bash
accelerate launch --num_processes 8 -m trl.scripts.sft --config sft.yaml
accelerate launch --num_processes 8 -m trl.scripts.reward --config reward.yaml
accelerate launch --num_processes 8 -m trl.scripts.dpo --config dpo.yaml
accelerate launch --num_processes 8 -m trl.scripts.rloo --config rloo.yaml
accelerate launch --num_processes 8 -m trl.scripts.grpo --config grpo.yaml
\`\`\`

For several nodes add \`--num_machines N --machine_rank R --main_process_ip HOST --main_process_port PORT\`
(or your scheduler's launcher) to the \`accelerate launch\` line.

## Notes

- Values on the command line override the YAML: \`trl sft --config sft.yaml --learning_rate 1e-5\`.
- \`per_device_train_batch_size\` is per GPU: the effective batch is
  per_device_train_batch_size x gradient_accumulation_steps x GPUs. Lower gradient_accumulation_steps
  when adding GPUs to keep the run's batch size.
- RLOO and GRPO: per_device_train_batch_size counts completions, not prompts, and
  per_device_train_batch_size x gradient_accumulation_steps x GPUs must be divisible by num_generations
  (a step then takes that / num_generations prompts).
- LoRA stages save adapters. If a later stage cannot load a LoRA output folder as its model or reward
  model, merge it first with peft (\`PeftModel.from_pretrained(base, dir).merge_and_unload().save_pretrained(...)\`).
- Older TRL: before ~0.21 there was no \`datasets:\` section (put each JSONL file in its own folder and
  use \`dataset_name: that/folder\`); SFT's \`max_length\` was \`max_seq_length\` before 0.16; RLOO before
  0.22 used \`rloo_k\`, \`kl_coef\`, \`response_length\` and \`reward_model_path\`.
- TRL has no PPO command (its PPOTrainer was experimental and is gone): a PPO run here continues as
  \`trl rloo\`, the online trainer closest to it.
${rewardsSection(rewards)}`;
}

/** Files for a cluster run: data/*.jsonl, one TRL YAML per stage, and a README with the commands. */
export function clusterExport(x: ClusterExportInput): Map<string, Uint8Array> {
  const sft = sftRecords(x.datasets.sft);
  const pairs = preferenceRecords(x.datasets.preferences);
  const prompts = promptLines(x.datasets.prompts);
  // An online stage with neither reward functions nor a reward model scores with the reward stage's
  // output, the recipe's order; one with reward functions only keeps to them.
  const online = (h: RunHyper): RunHyper =>
    h.rewardModel !== undefined || (h.rewardFuncs?.length ?? 0) > 0 ? h : { ...h, rewardModel: x.hyper.reward.outputDir };
  const hyper: Record<TrlStage, RunHyper> = { ...x.hyper, rloo: online(x.hyper.rloo), grpo: online(x.hyper.grpo) };
  const rewards = rewardFiles({ ...x, hyper });
  const paths: Record<TrlStage, string> = {
    sft: 'data/sft.jsonl',
    reward: 'data/preference.jsonl',
    dpo: 'data/preference.jsonl',
    rloo: 'data/prompts.jsonl',
    grpo: 'data/prompts.jsonl',
  };
  const files = new Map<string, Uint8Array>();
  files.set('data/sft.jsonl', enc.encode(exportJsonl(sft)));
  files.set('data/preference.jsonl', enc.encode(exportJsonl(pairs)));
  files.set('data/prompts.jsonl', enc.encode(prompts));
  for (const stage of TRL_STAGES) files.set(`${stage}.yaml`, enc.encode(trlConfigYaml(stage, hyper[stage], paths[stage])));
  for (const f of rewards) files.set(`rewards/${f.name}.js`, enc.encode(rewardFile(f)));
  if (rewards.length) files.set('rewards/__init__.py', enc.encode(REWARDS_INIT));
  files.set('README.md', enc.encode(readme({ ...x, hyper }, { sft: sft.length, pairs: pairs.length, prompts: x.datasets.prompts.length }, rewards)));
  return files;
}
