// "Export for a cluster": the user's data as JSONL plus YAML configs for TRL's command line
// (`trl sft|reward|dpo|rloo --config X.yaml`), so a run prototyped in the browser continues on many
// GPUs. Pure string work: runs in browsers and in Node (no fs, no network).
//
// Field names follow TRL as of late 2025 (v0.22 to v0.26, main branch read around then) and
// transformers 4.5x:
//   - trl/scripts/utils.py          ScriptArguments (dataset_name, dataset_train_split, ...) and
//                                   DatasetMixtureConfig (`datasets:` list, added by TRL PR #3791, 2025-07)
//   - trl/trainer/model_config.py   ModelConfig (model_name_or_path, use_peft, lora_*)
//   - trl/trainer/sft_config.py     SFTConfig     (max_length; TRL < 0.16 called it max_seq_length)
//   - trl/trainer/reward_config.py  RewardConfig  (max_length)
//   - trl/trainer/dpo_config.py     DPOConfig     (beta, max_length)
//   - trl/trainer/rloo_config.py    RLOOConfig    (num_generations, max_completion_length, temperature,
//                                   beta = KL coefficient) — the RLOOTrainer rewritten in TRL PR #3801
//                                   (2025-07). The older PPO-style RLOOConfig (TRL <= 0.21) used rloo_k,
//                                   kl_coef, response_length, reward_model_path / sft_model_path and had
//                                   no `trl rloo` command.
//   - trl/scripts/rloo.py           RLOOScriptArguments (reward_model_name_or_path, reward_funcs)
//   - transformers TrainingArguments (output_dir, learning_rate, ...) which every TRL config extends.
//
// Local JSONL: `dataset_name` goes to datasets.load_dataset(dataset_name), which accepts a hub id or
// a local *directory*, not a single .jsonl file. So the configs use the `datasets:` mixture section,
// whose entries are passed to load_dataset(path=..., data_files=..., split=...), i.e.
// load_dataset("json", data_files="data/sft.jsonl", split="train") — the documented way to load local
// JSON Lines. get_dataset() returns it as the "train" split, which `dataset_train_split: train` picks.
// This needs a TRL with DatasetMixtureConfig (about v0.21+); older TRL rejects the `datasets` key.
//
// The TRL CLI parses the YAML with yaml.safe_load (PyYAML, YAML 1.1) and sets the values as argparse
// defaults. YAML 1.1 quirks shape the emitter below: every string is double-quoted (so "no", "on",
// "1e5" or "null" stay strings) and floats always carry a '.' and a signed exponent ("1.0e-5"), since
// PyYAML reads "1e-5" as a string. Keys a script does not know are ignored silently by the TRL
// scripts (fail_with_unknown_args=False), hence TRL_FIELDS and the check in trlConfigYaml.

import { yamlQuote } from './yaml.ts';
import { exportJsonl, toPreferencePairs, toSftRows, type Record as DataRecord } from './datasets.ts';

export type TrlStage = 'sft' | 'reward' | 'dpo' | 'rloo';
export const TRL_STAGES: readonly TrlStage[] = ['sft', 'reward', 'dpo', 'rloo'];

export interface RunHyper {
  model: string; // base model hub id (or a path on the cluster, e.g. the SFT stage's output_dir)
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
  klCoef?: number; // online stage (RLOO beta)
  numGenerations?: number; // K samples per prompt
  maxNewTokens?: number;
  temperature?: number;
  rewardModel?: string; // hub id or path of the reward model (RLOO)
}

// transformers/training_args.py TrainingArguments (fields the TRL CLI accepts for every trainer).
// Note: transformers v5 deprecates warmup_ratio in favour of a fractional warmup_steps (uncertain
// timing; 4.5x still accepts warmup_ratio).
const TRAINING_ARGUMENTS = [
  'output_dir', 'overwrite_output_dir', 'learning_rate', 'num_train_epochs', 'max_steps',
  'per_device_train_batch_size', 'per_device_eval_batch_size', 'gradient_accumulation_steps',
  'warmup_ratio', 'warmup_steps', 'weight_decay', 'max_grad_norm', 'seed', 'data_seed',
  'lr_scheduler_type', 'optim', 'adam_beta1', 'adam_beta2', 'adam_epsilon', 'bf16', 'fp16', 'tf32',
  'gradient_checkpointing', 'logging_steps', 'logging_first_step', 'save_strategy', 'save_steps',
  'save_total_limit', 'eval_strategy', 'eval_steps', 'report_to', 'run_name', 'push_to_hub',
  'hub_model_id', 'dataloader_num_workers', 'remove_unused_columns', 'resume_from_checkpoint',
] as const;

