// rlhf-playground command line: the same engine as the page, on Dawn. Every failure ends with one
// line on stderr and a non-zero exit (2 for usage errors).
import { existsSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createNodeGpu } from '../gpu/node.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { zipFiles } from '../io/export.ts';
import { folderCache } from '../io/cache.ts';
import { readModelFolder } from '../io/folder.ts';
import { checkModelId, loadFromHub } from '../io/hub.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import type { ModelFiles } from '../io/sources.ts';
import { findStop, Tok } from '../io/tokenizer.ts';
import { parseConfig } from '../model/config.ts';
import { exportModelFiles } from '../model/export.ts';
import { loadModel } from '../model/index.ts';
import { checkFits, estimateMemory, type Use } from '../model/memory.ts';
import { GENERATE_DEFAULTS, Generator } from '../train/generate.ts';
import { trainCommand, TrainUsageError, type Stage } from './train.ts';

const USAGE = `usage: rlhf-playground <command> [options]

commands:
  info --model DIR|ID                                   architecture, parameter count, GPU memory estimates
  score --model DIR --ids "1,2,3;4,5,6"                 loss and logits of a batch, as JSON
  grads --model DIR --ids "..." --out FILE.safetensors  d loss / d parameter, under the model file's names
  generate --model DIR (--prompt TEXT | --ids "...")    sample continuations, as JSON {"samples":[{"ids","text"}]}
      [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--num-samples K]
      [--stop STRING]... [--raw]                        (temperature 0 = greedy; --raw skips the chat template)
  export --model DIR --out FILE.zip                     the model as a Hugging Face folder, zipped
  sft --model DIR --data FILE.jsonl --out DIR           supervised fine-tuning on {"prompt","completion"} / {"messages"}
  rm  --model DIR --data FILE.jsonl --out DIR           reward model from rankings {"prompt","completions"} / {"prompt","chosen","rejected"}
  dpo --model DIR --data FILE.jsonl --out DIR           DPO from the same rankings (reference: the model as given)
  ppo --model DIR --prompts FILE.jsonl --reward DIR --out DIR   PPO against an RM adapter (written by rm --lora-rank R)
      [--steps N | --epochs E] [--lr X] [--batch-size B] [--seed S] [--lora-rank R (0 = full fine-tuning)]
      [--lora-alpha A] [--lora-dropout P] [--seq-len T] [--beta B] [--kl-coef C] [--num-samples K] [--ptx-coef G] [--ema-decay D]
      [--checkpoint-every N] [--stop-after N] [--resume] each writes a model (or PEFT adapter) folder and metrics.jsonl

--model: a Hugging Face model folder (config.json, model.safetensors or a sharded index, tokenizer files),
or a Hub id such as openai-community/gpt2 (optionally @revision; HF_ENDPOINT and HF_TOKEN are honoured;
downloads are cached in ~/.cache/rlhf-playground).
--ids: token ids, sequences separated by ';', all of the same length. The loss is the mean next-token
cross-entropy over the batch and positions 0..T-2.`;

class UsageError extends Error {}

/** Writes to stdout and waits until it is flushed (a pipe is asynchronous, and we exit right after). */
const print = (text: string) => new Promise<void>((resolve, reject) => process.stdout.write(text, (e) => (e ? reject(e) : resolve())));

export function parseIds(text: string): number[][] {
  const rows = text.split(';').map((r) => r.trim()).filter((r) => r.length > 0);
  if (rows.length === 0) throw new UsageError('--ids is empty');
  const seqs = rows.map((r, i) =>
    r.split(',').map((s) => {
      const t = s.trim();
      if (!/^\d+$/.test(t)) throw new UsageError(`--ids: sequence ${i + 1} has a token "${t}" that is not a non-negative integer`);
      return Number(t);
    }));
  const T = seqs[0]!.length;
  const bad = seqs.findIndex((s) => s.length !== T);
  if (bad >= 0) throw new UsageError(`--ids: sequence ${bad + 1} has ${seqs[bad]!.length} tokens, sequence 1 has ${T}; all must be the same length`);
  return seqs;
}

