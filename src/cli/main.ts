// rlhf-playground command line: the same engine as the page, on Dawn. Each subcommand is one
// `program.command(...)` in `cli()` below, its options declared to commander, which answers --help for
// every command with its options and defaults and refuses unknown options. Every failure ends with one
// line on stderr and a non-zero exit (2 for usage errors).
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { createNodeGpu } from '../gpu/node.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { zipFiles } from '../io/zip.ts';
import { folderCache } from '../io/cache.ts';
import { readModelFolder } from '../io/folder.ts';
import { checkModelId, loadFromHub } from '../io/hub.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import type { ModelFiles } from '../io/sources.ts';
import { findStop, Tok } from '../io/tokenizer.ts';
import { parseConfig } from '../shared/model-config.ts';
import { exportModelFiles } from '../model/export.ts';
import { loadModel } from '../model/index.ts';
import { checkFits, estimateMemory, type Use } from '../shared/memory.ts';
import { GENERATE_DEFAULTS, Generator } from '../train/generate.ts';
import { tokenizerFilesOf } from '../train/package.ts';
import { GENERATE_OPTIONS } from '../shared/schema.ts';
import { loadSource } from '../worker/source.ts';
import { checkRequired, required, UsageError } from './options.ts';
import { experimentCommand, experimentMergeCommand, experimentOptions } from './experiment.ts';
import { stageOptions, trainCommand, TrainUsageError } from './train.ts';

const MODEL_HELP = `
--model: a Hugging Face model folder (config.json, model.safetensors or a sharded index, tokenizer files), the folder zipped,
or a Hub id such as openai-community/gpt2 (optionally @revision; HF_ENDPOINT and HF_TOKEN are honoured;
downloads are cached in ~/.cache/rlhf-playground).
--ids: token ids, sequences separated by ';', all of the same length. The loss is the mean next-token
cross-entropy over the batch and positions 0..T-2.
Each command's options and defaults: rlhf-playground <command> --help`;

/** Writes to stdout and waits until it is flushed (a pipe is asynchronous, and we exit right after). */
const print = (text: string) => new Promise<void>((resolve, reject) => process.stdout.write(text, (e) => (e ? reject(e) : resolve())));

export function parseIds(text: string): number[][] {
  const rows = text
    .split(';')
    .map((r) => r.trim())
    .filter((r) => r.length > 0);
  if (rows.length === 0) throw new UsageError('--ids is empty');
  const seqs = rows.map((r, i) =>
    r.split(',').map((s) => {
      const t = s.trim();
      if (!/^\d+$/.test(t)) throw new UsageError(`--ids: sequence ${i + 1} has a token "${t}" that is not a non-negative integer`);
      return Number(t);
    }),
  );
  const T = seqs[0]!.length;
  const bad = seqs.findIndex((s) => s.length !== T);
  if (bad >= 0) throw new UsageError(`--ids: sequence ${bad + 1} has ${seqs[bad]!.length} tokens, sequence 1 has ${T}; all must be the same length`);
  return seqs;
}

/** A number option's parser: a bad value is a usage error naming the flag, raised as commander reads it. */
const num =
  (flag: string, check: (x: number) => boolean = () => true) =>
  (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || !check(x)) throw new UsageError(`${flag}: invalid value "${v}"`);
    return x;
  };

/** A folder path, a zipped folder (as the page's Share tab downloads it), or a Hub id (with @revision) downloaded through the cache. */
async function resolveModel(arg: string | undefined): Promise<ModelFiles> {
  if (!arg) throw new UsageError('--model DIR|ID is required');
  if (/\.zip$/i.test(arg) && existsSync(arg) && statSync(arg).isFile()) return loadSource({ zip: new Uint8Array(readFileSync(arg)), name: arg });
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
      process.stderr.write(
        `\rdownloading ${(p.overallLoaded / 2 ** 20).toFixed(1)}${p.overallTotal ? ` / ${(p.overallTotal / 2 ** 20).toFixed(1)}` : ''} MiB `,
      );
    },
  });
}

