// `rlhf-playground sft|rm|dpo|ppo`: the training stages from a terminal, on the same trainers as the
// page. Each writes to --out a loadable model folder (full fine-tuning) or PEFT adapter folder (LoRA),
// and metrics.jsonl: one JSON object per optimizer step with `step` and TRL's metric names.
import { existsSync, mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/runtime.ts';
import { importJsonl, toRankings, type Record as DataRecord } from '../io/datasets.ts';
import type { ModelFiles } from '../io/sources.ts';
import type { Tok } from '../io/tokenizer.ts';
import { exportModelFiles } from '../model/export.ts';
import { ScoreHead } from '../model/head.ts';
import { loadModel } from '../model/index.ts';
import { exportAdapterFiles, loadAdapterWithHead, LoraSet, LORA_DEFAULTS } from '../model/lora.ts';
import type { ParamTable } from '../model/params.ts';
import { checkpointBytes, checkpointFromBytes, restore, snapshot } from '../train/checkpoint.ts';
import { DpoTrainer, pairsFromRankings } from '../train/dpo.ts';
import { PPO_DEFAULTS, PpoTrainer } from '../train/ppo.ts';
import { RewardTrainer, type Ranking } from '../train/reward.ts';
import { Rng } from '../train/sampling.ts';
import { SftTrainer, sftBatch, type Example } from '../train/sft.ts';

export type Stage = 'sft' | 'rm' | 'dpo' | 'ppo';

export class TrainUsageError extends Error {}

export interface TrainDeps {
  resolveModel: (arg: string | undefined) => Promise<ModelFiles>;
  tokenizerOf: (files: ModelFiles) => Tok | undefined;
}

const n = (v: unknown, flag: string, fallback: number, ok: (x: number) => boolean = () => true): number => {
  if (v === undefined) return fallback;
  const x = Number(v);
  if (!Number.isFinite(x) || !ok(x)) throw new TrainUsageError(`${flag}: invalid value "${v}"`);
  return x;
};

function readData(path: unknown, flag: string): DataRecord[] {
  if (typeof path !== 'string') throw new TrainUsageError(`${flag} FILE.jsonl is required`);
  if (!existsSync(path)) throw new TrainUsageError(`${path}: no such file`);
  const r = importJsonl(readFileSync(path, 'utf8'), path);
  for (const e of r.errors) process.stderr.write(`warning: ${e.message}\n`);
  if (!r.records.length) throw new TrainUsageError(`${path}: no usable records`);
  return r.records;
}

/** Seeded shuffle per epoch, so a resumed run sees the same order. */
function order(count: number, seed: number, epoch: number): number[] {
  const idx = Array.from({ length: count }, (_, i) => i);
  const rng = Rng.forSample(seed, epoch);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx;
}

function bar(step: number, total: number, text: string): void {
  if (!process.stderr.isTTY) return;
  const w = 28, done = Math.round((w * step) / Math.max(1, total));
  process.stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(w - done)}] ${step}/${total} ${text}   `);
}

export async function trainCommand(gpu: Gpu, stage: Stage, v: Record<string, unknown>, deps: TrainDeps): Promise<void> {
  const out = v.out as string | undefined;
  if (!out) throw new TrainUsageError('--out DIR is required');
  const files = await deps.resolveModel(v.model as string);
  const tok = deps.tokenizerOf(files);
  if (!tok) throw new TrainUsageError(`${files.source}: no tokenizer.json; the stages read text`);
  const seed = n(v.seed, '--seed', 0, Number.isInteger);
  const rank = n(v['lora-rank'], '--lora-rank', 0, (x) => Number.isInteger(x) && x >= 0);
  const batch = n(v['batch-size'], '--batch-size', stage === 'ppo' ? 4 : 8, (x) => Number.isInteger(x) && x >= 1);
  const seqLen = n(v['seq-len'], '--seq-len', Math.min(256, (files.config as { n_positions?: number; max_position_embeddings?: number }).n_positions ?? (files.config as { max_position_embeddings?: number }).max_position_embeddings ?? 256), (x) => x >= 4);
  const eos = tok.eosTokenIds;
  const pad = eos[0] ?? 0;
  const lora = rank > 0;
  const { model } = loadModel(gpu, { ...files, configFile: `${files.source}/config.json` }, { optimizer: !lora });
  const adapter = lora ? new LoraSet(model, { ...LORA_DEFAULTS[model.cfg.arch], r: rank, alpha: n(v['lora-alpha'], '--lora-alpha', 2 * rank), dropout: n(v['lora-dropout'], '--lora-dropout', stage === 'ppo' ? 0 : 0.05, (x) => x >= 0 && x < 1) }, { optimizer: true }) : undefined;
  adapter?.init(seed);
  mkdirSync(out, { recursive: true });
  const metricsPath = join(out, 'metrics.jsonl');
  const encPrompt = (p: string) => tok.encodePrompt(p);
  const encCompletion = (c: string) => [...tok.encode(c, { addSpecialTokens: false }), ...eos.slice(0, 1)];
  const lr = n(v.lr, '--lr', stage === 'sft' ? (lora ? 2e-4 : 1e-5) : stage === 'ppo' ? (lora ? 1e-4 : 1e-5) : lora ? 1e-4 : 9e-6, (x) => x > 0);
  const base = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1, lr, minLrRatio: 0.1 };
  let head: ScoreHead | undefined;
  let trainables: Record<string, ParamTable> = { weights: adapter ? adapter.params : model.params };
  let runStep: (s: number) => Promise<Record<string, number>>;
  let totalSteps: number;
  let finish: () => Promise<void>;
  const meta = (steps: number) => ({ producer: 'rlhf-playground', stage, steps, baseModel: files.source, date: new Date().toISOString() });
  const save = async (steps: number, extra?: { head?: ScoreHead; bias?: number }) => {
    const outFiles = adapter
      ? await exportAdapterFiles(adapter, { baseModel: files.source, meta: { ...meta(steps), ...(extra?.bias !== undefined ? { reward_bias: extra.bias } : {}) }, head: extra?.head?.params })
      : await exportModelFiles(model, { meta: meta(steps), tokenizerFiles: new Map([...files.raw].filter(([k]) => k.startsWith('tokenizer') || k === 'special_tokens_map.json')) });
    for (const [name, bytes] of outFiles) writeFileSync(join(out, name), bytes);
    if (!adapter && extra?.head) writeFileSync(join(out, 'score.json'), JSON.stringify({ 'score.weight': [...(await extra.head.params.download('score.weight'))], bias: extra.bias ?? 0 }));
  };

  if (stage === 'sft') {
    const records = readData(v.data, '--data');
    const examples: Example[] = records.flatMap((r): Example[] => {
      if (r.kind === 'completion') return [{ prompt: encPrompt(r.prompt), completion: encCompletion(r.completion) }];
      if (r.kind === 'messages' && r.messages.at(-1)?.role === 'assistant' && tok.hasChatTemplate) {
        return [{ prompt: tok.encode(tok.applyChatTemplate(r.messages.slice(0, -1), { addGenerationPrompt: true }), { addSpecialTokens: false }), completion: encCompletion(r.messages.at(-1)!.content) }];
      }
      return [];
    });
    if (!examples.length) throw new TrainUsageError(`${v.data}: no {"prompt","completion"} (or chat "messages") records for SFT`);
    const epochs = n(v.epochs, '--epochs', 1, (x) => Number.isInteger(x) && x >= 1);
    const perEpoch = Math.ceil(examples.length / batch);
    totalSteps = Math.min(n(v.steps, '--steps', Infinity, (x) => x >= 1), epochs * perEpoch);
    const t = await SftTrainer.create(model, { ...base, warmupSteps: Math.ceil(totalSteps * 0.03), totalSteps, batchSize: batch, seqLen, accumulation: 1 }, adapter);
    runStep = async (s) => {
      const ep = Math.floor(s / perEpoch), i = s % perEpoch, idx = order(examples.length, seed, ep).slice(i * batch, (i + 1) * batch);
      t.step = s; // the schedule and AdamW's bias correction continue where a resumed run stopped
      const r = await t.trainStep([sftBatch(idx.map((k) => examples[k]!), batch, seqLen, pad)]);
      t.step = s + 1;
      return { loss: r.loss, learning_rate: r.lr, grad_norm: r.gradNorm };
    };
    finish = () => save(totalSteps);
  } else if (stage === 'rm' || stage === 'dpo') {
    const records = readData(v.data, '--data');
    const rankings: Ranking[] = [
      ...toRankings(records).map((r) => ({ prompt: encPrompt(r.prompt), completions: r.completions.map(encCompletion), ranks: r.ranks })),
      ...records.filter((r) => r.kind === 'preference').map((r) => (r as { prompt: string; chosen: string; rejected: string })).map((r) => ({ prompt: encPrompt(r.prompt), completions: [encCompletion(r.chosen), encCompletion(r.rejected)] })),
    ];
    if (!rankings.length) throw new TrainUsageError(`${v.data}: no rankings or {"prompt","chosen","rejected"} records`);
    if (stage === 'rm') {
      head = new ScoreHead(model, { optimizer: true });
      head.init(seed);
      trainables = { ...trainables, head: head.params };
      const heldOut = rankings.length >= 10 ? rankings.filter((_, i) => i % 10 === 9) : [];
      const train = rankings.filter((_, i) => !heldOut.includes(rankings[i]!));
      totalSteps = Math.min(n(v.steps, '--steps', Infinity, (x) => x >= 1), n(v.epochs, '--epochs', 1, (x) => x >= 1) * Math.ceil(train.length / batch));
      const maxK = Math.max(...rankings.map((r) => r.completions.length));
      const t = await RewardTrainer.create(model, head, { ...base, warmupSteps: Math.ceil(totalSteps * 0.03), totalSteps, promptsPerStep: batch, maxK, seqLen, epochs: 1, padId: pad }, adapter);
      const perEpoch = Math.ceil(train.length / batch);
      runStep = async (s) => {
        const idx = order(train.length, seed, Math.floor(s / perEpoch)).slice((s % perEpoch) * batch, (s % perEpoch + 1) * batch);
        t.step = s;
        const r = await t.trainStep(idx.map((k) => train[k]!));
        t.step = s + 1;
        return { loss: r.loss, accuracy: r.accuracy, learning_rate: r.lr, grad_norm: r.gradNorm };
      };
      finish = async () => {
        const evalRes = heldOut.length ? await t.evaluate(heldOut) : undefined;
        const demos = records.filter((r) => r.kind === 'completion').map((r) => r as { prompt: string; completion: string });
        const bias = demos.length ? await t.fitBias(demos.map((d) => ({ prompt: encPrompt(d.prompt), completion: encCompletion(d.completion) }))) : 0;
        if (evalRes) appendFileSync(metricsPath, JSON.stringify({ step: totalSteps, eval_loss: evalRes.loss, eval_accuracy: evalRes.accuracy, eval_pairs: evalRes.pairs }) + '\n');
        await save(totalSteps, { head, bias });
      };
    } else {
      const pairs = pairsFromRankings(rankings);
      const reference = adapter ? undefined : loadModel(gpu, files).model;
      totalSteps = Math.min(n(v.steps, '--steps', Infinity, (x) => x >= 1), n(v.epochs, '--epochs', 1, (x) => x >= 1) * Math.ceil(pairs.length / batch));
      const t = await DpoTrainer.create(model, { ...base, weightDecay: 0, warmupSteps: Math.ceil(totalSteps * 0.1), totalSteps, beta: n(v.beta, '--beta', 0.1, (x) => x > 0), pairsPerStep: batch, seqLen, padId: pad }, { lora: adapter, reference });
      const perEpoch = Math.ceil(pairs.length / batch);
      runStep = async (s) => {
        const idx = order(pairs.length, seed, Math.floor(s / perEpoch)).slice((s % perEpoch) * batch, (s % perEpoch + 1) * batch);
        t.step = s;
        const r = await t.trainStep(idx.map((k) => pairs[k]!));
        t.step = s + 1;
        const { step: _s, skipped: _k, lr: l, gradNorm: g, ...rest } = r;
        return { ...rest, learning_rate: l, grad_norm: g };
      };
      finish = () => save(totalSteps);
    }
  } else {
    // PPO: the reward model is a LoRA adapter with its score head (from `rm --lora-rank R`) on this base.
    if (!adapter) throw new TrainUsageError('ppo runs on a shared base: give --lora-rank R (>= 1)');
    const prompts = readData(v.prompts, '--prompts').flatMap((r) => (r.kind === 'messages' ? [] : [encPrompt(r.prompt)]));
    const rmDir = v.reward as string | undefined;
    if (!rmDir || !existsSync(join(rmDir, 'adapter_config.json'))) throw new TrainUsageError('--reward DIR: a reward-model adapter folder written by `rlhf-playground rm --lora-rank R`');
    const rmFiles = new Map(['adapter_config.json', 'adapter_model.safetensors'].map((f) => [f, new Uint8Array(readFileSync(join(rmDir, f)))]));
    const rm = loadAdapterWithHead(model, rmFiles, rmDir);
    if (!rm.score) throw new TrainUsageError(`${rmDir}: the adapter has no score head (modules_to_save ["score"])`);
    const rmHead = new ScoreHead(model);
    rmHead.params.upload('score.weight', rm.score);
    const value = loadAdapterWithHead(model, rmFiles, rmDir, { optimizer: true });
    const valueHead = new ScoreHead(model, { optimizer: true });
    valueHead.params.upload('score.weight', rm.score);
    const K = n(v['num-samples'], '--num-samples', 4, (x) => Number.isInteger(x) && x >= 1 && x <= 9);
    const cfg = { ...PPO_DEFAULTS, lr, seed, promptsPerStep: batch, numSamples: K, seqLen, padId: pad, eosIds: eos,
      maxNewTokens: n(v['max-new-tokens'], '--max-new-tokens', 32, (x) => x >= 1), kl_coef: n(v['kl-coef'], '--kl-coef', 0.02, (x) => x >= 0) };
    const t = await PpoTrainer.create({ policy: { model, lora: adapter }, reference: { model }, reward: { model, lora: rm.lora, head: rmHead }, value: { model, lora: value.lora, head: valueHead } }, cfg);
    trainables = { weights: adapter.params, value: value.lora.params, valueHead: valueHead.params };
    const perEpoch = Math.floor(prompts.length / batch);
    if (perEpoch < 1) throw new TrainUsageError(`--prompts: ${prompts.length} prompts, fewer than --batch-size ${batch}`);
    totalSteps = n(v.steps, '--steps', perEpoch, (x) => x >= 1);
    runStep = async (s) => {
      const idx = order(prompts.length, seed, Math.floor(s / perEpoch)).slice((s % perEpoch) * batch, (s % perEpoch + 1) * batch);
      t.step = s;
      const r = await t.trainStep(idx.map((k) => prompts[k]!));
      t.step = s + 1;
      const { step: _s, samples: _x, skipped: _k, ...rest } = r;
      return rest;
    };
    finish = () => save(totalSteps);
  }

  // ---- the loop: checkpoints every N steps, resumable ----
  const every = n(v['checkpoint-every'], '--checkpoint-every', 0, (x) => Number.isInteger(x) && x >= 0);
  const ckptPath = join(out, 'checkpoint.safetensors');
  let start = 0;
  if (v.resume) {
    if (!existsSync(ckptPath)) throw new TrainUsageError(`${ckptPath}: no checkpoint to resume from`);
    start = restore(trainables, checkpointFromBytes<{ step: number }>(new Uint8Array(readFileSync(ckptPath)), ckptPath)).step;
  } else writeFileSync(metricsPath, '');
  // --stop-after N: end this run after step N with a checkpoint (resume later with --resume)
  const stopAfter = n(v['stop-after'], '--stop-after', totalSteps, (x) => Number.isInteger(x) && x >= 1);
  const t0 = Date.now();
  for (let s = start; s < Math.min(totalSteps, stopAfter); s++) {
    const m = await runStep(s);
    appendFileSync(metricsPath, JSON.stringify({ step: s + 1, ...m }) + '\n');
    const secs = (Date.now() - t0) / 1000, left = (secs / (s + 1 - start)) * (totalSteps - s - 1);
    bar(s + 1, totalSteps, `${'loss' in m ? `loss ${Number(m.loss).toFixed(4)}` : `score ${Number(m['objective/scores']).toFixed(3)}`} ${left.toFixed(0)}s left`);
    if ((every && (s + 1) % every === 0) || s + 1 === stopAfter) writeFileSync(ckptPath, checkpointBytes(await snapshot(trainables, { step: s + 1, stage, seed })));
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  if (stopAfter < totalSteps) return; // interrupted on purpose: the checkpoint is the result
  await finish();
}
