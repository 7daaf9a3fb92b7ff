// Every reader of outside data, fed mutated valid files (bit flips, truncation, splices, runs of bytes set to
// extremes): each input is read or refused with one error that names the file, in one line; never a hang,
// a TypeError or RangeError from inside a reader, or an allocation far larger than the input.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { peftAdapterFiles, readPeftAdapter, type LoraTensors } from '../src/io/peft.ts';
import { unzipFiles, zipFiles } from '../src/io/zip.ts';
import { parseSafetensors, readTensorF32 } from '../src/io/safetensors.ts';
import { loadModelFiles } from '../src/io/sources.ts';
import { exportJsonl } from '../src/io/datasets.ts';
import { decodeText } from '../src/io/text.ts';
import { Tok } from '../src/io/tokenizer.ts';
import { parseConfig } from '../src/shared/model-config.ts';
import { dataBundle, importData, importDataBundle } from '../src/ui/data-io.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const enc = (s: string) => new TextEncoder().encode(s);
const FIXTURE = 'tests/fixtures/llama-tiny';
const fixtureFile = (name: string) => new Uint8Array(readFileSync(`${FIXTURE}/${name}`));

/** One mutation of a byte string, as fast-check draws it. */
type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'splice'; at: number; len: number; from: number }
  | { kind: 'extreme'; at: number; len: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array };

