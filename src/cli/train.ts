// `rlhf-playground sft|rm|dpo|ppo`: the training stages from a terminal, on the same stage builder as the
// worker (src/train/stages.ts). Each writes to --out a loadable model folder (full fine-tuning) or PEFT
// adapter folder (LoRA), and metrics.jsonl: one JSON object per optimizer step with `step` and TRL's
// metric names. --checkpoint-every / --stop-after write a checkpoint; --resume continues bit for bit.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/runtime.ts';
import { importJsonl, type Record as DataRecord } from '../io/datasets.ts';
import { readModelFolder } from '../io/folder.ts';
import type { ModelFiles } from '../io/sources.ts';
import type { Tok } from '../io/tokenizer.ts';
import { ScoreHead } from '../model/head.ts';
import { loadModel } from '../model/index.ts';
import { loadAdapterWithHead } from '../model/lora.ts';
import { checkpointBytes, checkpointFromBytes, restore, snapshot, type Checkpoint } from '../train/checkpoint.ts';
import { resolveConfig, type Stage, type TrainInput } from '../train/config.ts';
import { buildStage, DataError } from '../train/stages.ts';

export type { Stage };

export class TrainUsageError extends Error {}

export interface TrainDeps {
  resolveModel: (arg: string | undefined) => Promise<ModelFiles>;
  tokenizerOf: (files: ModelFiles) => Tok | undefined;
}

function readData(path: unknown, flag: string): DataRecord[] {
  if (typeof path !== 'string') throw new TrainUsageError(`${flag} FILE.jsonl is required`);
  if (!existsSync(path)) throw new TrainUsageError(`${path}: no such file`);
  const r = importJsonl(readFileSync(path, 'utf8'), path);
  for (const e of r.errors) process.stderr.write(`warning: ${e.message}\n`);
  if (!r.records.length) throw new TrainUsageError(`${path}: no usable records`);
  return r.records;
}

function bar(step: number, total: number, text: string): void {
  if (!process.stderr.isTTY) return;
  const w = 28, done = Math.round((w * step) / Math.max(1, total));
  process.stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(w - done)}] ${step}/${total} ${text}   `);
}

/** Command-line flags -> the stage config (TrainConfig names; unset flags keep the stage's defaults). */
function flags(v: Record<string, unknown>): TrainInput {
  const num = (k: string, flag = `--${k}`) => {
    if (v[k] === undefined) return undefined;
    const x = Number(v[k]);
    if (!Number.isFinite(x)) throw new TrainUsageError(`${flag}: invalid value "${v[k]}"`);
    return x;
  };
  return {
    seed: num('seed'), epochs: num('epochs'), steps: num('steps'), batchSize: num('batch-size'), seqLen: num('seq-len'), lr: num('lr'),
    loraRank: num('lora-rank'), loraAlpha: num('lora-alpha'), loraDropout: num('lora-dropout'), checkpointEvery: num('checkpoint-every'),
    beta: num('beta'), kl_coef: num('kl-coef'), numSamples: num('num-samples'), maxNewTokens: num('max-new-tokens'),
    ptx_coef: num('ptx-coef'), ema_decay: num('ema-decay'),
  };
}

/** A reward-model adapter folder (from `rm --lora-rank R`) as the reward "run" PPO's stage expects. */
async function rewardRun(gpu: Gpu, files: ModelFiles, dir: string): Promise<{ config: ReturnType<typeof resolveConfig>; checkpoint: Checkpoint }> {
  if (existsSync(join(dir, 'score.json'))) {
    // a fully fine-tuned reward model: a model folder with its score head beside it
    const { model } = loadModel(gpu, await readModelFolder(dir));
    const head = new ScoreHead(model);
    const score = JSON.parse(readFileSync(join(dir, 'score.json'), 'utf8')) as { 'score.weight': number[] };
    head.params.upload('score.weight', Float32Array.from(score['score.weight']));
    const checkpoint = await snapshot({ weights: model.params, head: head.params }, {});
    head.destroy();
    model.params.destroy();
    return { config: resolveConfig('rm', { loraRank: 0 }, model.cfg.maxPositions), checkpoint };
  }
  if (!existsSync(join(dir, 'adapter_config.json'))) throw new TrainUsageError(`--reward ${dir}: not a reward model written by \`rlhf-playground rm\` (an adapter folder, or a model folder with score.json)`);
  const adapterFiles = new Map(['adapter_config.json', 'adapter_model.safetensors'].map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
  const { model } = loadModel(gpu, files);
  const rm = loadAdapterWithHead(model, adapterFiles, dir);
  if (!rm.score) throw new TrainUsageError(`${dir}: the adapter has no score head (modules_to_save ["score"])`);
  const head = new ScoreHead(model);
  head.params.upload('score.weight', rm.score);
  const checkpoint = await snapshot({ weights: rm.lora.params, head: head.params }, {});
  const config = resolveConfig('rm', { loraRank: rm.lora.cfg.r, loraAlpha: rm.lora.cfg.alpha, loraDropout: rm.lora.cfg.dropout }, model.cfg.maxPositions);
  head.destroy();
  rm.lora.destroy();
  model.params.destroy();
  return { config, checkpoint };
}