function fits(gpu: Gpu, files: ModelFiles, use: Use, batch: number, seqLen: number, kvCache = false): void {
  checkFits(estimateMemory(parseConfig(files.config), use, { batch, seqLen, kvCache }), gpu.limits);
}

function tokenizerOf(files: ModelFiles): Tok | undefined {
  return files.tokenizer ? Tok.fromJson(files.tokenizer, files.tokenizerConfig, `${files.source}/tokenizer.json`) : undefined;
}

interface ModelOpts {
  model: string;
}
interface IdsOpts extends ModelOpts {
  ids: string;
  out?: string;
}

async function scoreOrGrads(gpu: Gpu, cmd: 'score' | 'grads', v: IdsOpts): Promise<void> {
  const seqs = parseIds(v.ids);
  const B = seqs.length,
    T = seqs[0]!.length;
  if (T < 2) throw new UsageError('--ids: sequences need at least 2 tokens for a next-token loss');
  const files = await resolveModel(v.model);
  fits(gpu, files, cmd === 'grads' ? 'full' : 'inference', B, T);
  const { model, fileNames } = loadModel(gpu, { ...files, configFile: `${files.source}/config.json` }, { grads: cmd === 'grads' });
  const plan = await model.plan(B, T, { training: cmd === 'grads' });
  plan.setBatch(seqs.flat());
  if (cmd === 'score') {
    await gpu.check('score', () => gpu.run([...plan.forward, ...plan.loss]));
    const logits = await plan.readLogits();
    const loss = await plan.readLoss();
    const V = model.cfg.vocabSize;
    const nested = seqs.map((_, b) => Array.from({ length: T }, (_, t) => Array.from(logits.subarray((b * T + t) * V, (b * T + t + 1) * V))));
    await print(JSON.stringify({ loss, logits: nested }) + '\n');
  } else {
    await gpu.check('grads', () => gpu.run([...plan.zeroGrads, ...plan.forward, ...plan.lossFused, ...plan.backward]));
    const loss = await plan.readLoss();
    const tensors = [];
    for (const e of model.params.entries) tensors.push({ name: fileNames.get(e.name)!, shape: e.shape, data: await model.params.download(e.name, 'grad') });
    writeFileSync(v.out!, writeSafetensors(tensors, { producer: 'rlhf-playground', content: 'd loss / d parameter', loss: String(loss) }));
    await print(JSON.stringify({ loss, out: v.out, tensors: tensors.length }) + '\n');
  }
}

async function info(gpu: Gpu, v: ModelOpts): Promise<void> {
  const files = await resolveModel(v.model);
  const cfg = parseConfig(files.config, `${files.source}/config.json`);
  const seqLen = Math.min(cfg.maxPositions, 1024);
  const gib = (b: number) => Number((b / 2 ** 30).toFixed(3));
  const uses: [Use, number][] = [
    ['inference', 1],
    ['lora', 4],
    ['full', 4],
  ];
  const memory = Object.fromEntries(
    uses.map(([use, batch]) => {
      const e = estimateMemory(cfg, use, { batch, seqLen, kvCache: use === 'inference' });
      let fitsAdapter = true,
        why: string | undefined;
      try {
        checkFits(e, gpu.limits);
      } catch (err) {
        fitsAdapter = false;
        why = (err as Error).message;
      }
      return [
        use,
        { batch, seqLen, totalGiB: gib(e.bytes.total), weightsGiB: gib(e.bytes.weights), trainable: e.trainable, fits: fitsAdapter, ...(why ? { why } : {}) },
      ];
    }),
  );
  await print(
    JSON.stringify({
      source: files.source,
      architecture: cfg.modelType,
      block: cfg.arch,
      layers: cfg.layers,
      hidden: cfg.hidden,
      heads: cfg.heads,
      kvHeads: cfg.kvHeads,
      headDim: cfg.headDim,
      vocab: cfg.vocabSize,
      maxPositions: cfg.maxPositions,
      tiedEmbeddings: cfg.tiedEmbeddings,
      parameters: estimateMemory(cfg, 'inference', { batch: 1, seqLen: 1 }).parameters,
      tokenizer: !!files.tokenizer,
      chatTemplate: !!tokenizerOf(files)?.hasChatTemplate,
      adapter: gpu.adapter.name,
      memory,
    }) + '\n',
  );
}

