// A hand-written corpus of malformed inputs, one per rule a reader enforces: model folders, datasets,
// PEFT adapters and zips. Each case is made from a valid base (so it breaks exactly one rule) and names
// the file its error must name and the words that say what is wrong. tests/malformed.test.ts feeds every
// case to the command line (a non-zero exit and one line on stderr) and to the page (the error shown where
// the file was picked).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { zipFiles } from '../../src/io/zip.ts';
import { cli } from './cli.ts';

export type Files = Map<string, Uint8Array>;

export interface Case {
  id: string;
  /** the rule it breaks, in words */
  rule: string;
  /** the file (base name) the error must name */
  file: string;
  /** what the error must say */
  match: RegExp;
}
/** A model folder or adapter broken from a valid one. */
export interface FolderCase extends Case {
  make(base: Files): Files;
}
/** A dataset file: its name and bytes. */
export interface DataCase extends Case {
  bytes: Uint8Array;
}
/** A zip (the page opens zips of models and adapters; the CLI takes a zipped model as --model). */
export interface ZipCase extends Case {
  make(base: Files): Uint8Array;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

export const MODEL_DIR = 'tests/fixtures/gpt2-tiny';
/** The valid model folder every model case starts from (a GPT-2 of 48 wide, 2 layers, 4 heads, 377 tokens). */
export function modelBase(): Files {
  return new Map(['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => [f, new Uint8Array(readFileSync(`${MODEL_DIR}/${f}`))]));
}

const without = (f: Files, name: string): Files => new Map([...f].filter(([k]) => k !== name));
const withFile = (f: Files, name: string, bytes: Uint8Array): Files => new Map([...f, [name, bytes]]);
const editJson = (f: Files, name: string, edit: (o: { [k: string]: unknown }) => unknown): Files => {
  const o = JSON.parse(dec(f.get(name)!)) as { [k: string]: unknown };
  const out = edit(o);
  return withFile(f, name, enc(JSON.stringify(out === undefined ? o : out)));
};
const config = (edit: (c: { [k: string]: unknown }) => unknown) => (f: Files) => editJson(f, 'config.json', edit);

type Header = { [name: string]: { dtype: string; shape: number[]; data_offsets: [number, number] } | { [k: string]: string } };
/** A safetensors file's header and data, split. */
function splitSafetensors(b: Uint8Array): { header: Header; data: Uint8Array } {
  const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  return { header: JSON.parse(dec(b.subarray(8, 8 + n))) as Header, data: b.subarray(8 + n) };
}
function joinSafetensors(header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): Uint8Array {
  const h = enc(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}
/** The weights with their header edited (a tensor's entry, by name) and optionally the data cut or grown. */
const weights = (file: string, edit: (h: Header, data: Uint8Array) => Uint8Array | void) => (f: Files) => {
  const { header, data } = splitSafetensors(f.get(file)!);
  const newData = edit(header, data) ?? data;
  return withFile(f, file, joinSafetensors(header, newData));
};
/** The weights without some tensors, the rest packed again (so nothing but their absence is wrong). */
const dropTensors = (file: string, names: string[]) => (f: Files) => {
  const { header, data } = splitSafetensors(f.get(file)!);
  const kept = Object.entries(header).filter(([k]) => k !== '__metadata__' && !names.includes(k)) as [
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] },
  ][];
  const parts: Uint8Array[] = [];
  let at = 0;
  const out: { [k: string]: unknown } = { __metadata__: header.__metadata__ };
  for (const [k, t] of kept.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])) {
    const bytes = data.subarray(t.data_offsets[0], t.data_offsets[1]);
    out[k] = { ...t, data_offsets: [at, at + bytes.length] };
    parts.push(bytes);
    at += bytes.length;
  }
  const packed = new Uint8Array(at);
  let o = 0;
  for (const p of parts) {
    packed.set(p, o);
    o += p.length;
  }
  return withFile(f, file, joinSafetensors(out, packed));
};
const tensor = (h: Header, name: string) => h[name] as { dtype: string; shape: number[]; data_offsets: [number, number] };

