import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { zipSync } from 'fflate';
import { ExportError, ImportError, type ExportTensor, type ProvenanceMeta } from '../src/io/export.ts';
import { hfModelFiles } from '../src/io/hf-folder.ts';
import { peftAdapterFiles, readPeftAdapter, type LoraTensors } from '../src/io/peft.ts';
import { unzipFiles, zipFiles } from '../src/io/zip.ts';
import { parseSafetensors, readTensorF32, writeSafetensors } from '../src/io/safetensors.ts';
import { parseJsonStrict } from '../src/io/json-strict.ts';

const DIR = 'tests/fixtures/gpt2-tiny';
const ZIP = 'my-export.zip';
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const json = (b: Uint8Array) => JSON.parse(dec(b)) as Record<string, unknown>;
/** Byte equality without vitest's element-by-element deep equality (slow on megabytes). */
const bytesOf = (v: Uint8Array | Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
function expectSameBytes(actual: Uint8Array | Float32Array | undefined, expected: Uint8Array | Float32Array, what = '') {
  expect(actual, what).toBeDefined();
  expect(actual!.constructor, what).toBe(expected.constructor);
  expect(bytesOf(actual!).equals(bytesOf(expected)), what).toBe(true);
}

const meta: ProvenanceMeta = {
  producer: 'rlhf-playground',
  stage: 'sft',
  steps: 120,
  baseModel: 'openai-community/gpt2',
  date: '2025-01-02T03:04:05.000Z',
  lr: 0.0003,
};

function fixture(dir = DIR) {
  const config = JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')) as Record<string, unknown>;
  const st = parseSafetensors(readFileSync(`${dir}/model.safetensors`), `${dir}/model.safetensors`);
  const tensors: ExportTensor[] = [...st.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, data: readTensorF32(st, t.name) }));
  const tokenizer = new Uint8Array(readFileSync(`${dir}/tokenizer.json`));
  return { config, tensors, tokenizer };
}

/** Deterministic pseudo-random floats. */
function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

function expectThrows(f: () => unknown, cls: new (...a: never[]) => Error, ...fragments: string[]): Error {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(cls);
  const e = caught as Error;
  for (const frag of fragments) expect(e.message).toContain(frag);
  return e;
}
const expectImportError = (f: () => unknown, ...fragments: string[]) => {
  const e = expectThrows(f, ImportError, ...fragments);
  return e;
};

/** Replaces every occurrence of `from` by `to` (same length) in a copy of `bytes`. */
function patch(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const a = enc(from),
    b = enc(to);
  expect(a.length).toBe(b.length);
  const out = bytes.slice();
  let hits = 0;
  for (let i = 0; i + a.length <= out.length; i++) {
    if (a.every((x, j) => out[i + j] === x)) {
      out.set(b, i);
      hits++;
    }
  }
  expect(hits).toBeGreaterThan(0);
  return out;
}

/** Offsets of the central directory entries of a zip (signature scan; fine for the small zips here). */
function centralEntries(zip: Uint8Array): number[] {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const out: number[] = [];
  for (let i = 0; i + 4 <= zip.length; i++) if (dv.getUint32(i, true) === 0x02014b50) out.push(i);
  return out;
}
function setDeclaredSize(zip: Uint8Array, size: number): Uint8Array {
  const out = zip.slice();
  const dv = new DataView(out.buffer);
  for (const p of centralEntries(out)) dv.setUint32(p + 24, size, true);
  return out;
}