interface GenerateOpts extends ModelOpts {
  prompt?: string;
  ids?: string;
  raw?: boolean;
  stop: string[];
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  numSamples: number;
}

async function generate(gpu: Gpu, v: GenerateOpts): Promise<void> {
  if (!v.prompt === !v.ids) throw new UsageError('give exactly one of --prompt TEXT or --ids "..."');
  const files = await resolveModel(v.model);
  const tok = tokenizerOf(files);
  let prompt: number[];
  if (v.prompt !== undefined) {
    if (!tok) throw new UsageError(`${files.source}: no tokenizer.json, so --prompt cannot be encoded; use --ids`);
    prompt = v.raw ? tok.encode(v.prompt) : tok.encodePrompt(v.prompt);
  } else {
    const seqs = parseIds(v.ids!);
    if (seqs.length !== 1) throw new UsageError('--ids: generate takes one prompt (use --num-samples for several samples)');
    prompt = seqs[0]!;
  }
  const { maxNewTokens, temperature, topK, topP, seed, numSamples } = v;
  const cfg = { ...GENERATE_DEFAULTS, maxNewTokens, temperature, topK, topP, seed, numSamples };
  const config = parseConfig(files.config);
  const eos = new Set<number>(tok?.eosTokenIds ?? []);
  for (const src of [config.eosTokenId, (files.generationConfig as { eos_token_id?: number | number[] } | undefined)?.eos_token_id]) {
    for (const id of [src].flat()) if (typeof id === 'number') eos.add(id);
  }
  const stops = v.stop;
  if (stops.length && !tok) throw new UsageError("--stop needs the model's tokenizer");
  const texts: string[] = Array(cfg.numSamples).fill('');
  fits(gpu, files, 'inference', cfg.numSamples, prompt.length + cfg.maxNewTokens, true);
  const { model } = loadModel(gpu, { ...files, configFile: `${files.source}/config.json` });
  const gen = new Generator(model);
  const r = await gen.generate(prompt, {
    ...cfg,
    stopTokenIds: [...eos],
    stopWhen: stops.length ? (k, ids) => findStop((texts[k] = tok!.decode(ids, { skipSpecialTokens: true })), stops) >= 0 : undefined,
  });
  const samples = r.ids.map((ids, k) => {
    let text = tok?.decode(ids, { skipSpecialTokens: true });
    if (text !== undefined && r.finish[k] === 'stop') text = text.slice(0, findStop(text, stops));
    return { ids, ...(text !== undefined ? { text } : {}), finish: r.finish[k] };
  });
  await print(JSON.stringify({ samples }) + '\n');
}

async function exportZip(gpu: Gpu, v: ModelOpts & { out: string }): Promise<void> {
  const files = await resolveModel(v.model);
  const { model } = loadModel(gpu, { ...files, configFile: `${files.source}/config.json` });
  const prior = files.weights[0]?.metadata ?? {};
  const out = await exportModelFiles(model, {
    meta: {
      producer: 'rlhf-playground',
      stage: prior.stage ?? 'base',
      steps: Number(prior.steps ?? 0),
      baseModel: prior.baseModel ?? files.source,
      date: new Date().toISOString(),
    },
    tokenizerFiles: tokenizerFilesOf(files), // the same files every other export carries (a SentencePiece tokenizer.model too)
    generationConfig: files.generationConfig as Record<string, unknown> | undefined,
  });
  const zip = zipFiles(out, basename(v.out).replace(/\.zip$/i, ''));
  writeFileSync(v.out, zip);
  await print(JSON.stringify({ out: v.out, bytes: zip.length, files: [...out.keys()] }) + '\n');
}