// trl/trainer/model_config.py ModelConfig (torch_dtype was renamed dtype in late 2025).
const MODEL_CONFIG = [
  'model_name_or_path', 'model_revision', 'dtype', 'trust_remote_code', 'attn_implementation',
  'use_peft', 'lora_r', 'lora_alpha', 'lora_dropout', 'lora_target_modules', 'lora_modules_to_save',
  'lora_task_type', 'use_rslora', 'use_dora', 'load_in_8bit', 'load_in_4bit', 'bnb_4bit_quant_type',
  'use_bnb_nested_quant',
] as const;

// trl/scripts/utils.py ScriptArguments + DatasetMixtureConfig (top-level keys).
const SCRIPT_ARGUMENTS = [
  'dataset_name', 'dataset_config', 'dataset_train_split', 'dataset_test_split', 'dataset_streaming',
  'datasets', 'streaming', 'test_split_size',
] as const;

/** Keys of one `datasets:` entry: trl/scripts/utils.py DatasetConfig (mirrors datasets.load_dataset). */
export const TRL_DATASET_ENTRY_FIELDS: readonly string[] = ['path', 'name', 'data_dir', 'data_files', 'split', 'columns'];

const COMMON = [...SCRIPT_ARGUMENTS, ...MODEL_CONFIG, ...TRAINING_ARGUMENTS];

/**
 * The top-level keys each stage's YAML may use: ScriptArguments / DatasetMixtureConfig
 * (trl/scripts/utils.py), ModelConfig (trl/trainer/model_config.py), transformers TrainingArguments,
 * plus the stage's own config class:
 *   sft    trl/trainer/sft_config.py     SFTConfig
 *   reward trl/trainer/reward_config.py  RewardConfig
 *   dpo    trl/trainer/dpo_config.py     DPOConfig
 *   rloo   trl/trainer/rloo_config.py    RLOOConfig, and RLOOScriptArguments from trl/scripts/rloo.py
 */
export const TRL_FIELDS: Record<TrlStage, readonly string[]> = {
  sft: [...COMMON, 'max_length', 'packing', 'completion_only_loss', 'assistant_only_loss', 'dataset_text_field', 'eos_token', 'pad_token'],
  reward: [...COMMON, 'max_length', 'center_rewards_coefficient', 'disable_dropout'],
  dpo: [...COMMON, 'beta', 'max_length', 'max_prompt_length', 'max_completion_length', 'loss_type', 'label_smoothing', 'precompute_ref_log_probs'],
  rloo: [
    ...COMMON, 'reward_model_name_or_path', 'reward_funcs', 'num_generations', 'max_completion_length',
    'temperature', 'top_p', 'top_k', 'beta', 'num_iterations', 'epsilon', 'normalize_advantages',
    'steps_per_generation', 'generation_batch_size', 'use_vllm', 'vllm_mode', 'log_completions',
  ],
};

// ---------------------------------------------------------------------------------------------
// A small YAML emitter for what these configs need: scalars, lists of scalars, lists of flat maps.

type Scalar = string | number | boolean;
type YamlValue = Scalar | readonly Scalar[] | readonly { readonly [k: string]: Scalar }[];
interface Entry { key: string; value: YamlValue; comment?: string }


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
    if (comment) out += comment.split('\n').map((l) => (l === '' ? '\n' : `# ${l}\n`)).join('');
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