function num(v: string | undefined, flag: string, fallback: number, check: (x: number) => boolean = () => true): number {
  if (v === undefined) return fallback;
  const x = Number(v);
  if (!Number.isFinite(x) || !check(x)) throw new UsageError(`${flag}: invalid value "${v}"`);
  return x;
}

/** A folder path, or a Hub id (with @revision) downloaded through the cache. */
async function resolveModel(arg: string | undefined): Promise<ModelFiles> {
  if (!arg) throw new UsageError('--model DIR|ID is required');
  if (existsSync(arg) || arg.startsWith('.') || arg.startsWith('/')) return readModelFolder(arg);
  const [id, revision] = arg.split('@') as [string, string | undefined];
  try {
    checkModelId(id);
  } catch {
    return readModelFolder(arg); // neither a folder nor an id: report the missing folder
  }
  let last = 0;
  return loadFromHub(id, {
    revision,
    endpoint: process.env.HF_ENDPOINT,
    accessToken: process.env.HF_TOKEN,
    cache: folderCache(join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'rlhf-playground')),
    onProgress: (p) => {
      if (!process.stderr.isTTY || Date.now() - last < 200) return;
      last = Date.now();
      process.stderr.write(`\rdownloading ${(p.overallLoaded / 2 ** 20).toFixed(1)}${p.overallTotal ? ` / ${(p.overallTotal / 2 ** 20).toFixed(1)}` : ''} MiB `);
    },
  });
}

function fits(gpu: Gpu, files: ModelFiles, use: Use, batch: number, seqLen: number, kvCache = false): void {
  checkFits(estimateMemory(parseConfig(files.config), use, { batch, seqLen, kvCache }), gpu.limits);
}

function tokenizerOf(files: ModelFiles): Tok | undefined {
  return files.tokenizer ? Tok.fromJson(files.tokenizer, files.tokenizerConfig, `${files.source}/tokenizer.json`) : undefined;
}

async function scoreOrGrads(gpu: Gpu, cmd: 'score' | 'grads', v: Record<string, unknown>): Promise<void> {
  if (!v.ids) throw new UsageError('--ids is required');
  if (cmd === 'grads' && !v.out) throw new UsageError('--out FILE.safetensors is required');
  const seqs = parseIds(v.ids as string);
  const B = seqs.length, T = seqs[0]!.length;
  if (T < 2) throw new UsageError('--ids: sequences need at least 2 tokens for a next-token loss');
  const files = await resolveModel(v.model as string);
  fits(gpu, files, cmd === 'grads' ? 'full' : 'inference', B, T);
  const { model, fileNames } = loadModel(gpu, { ...files, configFile: `${files.source}/config.json` }, { grads: cmd === 'grads' });
  const plan = await model.plan(B, T, { training: cmd === 'grads' });
  plan.setBatch(seqs.flat());
  if (cmd === 'score') {
    await gpu.check('score', () => gpu.run([...plan.forward, ...plan.loss]));
    const logits = await gpu.read(plan.logits);
    const loss = await plan.readLoss();
    const V = model.cfg.vocabSize;
    const nested = seqs.map((_, b) => Array.from({ length: T }, (_, t) => Array.from(logits.subarray((b * T + t) * V, (b * T + t + 1) * V))));
    await print(JSON.stringify({ loss, logits: nested }) + '\n');
  } else {
    await gpu.check('grads', () => gpu.run([...plan.zeroGrads, ...plan.forward, ...plan.lossFused, ...plan.backward]));
    const loss = await plan.readLoss();
    const tensors = [];
    for (const e of model.params.entries) tensors.push({ name: fileNames.get(e.name)!, shape: e.shape, data: await model.params.download(e.name, 'grad') });
    writeFileSync(v.out as string, writeSafetensors(tensors, { producer: 'rlhf-playground', content: 'd loss / d parameter', loss: String(loss) }));
    await print(JSON.stringify({ loss, out: v.out, tensors: tensors.length }) + '\n');
  }
}

