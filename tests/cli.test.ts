// The command line as a user runs it (npx rlhf-playground ...), on the fixtures.
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { parseSafetensors, readTensorF32 } from '../src/io/safetensors.ts';
import { resolveConfig } from '../src/shared/config.ts';
import { relErr } from './helpers/gpu.ts';

const ref = JSON.parse(readFileSync('tests/fixtures/gpt2-tiny/reference.json', 'utf8')) as { input_ids: number[][]; logits: number[][][]; loss: number };
const ids = ref.input_ids.map((r) => r.join(',')).join(';');

describe('rlhf-playground CLI', () => {
  it('score prints {loss, logits} matching the reference', async () => {
    const r = await cli(['score', '--model', 'tests/fixtures/gpt2-tiny', '--ids', ids]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { loss: number; logits: number[][][] };
    expect(Math.abs(out.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    expect(out.logits.length).toBe(2);
    expect(out.logits[0]!.length).toBe(ref.input_ids[0]!.length);
    expect(relErr(out.logits.flat(2), ref.logits.flat(2))).toBeLessThan(1e-4);
  });

  it('grads writes every gradient under the model file names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'grads-'));
    const out = join(dir, 'g.safetensors');
    const lref = JSON.parse(readFileSync('tests/fixtures/llama-tiny/reference.json', 'utf8')) as { input_ids: number[][] };
    const r = await cli(['grads', '--model', 'tests/fixtures/llama-tiny', '--ids', lref.input_ids.map((x) => x.join(',')).join(';'), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const got = parseSafetensors(readFileSync(out), out);
    const want = parseSafetensors(readFileSync('tests/fixtures/llama-tiny/grads.safetensors'), 'grads.safetensors');
    expect([...got.tensors.keys()].sort()).toEqual([...want.tensors.keys()].sort());
    for (const name of want.tensors.keys()) expect(relErr(readTensorF32(got, name), readTensorF32(want, name)), name).toBeLessThan(1e-3);
  });

  it('a bad --model ends with one clear line and a non-zero exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bad-'));
    const cases: [string, RegExp][] = [];
    cases.push([join(dir, 'missing'), /missing: no such model folder/]);
    const noWeights = join(dir, 'noweights');
    mkdirSync(noWeights);
    copyFileSync('tests/fixtures/gpt2-tiny/config.json', join(noWeights, 'config.json'));
    cases.push([noWeights, /model\.safetensors: no model\.safetensors there/]);
    const corrupt = join(dir, 'corrupt');
    mkdirSync(corrupt);
    copyFileSync('tests/fixtures/gpt2-tiny/config.json', join(corrupt, 'config.json'));
    const bytes = readFileSync('tests/fixtures/gpt2-tiny/model.safetensors');
    writeFileSync(join(corrupt, 'model.safetensors'), bytes.subarray(0, bytes.length - 10));
    cases.push([corrupt, /model\.safetensors: .*tensor "transformer\.ln_f\.bias"/]);
    const unsupported = join(dir, 'unsupported');
    mkdirSync(unsupported);
    writeFileSync(
      join(unsupported, 'config.json'),
      JSON.stringify({ model_type: 'gpt2', n_embd: 48, n_head: 4, n_layer: 1, vocab_size: 10, activation_function: 'relu' }),
    );
    cases.push([unsupported, /config\.json: unsupported value of "activation_function": "relu"/]);
    const badJson = join(dir, 'badjson');
    mkdirSync(badJson);
    writeFileSync(join(badJson, 'config.json'), '{"model_type": "gpt2",');
    cases.push([badJson, /config\.json: invalid JSON/]);
    for (const [model, re] of cases) {
      const r = await cli(['score', '--model', model, '--ids', '1,2,3']);
      expect(r.code, model).not.toBe(0);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines.length, r.stderr).toBe(1);
      expect(lines[0]).toMatch(re);
    }
  });

  it('bad --ids are usage errors', async () => {
    for (const ids of ['1,2;3', '1,x,3', '', '5']) {
      const r = await cli(['score', '--model', 'tests/fixtures/gpt2-tiny', '--ids', ids]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n').length).toBe(1);
    }
    const r = await cli(['score', '--model', 'tests/fixtures/gpt2-tiny', '--ids', '1,2,9999']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/token id 9999 at position 2 is outside the vocabulary/);
  });
});

describe('rlhf-playground info, generate, export', () => {
  it('info reports the architecture, parameter count and memory estimates', async () => {
    const r = await cli(['info', '--model', 'tests/fixtures/llama-tiny']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      architecture: string;
      parameters: number;
      kvHeads: number;
      memory: Record<string, { totalGiB: number; fits: boolean }>;
    };
    expect(out.architecture).toBe('llama');
    expect(out.kvHeads).toBe(2);
    expect(out.parameters).toBe(134592);
    expect(out.memory.full!.fits).toBe(true);
    expect(out.memory.full!.totalGiB).toBeGreaterThan(out.memory.inference!.totalGiB);
  });

  it('info names a Qwen model by its model_type, and the block the engine runs it as', async () => {
    for (const [name, type] of [
      ['qwen2-tiny', 'qwen2'],
      ['qwen3-tiny', 'qwen3'],
    ]) {
      const r = await cli(['info', '--model', `tests/fixtures/${name}`]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ architecture: type, block: 'llama' });
    }
  });

  it('info and generate load a Hub id through HF_ENDPOINT (a local server laid out like the Hub)', async () => {
    const { createServer } = await import('node:http');
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(req.url!);
      const m = /^\/acme\/tiny\/resolve\/main\/([\w.]+)$/.exec(req.url!);
      try {
        if (!m) throw new Error('no');
        const body = readFileSync(`tests/fixtures/gpt2-tiny/${m[1]}`);
        res.writeHead(200, { 'content-length': body.length }).end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const cache = mkdtempSync(join(tmpdir(), 'cache-'));
    const env = { ...process.env, HF_ENDPOINT: `http://127.0.0.1:${port}`, XDG_CACHE_HOME: cache };
    const runEnv = (args: string[]) => cli(args, { timeoutMs: 90_000, env });
    const a = await runEnv(['info', '--model', 'acme/tiny']);
    expect(a.code, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout).architecture).toBe('gpt2');
    expect(seen).toContain('/acme/tiny/resolve/main/model.safetensors');
    const before = seen.length;
    const g = await runEnv([
      'generate',
      '--model',
      'acme/tiny',
      '--ids',
      ref.input_ids[0]!.slice(0, 8).join(','),
      '--temperature',
      '0',
      '--max-new-tokens',
      '12',
    ]);
    expect(g.code, g.stderr).toBe(0);
    expect(seen.length).toBe(before); // the second load came from the cache
    const fx = JSON.parse(readFileSync('tests/fixtures/gpt2-tiny/reference.json', 'utf8')) as { greedy: { prompt_ids: number[]; output_ids: number[] } };
    expect(JSON.parse(g.stdout).samples[0].ids).toEqual(fx.greedy.output_ids.slice(8));
    server.close();
  });

  it('generate samples K continuations from a text prompt, reproducibly, and stops on a stop string', async () => {
    const args = [
      'generate',
      '--model',
      'tests/fixtures/llama-tiny',
      '--prompt',
      'Write a polite reply',
      '--num-samples',
      '3',
      '--seed',
      '9',
      '--max-new-tokens',
      '6',
      '--top-k',
      '50',
      '--top-p',
      '0.9',
      '--temperature',
      '0.8',
    ];
    const a = await cli(args);
    expect(a.code, a.stderr).toBe(0);
    const out = JSON.parse(a.stdout) as { samples: { ids: number[]; text: string }[] };
    expect(out.samples.length).toBe(3);
    for (const s of out.samples) expect(s.ids.length).toBeGreaterThan(0);
    expect((await cli(args)).stdout).toBe(a.stdout);
    const firstChar = out.samples[0]!.text.trim()[0]!;
    const s = await cli([...args, '--stop', firstChar]);
    const stopped = JSON.parse(s.stdout) as { samples: { text: string; finish: string }[] };
    expect(stopped.samples[0]!.finish).toBe('stop');
    expect(stopped.samples[0]!.text.includes(firstChar)).toBe(false);
    const bad = await cli(['generate', '--model', 'tests/fixtures/llama-tiny', '--prompt', 'x', '--top-p', '2']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--top-p: invalid value "2"/);
  });

  it('export writes a zip that imports back to identical logits, with provenance metadata', async () => {
    const { unzipFiles } = await import('../src/io/zip.ts');
    const dir = mkdtempSync(join(tmpdir(), 'export-'));
    const zip = join(dir, 'tiny-export.zip');
    const r = await cli(['export', '--model', 'tests/fixtures/llama-tiny', '--out', zip]);
    expect(r.code, r.stderr).toBe(0);
    const files = unzipFiles(readFileSync(zip), zip);
    expect([...files.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']);
    expect(Buffer.from(files.get('tokenizer.json')!).equals(readFileSync('tests/fixtures/llama-tiny/tokenizer.json'))).toBe(true);
    const meta = parseSafetensors(files.get('model.safetensors')!, 'model.safetensors').metadata;
    expect(meta.producer).toBe('rlhf-playground');
    expect(meta.stage).toBe('base');
    expect(meta.baseModel).toBe('tests/fixtures/llama-tiny');
    const unpacked = join(dir, 'unpacked');
    mkdirSync(unpacked);
    for (const [name, bytes] of files) writeFileSync(join(unpacked, name), bytes);
    const lref = JSON.parse(readFileSync('tests/fixtures/llama-tiny/reference.json', 'utf8')) as { input_ids: number[][] };
    const idsArg = lref.input_ids.map((x) => x.join(',')).join(';');
    const a = JSON.parse((await cli(['score', '--model', 'tests/fixtures/llama-tiny', '--ids', idsArg])).stdout) as { logits: number[][][] };
    const b = JSON.parse((await cli(['score', '--model', unpacked, '--ids', idsArg])).stdout) as { logits: number[][][] };
    expect(b.logits).toEqual(a.logits);
  });

  it('export carries every tokenizer file of the folder, a SentencePiece tokenizer.model too, byte for byte', async () => {
    const { unzipFiles } = await import('../src/io/zip.ts');
    const dir = mkdtempSync(join(tmpdir(), 'export-spm-'));
    const model = join(dir, 'model');
    mkdirSync(model);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) copyFileSync(join('tests/fixtures/llama-tiny', f), join(model, f));
    const extra: Record<string, Uint8Array> = {
      'tokenizer.model': new Uint8Array([0x0a, 0x0b, 0x0a, 0x05, 0x3c, 0x75, 0x6e, 0x6b, 0x3e, 0x15, 0, 0, 0, 0, 0x18, 0x02]), // a protobuf's first bytes
      'tokenizer_config.json': new TextEncoder().encode('{"model_max_length": 64}\n'),
      'special_tokens_map.json': new TextEncoder().encode('{"eos_token": "</s>"}\n'),
    };
    for (const [f, bytes] of Object.entries(extra)) writeFileSync(join(model, f), bytes);
    const zip = join(dir, 'out.zip');
    const r = await cli(['export', '--model', model, '--out', zip]);
    expect(r.code, r.stderr).toBe(0);
    const files = unzipFiles(readFileSync(zip), zip);
    for (const [f, bytes] of Object.entries(extra)) expect(Buffer.from(files.get(f) ?? []).equals(Buffer.from(bytes)), f).toBe(true);
  });
});

/** The options of a --help text: flags -> their description, on one line. */
function helpOptions(help: string): Map<string, string> {
  const out = new Map<string, string>();
  let flag: string | undefined;
  for (const line of help.split('\n')) {
    const m = /^  (-[\w-]+(?:, -[\w-]+)?)(?: <[^>]+>)?(?:\s{2,}(.*))?$/.exec(line);
    if (m) out.set((flag = m[1]!), m[2] ?? '');
    else if (flag && /^\s{6,}\S/.test(line)) out.set(flag, `${out.get(flag)} ${line.trim()}`.trim());
    else flag = undefined;
  }
  return out;
}

describe('rlhf-playground --help and usage errors', () => {
  const COMMANDS = ['info', 'score', 'grads', 'generate', 'export', 'sft', 'rm', 'dpo', 'ppo'];

  it('--help lists the commands; every command answers --help with its own options', async () => {
    const top = await cli(['--help']);
    expect(top.code, top.stderr).toBe(0);
    for (const c of COMMANDS) expect(top.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    const helps = new Map(
      await Promise.all(
        COMMANDS.map(async (c) => {
          const r = await cli([c, '--help']);
          expect(r.code, `${c}: ${r.stderr}`).toBe(0);
          expect(r.stderr).toBe('');
          expect(r.stdout).toMatch(new RegExp(`^Usage: rlhf-playground ${c} `, 'm'));
          return [c, helpOptions(r.stdout)] as const;
        }),
      ),
    );
    for (const [c, o] of helps) expect(o.get('--model'), c).toMatch(/\(required\)/);
    expect([...helps.get('generate')!.keys()]).toEqual(expect.arrayContaining(['--prompt', '--ids', '--temperature', '--top-p', '--stop', '--raw']));
    expect(helps.get('generate')!.get('--num-samples')).toMatch(/\(default: 1\)/);
    expect(helps.get('generate')!.get('--max-new-tokens')).toMatch(/\(default: 64\)/);
    expect(helps.get('sft')!.has('--beta')).toBe(false); // each command lists its own options only
    expect(helps.get('dpo')!.get('--beta')).toMatch(/\(default: 0\.1\)/);
    expect(helps.get('ppo')!.get('--prompts')).toMatch(/\(required\)/);
    expect(helps.get('ppo')!.has('--data')).toBe(false);
    // `help <command>` says the same
    const viaHelp = await cli(['help', 'ppo']);
    expect(helpOptions(viaHelp.stdout)).toEqual(helps.get('ppo'));
  });

  it("the training stages' --help shows the defaults of resolveConfig, per stage, with and without LoRA", async () => {
    const exp = (x: number) => x.toExponential(); // 1e-4, as the help writes small numbers
    for (const stage of ['sft', 'rm', 'dpo', 'ppo'] as const) {
      const o = helpOptions((await cli([stage, '--help'])).stdout);
      const shape = { maxPositions: 1024, hidden: 4096 }; // the paper's width: the learning rates unscaled
      const full = resolveConfig(stage, { loraRank: 0, rewardRunId: 'rm' }, shape),
        lora = resolveConfig(stage, { loraRank: 8, rewardRunId: 'rm' }, shape);
      expect(o.get('--lr'), stage).toContain(`(default: ${exp(lora.lr)} with LoRA, ${exp(full.lr)} full, x 4096 / the model's hidden size, at most x 32)`);
      expect(o.get('--epochs'), stage).toContain('(default: 0 = auto: passes for at least 32 steps, at most 8)');
      expect(o.get('--batch-size'), stage).toContain(`(default: ${full.batchSize})`);
      expect(o.get('--lora-dropout'), stage).toContain(`(default: ${lora.loraDropout})`);
      expect(o.get('--lora-alpha'), stage).toContain(`(default: ${lora.loraAlpha / 8} x --lora-rank)`);
      expect(o.get('--seq-len'), stage).toContain(`(default: ${full.seqLen}, at most the model's positions)`);
      expect(o.get('--max-steps, --steps'), stage).toMatch(/max_steps.*\(default: 0\)/);
    }
    // the table's own numbers, so a copy of it could not pass: these differ per stage and per LoRA
    expect(helpOptions((await cli(['rm', '--help'])).stdout).get('--lr')).toContain(
      "(default: 1e-4 with LoRA, 3.1e-5 full, x 4096 / the model's hidden size, at most x 32)",
    );
    expect(helpOptions((await cli(['ppo', '--help'])).stdout).get('--num-samples')).toContain('(default: 4)');
  });

  it('usage errors are one line naming the problem, exit 2, before any model is loaded', async () => {
    const cases: [string[], RegExp][] = [
      [['sft', '--frobnicate', '3'], /^rlhf-playground sft: unknown option '--frobnicate'$/],
      [['sft', '--model', 'm', '--data', 'd.jsonl', '--out', 'o', '--beta', '0.2'], /^rlhf-playground sft: unknown option '--beta'/],
      [
        ['generate', '--model', 'm', '--prompt', 'x', '--temprature', '0'],
        /^rlhf-playground generate: unknown option '--temprature' \(Did you mean --temperature\?\)$/,
      ],
      [['sft', '--model', 'm', '--out', 'o'], /^rlhf-playground sft: --data FILE\.jsonl is required$/],
      [['ppo', '--model', 'm', '--prompts', 'p.jsonl', '--out', 'o'], /^rlhf-playground ppo: --reward DIR is required$/],
      [['sft', '--model', 'm', '--data', 'd.jsonl', '--out', 'o', '--lr', 'fast'], /^rlhf-playground sft: --lr: invalid value "fast"$/],
      [['sft', '--model', 'm', '--data', 'd.jsonl', '--out', 'o', '--stop-after', '0'], /^rlhf-playground sft: --stop-after: invalid value "0"$/],
      [['score', '--model', 'm', 'extra'], /^rlhf-playground score: too many arguments/],
      [['sfft'], /^rlhf-playground: unknown command 'sfft' \(Did you mean sft\?\)$/],
      [['--model', 'm'], /^rlhf-playground: unknown option '--model'$/],
    ];
    await Promise.all(
      cases.map(async ([args, re]) => {
        const r = await cli(args);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stdout).toBe('');
        expect(r.stderr.trim().split('\n'), args.join(' ')).toEqual([expect.stringMatching(re)]);
      }),
    );
    // no command at all: the help on stdout, one line on stderr
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toMatch(/^Usage: rlhf-playground <command>/);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
  });
});
