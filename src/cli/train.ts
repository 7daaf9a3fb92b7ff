// `rlhf-playground sft|rm|dpo|ppo|grpo|rloo`: the training stages from a terminal, on the same stage builder as the
// worker (src/train/stages.ts). Each writes to --out a loadable model folder (full fine-tuning) or PEFT
// adapter folder (LoRA), and metrics.jsonl: one JSON object per optimizer step with `step` and TRL's
// metric names. --checkpoint-every / --stop-after write a checkpoint; --resume continues bit for bit.
// The stages' flags, their help lines and the config fields they set are the schema's (src/shared/schema.ts:
// stageFlags); --help shows each with the default resolveConfig gives, so it is the table a run will use
// rather than a copy of it.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { decodeText, TextFileError } from '../io/text.ts';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Option } from 'commander';
import { required } from './options.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { importJsonl, type Record as DataRecord } from '../io/datasets.ts';
import { readModelFolder } from '../io/folder.ts';
import type { ModelFiles } from '../io/sources.ts';
import type { Tok } from '../io/tokenizer.ts';
import { ScoreHead } from '../model/head.ts';
import { loadModel } from '../model/index.ts';
import { rewardBiasOf } from '../model/export.ts';
import { loadAdapterWithHead } from '../model/lora.ts';
import { snapshot, type Checkpoint } from '../train/checkpoint.ts';
import { readCheckpointFile, writeCheckpointFile } from './checkpoint-file.ts';
import { parseConfig } from '../shared/model-config.ts';
import { resolveConfig, widthScale, type Stage, type TrainConfig, type TrainInput } from '../shared/config.ts';
import { flagOf as schemaFlagOf, OPTION, stageFlags, type StageFlag } from '../shared/schema.ts';
import { builtinReward, BUILTIN_REWARDS, rewardFunctionsOf, type RewardFunction } from '../shared/rewards.ts';
import { buildStage, DataError } from '../train/stages.ts';

export type { Stage };

export class TrainUsageError extends Error {}

export interface TrainDeps {
  resolveModel: (arg: string | undefined) => Promise<ModelFiles>;
  tokenizerOf: (files: ModelFiles) => Tok | undefined;
}

/** A text file from the user, checked (src/io/text.ts): its problem as a usage error, in one line. */
function readText(path: string): string {
  try {
    return decodeText(new Uint8Array(readFileSync(path)), path);
  } catch (e) {
    if (e instanceof TextFileError) throw new TrainUsageError(e.message);
    throw e;
  }
}

function readData(path: unknown, flag: string): DataRecord[] {
  if (typeof path !== 'string') throw new TrainUsageError(`${flag} FILE.jsonl is required`);
  if (!existsSync(path)) throw new TrainUsageError(`${path}: no such file`);
  const r = importJsonl(readText(path), path);
  // nothing usable: the first line's problem is the error (one line), not a warning per line and a vague end
  if (!r.records.length) {
    const [first, ...more] = r.errors;
    throw new TrainUsageError(
      first
        ? `${first.message}${more.length ? ` (and ${more.length} more line${more.length === 1 ? '' : 's'} with problems)` : ''}`
        : `${path}: no usable records`,
    );
  }
  for (const e of r.errors) process.stderr.write(`warning: ${e.message}\n`);
  return r.records;
}

function bar(step: number, total: number, text: string): void {
  if (!process.stderr.isTTY) return;
  const w = 28,
    done = Math.round((w * step) / Math.max(1, total));
  process.stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(w - done)}] ${step}/${total} ${text}   `);
}

const GROUP: readonly Stage[] = ['grpo', 'rloo'];

/** The flag that sets a config field on `stage` (for error messages): its first spelling. */
const flagOf = (stage: Stage, key: string): string =>
  key === 'rewardRunId'
    ? '--reward'
    : key === 'rewardFuncs'
      ? '--reward-fn'
      : ((key in OPTION ? schemaFlagOf(OPTION[key as keyof TrainConfig], stage) : undefined) ?? `--${key}`);
/** Where commander puts a flag's value among the parsed options. */
const attributeOf = (f: StageFlag): string => new Option(f.flags).attributeName();

/** A number as a person writes it in a flag: 1e-4 rather than 0.0001. */
const fmt = (x: unknown): string =>
  typeof x === 'number' && x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential() : Array.isArray(x) ? (x.length ? x.join(',') : 'none') : String(x);

/**
 * The default of `key` for `stage`, read off resolveConfig (with and without LoRA, for a short and a long
 * model) and put in words where it depends on them: "1e-4 with LoRA, 9e-6 full", "2 x --lora-rank".
 */
export function defaultOf(stage: Stage, key: keyof TrainConfig): string {
  const words = OPTION[key].defaultText; // the schema's words, where the value alone does not say it (epochs' 0 = auto)
  if (words) return words;
  // arrays (reward_weights) compare by value: as their text
  const at = (loraRank: number, maxPositions = Number.MAX_SAFE_INTEGER, hidden = 4096) => {
    const x = resolveConfig(stage, { ...(key === 'loraRank' ? {} : { loraRank }), rewardRunId: 'rm' }, { maxPositions, hidden })[key];
    return Array.isArray(x) ? fmt(x) : x;
  };
  const full = at(0),
    r4 = at(4),
    r8 = at(8);
  if (at(0, undefined, 128) !== full) return `${fmt(r8)} with LoRA, ${fmt(full)} full, x 4096 / the model's hidden size, at most x ${widthScale(0)}`;
  if (at(0, 8) !== full) return `${fmt(full)}, at most the model's positions`;
  if (r4 !== r8 && typeof r8 === 'number' && (r4 as number) * 2 === r8) return `${fmt(r8 / 8)} x --lora-rank`;
  if (r8 !== full) return `${fmt(r8)} with LoRA, ${fmt(full)} full`;
  return fmt(full);
}