export async function trainCommand(gpu: Gpu, stage: Stage, v: Record<string, unknown>, deps: TrainDeps): Promise<void> {
  const out = v.out as string | undefined;
  if (!out) throw new TrainUsageError('--out DIR is required');
  const files = await deps.resolveModel(v.model as string);
  const tok = deps.tokenizerOf(files);
  if (!tok) throw new TrainUsageError(`${files.source}: no tokenizer.json; the stages read text`);
  const records = stage === 'ppo' ? readData(v.prompts, '--prompts') : readData(v.data, '--data');
  const { model: base } = loadModel(gpu, { ...files, configFile: `${files.source}/config.json` });
  let config;
  try {
    config = resolveConfig(stage, { ...flags(v), ...(stage === 'ppo' ? { rewardRunId: String(v.reward ?? '') } : {}) }, base.cfg.maxPositions);
  } catch (e) {
    const flag = (k: string) => (k === 'rewardRunId' ? '--reward' : `--${k.replace(/[A-Z_]/g, (c) => '-' + c.toLowerCase()).replace('--', '-')}`);
    throw new TrainUsageError((e as Error).message.replace(/^config\.(\w+)/, (_, k: string) => flag(k)));
  }
  const reward = stage === 'ppo' ? await rewardRun(gpu, files, String(v.reward)) : undefined;
  let run;
  try {
    run = await buildStage({ gpu, files, tok, base, reward }, stage, config, records);
  } catch (e) {
    if (e instanceof DataError) throw new TrainUsageError(`${String(v.data ?? v.prompts)}: ${e.message.replace('loraRank', '--lora-rank')}`);
    throw e;
  }
  mkdirSync(out, { recursive: true });
  const metricsPath = join(out, 'metrics.jsonl'), ckptPath = join(out, 'checkpoint.safetensors');
  let start = 0;
  if (v.resume) {
    if (!existsSync(ckptPath)) throw new TrainUsageError(`${ckptPath}: no checkpoint to resume from`);
    const st = restore(run.trainables, checkpointFromBytes<{ step: number; state: Record<string, unknown> }>(new Uint8Array(readFileSync(ckptPath)), ckptPath));
    run.setState(st.state);
    start = st.step;
  } else writeFileSync(metricsPath, '');
  const total = run.totalSteps;
  const stopAfter = v['stop-after'] === undefined ? total : Number(v['stop-after']);
  if (!(Number.isInteger(stopAfter) && stopAfter >= 1)) throw new TrainUsageError(`--stop-after: invalid value "${v['stop-after']}"`);
  const save = async (step: number) => writeFileSync(ckptPath, checkpointBytes(await snapshot(run.trainables, { step, stage, state: run.state() })));
  const t0 = Date.now();
  for (let s = start; s < Math.min(total, stopAfter); s++) {
    const r = await run.step(s);
    if (r.skipped) process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}warning: step ${s + 1} had a NaN or Inf gradient and was skipped (weights untouched)\n`);
    appendFileSync(metricsPath, JSON.stringify({ step: s + 1, ...r.metrics }) + '\n');
    const left = ((Date.now() - t0) / 1000 / (s + 1 - start)) * (total - s - 1);
    const m = r.metrics;
    bar(s + 1, total, `${'loss' in m ? `loss ${Number(m.loss).toFixed(4)}` : `score ${Number(m['objective/scores']).toFixed(3)}`} ${left.toFixed(0)}s left`);
    if ((config.checkpointEvery && (s + 1) % config.checkpointEvery === 0) || s + 1 === stopAfter) await save(s + 1);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  if (stopAfter < total) return; // stopped on purpose: the checkpoint is the result; --resume goes on
  const result = await run.finish();
  if (Object.keys(result).length) appendFileSync(metricsPath, JSON.stringify({ step: total, ...result }) + '\n');
  for (const [name, bytes] of await run.exportFiles(total)) writeFileSync(join(out, name), bytes);
  run.destroy();
}