async function info(gpu: Gpu, v: Record<string, unknown>): Promise<void> {
  const files = await resolveModel(v.model as string);
  const cfg = parseConfig(files.config, `${files.source}/config.json`);
  const seqLen = Math.min(cfg.maxPositions, 1024);
  const gib = (b: number) => Number((b / 2 ** 30).toFixed(3));
  const uses: [Use, number][] = [['inference', 1], ['lora', 4], ['full', 4]];
  const memory = Object.fromEntries(uses.map(([use, batch]) => {
    const e = estimateMemory(cfg, use, { batch, seqLen, kvCache: use === 'inference' });
    let fitsAdapter = true, why: string | undefined;
    try {
      checkFits(e, gpu.limits);
    } catch (err) {
      fitsAdapter = false;
      why = (err as Error).message;
    }
    return [use, { batch, seqLen, totalGiB: gib(e.bytes.total), weightsGiB: gib(e.bytes.weights), trainable: e.trainable, fits: fitsAdapter, ...(why ? { why } : {}) }];
  }));
  await print(JSON.stringify({
    source: files.source, architecture: cfg.arch, layers: cfg.layers, hidden: cfg.hidden, heads: cfg.heads, kvHeads: cfg.kvHeads,
    headDim: cfg.headDim, vocab: cfg.vocabSize, maxPositions: cfg.maxPositions, tiedEmbeddings: cfg.tiedEmbeddings,
    parameters: estimateMemory(cfg, 'inference', { batch: 1, seqLen: 1 }).parameters,
    tokenizer: !!files.tokenizer, chatTemplate: !!tokenizerOf(files)?.hasChatTemplate,
    adapter: gpu.adapter.name, memory,
  }) + '\n');
}

async function generate(gpu: Gpu, v: Record<string, unknown>): Promise<void> {
  if (!v.prompt === !v.ids) throw new UsageError('give exactly one of --prompt TEXT or --ids "..."');
  const files = await resolveModel(v.model as string);
  const tok = tokenizerOf(files);
  let prompt: number[];
  if (v.prompt !== undefined) {
    if (!tok) throw new UsageError(`${files.source}: no tokenizer.json, so --prompt cannot be encoded; use --ids`);
    prompt = v.raw ? tok.encode(v.prompt as string) : tok.encodePrompt(v.prompt as string);
  } else {
    const seqs = parseIds(v.ids as string);
    if (seqs.length !== 1) throw new UsageError('--ids: generate takes one prompt (use --num-samples for several samples)');
    prompt = seqs[0]!;
  }
  const cfg = {
    ...GENERATE_DEFAULTS,
    maxNewTokens: num(v['max-new-tokens'] as string, '--max-new-tokens', 64, (x) => Number.isInteger(x) && x >= 1),
    temperature: num(v.temperature as string, '--temperature', 1, (x) => x >= 0),
    topK: num(v['top-k'] as string, '--top-k', 0, (x) => Number.isInteger(x) && x >= 0),
    topP: num(v['top-p'] as string, '--top-p', 1, (x) => x > 0 && x <= 1),
    seed: num(v.seed as string, '--seed', 0, Number.isInteger),
    numSamples: num(v['num-samples'] as string, '--num-samples', 1, (x) => Number.isInteger(x) && x >= 1 && x <= 64),
  };
  const config = parseConfig(files.config);
  const eos = new Set<number>(tok?.eosTokenIds ?? []);
  for (const src of [config.eosTokenId, (files.generationConfig as { eos_token_id?: number | number[] } | undefined)?.eos_token_id]) {
    for (const id of [src].flat()) if (typeof id === 'number') eos.add(id);
  }
  const stops = (v.stop as string[] | undefined) ?? [];
  if (stops.length && !tok) throw new UsageError('--stop needs the model\'s tokenizer');
  const texts: string[] = Array(cfg.numSamples).fill('');
  fits(gpu, files, 'inference', cfg.numSamples, prompt.length + cfg.maxNewTokens, true);
  const { model } = loadModel(gpu, { ...files, configFile: `${files.source}/config.json` });
  const gen = new Generator(model);
  const r = await gen.generate(prompt, {
    ...cfg, stopTokenIds: [...eos],
    stopWhen: stops.length ? (k, ids) => findStop((texts[k] = tok!.decode(ids, { skipSpecialTokens: true })), stops) >= 0 : undefined,
  });
  const samples = r.ids.map((ids, k) => {
    let text = tok?.decode(ids, { skipSpecialTokens: true });
    if (text !== undefined && r.finish[k] === 'stop') text = text.slice(0, findStop(text, stops));
    return { ids, ...(text !== undefined ? { text } : {}), finish: r.finish[k] };
  });
  await print(JSON.stringify({ samples }) + '\n');
}