describe('hfModelFiles', () => {
  const { config, tensors, tokenizer } = fixture();
  const tokConfig = enc('{"model_max_length": 64, "tokenizer_class": "GPT2Tokenizer"}\n');
  const files = hfModelFiles({
    config,
    tensors,
    meta,
    tokenizerFiles: new Map([
      ['tokenizer.json', tokenizer],
      ['tokenizer_config.json', tokConfig],
    ]),
  });

  it('writes the folder files', () => {
    expect([...files.keys()]).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  });

  it('config.json: the given config with architectures and torch_dtype, sorted keys, 2-space indent', () => {
    const text = dec(files.get('config.json')!);
    const c = json(files.get('config.json')!);
    expect(c.architectures).toEqual(['GPT2LMHeadModel']);
    expect(c.torch_dtype).toBe('float32');
    for (const [k, v] of Object.entries(config)) if (k !== 'architectures') expect(c[k]).toEqual(v);
    expect(Object.keys(c)).toEqual(Object.keys(c).sort());
    expect(text).toContain('\n  "architectures": [\n    "GPT2LMHeadModel"\n  ],\n');
    expect(text.endsWith('}\n')).toBe(true);
    expect(() => parseJsonStrict(text)).not.toThrow();

    const llama = fixture('tests/fixtures/llama-tiny');
    const lf = hfModelFiles({ config: { ...llama.config, architectures: ['Something'] }, tensors: llama.tensors, meta });
    expect(json(lf.get('config.json')!).architectures).toEqual(['LlamaForCausalLM']);
    // Qwen: transformers' own class, and the fields its config class reads (head_dim, attention_bias, the sliding-window switch) as given
    for (const [name, cls] of [
      ['qwen2-tiny', 'Qwen2ForCausalLM'],
      ['qwen3-tiny', 'Qwen3ForCausalLM'],
    ]) {
      const q = fixture(`tests/fixtures/${name}`);
      const qc = json(hfModelFiles({ config: q.config, tensors: q.tensors, meta }).get('config.json')!);
      expect(qc).toEqual({ ...q.config, architectures: [cls], torch_dtype: 'float32' });
    }
    expectThrows(() => hfModelFiles({ config: { ...config, model_type: 'bert' }, tensors, meta }), ExportError, 'model_type', 'bert');
  });

  it('model.safetensors: F32 tensors in the given order, provenance in __metadata__', () => {
    const st = parseSafetensors(files.get('model.safetensors')!, 'model.safetensors');
    expect(st.metadata).toEqual({
      format: 'pt',
      producer: 'rlhf-playground',
      stage: 'sft',
      steps: '120',
      baseModel: 'openai-community/gpt2',
      date: '2025-01-02T03:04:05.000Z',
      lr: '0.0003',
    });
    expect([...st.tensors.keys()]).toEqual(tensors.map((t) => t.name));
    for (const t of tensors) {
      expect(st.tensors.get(t.name)!.dtype).toBe('F32');
      expect(st.tensors.get(t.name)!.shape).toEqual(t.shape);
      expectSameBytes(readTensorF32(st, t.name), t.data, t.name);
    }
    expectThrows(() => hfModelFiles({ config, tensors, meta: { ...meta, format: 'x' } }), ExportError, 'format');
  });

  it('a reward model: *ForSequenceClassification with one label and a pad token, no generation_config.json', () => {
    const C = 48;
    const rm = hfModelFiles({
      config,
      tensors: [...tensors, { name: 'score.weight', shape: [1, C], data: rand(C, 9) }],
      meta: { ...meta, stage: 'rm', reward_bias: -0.25 },
      sequenceClassification: { padTokenId: 376 },
    });
    expect([...rm.keys()]).toEqual(['config.json', 'model.safetensors']);
    const c = json(rm.get('config.json')!);
    expect(c).toMatchObject({
      architectures: ['GPT2ForSequenceClassification'],
      num_labels: 1,
      id2label: { 0: 'LABEL_0' },
      label2id: { LABEL_0: 0 },
      pad_token_id: 376,
    });
    expect(dec(rm.get('config.json')!)).toContain('\n  "id2label": {\n    "0": "LABEL_0"\n  },\n');
    expect(parseSafetensors(rm.get('model.safetensors')!, 'm').metadata.reward_bias).toBe('-0.25');
    // a pad_token_id the config has is kept; Llama's class
    const llama = fixture('tests/fixtures/llama-tiny');
    const lc = json(
      hfModelFiles({ config: { ...llama.config, pad_token_id: 3 }, tensors: llama.tensors, meta, sequenceClassification: { padTokenId: 376 } }).get(
        'config.json',
      )!,
    );
    expect(lc).toMatchObject({ architectures: ['LlamaForSequenceClassification'], pad_token_id: 3 });
    for (const [name, cls] of [
      ['qwen2-tiny', 'Qwen2ForSequenceClassification'],
      ['qwen3-tiny', 'Qwen3ForSequenceClassification'],
    ]) {
      const q = fixture(`tests/fixtures/${name}`);
      expect(json(hfModelFiles({ config: q.config, tensors: q.tensors, meta, sequenceClassification: { padTokenId: 376 } }).get('config.json')!)).toMatchObject(
        { architectures: [cls], pad_token_id: 376 },
      );
    }
  });

  it('generation_config.json: given, or minimal with bos/eos from the config', () => {
    expect(json(files.get('generation_config.json')!)).toEqual({ _from_model_config: true, bos_token_id: 376, eos_token_id: 376 });
    const given = hfModelFiles({ config, tensors, meta, generationConfig: { max_new_tokens: 32, eos_token_id: 376, do_sample: true } });
    expect(json(given.get('generation_config.json')!)).toEqual({ do_sample: true, eos_token_id: 376, max_new_tokens: 32 });
  });

  it('passes tokenizer files through byte-for-byte and refuses reserved or unsafe names', () => {
    expectSameBytes(files.get('tokenizer.json'), tokenizer);
    expectSameBytes(files.get('tokenizer_config.json'), tokConfig);
    expectThrows(() => hfModelFiles({ config, tensors, meta, tokenizerFiles: new Map([['config.json', tokConfig]]) }), ExportError, 'config.json', 'reserved');
    expectThrows(() => hfModelFiles({ config, tensors, meta, tokenizerFiles: new Map([['../tokenizer.json', tokConfig]]) }), ExportError, '../tokenizer.json');
  });

  it('zipFiles -> unzipFiles gives back every file byte-for-byte, with and without a top-level folder', () => {
    const mtime = new Date(2025, 0, 2, 3, 4, 6);
    for (const folder of [undefined, 'gpt2-tiny-sft']) {
      const zip = zipFiles(files, folder, { mtime });
      expectSameBytes(zipFiles(files, folder, { mtime }), zip); // deterministic for a fixed mtime
      const back = unzipFiles(zip, ZIP);
      expect([...back.keys()]).toEqual([...files.keys()]);
      for (const [name, bytes] of files) expectSameBytes(back.get(name), bytes, name);
    }
  });

  it('stores .safetensors (method 0) and deflates JSON (method 8)', () => {
    const zip = zipFiles(files);
    const dv = new DataView(zip.buffer, zip.byteOffset);
    const methods = new Map<string, number>();
    for (const p of centralEntries(zip)) methods.set(dec(zip.subarray(p + 46, p + 46 + dv.getUint16(p + 28, true))), dv.getUint16(p + 10, true));
    expect(methods.get('model.safetensors')).toBe(0);
    expect(methods.get('config.json')).toBe(8);
    expect(methods.get('tokenizer.json')).toBe(8);
    expect(zip.length).toBeLessThan(files.get('model.safetensors')!.length + files.get('tokenizer.json')!.length);
  });
});