/** A flag's number; TrainConfig's own rules (integers, ranges) are resolveConfig's, reported under the flag. */
const finite =
  (flag: string) =>
  (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x)) throw new TrainUsageError(`${flag}: invalid value "${v}"`);
    return x;
  };

const DATA_HELP: Record<'sft' | 'rm' | 'dpo', string> = {
  sft: 'demonstrations: {"prompt","completion"} or chat {"messages"} lines',
  rm: 'rankings: {"prompt","completions":[best, ..., worst]} or {"prompt","chosen","rejected"} lines; {"prompt","completion"} lines fit the score bias',
  dpo: 'rankings: {"prompt","completions":[best, ..., worst]} or {"prompt","chosen","rejected"} lines',
};

/** The options of `rlhf-playground <stage>`, each shown with its default for that stage. */
export function stageOptions(stage: Stage): Option[] {
  const promptsFlag = () =>
    required(
      '--prompts <FILE.jsonl>',
      'TRL\'s prompt-only lines, {"prompt": text} or {"prompt": [messages]} (through the chat template), or the prompt of any other line but {"messages"}',
    );
  const rmHelp = 'the reward model written by `rlhf-playground rm` (a PEFT adapter with a score head, or a *ForSequenceClassification model folder)';
  const data =
    stage === 'ppo'
      ? [promptsFlag(), required('--reward <DIR>', rmHelp)]
      : GROUP.includes(stage)
        ? [
            promptsFlag(),
            new Option(
              '--reward-fn <FILE.mjs|RULE>',
              'a reward function (repeatable): a JavaScript module whose exported functions take { prompts, completions, completion_ids } and return one number (or null) per completion, ' +
                `or a built-in rule: ${Object.values(BUILTIN_REWARDS)
                  .map((b) => b.help)
                  .join('; ')}`,
            ).argParser((v: string, all: string[] = []) => [...all, v]),
            new Option('--reward <DIR>', `${rmHelp}, scoring beside (or instead of) --reward-fn`),
          ]
        : [required('--data <FILE.jsonl>', DATA_HELP[stage as keyof typeof DATA_HELP])];
  return [
    ...data,
    required('--out <DIR>', 'where the model (or PEFT adapter) folder, metrics.jsonl and checkpoint.safetensors go'),
    ...stageFlags(stage).map((f) => {
      const o = new Option(f.flags, `${f.help} (default: ${defaultOf(stage, f.key)})`);
      const flag = f.flags.split(/[ ,]/)[0]!;
      if (f.type === 'bool') return o;
      if (f.type === 'string') return o.argParser((v: string) => v);
      if (f.type === 'numbers') return o.argParser((v: string) => v.split(',').map(finite(flag)));
      return o.argParser(finite(flag));
    }),
    new Option('--stop-after <N>', 'stop after step N, writing a checkpoint (--resume goes on)').argParser((v) => {
      const x = Number(v);
      if (!(Number.isInteger(x) && x >= 1)) throw new TrainUsageError(`--stop-after: invalid value "${v}"`);
      return x;
    }),
    new Option('--resume', "continue from --out's checkpoint, bit for bit"),
  ];
}

/** Parsed flags -> the stage config (TrainConfig names; unset flags keep the stage's defaults). */
function flags(stage: Stage, v: Record<string, unknown>): TrainInput {
  const out: Record<string, unknown> = {};
  for (const f of stageFlags(stage)) if (v[attributeOf(f)] !== undefined) out[f.key] = v[attributeOf(f)];
  return out as TrainInput;
}

