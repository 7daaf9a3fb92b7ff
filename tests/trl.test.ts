import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  clusterExport,
  pythonName,
  rewardImportPath,
  TRL_DATASET_ENTRY_FIELDS,
  TRL_FIELDS,
  TRL_STAGES,
  trlConfigYaml,
  type RunHyper,
  type TrlStage,
} from '../src/io/trl.ts';
import { importJsonl, type Record as DataRecord } from '../src/io/datasets.ts';

// ---------------------------------------------------------------------------------------------
// A tiny reader for the YAML subset trl.ts writes: comments, blank lines, `key: scalar`,
// `key: []`, and `key:` followed by `  - scalar` items or `  - k: v` / `    k: v` flat maps.
// Scalars: double-quoted strings (JSON escapes), true/false, numbers. Anything else throws.

type Scalar = string | number | boolean;
type Value = Scalar | Scalar[] | { [k: string]: Scalar }[];

function scalar(s: string): Scalar {
  if (s.startsWith('"')) return JSON.parse(s) as string;
  if (s === 'true' || s === 'false') return s === 'true';
  // YAML 1.1 (PyYAML) int or float: floats need a '.', exponents need a sign.
  if (/^-?(0|[1-9][0-9]*)$/.test(s) || /^-?[0-9]+\.[0-9]*([eE][-+][0-9]+)?$/.test(s)) return Number(s);
  throw new Error(`unexpected YAML scalar ${JSON.stringify(s)}`);
}