describe('unzipFiles on untrusted zips', () => {
  const a = enc('{"a": 1}'),
    b = enc('{"b": 2}');

  it('reads a zip of a folder made elsewhere (folder entries, __MACOSX junk)', () => {
    const zip = zipSync({ 'model/': new Uint8Array(0), 'model/config.json': a, 'model/sub/x.txt': b, '__MACOSX/model/._config.json': b });
    const files = unzipFiles(zip, ZIP);
    expect([...files.keys()]).toEqual(['config.json', 'sub/x.txt']);
    expect(files.get('config.json')).toEqual(a);
    // no common folder: names kept
    expect([...unzipFiles(zipSync({ 'config.json': a, 'sub/x.txt': b }), ZIP).keys()]).toEqual(['config.json', 'sub/x.txt']);
  });

  it('rejects path traversal and absolute names, naming the zip', () => {
    for (const name of ['../evil.json', 'model/../../evil.json', '/etc/passwd', 'C:/x.json', 'a\\..\\b.json', 'a//b.json']) {
      const e = expectImportError(() => unzipFiles(zipSync({ [name]: a }), ZIP), `${ZIP}: `, 'unsafe name');
      expect(e.message).toContain(JSON.stringify(name));
    }
  });

  it('rejects duplicate names and a name that is both file and folder', () => {
    const zip = patch(zipSync({ 'a.json': a, 'b.json': b }), 'b.json', 'a.json');
    expectImportError(() => unzipFiles(zip, ZIP), `${ZIP}: `, 'a.json', 'duplicate');
    expectImportError(() => unzipFiles(zipSync({ x: a, 'x/y.json': b }), ZIP), `${ZIP}: `, 'both a file and a folder');
  });

  it('rejects contents past the size bound before inflating, and too many entries', () => {
    const zeros = new Uint8Array(4 << 20);
    const zip = zipSync({ 'big.bin': zeros, 'a.json': a });
    expect(zip.length).toBeLessThan(64 << 10);
    expectImportError(() => unzipFiles(zip, ZIP, { maxTotalBytes: 1 << 20 }), `${ZIP}: `, 'exceed the limit', 'big.bin');
    expectSameBytes(unzipFiles(zip, ZIP, { maxTotalBytes: 8 << 20 }).get('big.bin'), zeros);
    // Declared sizes of ~4 GiB each: over the default 8 GiB bound on the third entry, nothing allocated.
    const huge = setDeclaredSize(zipSync({ 'a.json': a, 'b.json': b, 'c.json': a }), 0xfffffff0);
    expectImportError(() => unzipFiles(huge, ZIP), `${ZIP}: `, 'exceed the limit of 8589934592 bytes');
    expectImportError(() => unzipFiles(zipSync({ '1': a, '2': a, '3': a }), ZIP, { maxEntries: 2 }), `${ZIP}: `, '3 entries');
  });

  it('rejects an entry that inflates past its declared size, and corrupt data', () => {
    const lying = setDeclaredSize(zipSync({ 'big.bin': new Uint8Array(1 << 20) }), 1000);
    expectImportError(() => unzipFiles(lying, ZIP), `${ZIP}: entry "big.bin": `, 'more than its declared 1000 bytes');
    const stored = zipSync({ 'x.safetensors': [enc('hello world'), { level: 0 }] });
    expectImportError(() => unzipFiles(patch(stored, 'hello world', 'hello_world'), ZIP), `${ZIP}: entry "x.safetensors": `, 'CRC');
    expectImportError(() => unzipFiles(enc('not a zip at all, just some text'), ZIP), `${ZIP}: `, 'not a zip');
  });
});