/** The reward functions of --reward-fn: JavaScript modules (every exported function) and built-in rules. */
async function rewardFunctions(specs: string[]): Promise<RewardFunction[]> {
  const out: RewardFunction[] = [];
  for (const spec of specs) {
    if (/\.[cm]?js$/i.test(spec)) {
      if (!existsSync(spec)) throw new TrainUsageError(`--reward-fn ${spec}: no such file`);
      let mod: Record<string, unknown>;
      try {
        mod = (await import(pathToFileURL(resolve(spec)).href)) as Record<string, unknown>;
      } catch (e) {
        throw new TrainUsageError(`--reward-fn ${spec}: cannot load the module: ${(e as Error).message.split('\n')[0]}`);
      }
      try {
        out.push(...rewardFunctionsOf(mod, spec));
      } catch (e) {
        throw new TrainUsageError((e as Error).message);
      }
    } else {
      try {
        out.push(builtinReward(spec));
      } catch (e) {
        throw new TrainUsageError(`--reward-fn: ${(e as Error).message}`);
      }
    }
  }
  const dup = out.find((f, i) => out.findIndex((g) => g.name === f.name) !== i);
  if (dup) throw new TrainUsageError(`--reward-fn: two reward functions are named "${dup.name}" (${dup.origin})`);
  return out;
}

/**
 * A reward model from `rlhf-playground rm` as the reward "run" PPO's stage expects (its bias in the state):
 * a PEFT adapter (LoRA: task_type SEQ_CLS, or CAUSAL_LM from older versions, with the score head in
 * modules_to_save), a *ForSequenceClassification model folder (full fine-tuning), or an older model folder
 * with score.json beside it.
 */
async function rewardRun(gpu: Gpu, files: ModelFiles, dir: string): Promise<{ config: ReturnType<typeof resolveConfig>; checkpoint: Checkpoint }> {
  const notRm = `--reward ${dir}: not a reward model written by \`rlhf-playground rm\` (a PEFT adapter with a score head, or a *ForSequenceClassification model folder)`;
  if (existsSync(join(dir, 'adapter_config.json'))) {
    const adapterFiles = new Map(
      ['adapter_config.json', 'adapter_model.safetensors'].flatMap((f) =>
        existsSync(join(dir, f)) ? [[f, new Uint8Array(readFileSync(join(dir, f)))] as const] : [],
      ),
    );
    const { model } = loadModel(gpu, files);
    const rm = loadAdapterWithHead(model, adapterFiles, dir);
    if (!rm.score) throw new TrainUsageError(`${dir}: the adapter has no score head (modules_to_save ["score"])`);
    const head = new ScoreHead(model);
    head.params.upload('score.weight', rm.score);
    const checkpoint = await snapshot({ weights: rm.lora.params, head: head.params }, { bias: rewardBiasOf(rm.metadata, `${dir}/adapter_model.safetensors`) });
    const config = resolveConfig('rm', { loraRank: rm.lora.cfg.r, loraAlpha: rm.lora.cfg.alpha, loraDropout: rm.lora.cfg.dropout }, model.cfg);
    head.destroy();
    rm.lora.destroy();
    model.destroy();
    return { config, checkpoint };
  }
  if (!existsSync(join(dir, 'config.json'))) throw new TrainUsageError(notRm);
  // a fully fine-tuned reward model: transformers' *ForSequenceClassification (score.weight beside the trunk,
  // the bias in the metadata), or, as older versions wrote it, a causal-LM folder with score.json
  const folder = await readModelFolder(dir);
  const old = existsSync(join(dir, 'score.json'));
  const { model, score } = loadModel(gpu, folder);
  let weight: Float32Array, bias: number;
  if (old) {
    const s = JSON.parse(readFileSync(join(dir, 'score.json'), 'utf8')) as { 'score.weight': number[]; bias?: number };
    weight = Float32Array.from(s['score.weight']);
    bias = typeof s.bias === 'number' ? s.bias : 0;
  } else {
    if (!score) {
      model.destroy();
      throw new TrainUsageError(model.cfg.sequenceClassification ? `${dir}: no score.weight in the model's safetensors` : notRm);
    }
    if (score.shape.length !== 2 || score.shape[0] !== 1 || score.shape[1] !== model.cfg.hidden) {
      model.destroy();
      throw new TrainUsageError(`${score.file}: score.weight has shape [${score.shape}]; a reward model's is [1, ${model.cfg.hidden}] (num_labels 1)`);
    }
    weight = score.data;
    bias = rewardBiasOf(folder.weights.find((w) => w.file === score.file)!.metadata, score.file);
  }
  const head = new ScoreHead(model);
  head.params.upload('score.weight', weight);
  const checkpoint = await snapshot({ weights: model.params, head: head.params }, { bias });
  head.destroy();
  model.destroy();
  return { config: resolveConfig('rm', { loraRank: 0 }, model.cfg), checkpoint };
}

