// rlhf-playground command line. Every failure ends with one line on stderr and a non-zero exit.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createNodeGpu } from '../gpu/node.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { readModelFolder } from '../io/folder.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { loadModel } from '../model/index.ts';

const USAGE = `usage: rlhf-playground <command> [options]

commands:
  score --model DIR --ids "1,2,3;4,5,6"                 loss and logits of a batch, as JSON
  grads --model DIR --ids "..." --out FILE.safetensors  d loss / d parameter, under the model file's names

--ids: token ids, sequences separated by ';', all of the same length (at least 2 tokens for a loss).
The loss is the mean next-token cross-entropy over the batch and positions 0..T-2.`;

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

async function scoreOrGrads(gpu: Gpu, cmd: 'score' | 'grads', v: Record<string, string | undefined>): Promise<void> {
  if (!v.model) throw new UsageError('--model DIR is required');
  if (!v.ids) throw new UsageError('--ids is required');
  if (cmd === 'grads' && !v.out) throw new UsageError('--out FILE.safetensors is required');
  const seqs = parseIds(v.ids);
  const B = seqs.length, T = seqs[0]!.length;
  if (T < 2) throw new UsageError('--ids: sequences need at least 2 tokens for a next-token loss');
  const files = await readModelFolder(v.model);
  const { model, fileNames } = loadModel(gpu, { ...files, configFile: `${v.model}/config.json` }, { grads: cmd === 'grads' });
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
    writeFileSync(v.out!, writeSafetensors(tensors, { producer: 'rlhf-playground', content: 'd loss / d parameter', loss: String(loss) }));
    await print(JSON.stringify({ loss, out: v.out, tensors: tensors.length }) + '\n');
  }
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
      options: { model: { type: 'string' }, ids: { type: 'string' }, out: { type: 'string' } },
      strict: true,
    });
    if (cmd !== 'score' && cmd !== 'grads') throw new UsageError(`unknown command "${cmd}" (try --help)`);
    const gpu = await createNodeGpu();
    await scoreOrGrads(gpu, cmd, values);
    return 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`rlhf-playground ${cmd}: ${msg.split('\n')[0]}\n`);
    return e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  }
}

// Dawn keeps the event loop alive; exit explicitly once the command is done.
main(process.argv.slice(2)).then((code) => process.exit(code));