describe('PEFT LoRA adapter', () => {
  const r = 4,
    C = 48;
  const loras: LoraTensors[] = [];
  for (let l = 0; l < 2; l++) {
    for (const [mod, out] of [
      ['c_attn', 3 * C],
      ['c_proj', C],
    ] as const) {
      const seed = l * 10 + out;
      loras.push({ module: `transformer.h.${l}.attn.${mod}`, A: rand(r * C, seed), B: rand(out * r, seed + 1), inFeatures: C, outFeatures: out });
    }
  }
  const args = {
    baseModel: 'openai-community/gpt2',
    r,
    alpha: 8,
    dropout: 0.05,
    targetModules: ['c_attn', 'c_proj'],
    fanInFanOut: true,
    loras,
    meta: { ...meta, stage: 'ppo' },
  };
  const files = peftAdapterFiles(args);

  it('adapter_config.json as PEFT writes it', () => {
    const text = dec(files.get('adapter_config.json')!);
    const c = json(files.get('adapter_config.json')!);
    expect(c).toEqual({
      alpha_pattern: {},
      auto_mapping: null,
      base_model_name_or_path: 'openai-community/gpt2',
      bias: 'none',
      fan_in_fan_out: true,
      inference_mode: true,
      init_lora_weights: true,
      layers_pattern: null,
      layers_to_transform: null,
      loftq_config: {},
      lora_alpha: 8,
      lora_dropout: 0.05,
      megatron_config: null,
      megatron_core: 'megatron.core',
      modules_to_save: null,
      peft_type: 'LORA',
      r: 4,
      rank_pattern: {},
      revision: null,
      target_modules: ['c_attn', 'c_proj'],
      task_type: 'CAUSAL_LM',
      use_dora: false,
      use_rslora: false,
    });
    expect(Object.keys(c)).toEqual(Object.keys(c).sort());
    expect(text).toContain('\n  "target_modules": [\n    "c_attn",\n    "c_proj"\n  ],\n');
  });

  it("a pinned base: PEFT's revision beside the bare id, read back; a revision that is not a string refused", () => {
    const pinned = peftAdapterFiles({ ...args, baseRevision: 'v1.0' });
    expect(json(pinned.get('adapter_config.json')!)).toMatchObject({ base_model_name_or_path: 'openai-community/gpt2', revision: 'v1.0' });
    expect(readPeftAdapter(pinned, 'pinned').config).toMatchObject({ baseModel: 'openai-community/gpt2', baseRevision: 'v1.0' });
    expectThrows(() => peftAdapterFiles({ ...args, baseRevision: '' }), ExportError, 'revision must be');
    const bad = new Map(pinned).set(
      'adapter_config.json',
      new TextEncoder().encode(JSON.stringify({ ...json(pinned.get('adapter_config.json')!), revision: 3 })),
    );
    expect(() => readPeftAdapter(bad, 'bad')).toThrow(/revision/);
  });

  it('adapter_model.safetensors uses PEFT key names and shapes', () => {
    const st = parseSafetensors(files.get('adapter_model.safetensors')!, 'adapter_model.safetensors');
    expect([...st.tensors.keys()].slice(0, 2)).toEqual([
      'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight',
      'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight',
    ]);
    expect(st.tensors.size).toBe(8);
    expect(st.tensors.get('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight')!.shape).toEqual([r, C]);
    expect(st.tensors.get('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight')!.shape).toEqual([3 * C, r]);
    expect(st.tensors.get('base_model.model.transformer.h.1.attn.c_proj.lora_B.weight')!.shape).toEqual([C, r]);
    expect(st.metadata.format).toBe('pt');
    expect(st.metadata.stage).toBe('ppo');
  });

  it('peftAdapterFiles -> zip -> readPeftAdapter round trip', () => {
    const back = readPeftAdapter(unzipFiles(zipFiles(files, 'gpt2-lora'), ZIP), ZIP);
    expect(back.config).toEqual({
      r,
      alpha: 8,
      dropout: 0.05,
      targetModules: ['c_attn', 'c_proj'],
      fanInFanOut: true,
      baseModel: 'openai-community/gpt2',
      baseRevision: null,
      modulesToSave: null,
      taskType: 'CAUSAL_LM',
    });
    expect(back.loras).toEqual(loras);
    expect(back.extraTensors).toEqual([]);
    expect(back.metadata).toEqual({
      format: 'pt',
      producer: 'rlhf-playground',
      stage: 'ppo',
      steps: '120',
      baseModel: 'openai-community/gpt2',
      date: meta.date,
      lr: '0.0003',
    });
  });

  it('llama targets with a reward head in modules_to_save', () => {
    const H = 64;
    const ll: LoraTensors[] = [
      { module: 'model.layers.0.self_attn.q_proj', A: rand(2 * H, 1), B: rand(H * 2, 2), inFeatures: H, outFeatures: H },
      { module: 'model.layers.0.self_attn.v_proj', A: rand(2 * H, 3), B: rand(32 * 2, 4), inFeatures: H, outFeatures: 32 },
    ];
    const score: ExportTensor = { name: 'score.weight', shape: [1, H], data: rand(H, 5) };
    const f = peftAdapterFiles({
      baseModel: 'tiny-llama',
      r: 2,
      alpha: 16,
      dropout: 0,
      targetModules: ['q_proj', 'v_proj'],
      fanInFanOut: false,
      loras: ll,
      modulesToSave: ['score'],
      extraTensors: [score],
      meta,
    });
    const c = json(f.get('adapter_config.json')!);
    expect(c.fan_in_fan_out).toBe(false);
    expect(c.modules_to_save).toEqual(['score']);
    const st = parseSafetensors(f.get('adapter_model.safetensors')!, 'x');
    expect(st.tensors.has('base_model.model.score.weight')).toBe(true);
    expect(st.tensors.has('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')).toBe(true);
    const back = readPeftAdapter(f, 'llama-adapter');
    expect(back.loras).toEqual(ll);
    expect(back.extraTensors).toEqual([score]);
    expect(back.config.modulesToSave).toEqual(['score']);
    // a reward model's adapter: PEFT's SEQ_CLS task, the head under the key PEFT saves (adapter name stripped)
    const seq = peftAdapterFiles({
      baseModel: 'tiny-llama',
      r: 2,
      alpha: 16,
      dropout: 0,
      targetModules: ['q_proj', 'v_proj'],
      fanInFanOut: false,
      loras: ll,
      modulesToSave: ['score'],
      extraTensors: [score],
      taskType: 'SEQ_CLS',
      meta,
    });
    expect(json(seq.get('adapter_config.json')!)).toMatchObject({ task_type: 'SEQ_CLS', modules_to_save: ['score'] });
    expect([...parseSafetensors(seq.get('adapter_model.safetensors')!, 'x').tensors.keys()]).toContain('base_model.model.score.weight');
    expect(readPeftAdapter(seq, 'seq').config).toMatchObject({ taskType: 'SEQ_CLS', modulesToSave: ['score'] });
    // PEFT saves a SEQ_CLS model's score head even when modules_to_save is null
    const implicit = new Map(seq);
    implicit.set('adapter_config.json', enc(JSON.stringify({ ...json(seq.get('adapter_config.json')!), modules_to_save: null })));
    expect(readPeftAdapter(implicit, 'implicit').extraTensors).toEqual([score]);
    expectThrows(
      () =>
        peftAdapterFiles({
          baseModel: 'x',
          r: 2,
          alpha: 16,
          dropout: 0,
          targetModules: ['q_proj', 'v_proj'],
          fanInFanOut: false,
          loras: ll,
          extraTensors: [score],
          meta,
        }),
      ExportError,
      'base_model.model.score.weight',
      'modules_to_save',
    );
  });

  it('a lora_A with rows != r is an error naming the tensor', () => {
    const key = 'base_model.model.transformer.h.0.attn.c_attn';
    const bad = writeSafetensors(
      [
        { name: `${key}.lora_A.weight`, shape: [3, C], data: rand(3 * C, 1) },
        { name: `${key}.lora_B.weight`, shape: [3 * C, 3], data: rand(9 * C, 2) },
      ],
      { format: 'pt' },
    );
    const f = new Map(files);
    f.set('adapter_model.safetensors', bad);
    expectImportError(() => readPeftAdapter(f, ZIP), `${ZIP}/adapter_model.safetensors: tensor "${key}.lora_A.weight"`, 'r is 4');
    // and on the writing side
    expectThrows(() => peftAdapterFiles({ ...args, loras: [{ ...loras[0]!, A: rand(3 * C, 1) }] }), ExportError, `"${key}.lora_A.weight"`);
  });

  it('rejects adapters it cannot apply exactly', () => {
    const withConfig = (patchCfg: Record<string, unknown>) => {
      const f = new Map(files);
      f.set('adapter_config.json', enc(JSON.stringify({ ...json(files.get('adapter_config.json')!), ...patchCfg })));
      return f;
    };
    expectImportError(() => readPeftAdapter(withConfig({ use_dora: true }), ZIP), `${ZIP}/adapter_config.json`, 'use_dora');
    expectImportError(() => readPeftAdapter(withConfig({ peft_type: 'IA3' }), ZIP), 'peft_type');
    expectImportError(() => readPeftAdapter(withConfig({ target_modules: ['q_proj'] }), ZIP), 'transformer.h.0.attn.c_attn', 'target_modules');
    const missingB = new Map(files);
    missingB.set(
      'adapter_model.safetensors',
      writeSafetensors([{ name: 'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', shape: [r, C], data: rand(r * C, 1) }]),
    );
    expectImportError(() => readPeftAdapter(missingB, ZIP), 'lora_B.weight', 'missing');
    expectImportError(
      () => readPeftAdapter(new Map([['adapter_config.json', files.get('adapter_config.json')!]]), ZIP),
      `${ZIP}: no adapter_model.safetensors`,
    );
  });
});