export async function trainCommand(gpu: Gpu, stage: Stage, v: Record<string, unknown>, deps: TrainDeps): Promise<void> {
  const out = v.out as string | undefined;
  if (!out) throw new TrainUsageError('--out DIR is required');
  const files = await deps.resolveModel(v.model as string);
  const tok = deps.tokenizerOf(files);
  if (!tok) throw new TrainUsageError(`${files.source}: no tokenizer.json; the stages read text`);
  const online = stage === 'ppo' || GROUP.includes(stage);
  const records = online ? readData(v.prompts, '--prompts') : readData(v.data, '--data');
  const promptOnly = records.filter((r) => r.kind === 'prompt').length;
  if (!online && promptOnly)
    process.stderr.write(`warning: ${String(v.data)}: ${promptOnly} prompt-only line${promptOnly > 1 ? 's' : ''} skipped (prompts are for ppo --prompts)\n`);
  const modelCfg = parseConfig(files.config, `${files.source}/config.json`);
  const fns = GROUP.includes(stage) ? await rewardFunctions((v.rewardFn as string[] | undefined) ?? []) : [];
  let config;
  try {
    config = resolveConfig(
      stage,
      {
        ...flags(stage, v),
        ...(online ? { rewardRunId: String(v.reward ?? '') } : {}),
        ...(fns.length ? { rewardFuncs: fns.map((f) => f.name) } : {}),
      },
      modelCfg,
    );
  } catch (e) {
    throw new TrainUsageError((e as Error).message.replace(/^config\.(\w+)/, (_, k: string) => flagOf(stage, k)));
  }
  // under LoRA the base stays frozen: its linear weights in f16 where the device has 'shader-f16' (half the
  // memory); a full fine-tune's base (its reference, its starting weights) stays f32
  const { model: base } = loadModel(gpu, { ...files, configFile: `${files.source}/config.json` }, { frozenF16: config.loraRank > 0 });
  const reward = online && v.reward !== undefined ? await rewardRun(gpu, files, String(v.reward)) : undefined;
  let run;
  try {
    run = await buildStage({ gpu, files, tok, base, reward, rewardFunctions: fns }, stage, config, records);
  } catch (e) {
    if (e instanceof DataError) throw new TrainUsageError(`${String(v.data ?? v.prompts)}: ${e.message.replace('loraRank', '--lora-rank')}`);
    throw e;
  }
  mkdirSync(out, { recursive: true });
  const metricsPath = join(out, 'metrics.jsonl'),
    ckptPath = join(out, 'checkpoint.safetensors'),
    completionsPath = join(out, 'completions.jsonl');
  let start = 0;
  if (v.resume) {
    if (!existsSync(ckptPath)) throw new TrainUsageError(`${ckptPath}: no checkpoint to resume from`);
    const st = await readCheckpointFile<{ step: number; state: Record<string, unknown> }>(ckptPath, run.trainables);
    run.setState(st.state);
    start = st.step;
  } else {
    writeFileSync(metricsPath, '');
    if (GROUP.includes(stage)) writeFileSync(completionsPath, '');
  }
  const total = run.totalSteps;
  const stopAfter = (v.stopAfter as number | undefined) ?? total; // checked as commander read it (stageOptions)
  const save = (step: number) => writeCheckpointFile(ckptPath, run.trainables, { step, stage, state: run.state() });
  const t0 = Date.now();
  for (let s = start; s < Math.min(total, stopAfter); s++) {
    const r = await run.step(s);
    if (r.skipped)
      process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}warning: step ${s + 1} had a NaN or Inf gradient and was skipped (weights untouched)\n`);
    appendFileSync(metricsPath, JSON.stringify({ step: s + 1, ...r.metrics }) + '\n');
    if (r.completions) appendFileSync(completionsPath, r.completions.map((x) => JSON.stringify(x) + '\n').join(''));
    const left = ((Date.now() - t0) / 1000 / (s + 1 - start)) * (total - s - 1);
    const m = r.metrics;
    const shown =
      'reward' in m
        ? `reward ${Number(m.reward).toFixed(3)}`
        : 'loss' in m
          ? `loss ${Number(m.loss).toFixed(4)}`
          : `score ${Number(m['objective/scores']).toFixed(3)}`;
    bar(s + 1, total, `${shown} ${left.toFixed(0)}s left`);
    if ((config.checkpointEvery && (s + 1) % config.checkpointEvery === 0) || s + 1 === stopAfter) await save(s + 1);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  if (stopAfter < total) return; // stopped on purpose: the checkpoint is the result; --resume goes on
  const result = await run.finish();
  if (Object.keys(result).length) appendFileSync(metricsPath, JSON.stringify({ step: total, ...result }) + '\n');
  for (const [name, bytes] of await run.exportFiles(total)) writeFileSync(join(out, name), bytes);
  run.destroy();
}