const unit = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: unit, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: unit }),
  fc.record({ kind: fc.constant('splice' as const), at: unit, len: fc.integer({ min: 1, max: 64 }), from: unit }),
  // a length or offset field set to 0, 0x7f.. or 0xff..: runs of one byte value, 1 to 8 bytes long
  fc.record({ kind: fc.constant('extreme' as const), at: unit, len: fc.integer({ min: 1, max: 8 }), value: fc.constantFrom(0, 0x7f, 0x80, 0xff) }),
  fc.record({ kind: fc.constant('insert' as const), at: unit, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);

/** Where mutations land: anywhere, or (to reach the fields that matter) in the first bytes. */
function apply(src: Uint8Array, ms: Mutation[], head: number): Uint8Array {
  let b = src.slice();
  for (const m of ms) {
    const span = head > 0 ? Math.min(head, b.length) : b.length;
    const at = Math.floor(m.at * span);
    if (m.kind === 'flip') {
      if (b.length) b[at] ^= 1 << m.bit;
    } else if (m.kind === 'truncate') b = b.slice(0, at);
    else if (m.kind === 'splice') {
      const from = Math.floor(m.from * b.length);
      b.set(b.slice(from, from + m.len).subarray(0, Math.max(0, b.length - at)), at);
    } else if (m.kind === 'extreme') b.fill(m.value, at, Math.min(b.length, at + m.len));
    else {
      const out = new Uint8Array(b.length + m.bytes.length);
      out.set(b.subarray(0, at));
      out.set(m.bytes, at);
      out.set(b.subarray(at), at + m.bytes.length);
      b = out;
    }
  }
  return b;
}
const mutated = (src: Uint8Array, head = 0) => fc.array(mutation, { minLength: 1, maxLength: 4 }).map((ms) => apply(src, ms, head));
/** Mutations anywhere in the file, or in its first `head` bytes (the header of a binary format). */
const variants = (src: Uint8Array, head: number) => fc.oneof(mutated(src), mutated(src, head));

const INTERNAL = [TypeError, RangeError, ReferenceError, SyntaxError];

/** `f` reads or refuses: an Error of a reader's own kind, naming `file`, in one line; and no huge allocation. */
async function readsOrRefuses(what: string, input: Uint8Array, file: string, f: () => unknown): Promise<'read' | 'refused'> {
  const before = process.memoryUsage().arrayBuffers;
  let result: unknown;
  try {
    result = await f();
  } catch (e) {
    expect(e, `${what}: threw a non-Error`).toBeInstanceOf(Error);
    const err = e as Error;
    const where = `${what} (${input.length} bytes): ${err.name}: ${err.message}\n${err.stack ?? ''}`;
    expect(
      INTERNAL.some((k) => err.constructor === k),
      `an internal error escaped: ${where}`,
    ).toBe(false);
    expect(err.message, where).toContain(file);
    expect(err.message.includes('\n'), `more than one line: ${where}`).toBe(false);
    expect(err.message.length, where).toBeLessThan(600);
    return 'refused';
  }
  const grown = process.memoryUsage().arrayBuffers - before;
  expect(grown, `${what}: allocated ${grown} bytes for ${input.length} bytes of input`).toBeLessThan(64 * 2 ** 20 + 16 * input.length);
  void result;
  return 'read';
}

/** Runs a property over the variants of `src` and checks both outcomes occurred (the mutations reach the reader). */
async function fuzz(what: string, src: Uint8Array, head: number, file: string, read: (bytes: Uint8Array) => unknown, runs = RUNS) {
  const seen = { read: 0, refused: 0 };
  await fc.assert(
    fc.asyncProperty(variants(src, head), async (bytes) => {
      seen[await readsOrRefuses(what, bytes, file, () => read(bytes))]++;
    }),
    { numRuns: runs, seed: 20261204 },
  );
  expect(seen.refused, `${what}: no mutation was refused`).toBeGreaterThan(0);
  return seen;
}

describe('fuzzed readers of outside data', () => {
  it('safetensors: parsed and every tensor read, or refused naming the file', async () => {
    const st = fixtureFile('model.safetensors');
    const headerLen = Number(new DataView(st.buffer, st.byteOffset, 8).getBigUint64(0, true));
    await fuzz('model.safetensors', st, 8 + headerLen, 'model.safetensors', (b) => {
      const f = parseSafetensors(b, 'model.safetensors');
      for (const name of f.tensors.keys()) readTensorF32(f, name);
    });
  }, 120_000);

  it('a model folder (config.json, tokenizer.json, tokenizer_config.json, model.safetensors), one file mutated at a time', async () => {
    const files: Record<string, Uint8Array> = {
      'config.json': fixtureFile('config.json'),
      'tokenizer.json': fixtureFile('tokenizer.json'),
      'tokenizer_config.json': enc(
        JSON.stringify({
          bos_token: '<|endoftext|>',
          eos_token: '<|endoftext|>',
          model_max_length: 128,
          chat_template: "{% for m in messages %}{{ m['content'] }}{% endfor %}",
        }),
      ),
      'model.safetensors': fixtureFile('model.safetensors'),
    };
    for (const [name, bytes] of Object.entries(files)) {
      const head = name.endsWith('.safetensors') ? 512 : 0;
      await fuzz(
        `folder/${name}`,
        bytes,
        head,
        name,
        async (b) => {
          const got = await loadModelFiles(async (p) => (p === name ? b : files[p]), 'folder');
          parseConfig(got.config, 'folder/config.json');
          Tok.fromJson(got.tokenizer, got.tokenizerConfig, 'folder/tokenizer.json');
          for (const w of got.weights) for (const t of w.tensors.keys()) readTensorF32(w, t);
        },
        name === 'model.safetensors' ? RUNS / 4 : RUNS,
      );
    }
  }, 600_000);

  it('a PEFT adapter (adapter_config.json and adapter_model.safetensors)', async () => {
    const C = 8,
      r = 2;
    const loras: LoraTensors[] = [0, 1].map((l) => ({
      module: `model.layers.${l}.self_attn.q_proj`,
      A: new Float32Array(r * C).fill(0.1),
      B: new Float32Array(C * r).fill(0.2),
      inFeatures: C,
      outFeatures: C,
    }));
    const meta = { producer: 'rlhf-playground', stage: 'sft', steps: 3, baseModel: 'tiny', date: '2026-12-04T00:00:00.000Z', lr: 1e-3 } as const;
    const files = peftAdapterFiles({ baseModel: 'tiny', r, alpha: 4, dropout: 0, targetModules: ['q_proj'], fanInFanOut: false, loras, meta });
    for (const name of ['adapter_config.json', 'adapter_model.safetensors']) {
      await fuzz(`adapter/${name}`, files.get(name)!, name.endsWith('.json') ? 0 : 256, 'my-adapter', (b) =>
        readPeftAdapter(new Map([...files, [name, b]]), 'my-adapter'),
      );
    }
  }, 120_000);

  it('zip archives: every entry unpacked (sizes and CRCs checked), or refused naming the zip', async () => {
    const entries = [fixtureFile('config.json'), enc('hello '.repeat(200)), new Uint8Array(0)];
    const zip = zipFiles(
      new Map([
        ['config.json', entries[0]!],
        ['notes.txt', entries[1]!],
        ['empty', entries[2]!],
      ]),
      'model',
    );
    const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
    await fuzz('model.zip', zip, 0, 'model.zip', (b) => {
      // read means read correctly: a name may have changed (a flipped bit in it is still a name), the bytes not
      for (const [name, bytes] of unzipFiles(b, 'model.zip', { maxTotalBytes: 8 * 2 ** 20 })) {
        expect(
          entries.some((e) => same(e, bytes)),
          `entry ${name} came out with bytes no entry had`,
        ).toBe(true);
      }
    });
  }, 120_000);

  // Every JSONL format we read: SFT (prompt/completion and messages), preference pairs, K-way rankings,
  // prompt-only lines (text and conversational).
  const JSONL =
    [
      { prompt: 'Say hi.', completion: 'Hi!' },
      {
        messages: [
          { role: 'user', content: 'Name a colour.' },
          { role: 'assistant', content: 'Blue.' },
        ],
      },
      { prompt: 'Greet me.', chosen: 'Hello, friend!', rejected: 'no.' },
      {
        prompt: [{ role: 'user', content: 'Thank me.' }],
        chosen: [{ role: 'assistant', content: 'Thank you!' }],
        rejected: [{ role: 'assistant', content: 'Whatever.' }],
      },
      { prompt: 'Count to three.', completions: ['1, 2, 3.', 'One two three', 'three'], ranks: [0, 1, 2] },
      { prompt: 'A prompt alone.' },
      { prompt: [{ role: 'user', content: 'A conversational prompt.' }] },
    ]
      .map((x) => JSON.stringify(x))
      .join('\n') + '\n';

  it('JSONL datasets: each line read or refused as "file:line: problem"; the file, if not UTF-8 text, refused once', async () => {
    const file = 'data.jsonl';
    const seen = { records: 0, lineErrors: 0 };
    await fc.assert(
      fc.asyncProperty(variants(enc(JSONL), 0), async (bytes) => {
        await readsOrRefuses(file, bytes, file, () => {
          const got = importData(decodeText(bytes, file, { allowEmpty: true }), file);
          for (const e of got.errors) {
            expect(e.startsWith(`${file}:`), e).toBe(true);
            expect(e.includes('\n'), e).toBe(false);
          }
          for (const p of got.prompts) expect(typeof p).toBe('string');
          for (const r of got.records) expect(['completion', 'messages', 'preference', 'ranking']).toContain(r.kind);
          // what was accepted is what the file says: written out and read back, the same records
          const again = importData(exportJsonl(got.records), 'again.jsonl');
          expect(again.errors).toEqual([]);
          expect(again.records).toEqual(got.records);
          seen.records += got.records.length + got.prompts.length;
          seen.lineErrors += got.errors.length;
        });
      }),
      { numRuns: RUNS * 2, seed: 20261204 },
    );
    expect(seen.records).toBeGreaterThan(0);
    expect(seen.lineErrors).toBeGreaterThan(0);
  }, 120_000);

  it("the store's import of an exported data zip", async () => {
    const zip = dataBundle(
      {
        records: [
          { kind: 'completion', prompt: 'Say hi.', completion: 'Hi!' },
          { kind: 'preference', prompt: 'Greet me.', chosen: 'Hello!', rejected: 'no.' },
        ],
        rankings: [{ prompt: 'Count.', completions: ['1 2 3', 'one'], ranks: [0, 1] }],
        prompts: [{ text: 'A prompt alone.' }],
        votes: [],
        spotChecks: [],
      } as unknown as Parameters<typeof dataBundle>[0],
      { mtime: new Date('2026-12-04T00:00:00Z') },
    )!;
    await fuzz('rlhf-data.zip', zip, 0, 'rlhf-data.zip', (b) => {
      const got = importDataBundle(b, 'rlhf-data.zip');
      for (const e of got.errors) expect(e.includes('rlhf-data.zip'), e).toBe(true);
    });
  }, 120_000);
});