async function exportZip(gpu: Gpu, v: Record<string, unknown>): Promise<void> {
  if (!v.out) throw new UsageError('--out FILE.zip is required');
  const files = await resolveModel(v.model as string);
  const { model } = loadModel(gpu, { ...files, configFile: `${files.source}/config.json` });
  const tokenizerFiles = new Map([...files.raw].filter(([name]) => ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'].includes(name)));
  const prior = files.weights[0]?.metadata ?? {};
  const out = await exportModelFiles(model, {
    meta: {
      producer: 'rlhf-playground', stage: prior.stage ?? 'base', steps: Number(prior.steps ?? 0),
      baseModel: prior.baseModel ?? files.source, date: new Date().toISOString(),
    },
    tokenizerFiles,
    generationConfig: files.generationConfig as Record<string, unknown> | undefined,
  });
  const zip = zipFiles(out, basename(v.out as string).replace(/\.zip$/i, ''));
  writeFileSync(v.out as string, zip);
  await print(JSON.stringify({ out: v.out, bytes: zip.length, files: [...out.keys()] }) + '\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    await print(USAGE + '\n');
    return cmd ? 0 : 2;
  }
  try {
    const { values } = parseArgs({
      args: rest,
      options: {
        model: { type: 'string' }, ids: { type: 'string' }, out: { type: 'string' }, prompt: { type: 'string' },
        'max-new-tokens': { type: 'string' }, temperature: { type: 'string' }, 'top-k': { type: 'string' },
        'top-p': { type: 'string' }, seed: { type: 'string' }, 'num-samples': { type: 'string' },
        stop: { type: 'string', multiple: true }, raw: { type: 'boolean' },
        data: { type: 'string' }, prompts: { type: 'string' }, reward: { type: 'string' }, steps: { type: 'string' }, epochs: { type: 'string' },
        lr: { type: 'string' }, 'batch-size': { type: 'string' }, 'lora-rank': { type: 'string' }, 'lora-alpha': { type: 'string' },
        'lora-dropout': { type: 'string' }, 'seq-len': { type: 'string' }, beta: { type: 'string' }, 'kl-coef': { type: 'string' },
        'checkpoint-every': { type: 'string' }, resume: { type: 'boolean' }, 'stop-after': { type: 'string' },
        'ptx-coef': { type: 'string' }, 'ema-decay': { type: 'string' },
      },
      strict: true,
    });
    const commands: Record<string, (gpu: Gpu, v: Record<string, unknown>) => Promise<void>> = {
      score: (g, x) => scoreOrGrads(g, 'score', x), grads: (g, x) => scoreOrGrads(g, 'grads', x), info, generate, export: exportZip,
      ...Object.fromEntries((['sft', 'rm', 'dpo', 'ppo'] as Stage[]).map((st) => [st, (g: Gpu, x: Record<string, unknown>) => trainCommand(g, st, x, { resolveModel, tokenizerOf })])),
    };
    const run = commands[cmd];
    if (!run) throw new UsageError(`unknown command "${cmd}" (try --help)`);
    if (!values.model) throw new UsageError('--model DIR|ID is required');
    const gpu = await createNodeGpu();
    await run(gpu, values);
    return 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}rlhf-playground ${cmd}: ${msg.split('\n')[0]}\n`);
    return e instanceof UsageError || e instanceof TrainUsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  }
}

// Dawn keeps the event loop alive; exit explicitly once the command is done.
main(process.argv.slice(2)).then((code) => process.exit(code));
