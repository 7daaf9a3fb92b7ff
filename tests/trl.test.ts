import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { clusterExport, TRL_DATASET_ENTRY_FIELDS, TRL_FIELDS, TRL_STAGES, trlConfigYaml, type RunHyper, type TrlStage } from '../src/io/trl.ts';
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
  model: 'Qwen/Qwen2.5-0.5B-Instruct', outputDir: 'runs/sft', lr: 2e-5, epochs: 2, batchSize: 4, gradAccum: 8,
  maxLength: 1024, warmupRatio: 0.03, weightDecay: 0.01, maxGradNorm: 1, seed: 1234,
  loraRank: 16, loraAlpha: 32, loraDropout: 0.05, loraTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
};
const hyper: { [S in TrlStage]: RunHyper } = {
  sft: base,
  reward: { ...base, model: 'runs/sft', outputDir: 'runs/reward', lr: 1e-4 },
  dpo: { ...base, model: 'runs/sft', outputDir: 'runs/dpo', lr: 5e-7, beta: 0.1 },
  rloo: {
    ...base, model: 'runs/sft', outputDir: 'runs/rloo', lr: 1e-6, loraRank: 0, klCoef: 0.05, numGenerations: 4,
    maxNewTokens: 256, temperature: 0.8, rewardModel: 'runs/reward',
  },
};
const paths: { [S in TrlStage]: string } = {
  sft: 'data/sft.jsonl', reward: 'data/preference.jsonl', dpo: 'data/preference.jsonl', rloo: 'data/prompts.jsonl',
};
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
      learning_rate: 2e-5, num_train_epochs: 2, per_device_train_batch_size: 4, gradient_accumulation_steps: 8,
      max_length: 1024, warmup_ratio: 0.03, weight_decay: 0.01, max_grad_norm: 1, seed: 1234,
      lr_scheduler_type: 'cosine', bf16: true,
      use_peft: true, lora_r: 16, lora_alpha: 32, lora_dropout: 0.05, lora_target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    });
  });

  it('translates stage-specific fields', () => {
    expect(yamlOf('dpo').get('beta')).toBe(0.1);
    expect(yamlOf('dpo').get('learning_rate')).toBe(5e-7);
    expect(yamlOf('reward').get('lora_task_type')).toBe('SEQ_CLS');
    expect(yamlOf('reward').get('lora_modules_to_save')).toEqual(['score']);
    expect(yamlOf('reward').get('max_length')).toBe(1024);
    const r = yamlOf('rloo');
    expect(Object.fromEntries(r)).toMatchObject({
      reward_model_name_or_path: 'runs/reward', num_generations: 4, max_completion_length: 256, temperature: 0.8, beta: 0.05,
      learning_rate: 1e-6, use_peft: false,
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

  it('TRL_FIELDS name their TRL sources', () => {
    const src = readFileSync('src/io/trl.ts', 'utf8');
    for (const s of [
      'trl/trainer/sft_config.py', 'trl/trainer/reward_config.py', 'trl/trainer/dpo_config.py', 'trl/trainer/rloo_config.py',
      'trl/trainer/model_config.py', 'trl/scripts/utils.py', 'TrainingArguments',
    ]) expect(src).toContain(s);
    for (const stage of TRL_STAGES) {
      for (const k of ['model_name_or_path', 'dataset_name', 'dataset_train_split', 'output_dir', 'learning_rate', 'use_peft', 'lora_r']) {
        expect(TRL_FIELDS[stage]).toContain(k);
      }
    }
    expect(TRL_FIELDS.dpo).toContain('beta');
    expect(TRL_FIELDS.sft).not.toContain('beta');
    expect(TRL_FIELDS.rloo).toEqual(expect.arrayContaining(['num_generations', 'max_completion_length', 'temperature', 'beta', 'reward_model_name_or_path']));
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

  it('writes the data, one config per stage and a README', () => {
    const files = clusterExport({ hyper, datasets: { sft, preferences, prompts } });
    expect([...files.keys()].sort()).toEqual([
      'README.md', 'data/preference.jsonl', 'data/prompts.jsonl', 'data/sft.jsonl', 'dpo.yaml', 'reward.yaml', 'rloo.yaml', 'sft.yaml',
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

    const promptLines = dec(files.get('data/prompts.jsonl')).trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
    expect(promptLines).toEqual([{ prompt: 'Write a haiku.' }, { prompt: 'Explain "RLOO".' }]);

    for (const stage of TRL_STAGES) {
      const y = readYaml(dec(files.get(`${stage}.yaml`)));
      expect(y.get('datasets')).toEqual([{ path: 'json', data_files: paths[stage], split: 'train' }]);
      for (const key of y.keys()) expect(TRL_FIELDS[stage]).toContain(key);
    }

    const readme = dec(files.get('README.md'));
    for (const cmd of ['trl sft --config sft.yaml', 'trl reward --config reward.yaml', 'trl dpo --config dpo.yaml', 'trl rloo --config rloo.yaml']) {
      expect(readme).toContain(cmd);
    }
    for (const s of ['sft', 'reward', 'dpo', 'rloo']) expect(readme).toContain(`accelerate launch --num_processes 8 -m trl.scripts.${s} --config ${s}.yaml`);
    expect(readme).toContain('--num_processes');
  });

  it('defaults the RLOO reward model to the reward stage output', () => {
    const files = clusterExport({ hyper: { ...hyper, rloo: { ...hyper.rloo, rewardModel: undefined } }, datasets: { sft, preferences, prompts } });
    expect(readYaml(dec(files.get('rloo.yaml'))).get('reward_model_name_or_path')).toBe('runs/reward');
  });

  it('writes mixed SFT data as one format (conversational)', () => {
    const mixed: DataRecord[] = [sft[0]!, { kind: 'messages', messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: 'a' }] }];
    const files = clusterExport({ hyper, datasets: { sft: mixed, preferences: [], prompts: [] } });
    const back = importJsonl(dec(files.get('data/sft.jsonl')), 'x');
    expect(back.records.map((r) => r.kind)).toEqual(['messages', 'messages']);
    expect(back.records[0]).toMatchObject({ messages: [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: ' Hi!' }] });
    expect(dec(files.get('data/preference.jsonl'))).toBe('');
    expect(dec(files.get('data/prompts.jsonl'))).toBe('');
  });

  it('refuses records of the wrong kind', () => {
    expect(() => clusterExport({ hyper, datasets: { sft: preferences, preferences, prompts } })).toThrow(/datasets\.sft\[0\] is a preference record/);
    expect(() => clusterExport({ hyper, datasets: { sft, preferences: sft, prompts } })).toThrow(/datasets\.preferences\[0\] is a completion record/);
  });
});