/** An action that needs the GPU: Dawn starts only once commander has accepted the command line. */
const onGpu =
  <O>(command: (gpu: Gpu, opts: O) => Promise<void>) =>
  async (opts: O) =>
    command(await createNodeGpu(), opts);

const modelOption = () => required('--model <DIR|ID>', 'a Hugging Face model folder or Hub id (see rlhf-playground --help)');
const idsOption = () => required('--ids <IDS>', 'token ids: "1,2,3;4,5,6", sequences of one length separated by ";"');

const STAGE_HELP = {
  sft: 'supervised fine-tuning on demonstrations (loss on completion tokens only)',
  rm: 'a reward model from rankings (all pairs of a ranking in one batch element)',
  dpo: 'DPO from the same rankings (reference: the model as given)',
  ppo: 'PPO against a reward model written by `rm`, with a KL leash to the model as given',
  grpo: 'GRPO: G completions per prompt, each scored by reward functions in JavaScript (or a reward model) against its group',
  rloo: 'RLOO: the leave-one-out baseline (the other completions of the prompt), the KL to the model as given folded into the reward',
} as const;

/**
 * The command line. `out` receives what commander writes to stdout (help), so main can wait for it to be
 * flushed before exiting. A new subcommand is one more `program.command(...)`: its options, and an action
 * (`onGpu(fn)` for a `fn(gpu, opts)` that needs the GPU).
 */