function validate(stage: TrlStage, h: RunHyper, datasetPath: string): void {
  check(isText(h.model), stage, 'model', h.model, 'a non-empty string');
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
  if (h.klCoef !== undefined) check(isNum(h.klCoef, 0), stage, 'klCoef', h.klCoef, 'a number >= 0');
  if (h.numGenerations !== undefined) check(isInt(h.numGenerations, 2), stage, 'numGenerations', h.numGenerations, 'an integer >= 2');
  if (h.maxNewTokens !== undefined) check(isInt(h.maxNewTokens, 1), stage, 'maxNewTokens', h.maxNewTokens, 'an integer >= 1');
  if (h.temperature !== undefined) check(isNum(h.temperature, 0, Infinity, true), stage, 'temperature', h.temperature, 'a number > 0');
  if (stage === 'rloo') check(isText(h.rewardModel), stage, 'rewardModel', h.rewardModel, 'a reward model hub id or path');
}

const COMMAND: Record<TrlStage, string> = { sft: 'trl sft', reward: 'trl reward', dpo: 'trl dpo', rloo: 'trl rloo' };
const WHAT: Record<TrlStage, string> = {
  sft: 'supervised fine-tuning (SFTTrainer)',
  reward: 'reward model training (RewardTrainer)',
  dpo: 'direct preference optimization (DPOTrainer)',
  rloo: 'online RL with REINFORCE leave-one-out (RLOOTrainer)',
};

/** The YAML config for `trl <stage> --config <stage>.yaml`; every key is in TRL_FIELDS[stage]. */
export function trlConfigYaml(stage: TrlStage, h: RunHyper, datasetPath: string): string {
  if (!TRL_STAGES.includes(stage)) throw new RangeError(`unknown TRL stage ${JSON.stringify(stage)}`);
  validate(stage, h, datasetPath);
  const e: Entry[] = [];
  const add = (key: string, value: YamlValue, comment?: string) => e.push({ key, value, comment });

  add('model_name_or_path', h.model);
  add('datasets', [{ path: 'json', data_files: datasetPath, split: 'train' }],
    'Local JSON Lines through the DatasetMixtureConfig section: load_dataset("json", data_files=..., split="train").');
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
      break;
    case 'rloo': {
      add('reward_model_name_or_path', h.rewardModel!,
        '\nRLOO (trl/scripts/rloo.py RLOOScriptArguments; TRL <= 0.21 used reward_model_path in RLOOConfig)');
      const k = h.numGenerations;
      let kNote = 'RLOOConfig: K completions sampled per prompt (TRL <= 0.21: rloo_k)';
      if (k !== undefined && (h.batchSize * h.gradAccum) % k !== 0) {
        kNote += `\nWARNING: per_device_train_batch_size * gradient_accumulation_steps * num_processes must be divisible by ${k}`;
      }
      if (k !== undefined) add('num_generations', k, kNote);
      if (h.maxNewTokens !== undefined) add('max_completion_length', h.maxNewTokens, 'TRL <= 0.21: response_length');
      if (h.temperature !== undefined) add('temperature', h.temperature);
      if (h.klCoef !== undefined) add('beta', h.klCoef, 'KL coefficient (TRL <= 0.21: kl_coef)');
      break;
    }
  }

  const allowed = TRL_FIELDS[stage];
  for (const { key } of e) if (!allowed.includes(key)) throw new Error(`internal: ${key} is not in TRL_FIELDS.${stage}`);

  const header =
    `# ${WHAT[stage]}, written by rlhf-playground.\n` +
    `# Run from the folder holding this file: ${COMMAND[stage]} --config ${stage}.yaml\n` +
    `# Field names follow TRL ~0.22-0.26 (late 2025) and transformers TrainingArguments.\n`;
  return header + yamlEntries(e);
}

// ---------------------------------------------------------------------------------------------