export const MODEL_CASES: FolderCase[] = [
  { id: 'config-missing', rule: 'a model folder has config.json', file: 'config.json', match: /no config\.json there/, make: (f) => without(f, 'config.json') },
  {
    id: 'config-not-json',
    rule: 'config.json is JSON',
    file: 'config.json',
    match: /invalid JSON \(unexpected end of input/,
    make: (f) => withFile(f, 'config.json', enc('{"model_type": "gpt2",')),
  },
  {
    id: 'config-array',
    rule: 'config.json is one object',
    file: 'config.json',
    match: /not a JSON object/,
    make: (f) => withFile(f, 'config.json', enc('[1, 2]')),
  },
  {
    id: 'config-not-utf8',
    rule: 'config.json is UTF-8 text',
    file: 'config.json',
    match: /not UTF-8 text \(line 1, byte offset 19: 0xff\)/,
    make: (f) => withFile(f, 'config.json', new Uint8Array([...enc('{"model_type": "gpt'), 0xff, ...enc('2"}')])),
  },
  {
    id: 'config-empty',
    rule: 'config.json is not empty',
    file: 'config.json',
    match: /the file is empty/,
    make: (f) => withFile(f, 'config.json', new Uint8Array(0)),
  },
  {
    id: 'config-unknown-type',
    rule: 'model_type is one the engine builds',
    file: 'config.json',
    match: /unsupported value of \"model_type\": \"bert\"/,
    make: config((c) => {
      c.model_type = 'bert';
    }),
  },
  {
    id: 'config-no-layers',
    rule: 'the layer count is given',
    file: 'config.json',
    match: /required field \"n_layer\" is missing/,
    make: config((c) => {
      delete c.n_layer;
    }),
  },
  {
    id: 'config-negative-width',
    rule: 'sizes are positive integers',
    file: 'config.json',
    match: /\"n_embd\" must be a non-negative number, got -48/,
    make: config((c) => {
      c.n_embd = -48;
    }),
  },
  {
    id: 'config-heads-not-dividing',
    rule: 'the heads divide the width',
    file: 'config.json',
    match: /\"n_embd\" \(48\) is not a multiple of \"n_head\" \(5\)/,
    make: config((c) => {
      c.n_head = 5;
    }),
  },
  {
    id: 'config-activation',
    rule: 'the activation is one the kernels have',
    file: 'config.json',
    match: /unsupported value of \"activation_function\": \"swish_beta\"/,
    make: config((c) => {
      c.activation_function = 'swish_beta';
    }),
  },
  {
    id: 'config-vocab-string',
    rule: 'numbers are numbers',
    file: 'config.json',
    match: /\"vocab_size\" must be a non-negative number, got \"377\"/,
    make: config((c) => {
      c.vocab_size = '377';
    }),
  },
  {
    id: 'weights-missing',
    rule: 'a model folder has its weights',
    file: 'model.safetensors',
    match: /no model\.safetensors there/,
    make: (f) => without(f, 'model.safetensors'),
  },
  {
    id: 'weights-pytorch-only',
    rule: 'pickled weights are not read (they can run code)',
    file: 'pytorch_model.bin',
    match: /only safetensors checkpoints are supported/,
    make: (f) => withFile(without(f, 'model.safetensors'), 'pytorch_model.bin', new Uint8Array([0x80, 0x02, 0x7d, 0x71, 0x00])),
  },
  {
    id: 'weights-truncated',
    rule: 'the file holds its header',
    file: 'model.safetensors',
    match: /shorter than the 8-byte header length/,
    make: (f) => withFile(f, 'model.safetensors', f.get('model.safetensors')!.subarray(0, 6)),
  },
  {
    id: 'weights-huge-header',
    rule: 'the header length fits the file',
    file: 'model.safetensors',
    match: /header length 1099511627776 exceeds the limit/,
    make: (f) => {
      const b = f.get('model.safetensors')!.slice();
      new DataView(b.buffer).setBigUint64(0, 2n ** 40n, true);
      return withFile(f, 'model.safetensors', b);
    },
  },
  {
    id: 'weights-header-not-json',
    rule: 'the header is JSON',
    file: 'model.safetensors',
    match: /invalid header JSON/,
    make: (f) => withFile(f, 'model.safetensors', joinSafetensors(null, splitSafetensors(f.get('model.safetensors')!).data, '{"transformer.wte.weight": {')),
  },
  {
    id: 'weights-dtype',
    rule: 'tensors are F32, F16 or BF16',
    file: 'model.safetensors',
    match: /unsupported dtype \"I64\"/,
    make: weights('model.safetensors', (h) => {
      tensor(h, 'transformer.h.0.ln_1.weight').dtype = 'I64';
      tensor(h, 'transformer.h.0.ln_1.weight').shape = [24];
    }),
  },
  {
    id: 'weights-size-mismatch',
    rule: "a tensor's bytes match its shape",
    file: 'model.safetensors',
    match: /\"transformer\.wpe\.weight\": dtype F32 x shape \[65,48\] needs 12480 bytes but its range holds 12288/,
    make: weights('model.safetensors', (h) => {
      tensor(h, 'transformer.wpe.weight').shape = [65, 48];
    }),
  },
  {
    id: 'weights-past-end',
    rule: 'tensors lie inside the file',
    file: 'model.safetensors',
    match: /run past the data section/,
    make: weights('model.safetensors', (_h, d) => d.subarray(0, d.length - 4)),
  },
  {
    id: 'weights-trailing',
    rule: 'no bytes after the last tensor',
    file: 'model.safetensors',
    match: /16 trailing bytes after the last tensor/,
    make: weights('model.safetensors', (_h, d) => {
      const out = new Uint8Array(d.length + 16);
      out.set(d);
      return out;
    }),
  },
  {
    id: 'weights-overlap',
    rule: 'tensors do not overlap',
    file: 'model.safetensors',
    match: /\"transformer\.wpe\.weight\": overlap/,
    make: weights('model.safetensors', (h) => {
      const t = tensor(h, 'transformer.wpe.weight');
      t.data_offsets = [t.data_offsets[0] - 192, t.data_offsets[1] - 192];
    }),
  },
  {
    id: 'weights-tensor-missing',
    rule: 'every parameter is in the weights',
    file: 'model.safetensors',
    match: /missing tensor "h\.1\.mlp\.c_fc\.weight/,
    make: dropTensors('model.safetensors', ['transformer.h.1.mlp.c_fc.weight']),
  },
  {
    id: 'weights-wrong-shape',
    rule: "each parameter has the config's shape",
    file: 'model.safetensors',
    match: /\"transformer\.h\.0\.attn\.c_proj\.weight\" has shape \[24,96\], the config implies \[48,48\]/,
    make: weights('model.safetensors', (h) => {
      tensor(h, 'transformer.h.0.attn.c_proj.weight').shape = [24, 96];
    }),
  },
  {
    id: 'index-missing-shard',
    rule: 'a sharded index names shards that exist',
    file: 'model-00002-of-00002.safetensors',
    match: /no model-00002-of-00002\.safetensors there \(listed in model\.safetensors\.index\.json\)/,
    make: (f) =>
      withFile(
        without(f, 'model.safetensors'),
        'model.safetensors.index.json',
        enc(JSON.stringify({ weight_map: { 'transformer.wte.weight': 'model-00002-of-00002.safetensors' } })),
      ),
  },
  {
    id: 'index-escapes',
    rule: "an index's shard names stay in the folder",
    file: 'model.safetensors.index.json',
    match: /\"\.\.\/secret\.safetensors\"/,
    make: (f) =>
      withFile(
        without(f, 'model.safetensors'),
        'model.safetensors.index.json',
        enc(JSON.stringify({ weight_map: { 'transformer.wte.weight': '../secret.safetensors' } })),
      ),
  },
  {
    id: 'tokenizer-not-json',
    rule: 'tokenizer.json is JSON',
    file: 'tokenizer.json',
    match: /invalid JSON/,
    make: (f) => withFile(f, 'tokenizer.json', enc('{"model": {"type": "BPE"')),
  },
  {
    id: 'tokenizer-unknown-model',
    rule: "the tokenizer's model is one we read (BPE)",
    file: 'tokenizer.json',
    match: /unsupported model type \"WordLevel\"/,
    make: (f) =>
      editJson(f, 'tokenizer.json', (t) => {
        (t.model as { type: string }).type = 'WordLevel';
      }),
  },
  {
    id: 'tokenizer-config-template',
    rule: 'a chat template is text',
    file: 'tokenizer_config.json',
    match: /chat_template must be a string/,
    make: (f) => withFile(f, 'tokenizer_config.json', enc(JSON.stringify({ chat_template: 42 }))),
  },
];

export const DATA_CASES: DataCase[] = (
  [
    [
      'binary',
      'a dataset is text, not binary',
      'weights.jsonl',
      /a binary file, not text \(a NUL byte at line 1, byte offset 1\)/,
      new Uint8Array([0x7b, 0x00, 0x01, 0x02, 0x7d, 0x0a]),
    ],
    [
      'not-utf8',
      'a dataset is UTF-8',
      'latin1.jsonl',
      /UTF-8.*line 1, byte offset 15/,
      new Uint8Array([...enc('{"prompt": "caf'), 0xe9, ...enc('", "completion": "ok"}\n')]),
    ],
    ['empty', 'a dataset is not empty', 'empty.jsonl', /the file is empty/, new Uint8Array(0)],
    ['not-json', 'each line is JSON', 'broken.jsonl', /broken\.jsonl:1: invalid JSON/, enc('{"prompt": "a", "completion": \n')],
    ['array-line', 'each line is an object', 'arrays.jsonl', /arrays\.jsonl:1: each line must be a JSON object, got an array/, enc('["a", "b"]\n')],
    [
      'unknown-key',
      'no keys we would ignore silently',
      'extra.jsonl',
      /extra\.jsonl:1: unknown key \"answer\" in a completion record/,
      enc('{"prompt": "a", "completion": "b", "answer": "c"}\n'),
    ],
    [
      'chosen-not-string',
      'preference texts are strings',
      'prefs.jsonl',
      /prefs\.jsonl:1: \"chosen\" must be a string, got a number/,
      enc('{"prompt": "a", "chosen": 3, "rejected": "b"}\n'),
    ],
    [
      'bad-role',
      'message roles are system, user or assistant',
      'chat.jsonl',
      /chat\.jsonl:1: bad role \"wizard\"/,
      enc('{"messages": [{"role": "wizard", "content": "hi"}]}\n'),
    ],
    [
      'ranks-length',
      'ranks go with completions one to one',
      'ranked.jsonl',
      /ranked\.jsonl:1: \"ranks\" has 2 entries but there are 3 completions/,
      enc('{"prompt": "a", "completions": ["x", "y", "z"], "ranks": [0, 1]}\n'),
    ],
    [
      'ranks-not-integer',
      'ranks are integers',
      'ranked2.jsonl',
      /ranked2\.jsonl:1: ranks\[1\] must be an integer >= 0, got 0\.5/,
      enc('{"prompt": "a", "completions": ["x", "y"], "ranks": [0, 0.5]}\n'),
    ],
    [
      'one-completion',
      'a ranking has 2 to 9 completions',
      'ranked3.jsonl',
      /ranked3\.jsonl:1: a ranking needs 2 to 9 completions, got 1/,
      enc('{"prompt": "a", "completions": ["x"]}\n'),
    ],
    [
      'score-out-of-range',
      'quality scores are 1 to 7',
      'scored.jsonl',
      /scored\.jsonl:1: scores\[0\] must be an integer 1-7 or null, got 9/,
      enc('{"prompt": "a", "completions": ["x", "y"], "scores": [9, null]}\n'),
    ],
    [
      'too-deep',
      'nesting is bounded',
      'deep.jsonl',
      /deep\.jsonl:1: invalid JSON: nesting deeper than 128/,
      enc(`{"prompt": ${'['.repeat(200)}${']'.repeat(200)}}\n`),
    ],
  ] as const
).map(([id, rule, file, match, bytes]) => ({ id, rule, file, match, bytes }));

export const ADAPTER_CASES: FolderCase[] = [
  {
    id: 'adapter-config-not-json',
    rule: 'adapter_config.json is JSON',
    file: 'adapter_config.json',
    match: /invalid JSON/,
    make: (f) => withFile(f, 'adapter_config.json', enc('{"peft_type": "LORA"')),
  },
  {
    id: 'adapter-not-lora',
    rule: 'the adapter is LoRA',
    file: 'adapter_config.json',
    match: /\"peft_type\" is \"IA3\", only \"LORA\"/,
    make: (f) =>
      editJson(f, 'adapter_config.json', (c) => {
        c.peft_type = 'IA3';
      }),
  },
  {
    id: 'adapter-rank-zero',
    rule: 'the rank is a positive integer',
    file: 'adapter_config.json',
    match: /\"r\" must be a positive integer, got 0/,
    make: (f) =>
      editJson(f, 'adapter_config.json', (c) => {
        c.r = 0;
      }),
  },
  {
    id: 'adapter-unknown-module',
    rule: 'target modules are layers of this model',
    file: 'adapter_model.safetensors',
    match: /target_modules \[conv_in\]/,
    make: (f) =>
      editJson(f, 'adapter_config.json', (c) => {
        c.target_modules = ['conv_in'];
      }),
  },
  {
    id: 'adapter-weights-missing',
    rule: 'an adapter has its weights',
    file: 'adapter_model.safetensors',
    match: /no adapter_model\.safetensors/,
    make: (f) => without(f, 'adapter_model.safetensors'),
  },
  {
    id: 'adapter-wrong-shape',
    rule: "lora_A's shape is [r, in]",
    file: 'adapter_model.safetensors',
    match: /lora_A\.weight\": shape \[48,2\]/,
    make: weights('adapter_model.safetensors', (h) => {
      const name = Object.keys(h).find((k) => k.includes('lora_A'))!;
      const t = tensor(h, name);
      t.shape = [t.shape[1]!, t.shape[0]!];
    }),
  },
];

/** Zips of a model folder that a careful unzip refuses. `base` is the folder the zip would hold. */
export const ZIP_CASES: ZipCase[] = [
  { id: 'zip-not-a-zip', rule: 'a .zip is a zip archive', file: 'model.zip', match: /not a zip file/, make: () => enc('this is plain text, not an archive\n') },
  {
    id: 'zip-crc',
    rule: "each entry's CRC-32 matches its bytes",
    file: 'model.zip',
    match: /CRC-32 mismatch/,
    make: (f) => {
      const z = zipFiles(f);
      const at = z.length >> 1; // inside an entry's data
      z[at] ^= 0x55;
      return z;
    },
  },
  {
    id: 'zip-traversal',
    rule: 'no entry names a path outside the folder',
    file: 'model.zip',
    match: /entry \"\.\.\/outside\.txt\": unsafe name: path traversal/,
    make: (f) => {
      // our zip writer refuses such a name, so the entry is written under a name of the same length and renamed in place
      const z = zipFiles(new Map([...f, ['ab/outside.txt', enc('x')]]));
      const from = enc('ab/outside.txt'),
        to = enc('../outside.txt');
      for (let i = 0; i + from.length <= z.length; i++) if (from.every((b, k) => z[i + k] === b)) z.set(to, i);
      return z;
    },
  },
  {
    id: 'zip-size-lie',
    rule: "an entry's stated size is its real size",
    file: 'model.zip',
    match: /inflates to 342 bytes but declares 1073741824/,
    make: (f) => {
      const z = zipFiles(f);
      // the first central directory entry (PK 1 2) says its file unpacks to 1 GiB (uncompressed size, offset 24)
      const at = z.findIndex((b, i) => b === 0x50 && z[i + 1] === 0x4b && z[i + 2] === 1 && z[i + 3] === 2);
      new DataView(z.buffer, z.byteOffset).setUint32(at + 24, 1 << 30, true);
      return z;
    },
  },
];

/** All cases, for counting: at least 40 distinct rules. */
export const ALL_CASES: Case[] = [...MODEL_CASES, ...DATA_CASES, ...ADAPTER_CASES, ...ZIP_CASES];

/**
 * The valid reward adapter every adapter case starts from: `rlhf-playground rm` with LoRA on the base model
 * folder, one step (a PEFT adapter with a score head). Written under `dir`; `prompts` for ppo beside it.
 */
export async function rewardAdapterBase(dir: string): Promise<{ files: Files; prompts: string }> {
  const data = join(dir, 'rankings.jsonl'),
    prompts = join(dir, 'prompts.jsonl'),
    out = join(dir, 'rm-base');
  writeFileSync(data, ['a', 'b', 'c', 'd'].map((p) => JSON.stringify({ prompt: `Say ${p}.`, completions: [p, `${p}${p} ${p}`] })).join('\n') + '\n');
  writeFileSync(prompts, '{"prompt": "Say a."}\n{"prompt": "Say b."}\n');
  const r = await cli(['rm', '--model', MODEL_DIR, '--data', data, '--out', out, '--lora-rank', '2', '--max-steps', '1']);
  expect(r.code, r.stderr).toBe(0);
  const files: Files = new Map(['adapter_config.json', 'adapter_model.safetensors'].map((f) => [f, new Uint8Array(readFileSync(join(out, f)))]));
  expect(readdirSync(out)).toContain('adapter_config.json');
  return { files, prompts };
}