function readYaml(text: string): Map<string, Value> {
  const out = new Map<string, Value>();
  let list: (Scalar | { [k: string]: Scalar })[] | null = null;
  let map: { [k: string]: Scalar } | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    let m: RegExpExecArray | null;
    if ((m = /^([a-z_][a-z0-9_]*):(?: (.*))?$/.exec(line))) {
      const [, key, rest] = m;
      if (out.has(key!)) throw new Error(`duplicate key ${key}`);
      if (rest === undefined) {
        list = [];
        out.set(key!, list as Value);
      } else {
        out.set(key!, rest === '[]' ? [] : scalar(rest));
        list = null;
      }
      map = null;
    } else if (list && (m = /^ {2}- ([a-z_][a-z0-9_]*): (.*)$/.exec(line))) {
      map = { [m[1]!]: scalar(m[2]!) };
      list.push(map);
    } else if (list && (m = /^ {2}- (.*)$/.exec(line))) {
      list.push(scalar(m[1]!));
      map = null;
    } else if (map && (m = /^ {4}([a-z_][a-z0-9_]*): (.*)$/.exec(line))) {
      map[m[1]!] = scalar(m[2]!);
    } else {
      throw new Error(`unexpected YAML line ${JSON.stringify(line)}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

const base: RunHyper = {
  model: 'Qwen/Qwen2.5-0.5B-Instruct',
  outputDir: 'runs/sft',
  lr: 2e-5,
  epochs: 2,
  batchSize: 4,
  gradAccum: 8,
  maxLength: 1024,
  warmupRatio: 0.03,
  weightDecay: 0.01,
  maxGradNorm: 1,
  seed: 1234,
  loraRank: 16,
  loraAlpha: 32,
  loraDropout: 0.05,
  loraTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
};
const hyper: { [S in TrlStage]: RunHyper } = {
  sft: base,
  reward: { ...base, model: 'runs/sft', outputDir: 'runs/reward', lr: 1e-4 },
  dpo: { ...base, model: 'runs/sft', outputDir: 'runs/dpo', lr: 5e-7, beta: 0.1 },
  rloo: {
    ...base,
    model: 'runs/sft',
    outputDir: 'runs/rloo',
    lr: 1e-6,
    loraRank: 0,
    klCoef: 0.05,
    numGenerations: 4,
    maxNewTokens: 256,
    temperature: 0.8,
    rewardModel: 'runs/reward',
  },
  // a reward model and two reward functions; weights in the playground's order (functions, then the model)
  grpo: {
    ...base,
    model: 'runs/sft',
    outputDir: 'runs/grpo',
    lr: 1e-6,
    batchSize: 16,
    gradAccum: 1,
    klCoef: 0.04,
    numGenerations: 4,
    maxNewTokens: 128,
    temperature: 0.9,
    rewardModel: 'runs/reward',
    rewardFuncs: ['concise', 'max_words'],
    rewardWeights: [0.5, -0.25, 2],
    scaleRewards: 'batch',
    lossType: 'dr_grpo',
    epsilon: 0.2,
    epsilonHigh: 0.28,
    numIterations: 4,
    maskTruncatedCompletions: true,
  },
};
const paths: { [S in TrlStage]: string } = {
  sft: 'data/sft.jsonl',
  reward: 'data/preference.jsonl',
  dpo: 'data/preference.jsonl',
  rloo: 'data/prompts.jsonl',
  grpo: 'data/prompts.jsonl',
};

// The fields of TRL's classes, copied from TRL's main branch at f2cd577 (2026-07-24): the dataclass
// fields of trl/trainer/grpo_config.py GRPOConfig and trl/trainer/rloo_config.py RLOOConfig, and of
// GRPOScriptArguments / RLOOScriptArguments in trl/scripts/grpo.py and rloo.py (ScriptArguments' own in
// trl/scripts/utils.py are common to every stage).
const GRPO_CONFIG = [
  'learning_rate',
  'model_init_kwargs',
  'trust_remote_code',
  'router_aux_loss_coef',
  'disable_dropout',
  'cast_lm_head_to_fp32',
  'remove_unused_columns',
  'num_generations',
  'num_generations_eval',
  'max_completion_length',
  'ds3_gather_for_generation',
  'shuffle_dataset',
  'pad_to_multiple_of',
  'generation_batch_size',
  'steps_per_generation',
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'generation_kwargs',
  'chat_template_kwargs',
  'repetition_penalty',
  'cache_implementation',
  'use_vllm',
  'vllm_mode',
  'vllm_model_impl',
  'vllm_enable_sleep_mode',
  'vllm_structured_outputs_regex',
  'vllm_server_base_url',
  'vllm_server_host',
  'vllm_server_port',
  'vllm_server_timeout',
  'vllm_group_port',
  'vllm_gpu_memory_utilization',
  'vllm_max_model_length',
  'vllm_tensor_parallel_size',
  'beta',
  'num_iterations',
  'epsilon',
  'delta',
  'epsilon_high',
  'sapo_temperature_neg',
  'sapo_temperature_pos',
  'vespo_k_pos',
  'vespo_lambda_pos',
  'vespo_k_neg',
  'vespo_lambda_neg',
  'importance_sampling_level',
  'reward_weights',
  'multi_objective_aggregation',
  'scale_rewards',
  'loss_type',
  'mask_truncated_completions',
  'sync_ref_model',
  'ref_model_mixup_alpha',
  'ref_model_sync_steps',
  'top_entropy_quantile',
  'entropy_coef',
  'use_adaptive_entropy',
  'entropy_coef_min',
  'entropy_coef_max',
  'entropy_coef_delta',
  'entropy_target',
  'max_tool_calling_iterations',
  'vllm_importance_sampling_correction',
  'vllm_importance_sampling_mode',
  'vllm_importance_sampling_clip_max',
  'vllm_importance_sampling_clip_min',
  'off_policy_mask_threshold',
  'use_bias_correction_kl',
  'log_completions',
  'log_multimodal',
  'num_completions_to_print',
  'log_unique_prompts',
  'log_completions_hub_repo',
  'use_transformers_continuous_batching',
  'transformers_continuous_batching_config',
  'use_transformers_paged',
  'vllm_importance_sampling_cap',
];
const RLOO_CONFIG = [
  'learning_rate',
  'model_init_kwargs',
  'trust_remote_code',
  'router_aux_loss_coef',
  'disable_dropout',
  'remove_unused_columns',
  'num_generations',
  'num_generations_eval',
  'max_completion_length',
  'ds3_gather_for_generation',
  'shuffle_dataset',
  'pad_to_multiple_of',
  'generation_batch_size',
  'steps_per_generation',
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'generation_kwargs',
  'chat_template_kwargs',
  'repetition_penalty',
  'cache_implementation',
  'use_vllm',
  'vllm_mode',
  'vllm_model_impl',
  'vllm_enable_sleep_mode',
  'vllm_structured_outputs_regex',
  'vllm_server_base_url',
  'vllm_server_host',
  'vllm_server_port',
  'vllm_server_timeout',
  'vllm_group_port',
  'vllm_gpu_memory_utilization',
  'vllm_max_model_length',
  'vllm_tensor_parallel_size',
  'beta',
  'num_iterations',
  'epsilon',
  'epsilon_high',
  'reward_weights',
  'normalize_advantages',
  'reward_clip_range',
  'mask_truncated_completions',
  'sync_ref_model',
  'ref_model_mixup_alpha',
  'ref_model_sync_steps',
  'log_completions',
  'log_multimodal',
  'num_completions_to_print',
  'log_unique_prompts',
  'use_transformers_continuous_batching',
  'transformers_continuous_batching_config',
  'use_transformers_paged',
];
const ONLINE_SCRIPT_ARGUMENTS = ['reward_model_name_or_path', 'reward_funcs'];
/** A stage's own keys: TRL_FIELDS[stage] less the keys every stage shares (ScriptArguments, ModelConfig, TrainingArguments). */
const ownFields = (stage: TrlStage) => TRL_FIELDS[stage].filter((k) => !TRL_STAGES.every((s) => TRL_FIELDS[s].includes(k)));

/** What PyYAML's safe_load (the TRL CLI's reader) makes of each text, as JSON. */
function pyyaml(texts: string[]): unknown[] {
  const python = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' });
  expect(python.status, `python3 with PyYAML is needed (apt-get install python3-yaml): ${python.error?.message ?? python.stderr}`).toBe(0);
  const script = 'import sys, json, yaml\nprint(json.dumps([yaml.safe_load(t) for t in json.load(sys.stdin)]))';
  const r = spawnSync('python3', ['-c', script], { input: JSON.stringify(texts), encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as unknown[];
}
const yamlOf = (stage: TrlStage, h = hyper[stage]) => readYaml(trlConfigYaml(stage, h, paths[stage]));

describe('trlConfigYaml', () => {
  it.each(TRL_STAGES)('%s: parses and uses only TRL_FIELDS keys', (stage) => {
    const text = trlConfigYaml(stage, hyper[stage], paths[stage]);
    expect(text.endsWith('\n')).toBe(true);
    expect(text).toContain(`trl ${stage} --config ${stage}.yaml`);
    const y = readYaml(text);
    expect(y.size).toBeGreaterThan(10);
    for (const key of y.keys()) expect(TRL_FIELDS[stage], `${stage}.yaml key ${key}`).toContain(key);
    // The data comes in through the DatasetMixtureConfig section as a local JSON Lines file.
    expect(y.get('datasets')).toEqual([{ path: 'json', data_files: paths[stage], split: 'train' }]);
    for (const entry of y.get('datasets') as { [k: string]: Scalar }[]) {
      for (const k of Object.keys(entry)) expect(TRL_DATASET_ENTRY_FIELDS).toContain(k);
    }
    expect(y.get('dataset_train_split')).toBe('train');
    expect(y.get('model_name_or_path')).toBe(hyper[stage].model);
    expect(y.get('output_dir')).toBe(hyper[stage].outputDir);
  });

  it('translates the shared hyperparameters', () => {
    const y = yamlOf('sft');
    expect(Object.fromEntries(y)).toMatchObject({
      learning_rate: 2e-5,
      num_train_epochs: 2,
      per_device_train_batch_size: 4,
      gradient_accumulation_steps: 8,
      max_length: 1024,
      warmup_ratio: 0.03,
      weight_decay: 0.01,
      max_grad_norm: 1,
      seed: 1234,
      lr_scheduler_type: 'cosine',
      bf16: true,
      use_peft: true,
      lora_r: 16,
      lora_alpha: 32,
      lora_dropout: 0.05,
      lora_target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    });
  });

  it("writes DPO's loss settings where they are not TRL's defaults, and refuses them elsewhere", () => {
    const dpo = (h: Partial<RunHyper>) => yamlOf('dpo', { ...hyper.dpo, ...h });
    const plain = dpo({ dpoLossTypes: ['sigmoid'], ldAlpha: 1, labelSmoothing: 0 });
    for (const k of ['loss_type', 'loss_weights', 'ld_alpha', 'label_smoothing']) expect(plain.has(k), k).toBe(false);
    expect(dpo({ dpoLossTypes: ['ipo'] }).get('loss_type')).toBe('ipo');
    const mpo = dpo({ dpoLossTypes: ['sigmoid', 'bco_pair', 'sft'], lossWeights: [0.8, 0.2, 1], ldAlpha: 0.5 });
    expect(mpo.get('loss_type')).toEqual(['sigmoid', 'bco_pair', 'sft']);
    expect(mpo.get('loss_weights')).toEqual([0.8, 0.2, 1]);
    expect(mpo.get('ld_alpha')).toBe(0.5);
    expect(dpo({ dpoLossTypes: ['robust'], labelSmoothing: 0.1 }).get('label_smoothing')).toBe(0.1);
    expect(() => dpo({ dpoLossTypes: ['sigmoid', 'kto'] })).toThrow(/dpo: dpoLossTypes must be a list of sigmoid \| hinge \| ipo/);
    expect(() => dpo({ dpoLossTypes: ['sigmoid', 'sft'], lossWeights: [1] })).toThrow(/dpo: lossWeights must be one finite number per loss type/);
    expect(() => dpo({ ldAlpha: 2 })).toThrow(/dpo: ldAlpha must be a number in \[0, 1\]/);
    expect(() => trlConfigYaml('grpo', { ...hyper.grpo, ldAlpha: 0.5 }, paths.grpo)).toThrow(/grpo: ldAlpha must be unset \(a DPO setting\)/);
  });

  it('translates stage-specific fields', () => {
    expect(yamlOf('dpo').get('beta')).toBe(0.1);
    expect(yamlOf('dpo').get('learning_rate')).toBe(5e-7);
    expect(yamlOf('reward').get('lora_task_type')).toBe('SEQ_CLS');
    expect(yamlOf('reward').get('lora_modules_to_save')).toEqual(['score']);
    expect(yamlOf('reward').get('max_length')).toBe(1024);
    const r = yamlOf('rloo');
    expect(Object.fromEntries(r)).toMatchObject({
      reward_model_name_or_path: 'runs/reward',
      num_generations: 4,
      max_completion_length: 256,
      temperature: 0.8,
      beta: 0.05,
      learning_rate: 1e-6,
      use_peft: false,
    });
    expect(r.has('max_length')).toBe(false);
    expect([...r.keys()].some((k) => k.startsWith('lora_'))).toBe(false);
    expect(yamlOf('sft').has('beta')).toBe(false);
  });

  it('writes numbers and strings PyYAML reads back with the right type', () => {
    const text = trlConfigYaml('dpo', { ...hyper.dpo, lr: 1e-7, beta: 2.5e-21, model: 'no', outputDir: 'a "b"\n\u2028c' }, 'x.jsonl');
    expect(text).toContain('learning_rate: 1.0e-7\n');
    expect(text).toContain('beta: 2.5e-21\n');
    expect(text).toContain('model_name_or_path: "no"\n'); // a bare no would be a boolean in YAML 1.1
    expect(text).toContain('\\u2028');
    const y = readYaml(text);
    expect(y.get('learning_rate')).toBe(1e-7);
    expect(y.get('output_dir')).toBe('a "b"\n\u2028c');
  });

  it('omits lora_target_modules when empty and refuses bad hyperparameters', () => {
    expect(yamlOf('sft', { ...base, loraTargets: [] }).has('lora_target_modules')).toBe(false);
    expect(() => trlConfigYaml('sft', { ...base, lr: 0 }, 'd.jsonl')).toThrow(/lr must be a number > 0/);
    expect(() => trlConfigYaml('sft', { ...base, batchSize: 2.5 }, 'd.jsonl')).toThrow(/batchSize/);
    expect(() => trlConfigYaml('sft', { ...base, epochs: Number.NaN }, 'd.jsonl')).toThrow(/epochs/);
    expect(() => trlConfigYaml('rloo', { ...hyper.rloo, rewardModel: undefined }, 'd.jsonl')).toThrow(/rewardModel/);
    expect(() => trlConfigYaml('rloo', { ...hyper.rloo, numGenerations: 1 }, 'd.jsonl')).toThrow(/numGenerations/);
    expect(() => trlConfigYaml('ppo' as TrlStage, base, 'd.jsonl')).toThrow(/unknown TRL stage/);
  });

  it('grpo: every setting under the name GRPOConfig / GRPOScriptArguments give it', () => {
    const y = yamlOf('grpo');
    for (const key of y.keys()) expect(TRL_FIELDS.grpo, `grpo.yaml key ${key}`).toContain(key);
    expect(Object.fromEntries(y)).toMatchObject({
      model_name_or_path: 'runs/sft',
      output_dir: 'runs/grpo',
      learning_rate: 1e-6,
      per_device_train_batch_size: 16,
      reward_model_name_or_path: 'runs/reward',
      // the Python ports' import paths: the function NAME in rewards/NAME.py
      reward_funcs: ['rewards.concise.concise', 'rewards.max_words.max_words'],
      // TRL scores with the reward model first: its weight (2, last here) leads
      reward_weights: [2, 0.5, -0.25],
      num_generations: 4,
      max_completion_length: 128,
      temperature: 0.9,
      beta: 0.04,
      num_iterations: 4,
      epsilon: 0.2,
      epsilon_high: 0.28,
      scale_rewards: 'batch',
      loss_type: 'dr_grpo',
      mask_truncated_completions: true,
    });
    for (const k of ['max_length', 'normalize_advantages', 'kl_coef', 'rloo_k']) expect(y.has(k), k).toBe(false);
    const text = trlConfigYaml('grpo', hyper.grpo, paths.grpo);
    expect(text).toContain('trl grpo --config grpo.yaml');
    expect(text).toMatch(/TRL cannot run/);
    expect(text).not.toContain('WARNING'); // 16 completions split into groups of 4
    expect(trlConfigYaml('grpo', { ...hyper.grpo, batchSize: 6 }, paths.grpo)).toContain('must be divisible by 4');
  });

  it("grpo: a reward model alone, reward functions alone; epsilon_high 0 is TRL's None (left out)", () => {
    const rm = yamlOf('grpo', { ...hyper.grpo, rewardFuncs: undefined, rewardWeights: undefined, epsilonHigh: 0 });
    expect(rm.get('reward_model_name_or_path')).toBe('runs/reward');
    for (const k of ['reward_funcs', 'reward_weights', 'epsilon_high']) expect(rm.has(k), k).toBe(false);
    const fns = yamlOf('grpo', { ...hyper.grpo, rewardModel: undefined, rewardFuncs: ['my-rule', 'class'], rewardWeights: [1, 3] });
    expect(fns.has('reward_model_name_or_path')).toBe(false);
    expect(fns.get('reward_funcs')).toEqual(['rewards.my_rule.my_rule', 'rewards.class_.class_']);
    expect(fns.get('reward_weights')).toEqual([1, 3]); // no reward model: the playground's order is TRL's
    expect(pythonName('$x.v2')).toBe('_x_v2');
    expect(pythonName('2nd')).toBe('_2nd');
    expect(rewardImportPath('concise')).toBe('rewards.concise.concise');
  });

  it("rloo: our RLOO run's settings under RLOOConfig's names; none of GRPO's", () => {
    const h: RunHyper = {
      ...hyper.rloo,
      rewardModel: undefined,
      rewardFuncs: ['concise'],
      epsilon: 0.2,
      epsilonHigh: 0.3,
      numIterations: 2,
      normalizeAdvantages: true,
      maskTruncatedCompletions: false,
    };
    const y = yamlOf('rloo', h);
    for (const key of y.keys()) expect(TRL_FIELDS.rloo, `rloo.yaml key ${key}`).toContain(key);
    expect(Object.fromEntries(y)).toMatchObject({
      reward_funcs: ['rewards.concise.concise'],
      num_generations: 4,
      beta: 0.05,
      epsilon: 0.2,
      epsilon_high: 0.3,
      num_iterations: 2,
      normalize_advantages: true,
      mask_truncated_completions: false,
    });
    for (const k of ['reward_model_name_or_path', 'scale_rewards', 'loss_type']) expect(y.has(k), k).toBe(false);
  });

  it('refuses bad GRPO/RLOO settings, naming the field', () => {
    const g = hyper.grpo;
    const bad: [Partial<RunHyper>, RegExp][] = [
      [{ scaleRewards: 'mean' as RunHyper['scaleRewards'] }, /grpo: scaleRewards must be group \| batch \| none, got "mean"/],
      [{ lossType: 'cispo' as RunHyper['lossType'] }, /grpo: lossType must be grpo \| bnpo \| dr_grpo \| dapo, got "cispo"/],
      [{ epsilon: 1 }, /grpo: epsilon must be a number in \(0, 1\)/],
      [{ epsilonHigh: -0.1 }, /grpo: epsilonHigh must be a number >= 0/],
      [{ numIterations: 0 }, /grpo: numIterations must be an integer >= 1/],
      [{ numGenerations: 1 }, /grpo: numGenerations/],
      [{ maskTruncatedCompletions: 'yes' as unknown as boolean }, /grpo: maskTruncatedCompletions must be true or false/],
      [{ rewardWeights: [1, 2] }, /grpo: rewardWeights must be one weight per reward \(3: rewardFuncs, then the reward model\)/],
      [{ rewardWeights: [1, Number.NaN, 2] }, /grpo: rewardWeights must be a list of finite numbers/],
      [{ rewardFuncs: ['../evil'] }, /grpo: rewardFuncs must be a list of reward function names/],
      [{ rewardFuncs: ['a-b', 'a_b'], rewardWeights: undefined }, /grpo: rewardFuncs must be names with distinct Python names/],
      [{ rewardModel: undefined, rewardFuncs: [], rewardWeights: undefined }, /grpo: rewardModel must be a reward model hub id or path \(or give rewardFuncs/],
      [{ rewardModel: ' ' }, /grpo: rewardModel must be a reward model hub id or path/],
      [{ normalizeAdvantages: true }, /grpo: normalizeAdvantages must be unset \(normalize_advantages is a RLOO setting\)/],
    ];
    for (const [patch, msg] of bad) expect(() => trlConfigYaml('grpo', { ...g, ...patch }, 'p.jsonl'), JSON.stringify(patch)).toThrow(msg);
    expect(() => trlConfigYaml('rloo', { ...hyper.rloo, scaleRewards: 'group' }, 'p.jsonl')).toThrow(
      /rloo: scaleRewards must be unset \(scale_rewards is a GRPO setting\)/,
    );
    expect(() => trlConfigYaml('rloo', { ...hyper.rloo, lossType: 'dapo' }, 'p.jsonl')).toThrow(/rloo: lossType must be unset/);
    expect(() => trlConfigYaml('dpo', { ...hyper.dpo, lossType: 'dapo' }, 'p.jsonl')).toThrow(/dpo: lossType must be unset/);
    // an RLOO run with reward functions only needs no reward model
    expect(() => trlConfigYaml('rloo', { ...hyper.rloo, rewardModel: undefined, rewardFuncs: ['concise'] }, 'p.jsonl')).not.toThrow();
  });

  it('PyYAML reads the GRPO and RLOO configs back with the same values and types', () => {
    const texts = [
      trlConfigYaml('grpo', hyper.grpo, paths.grpo),
      trlConfigYaml('grpo', { ...hyper.grpo, lr: 3e-7, klCoef: 0, temperature: 1, epsilon: 0.125, rewardWeights: [1e-3, 1, 25] }, paths.grpo),
      trlConfigYaml('rloo', { ...hyper.rloo, normalizeAdvantages: false, epsilonHigh: 0.28, numIterations: 1 }, paths.rloo),
    ];
    const parsed = pyyaml(texts);
    parsed.forEach((p, i) => expect(p).toEqual(Object.fromEntries(readYaml(texts[i]!))));
    expect(parsed[1]).toMatchObject({ learning_rate: 3e-7, beta: 0, reward_weights: [25, 1e-3, 1], epsilon: 0.125 });
    expect(texts[1]).toContain('learning_rate: 3.0e-7\n'); // "3e-7" would be a string to PyYAML
  });

  it('TRL_FIELDS name their TRL sources', () => {
    const src = readFileSync('src/io/trl.ts', 'utf8');
    for (const s of [
      'trl/trainer/sft_config.py',
      'trl/trainer/reward_config.py',
      'trl/trainer/dpo_config.py',
      'trl/trainer/rloo_config.py',
      'trl/trainer/model_config.py',
      'trl/scripts/utils.py',
      'TrainingArguments',
    ])
      expect(src).toContain(s);
    for (const stage of TRL_STAGES) {
      for (const k of ['model_name_or_path', 'dataset_name', 'dataset_train_split', 'output_dir', 'learning_rate', 'use_peft', 'lora_r']) {
        expect(TRL_FIELDS[stage]).toContain(k);
      }
    }
    expect(TRL_FIELDS.dpo).toContain('beta');
    expect(TRL_FIELDS.sft).not.toContain('beta');
    expect(TRL_FIELDS.rloo).toEqual(expect.arrayContaining(['num_generations', 'max_completion_length', 'temperature', 'beta', 'reward_model_name_or_path']));
    for (const s of ['trl/trainer/grpo_config.py', 'trl/scripts/grpo.py', 'trl/scripts/rloo.py', 'f2cd577']) expect(src).toContain(s);
    const online = [
      'reward_model_name_or_path',
      'reward_funcs',
      'num_generations',
      'max_completion_length',
      'temperature',
      'beta',
      'num_iterations',
      'epsilon',
      'epsilon_high',
      'reward_weights',
      'mask_truncated_completions',
    ];
    expect(TRL_FIELDS.grpo).toEqual(expect.arrayContaining([...online, 'scale_rewards', 'loss_type']));
    expect(TRL_FIELDS.rloo).toEqual(expect.arrayContaining([...online, 'normalize_advantages']));
    expect(TRL_FIELDS.grpo).not.toContain('normalize_advantages'); // GRPOConfig has none
    for (const k of ['scale_rewards', 'loss_type']) expect(TRL_FIELDS.rloo).not.toContain(k); // nor RLOOConfig these
    // every stage-specific name is a field of TRL's class or of the script's arguments
    for (const k of ownFields('grpo')) expect([...GRPO_CONFIG, ...ONLINE_SCRIPT_ARGUMENTS], `grpo ${k}`).toContain(k);
    for (const k of ownFields('rloo')) expect([...RLOO_CONFIG, ...ONLINE_SCRIPT_ARGUMENTS], `rloo ${k}`).toContain(k);
  });
});

describe('clusterExport', () => {
  const sft: DataRecord[] = [
    { kind: 'completion', prompt: 'Say hi.', completion: ' Hi!' },
    { kind: 'completion', prompt: '<img src=x onerror=alert(1)>', completion: 'ok' },
  ];
  const preferences: DataRecord[] = [
    { kind: 'preference', prompt: 'p', chosen: 'good', rejected: 'bad' },
    { kind: 'ranking', prompt: 'q', completions: ['a', 'b', 'c', 'd'], ranks: [0, 1, 1, 2] },
  ];
  const prompts = ['Write a haiku.', 'Explain "RLOO".'];
  const dec = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

  const concise = 'export function concise({ completions }) {\n  return completions.map((c) => (c.length <= 40 ? 1 : 0));\n}\n';

  it('writes the data, one config per stage and a README', () => {
    const files = clusterExport({ hyper, datasets: { sft, preferences, prompts }, rewardFunctions: [{ name: 'concise', source: concise }] });
    expect([...files.keys()].sort()).toEqual([
      'README.md',
      'data/preference.jsonl',
      'data/prompts.jsonl',
      'data/sft.jsonl',
      'dpo.yaml',
      'grpo.yaml',
      'reward.yaml',
      'rewards/__init__.py',
      'rewards/concise.js',
      'rewards/max_words.js',
      'rloo.yaml',
      'sft.yaml',
    ]);
    for (const v of files.values()) expect(v).toBeInstanceOf(Uint8Array);

    const sftBack = importJsonl(dec(files.get('data/sft.jsonl')), 'data/sft.jsonl');
    expect(sftBack.errors).toEqual([]);
    expect(sftBack.records).toHaveLength(2);
    expect(sftBack.records[1]).toMatchObject({ prompt: '<img src=x onerror=alert(1)>' });

    const pref = importJsonl(dec(files.get('data/preference.jsonl')), 'data/preference.jsonl');
    expect(pref.errors).toEqual([]);
    expect(pref.records).toHaveLength(1 + (6 - 1)); // 4-way ranking: 6 pairs, one tie
    expect(pref.records.every((r) => r.kind === 'preference')).toBe(true);

    const promptLines = dec(files.get('data/prompts.jsonl'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    expect(promptLines).toEqual([{ prompt: 'Write a haiku.' }, { prompt: 'Explain "RLOO".' }]);

    for (const stage of TRL_STAGES) {
      const y = readYaml(dec(files.get(`${stage}.yaml`)));
      expect(y.get('datasets')).toEqual([{ path: 'json', data_files: paths[stage], split: 'train' }]);
      for (const key of y.keys()) expect(TRL_FIELDS[stage]).toContain(key);
    }

    const readme = dec(files.get('README.md'));
    for (const cmd of [
      'trl sft --config sft.yaml',
      'trl reward --config reward.yaml',
      'trl dpo --config dpo.yaml',
      'trl rloo --config rloo.yaml',
      'trl grpo --config grpo.yaml',
    ]) {
      expect(readme).toContain(cmd);
    }
    for (const s of ['sft', 'reward', 'dpo', 'rloo', 'grpo'])
      expect(readme).toContain(`accelerate launch --num_processes 8 -m trl.scripts.${s} --config ${s}.yaml`);
    expect(readme).toContain('--num_processes');
    expect(readme).toContain('TRL cannot run\nJavaScript: it needs a Python equivalent of each.');
    expect(readme).toContain('| rewards/concise.js | your JavaScript | `rewards.concise.concise` | grpo |');
    expect(readme).toMatch(
      /\| rewards\/max_words\.js \| built-in rule: max_words:N: 1 for a completion of at most N words.*\| `rewards\.max_words\.max_words` \| grpo \|/,
    );
  });

  it("grpo.yaml trains on the prompts; each reward function's JavaScript goes beside it with a note on its Python port", () => {
    const files = clusterExport({ hyper, datasets: { sft, preferences, prompts }, rewardFunctions: [{ name: 'concise', source: concise }] });
    const y = readYaml(dec(files.get('grpo.yaml')));
    expect(y.get('datasets')).toEqual([{ path: 'json', data_files: 'data/prompts.jsonl', split: 'train' }]);
    expect(y.get('reward_funcs')).toEqual(['rewards.concise.concise', 'rewards.max_words.max_words']);

    const js = dec(files.get('rewards/concise.js'));
    expect(js.endsWith(concise)).toBe(true); // the user's source, as given
    expect(js).toContain('// TRL cannot run JavaScript. grpo.yaml names it in reward_funcs as "rewards.concise.concise":');
    expect(js).toContain('// the function concise in rewards/concise.py');
    expect(js).toContain('//     def concise(prompts, completions, completion_ids, **kwargs):');
    expect(js).toContain('trl grpo --config grpo.yaml --reward_funcs my_rewards.my_function');
    // everything before the source is a comment: the file still loads as the module it was
    expect(
      js
        .slice(0, js.length - concise.length)
        .split('\n')
        .every((l) => l === '' || l.startsWith('//')),
    ).toBe(true);

    // a built-in rule: its text and the argument the saved config lacks; comments only
    const rule = dec(files.get('rewards/max_words.js'));
    expect(rule).toContain('"max_words", a built-in rule of rlhf-playground: max_words:N: 1 for a completion of at most N words');
    expect(rule).toContain('use the one you trained with');
    expect(rule).toContain('def max_words(prompts, completions, completion_ids, **kwargs):');
    expect(rule.split('\n').every((l) => l === '' || l.startsWith('//'))).toBe(true);
    // rewards/ is a regular package, so the configs' "rewards.NAME.NAME" import from it before any installed "rewards"
    expect(dec(files.get('rewards/__init__.py'))).toMatch(/^# Makes rewards\/ a package/);
  });

  it('names a reward function whose source was not saved, and refuses ambiguous reward functions', () => {
    const h = { ...hyper, rloo: { ...hyper.rloo, rewardModel: undefined, rewardFuncs: ['mystery', 'no_repeat'] } };
    const files = clusterExport({ hyper: h, datasets: { sft, preferences, prompts } });
    expect(dec(files.get('rewards/mystery.js'))).toContain('Its source was not saved with the run: paste the module that defines it below');
    expect(dec(files.get('rewards/no_repeat.js'))).toContain('no_repeat: the share of distinct words');
    expect(dec(files.get('rewards/no_repeat.js'))).not.toContain('use the one you trained with'); // no argument
    // RLOO with reward functions only: no reward model added
    expect(readYaml(dec(files.get('rloo.yaml'))).has('reward_model_name_or_path')).toBe(false);
    expect(dec(files.get('README.md'))).toContain(
      'rewards for\nrloo: rewards/mystery.py + rewards/no_repeat.py; for grpo: runs/reward + rewards/concise.py + rewards/max_words.py.',
    );

    const x = { hyper, datasets: { sft, preferences, prompts } };
    expect(() => clusterExport({ ...x, rewardFunctions: [{ name: 'a/b', source: '' }] })).toThrow(/rewardFunctions\[0\]\.name must be a reward function name/);
    expect(() =>
      clusterExport({
        ...x,
        rewardFunctions: [
          { name: 'x', source: 'a' },
          { name: 'x', source: 'b' },
        ],
      }),
    ).toThrow(/rewardFunctions\[1\]: a second function named "x"/);
    expect(() => clusterExport({ ...x, rewardFunctions: [{ name: 'x', source: 1 as unknown as string }] })).toThrow(/rewardFunctions\[0\]\.source/);
    const clash = { ...hyper, rloo: { ...hyper.rloo, rewardFuncs: ['max-words'] } }; // grpo's max_words is the same Python name
    expect(() => clusterExport({ ...x, hyper: clash })).toThrow(
      /reward functions "max-words" and "max_words" would both be the Python function max_words; rename one/,
    );
  });

  it('defaults the RLOO and GRPO reward model to the reward stage output when they have no reward functions', () => {
    const files = clusterExport({
      hyper: {
        ...hyper,
        rloo: { ...hyper.rloo, rewardModel: undefined },
        grpo: { ...hyper.grpo, rewardModel: undefined, rewardFuncs: [], rewardWeights: undefined },
      },
      datasets: { sft, preferences, prompts },
    });
    expect(readYaml(dec(files.get('rloo.yaml'))).get('reward_model_name_or_path')).toBe('runs/reward');
    expect(readYaml(dec(files.get('grpo.yaml'))).get('reward_model_name_or_path')).toBe('runs/reward');
    expect([...files.keys()].some((k) => k.startsWith('rewards/'))).toBe(false);
    expect(dec(files.get('README.md'))).not.toContain('## Reward functions');
  });

  it('writes mixed SFT data as one format (conversational)', () => {
    const mixed: DataRecord[] = [
      sft[0]!,
      {
        kind: 'messages',
        messages: [
          { role: 'user', content: 'u' },
          { role: 'assistant', content: 'a' },
        ],
      },
    ];
    const files = clusterExport({ hyper, datasets: { sft: mixed, preferences: [], prompts: [] } });
    const back = importJsonl(dec(files.get('data/sft.jsonl')), 'x');
    expect(back.records.map((r) => r.kind)).toEqual(['messages', 'messages']);
    expect(back.records[0]).toMatchObject({
      messages: [
        { role: 'user', content: 'Say hi.' },
        { role: 'assistant', content: ' Hi!' },
      ],
    });
    expect(dec(files.get('data/preference.jsonl'))).toBe('');
    expect(dec(files.get('data/prompts.jsonl'))).toBe('');
  });

  it('refuses records of the wrong kind', () => {
    expect(() => clusterExport({ hyper, datasets: { sft: preferences, preferences, prompts } })).toThrow(/datasets\.sft\[0\] is a preference record/);
    expect(() => clusterExport({ hyper, datasets: { sft, preferences: sft, prompts } })).toThrow(/datasets\.preferences\[0\] is a completion record/);
  });
});