export interface ClusterExportInput {
  hyper: Record<TrlStage, RunHyper>;
  datasets: { sft: DataRecord[]; preferences: DataRecord[]; prompts: string[] };
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
    return { kind: 'messages', messages: [{ role: 'user', content: r.prompt }, { role: 'assistant', content: r.completion }] };
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

function promptLines(prompts: string[]): string {
  return prompts
    .map((p, i) => {
      if (typeof p !== 'string') throw new RangeError(`datasets.prompts[${i}] must be a string`);
      return JSON.stringify({ prompt: p }) + '\n';
    })
    .join('');
}

function readme(x: ClusterExportInput, counts: { sft: number; pairs: number; prompts: number }): string {
  const h = x.hyper;
  return `# RLHF run exported from rlhf-playground

Continue this run on a GPU cluster with Hugging Face TRL's command line. Run every command from this
folder: the configs refer to \`data/...\` by relative path.

| file | contents | rows |
| --- | --- | --- |
| data/sft.jsonl | SFT rows: \`{"prompt","completion"}\` or \`{"messages":[...]}\` | ${counts.sft} |
| data/preference.jsonl | preference pairs \`{"prompt","chosen","rejected"}\` (rankings expanded to all untied pairs) | ${counts.pairs} |
| data/prompts.jsonl | prompts \`{"prompt"}\` for the online stage | ${counts.prompts} |
| sft.yaml, reward.yaml, dpo.yaml, rloo.yaml | TRL configs | |

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
trl rloo --config rloo.yaml      # 3b. online: RLOO against the reward model -> ${h.rloo.outputDir}
\`\`\`

Policy models: sft ${h.sft.model}, dpo ${h.dpo.model}, rloo ${h.rloo.model}; reward model for rloo: ${h.rloo.rewardModel ?? h.reward.outputDir}.

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
\`\`\`

For several nodes add \`--num_machines N --machine_rank R --main_process_ip HOST --main_process_port PORT\`
(or your scheduler's launcher) to the \`accelerate launch\` line.

## Notes

- Values on the command line override the YAML: \`trl sft --config sft.yaml --learning_rate 1e-5\`.
- \`per_device_train_batch_size\` is per GPU: the effective batch is
  per_device_train_batch_size x gradient_accumulation_steps x GPUs. Lower gradient_accumulation_steps
  when adding GPUs to keep the run's batch size.
- RLOO: per_device_train_batch_size x gradient_accumulation_steps x GPUs must be divisible by
  num_generations.
- LoRA stages save adapters. If a later stage cannot load a LoRA output folder as its model or reward
  model, merge it first with peft (\`PeftModel.from_pretrained(base, dir).merge_and_unload().save_pretrained(...)\`).
- Older TRL: before ~0.21 there was no \`datasets:\` section (put each JSONL file in its own folder and
  use \`dataset_name: that/folder\`); SFT's \`max_length\` was \`max_seq_length\` before 0.16; RLOO before
  0.22 used \`rloo_k\`, \`kl_coef\`, \`response_length\` and \`reward_model_path\`.
`;
}

/** Files for a cluster run: data/*.jsonl, one TRL YAML per stage, and a README with the commands. */
export function clusterExport(x: ClusterExportInput): Map<string, Uint8Array> {
  const sft = sftRecords(x.datasets.sft);
  const pairs = preferenceRecords(x.datasets.preferences);
  const prompts = promptLines(x.datasets.prompts);
  const rloo: RunHyper = { ...x.hyper.rloo, rewardModel: x.hyper.rloo.rewardModel ?? x.hyper.reward.outputDir };
  const paths: Record<TrlStage, string> = {
    sft: 'data/sft.jsonl', reward: 'data/preference.jsonl', dpo: 'data/preference.jsonl', rloo: 'data/prompts.jsonl',
  };
  const files = new Map<string, Uint8Array>();
  files.set('data/sft.jsonl', enc.encode(exportJsonl(sft)));
  files.set('data/preference.jsonl', enc.encode(exportJsonl(pairs)));
  files.set('data/prompts.jsonl', enc.encode(prompts));
  for (const stage of TRL_STAGES) {
    const h = stage === 'rloo' ? rloo : x.hyper[stage];
    files.set(`${stage}.yaml`, enc.encode(trlConfigYaml(stage, h, paths[stage])));
  }
  files.set('README.md', enc.encode(readme({ ...x, hyper: { ...x.hyper, rloo } }, { sft: sft.length, pairs: pairs.length, prompts: x.datasets.prompts.length })));
  return files;
}