export function cli(out: (text: string) => void): Command {
  const program = new Command('rlhf-playground')
    .description('The InstructGPT recipe (SFT, reward model, PPO, DPO) on the WebGPU engine, from a terminal (Dawn).')
    .usage('<command> [options]')
    // set before the subcommands are made, which inherit them: errors come back to main() as one line
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: (t) => process.stderr.write(t), outputError: () => {} })
    .showSuggestionAfterError()
    .hook('preAction', checkRequired)
    .addHelpText('after', MODEL_HELP);

  program.command('info').description('architecture, parameter count, GPU memory estimates (JSON)').addOption(modelOption()).action(onGpu(info));
  program
    .command('score')
    .description('loss and logits of a batch (JSON {"loss","logits"})')
    .addOption(modelOption())
    .addOption(idsOption())
    .action(onGpu((gpu, o: IdsOpts) => scoreOrGrads(gpu, 'score', o)));
  program
    .command('grads')
    .description("d loss / d parameter (safetensors, under the model file's tensor names)")
    .addOption(modelOption())
    .addOption(idsOption())
    .addOption(required('--out <FILE.safetensors>', 'where the gradients go'))
    .action(onGpu((gpu, o: IdsOpts) => scoreOrGrads(gpu, 'grads', o)));
  const gen = program
    .command('generate')
    .summary('sample continuations of a prompt (JSON)')
    .description('sample continuations of --prompt or --ids, as JSON {"samples":[{"ids","text","finish"}]}; --temperature 0 is greedy')
    .addOption(modelOption())
    .option('--prompt <TEXT>', "the prompt, formatted with the model's chat template when it has one")
    .option('--ids <IDS>', 'the prompt as token ids (instead of --prompt)')
    .option('--raw', 'encode --prompt as it is, without the chat template');
  // the sampling flags, their help and defaults: the schema's generation options (src/shared/schema.ts)
  for (const o of GENERATE_OPTIONS) gen.addOption(new Option(o.cli, o.help).argParser(num(o.cli.split(' ')[0]!, o.valid)).default(o.default));
  gen
    .addOption(
      new Option('--stop <STRING>', 'stop a sample where it writes STRING (repeatable)')
        .argParser((v: string, all: string[]) => [...all, v])
        .default([], 'none'),
    )
    .action(onGpu(generate));
  program
    .command('export')
    .description('the model as a Hugging Face folder, zipped')
    .addOption(modelOption())
    .addOption(required('--out <FILE.zip>', 'where the zip goes'))
    .action(onGpu(exportZip));
  for (const stage of ['sft', 'rm', 'dpo', 'ppo', 'grpo', 'rloo'] as const) {
    const cmd = program
      .command(stage)
      .summary(STAGE_HELP[stage])
      .description(
        `${STAGE_HELP[stage]}. Writes to --out a model folder (a PEFT adapter with --lora-rank) and metrics.jsonl, one line per optimizer step under TRL's metric names${stage === 'grpo' || stage === 'rloo' ? ', and completions.jsonl: every completion with each reward and its advantage' : ''}.`,
      )
      .usage(
        `--model DIR|ID ${stage === 'ppo' ? '--prompts FILE.jsonl --reward DIR' : stage === 'grpo' || stage === 'rloo' ? '--prompts FILE.jsonl --reward-fn FILE.mjs|RULE [--reward DIR]' : '--data FILE.jsonl'} --out DIR [options]`,
      )
      .addOption(modelOption());
    for (const o of stageOptions(stage)) cmd.addOption(o);
    cmd.action(onGpu((gpu, o: Record<string, unknown>) => trainCommand(gpu, stage, o, { resolveModel, tokenizerOf })));
  }
  program
    .command('experiment')
    .summary('the InstructGPT headline experiment with a simulated labeler (results.json, plot.svg)')
    .description(
      'SFT on demonstrations; a simulated labeler ranks K = 4 samples per prompt; a reward model, PPO and DPO from those rankings; the labeler judges the tuned models against SFT on held-out prompts. Over --seeds seeds, with 95% intervals.',
    )
    .addOption(modelOption());
  for (const o of experimentOptions()) program.commands.at(-1)!.addOption(o);
  program.commands.at(-1)!.action(onGpu(experimentCommand));
  program
    .command('experiment-merge')
    .summary('one experiment from runs of it with other seeds (experiment --first-seed)')
    .description(
      'Puts together results.json files of the same experiment run with different seeds (same model, adapter, labelers, stages and settings) and summarises them again as one: results.json, plot.svg and the table, as experiment writes them.',
    )
    .argument('<results...>', 'results.json files')
    .addOption(required('--out <DIR>', 'where the merged results.json and plot.svg go'))
    .action((files: string[], o: { out: string }) => experimentMergeCommand(files, o));
  return program;
}

/** One line however the message reads (commander's suggestions come on a second line). */
const oneLine = (msg: string, joinLines: boolean) => (joinLines ? msg.replace(/\s*\n\s*/g, ' ') : msg.split('\n')[0]!);

export async function main(argv: string[]): Promise<number> {
  const written: Promise<void>[] = [];
  const program = cli((text) => void written.push(print(text)));
  const cmd = program.commands.find((c) => c.name() === argv[0])?.name();
  const fail = (msg: string) => process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}rlhf-playground${cmd ? ` ${cmd}` : ''}: ${msg}\n`);
  try {
    if (!argv.length) {
      program.outputHelp();
      await Promise.all(written);
      fail('give a command (listed above)');
      return 2;
    }
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    await Promise.all(written);
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0; // --help, help <command>
      fail(oneLine(e.message.replace(/^error: /, ''), true));
      return 2;
    }
    fail(oneLine(e instanceof Error ? e.message : String(e), false));
    return e instanceof UsageError || e instanceof TrainUsageError ? 2 : 1;
  }
}

// Dawn keeps the event loop alive; exit explicitly once the command is done.
main(process.argv.slice(2)).then((code) => process.exit(code));
