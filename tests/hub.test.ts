// Model sources against a local server laid out like the Hub (/<owner>/<name>/resolve/<rev>/<path>),
// serving the fixtures: single files, a sharded checkpoint (one shard BF16), broken repos; caching,
// progress, revisions and the errors a user sees. No GPU, no real Hub.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { browserCache, folderCache, memoryCache } from '../src/io/cache.ts';
import { readModelFolder } from '../src/io/folder.ts';
import { baseRefOf, checkModelId, hubFileUrl, loadFromHub, loadFromUrl, parseModelRef } from '../src/io/hub.ts';
import { parseSafetensors, readTensorF32, writeSafetensors, type SafetensorsFile } from '../src/io/safetensors.ts';
import { loadFromFileList, loadModelFiles, ModelSourceError, totalWeightBytes, type ModelFiles } from '../src/io/sources.ts';

const fixture = (model: string, file: string) => new Uint8Array(readFileSync(`tests/fixtures/${model}/${file}`));
const utf8 = (s: string) => new TextEncoder().encode(s);
const GPT2 = parseSafetensors(fixture('gpt2-tiny', 'model.safetensors'), 'model.safetensors');
const LLAMA = parseSafetensors(fixture('llama-tiny', 'model.safetensors'), 'model.safetensors');
const SHARD1 = 'model-00001-of-00002.safetensors',
  SHARD2 = 'model-00002-of-00002.safetensors';

/** A safetensors file of BF16 tensors (the top 16 bits of each f32: truncation), written by hand. */
function writeBf16(tensors: { name: string; shape: number[]; data: Float32Array }[]): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [offset, offset + 2 * t.data.length] };
    offset += 2 * t.data.length;
  }
  const json = utf8(JSON.stringify(header));
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + offset).fill(0x20, 8, 8 + n);
  const view = new DataView(out.buffer);
  view.setUint32(0, n, true);
  out.set(json, 8);
  let pos = 8 + n;
  for (const t of tensors) {
    const bits = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
    for (let i = 0; i < bits.length; i++, pos += 2) view.setUint16(pos, bits[i]! >>> 16, true);
  }
  return out;
}
const truncBf16 = (x: Float32Array) => {
  const y = x.slice();
  const bits = new Uint32Array(y.buffer);
  for (let i = 0; i < bits.length; i++) bits[i] = bits[i]! & 0xffff0000;
  return y;
};

/** gpt2-tiny split in two shards: the first half of the tensors F32, the rest BF16. */
function sharded(): { files: Record<string, Uint8Array>; weightMap: Record<string, string> } {
  const names = [...GPT2.tensors.values()].sort((a, b) => a.begin - b.begin).map((t) => t.name);
  const half = Math.ceil(names.length / 2);
  const take = (ns: string[]) => ns.map((name) => ({ name, shape: GPT2.tensors.get(name)!.shape, data: readTensorF32(GPT2, name) }));
  const weightMap: Record<string, string> = {};
  names.forEach((n, i) => (weightMap[n] = i < half ? SHARD1 : SHARD2));
  const index = (wm: Record<string, string>) => utf8(JSON.stringify({ metadata: { total_size: 0 }, weight_map: wm }));
  return {
    weightMap,
    files: {
      'config.json': fixture('gpt2-tiny', 'config.json'),
      'tokenizer.json': fixture('gpt2-tiny', 'tokenizer.json'),
      'model.safetensors.index.json': index(weightMap),
      [SHARD1]: writeSafetensors(take(names.slice(0, half)), { format: 'pt' }),
      [SHARD2]: writeBf16(take(names.slice(half))),
    },
  };
}

// ---- the server -------------------------------------------------------------------------------------

type Repo = Record<string /* revision */, Record<string /* path */, Uint8Array>>;
const repos = new Map<string, Repo>();
const plain = new Map<string, Record<string, Uint8Array>>(); // /plain/<name>/<path>, no Hub headers, no Content-Length
const gated = new Set<string>();
let log: { method: string; url: string; auth?: string }[] = [];
let server: Server;
let endpoint = '';

async function send(res: ServerResponse, method: string, bytes: Uint8Array, withLength: boolean) {
  res.writeHead(200, { 'content-type': 'application/octet-stream', ...(withLength ? { 'content-length': String(bytes.length) } : {}) });
  if (method === 'HEAD') return res.end();
  for (let at = 0; at < bytes.length && !res.destroyed; at += 16384) {
    // several chunks per file, each flushed
    await new Promise((resolve) => res.write(bytes.subarray(at, at + 16384), resolve));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  res.end();
}

function handle(req: IncomingMessage, res: ServerResponse) {
  const method = req.method ?? 'GET';
  const url = req.url ?? '/';
  log.push({ method, url, auth: req.headers.authorization });
  const notFound = (code?: string, status = 404) => res.writeHead(status, code ? { 'x-error-code': code } : {}).end('not found');
  const p = /^\/plain\/([^/]+)\/(.+)$/.exec(url);
  if (p) {
    const f = plain.get(p[1]!)?.[decodeURIComponent(p[2]!)];
    return f ? send(res, method, f, false) : notFound();
  }
  const m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url);
  if (!m) return notFound();
  const id = m[1]!,
    rev = decodeURIComponent(m[2]!),
    path = m[3]!.split('/').map(decodeURIComponent).join('/');
  if (gated.has(id)) return notFound('GatedRepo', 403);
  const repo = repos.get(id);
  if (!repo) return notFound('RepoNotFound', 401); // what the Hub answers an anonymous client
  const files = repo[rev];
  if (!files) return notFound('RevisionNotFound');
  const f = files[path];
  return f ? send(res, method, f, true) : notFound('EntryNotFound');
}

const requested = () => log.filter((r) => r.method === 'GET').map((r) => r.url);

beforeAll(async () => {
  const gpt2 = {
    'config.json': fixture('gpt2-tiny', 'config.json'),
    'model.safetensors': fixture('gpt2-tiny', 'model.safetensors'),
    'tokenizer.json': fixture('gpt2-tiny', 'tokenizer.json'),
  };
  const llama = {
    'config.json': fixture('llama-tiny', 'config.json'),
    'model.safetensors': fixture('llama-tiny', 'model.safetensors'),
    'tokenizer.json': fixture('llama-tiny', 'tokenizer.json'),
    'generation_config.json': utf8('{"bos_token_id": 1, "eos_token_id": 2}'),
  };
  repos.set('test/gpt2-tiny', { main: gpt2 });
  repos.set('gpt2-tiny', { main: gpt2 }); // a canonical id without an owner
  repos.set('test/llama-tiny', { 'v1.0': llama, 'refs/pr/1': llama });
  const sh = sharded();
  repos.set('test/gpt2-sharded', { main: sh.files });
  const { [SHARD2]: _, ...missingShard } = sh.files;
  repos.set('test/missing-shard', { main: missingShard });
  const wrong = { ...sh.weightMap, 'transformer.wte.weight': sh.weightMap['transformer.wte.weight'] === SHARD1 ? SHARD2 : SHARD1 };
  repos.set('test/bad-index', { main: { ...sh.files, 'model.safetensors.index.json': utf8(JSON.stringify({ weight_map: wrong })) } });
  const { ['transformer.ln_f.bias']: __, ...unlisted } = sh.weightMap;
  repos.set('test/unlisted', { main: { ...sh.files, 'model.safetensors.index.json': utf8(JSON.stringify({ weight_map: unlisted })) } });
  repos.set('test/evil-index', {
    main: { ...sh.files, 'model.safetensors.index.json': utf8(JSON.stringify({ weight_map: { 'transformer.wte.weight': '../../secret.safetensors' } })) },
  });
  const bert = utf8(JSON.stringify({ model_type: 'bert', hidden_size: 48 }));
  repos.set('test/bert', { main: { 'config.json': bert, 'model.safetensors': gpt2['model.safetensors'], 'tokenizer.json': gpt2['tokenizer.json'] } });
  repos.set('test/bin-only', { main: { 'config.json': gpt2['config.json'], 'pytorch_model.bin': new Uint8Array(100_000) } });
  repos.set('test/no-weights', { main: { 'config.json': gpt2['config.json'] } });
  repos.set('test/no-config', { main: { 'model.safetensors': gpt2['model.safetensors'] } });
  repos.set('test/dup-json', { main: { ...gpt2, 'tokenizer_config.json': utf8('{"a": 1, "a": 2}') } });
  gated.add('test/gated');
  plain.set('gpt2-tiny', gpt2);
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  log = [];
});

/** Exact equality of two arrays' bytes (fast; the element diff only when they differ). */
function expectBytes(got: ArrayBufferView | undefined, want: ArrayBufferView, label: string) {
  const bytes = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (got === undefined || got.constructor !== want.constructor || !bytes(got).equals(bytes(want))) expect(got, label).toEqual(want);
}

function expectSameTensors(got: SafetensorsFile[], want: SafetensorsFile, bf16: Set<string> = new Set()) {
  const all = new Map<string, SafetensorsFile>();
  for (const st of got) for (const name of st.tensors.keys()) all.set(name, st);
  expect([...all.keys()].sort()).toEqual([...want.tensors.keys()].sort());
  for (const name of want.tensors.keys()) {
    const ref = readTensorF32(want, name);
    expectBytes(readTensorF32(all.get(name)!, name), bf16.has(name) ? truncBf16(ref) : ref, name);
  }
}

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

// ---- tests ------------------------------------------------------------------------------------------

describe('loadFromHub', () => {
  it('loads a single-file model: config, tokenizer, weights, raw bytes', async () => {
    const m = await loadFromHub('test/gpt2-tiny', { endpoint });
    expect(m.source).toBe('test/gpt2-tiny@main');
    expect((m.config as { model_type: string }).model_type).toBe('gpt2');
    expect(m.tokenizer).toBeTypeOf('object');
    expect(m.tokenizerConfig).toBeUndefined();
    expect(m.weights.map((w) => w.file)).toEqual(['model.safetensors']);
    expectSameTensors(m.weights, GPT2);
    expectBytes(m.raw.get('tokenizer.json'), fixture('gpt2-tiny', 'tokenizer.json'), 'tokenizer.json');
    expect([...m.raw.keys()].sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    expect(totalWeightBytes(m)).toBe(GPT2.bytes.length - GPT2.dataOffset);
    // config.json first, weights last; every file requested once
    const urls = requested();
    expect(urls[0]).toBe('/test/gpt2-tiny/resolve/main/config.json');
    expect(urls.at(-1)).toBe('/test/gpt2-tiny/resolve/main/model.safetensors');
    expect(new Set(urls).size).toBe(urls.length);
    // an id without an owner
    expectSameTensors((await loadFromHub('gpt2-tiny', { endpoint })).weights, GPT2);
  });

  it('loads a sharded checkpoint (one shard BF16) into the same tensors, each shard fetched once', async () => {
    const m = await loadFromHub('test/gpt2-sharded', { endpoint });
    expect(m.weights.map((w) => w.file)).toEqual([SHARD1, SHARD2]);
    expect(m.weights[1]!.tensors.values().next().value!.dtype).toBe('BF16');
    const bf16 = new Set(m.weights[1]!.tensors.keys());
    expectSameTensors(m.weights, GPT2, bf16);
    const urls = requested();
    expect(urls.filter((u) => u.endsWith(SHARD1)).length).toBe(1);
    expect(urls.filter((u) => u.endsWith(SHARD2)).length).toBe(1);
    expect(urls).not.toContain('/test/gpt2-sharded/resolve/main/model.safetensors');
  });

  it('reports monotonic progress that ends at the total', async () => {
    const events: Parameters<NonNullable<Parameters<typeof loadFromHub>[1]>['onProgress'] & {}>[0][] = [];
    const m = await loadFromHub('test/gpt2-sharded', { endpoint, onProgress: (p) => events.push(p) });
    const total = [...m.raw.values()].reduce((n, b) => n + b.length, 0);
    for (const f of [SHARD1, SHARD2]) {
      // chunks, not one event per file
      expect(events.filter((e) => e.file === f && e.loaded > 0 && e.loaded < m.raw.get(f)!.length).length, f).toBeGreaterThan(0);
    }
    expect(events.filter((e) => e.overallTotal !== undefined).length).toBeGreaterThan(2); // known before the end
    for (let i = 1; i < events.length; i++) expect(events[i]!.overallLoaded).toBeGreaterThanOrEqual(events[i - 1]!.overallLoaded);
    for (const e of events) {
      if (e.total !== undefined) expect(e.loaded).toBeLessThanOrEqual(e.total);
      if (e.overallTotal !== undefined) {
        expect(e.overallTotal).toBe(total);
        expect(e.overallLoaded).toBeLessThanOrEqual(total);
      }
    }
    const last = events.at(-1)!;
    expect(last.overallLoaded).toBe(total);
    expect(last.overallTotal).toBe(total);
    for (const f of [SHARD1, SHARD2])
      expect(events.filter((e) => e.file === f).at(-1)).toMatchObject({ loaded: m.raw.get(f)!.length, total: m.raw.get(f)!.length });
  });

  it('puts the revision in the URL (encoded), and fails clearly on an unknown one', async () => {
    const m = await loadFromHub('test/llama-tiny', { endpoint, revision: 'v1.0' });
    expect(m.source).toBe('test/llama-tiny@v1.0');
    expect(m.generationConfig).toEqual({ bos_token_id: 1, eos_token_id: 2 });
    expectSameTensors(m.weights, LLAMA);
    expect(requested()).toContain('/test/llama-tiny/resolve/v1.0/model.safetensors');
    await loadFromHub('test/llama-tiny', { endpoint, revision: 'refs/pr/1' });
    expect(requested()).toContain('/test/llama-tiny/resolve/refs%2Fpr%2F1/config.json');
    const e = await rejects(loadFromHub('test/llama-tiny', { endpoint }));
    expect(e).toBeInstanceOf(ModelSourceError);
    expect(e.message).toMatch(/test\/llama-tiny: the model has no revision "main"/);
    expect(hubFileUrl('a/b', 'config.json', { revision: 'refs/pr/1' })).toBe('https://huggingface.co/a/b/resolve/refs%2Fpr%2F1/config.json');
  });

  it('a second load through the same cache makes no request (memory and folder caches)', async () => {
    for (const cache of [memoryCache(), folderCache(mkdtempSync(join(tmpdir(), 'hub-cache-')))]) {
      for (const id of ['test/gpt2-tiny', 'test/gpt2-sharded']) {
        log = [];
        const first = await loadFromHub(id, { endpoint, cache });
        expect(log.length).toBeGreaterThan(0);
        log = [];
        let events = 0;
        const second = await loadFromHub(id, { endpoint, cache, onProgress: () => events++ });
        expect(log, id).toEqual([]);
        expect(events).toBeGreaterThan(0);
        expect([...second.raw.keys()].sort()).toEqual([...first.raw.keys()].sort());
        for (const [k, v] of first.raw) expectBytes(second.raw.get(k), v, k);
      }
    }
    // another revision is another key
    const cache = memoryCache();
    await loadFromHub('test/llama-tiny', { endpoint, cache, revision: 'v1.0' });
    log = [];
    await loadFromHub('test/llama-tiny', { endpoint, cache, revision: 'refs/pr/1' });
    expect(requested().length).toBeGreaterThan(0);
  });

  it('names config.json and the id when config.json is missing, and the id when the repo is', async () => {
    let e = await rejects(loadFromHub('test/no-config', { endpoint }));
    expect(e).toBeInstanceOf(ModelSourceError);
    expect(e.message).toMatch(/test\/no-config\/resolve\/main\/config\.json: no config\.json there/);
    expect(requested()).toEqual(['/test/no-config/resolve/main/config.json']);
    e = await rejects(loadFromHub('test/nope', { endpoint }));
    expect(e.message).toMatch(/^test\/nope: no such model on the Hub, or it is private or gated/);
    e = await rejects(loadFromHub('test/gated', { endpoint, accessToken: 'hf_test' }));
    expect(e.message).toMatch(/test\/gated: the model is gated/);
    expect(log.at(-1)!.auth).toBe('Bearer hf_test');
    expect(e.message).not.toContain('\n');
  });

  it('a shard listed in the index but missing is named', async () => {
    const e = await rejects(loadFromHub('test/missing-shard', { endpoint }));
    expect(e.message).toMatch(
      new RegExp(`${SHARD2.replace(/\./g, '\\.')}: no ${SHARD2.replace(/\./g, '\\.')} there \\(listed in model\\.safetensors\\.index\\.json\\)`),
    );
  });

  it('an index that disagrees with its shards is an error naming the index', async () => {
    let e = await rejects(loadFromHub('test/bad-index', { endpoint }));
    expect(e.message).toMatch(
      /model\.safetensors\.index\.json: weight_map puts tensor "transformer\.wte\.weight" in model-0000[12]-of-00002\.safetensors, which has no such tensor/,
    );
    e = await rejects(loadFromHub('test/unlisted', { endpoint }));
    expect(e.message).toMatch(
      /model\.safetensors\.index\.json: model-00002-of-00002\.safetensors has tensor "transformer\.ln_f\.bias", which weight_map does not list/,
    );
    e = await rejects(loadFromHub('test/evil-index', { endpoint }));
    expect(e.message).toMatch(/model\.safetensors\.index\.json: weight_map: .*Unsafe shard filename/);
    expect(requested().some((u) => u.includes('secret'))).toBe(false);
  });

  it('an unsupported model fails before any weight is requested', async () => {
    const e = await rejects(loadFromHub('test/bert', { endpoint }));
    expect(e.message).toMatch(/config\.json: unsupported value of "model_type": "bert"/);
    expect(log.map((r) => r.url)).toEqual(['/test/bert/resolve/main/config.json']);
  });

  it('explains a repo without safetensors weights, without downloading the .bin', async () => {
    let e = await rejects(loadFromHub('test/bin-only', { endpoint }));
    expect(e.message).toMatch(/pytorch_model\.bin: only safetensors checkpoints are supported/);
    expect(requested().some((u) => u.endsWith('.bin'))).toBe(false);
    e = await rejects(loadFromHub('test/no-weights', { endpoint }));
    expect(e.message).toMatch(/model\.safetensors: no model\.safetensors there \(looked for model\.safetensors\.index\.json and model\.safetensors\)/);
  });

  it('reads every JSON strictly', async () => {
    const e = await rejects(loadFromHub('test/dup-json', { endpoint }));
    expect(e.message).toMatch(/tokenizer_config\.json: invalid JSON \(duplicate key "a"/);
  });

  it('rejects bad ids and revisions before any request', async () => {
    for (const id of [
      '',
      '../etc/passwd',
      '/gpt2',
      'gpt2/',
      'a/b/c',
      'a//b',
      'a/../b',
      '..',
      'a/..',
      'a b',
      'a/b c',
      '-a/b',
      'a/b.',
      'a--b/c',
      'a/b..c',
      'a/b.git',
      '%2e%2e/x',
      'a\\b',
      'a/b?x=1',
      'a/b#x',
      'datasets/x',
      'a'.repeat(97),
    ]) {
      const e = await rejects(loadFromHub(id, { endpoint }));
      expect(e, id).toBeInstanceOf(ModelSourceError);
      expect(e.message).toMatch(/is not a Hugging Face model id/);
    }
    for (const revision of ['', '..', '.', 'a..b', 'main branch', 'a\nb']) {
      expect((await rejects(loadFromHub('test/gpt2-tiny', { endpoint, revision }))).message).toMatch(/is not a revision/);
    }
    expect(log).toEqual([]);
    for (const id of ['gpt2', 'openai-community/gpt2', 'meta-llama/Llama-3.2-1B', 'a_b/c.d-e', 'a'.repeat(96)]) expect(checkModelId(id)).toBe(id);
    expect(parseModelRef(' openai-community/gpt2@v1 ')).toEqual({ id: 'openai-community/gpt2', revision: 'v1' });
    expect(parseModelRef('https://huggingface.co/openai-community/gpt2/tree/refs%2Fpr%2F3')).toEqual({ id: 'openai-community/gpt2', revision: 'refs/pr/3' });
    expect(parseModelRef('gpt2')).toEqual({ id: 'gpt2' });
    // a source as PEFT's adapter_config.json names the base: a Hub model's bare id, the revision apart (null = main)
    expect(baseRefOf('openai-community/gpt2@main')).toEqual({ name: 'openai-community/gpt2', revision: null });
    expect(baseRefOf('gpt2@refs/pr/3')).toEqual({ name: 'gpt2', revision: 'refs/pr/3' });
    for (const other of ['tests/fixtures/gpt2-tiny', '/home/me/models/x@2', 'https://example.org/m@v1', 'rlhf-playground/default (built-in)', 'sft']) {
      expect(baseRefOf(other)).toEqual({ name: other, revision: null });
    }
  });

  it('can be cancelled mid-download', async () => {
    const ac = new AbortController();
    const e = await rejects(
      loadFromHub('test/gpt2-sharded', { endpoint, signal: ac.signal, onProgress: (p) => p.file === SHARD1 && p.loaded > 0 && ac.abort() }),
    );
    expect(e.name).toBe('AbortError');
  });
});

describe('other sources', () => {
  it('loadFromUrl reads the same layout under any base URL (no Content-Length)', async () => {
    const events: number[] = [];
    const m = await loadFromUrl(`${endpoint}/plain/gpt2-tiny/`, { onProgress: (p) => events.push(p.overallLoaded) });
    expect(m.source).toBe(`${endpoint}/plain/gpt2-tiny`);
    expectSameTensors(m.weights, GPT2);
    expect(requested()[0]).toBe('/plain/gpt2-tiny/config.json');
    expect(events.at(-1)).toBe([...m.raw.values()].reduce((n, b) => n + b.length, 0));
    const e = await rejects(loadFromUrl(`${endpoint}/plain/none`));
    expect(e.message).toBe(`${endpoint}/plain/none/config.json: no config.json there`);
    expect((await rejects(loadFromUrl('file:///etc'))).message).toMatch(/only http\(s\) URLs/);
  });

  it('folderCache round-trips bytes and keeps every key inside its folder', async () => {
    const root = mkdtempSync(join(tmpdir(), 'folder-cache-'));
    const dir = join(root, 'cache');
    const cache = folderCache(dir);
    const bytes = new Uint8Array(100_000).map((_, i) => (i * 7) & 255);
    const keys = ['https://huggingface.co/a/b/resolve/main/model.safetensors', '../../escape', '/etc/passwd', 'C:\\x', 'k?rlhf-playground-missing'];
    for (const [i, k] of keys.entries()) await cache.put(k, bytes.subarray(i));
    for (const [i, k] of keys.entries()) expectBytes(await cache.get(k), bytes.subarray(i), k);
    expect(await cache.get('https://huggingface.co/a/b/resolve/v2/model.safetensors')).toBeUndefined();
    expect(readdirSync(root)).toEqual(['cache']);
    expect(readdirSync(dir).length).toBe(keys.length);
    expect(readdirSync(dir).every((f) => /^[0-9a-f]{64}-[A-Za-z0-9._-]*$/.test(f))).toBe(true);
    await cache.put(keys[0]!, new Uint8Array([1, 2, 3])); // overwrite
    expect(await cache.get(keys[0]!)).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('readModelFolder reads the fixtures, sharded folders and reports what is missing', async () => {
    for (const [name, want] of [
      ['gpt2-tiny', GPT2],
      ['llama-tiny', LLAMA],
    ] as const) {
      const m = await readModelFolder(`tests/fixtures/${name}`);
      expect(m.source).toBe(`tests/fixtures/${name}`);
      expectSameTensors(m.weights, want);
      expect(m.tokenizer).toBeTypeOf('object');
    }
    const dir = mkdtempSync(join(tmpdir(), 'sharded-'));
    const sh = sharded();
    for (const [p, b] of Object.entries(sh.files)) writeFileSync(join(dir, p), b);
    const m = await readModelFolder(dir);
    expectSameTensors(m.weights, GPT2, new Set(m.weights[1]!.tensors.keys()));
    expect((await rejects(readModelFolder(join(dir, 'missing')))).message).toBe(`${join(dir, 'missing')}: no such model folder`);
    const noWeights = join(dir, 'noweights');
    mkdirSync(noWeights);
    writeFileSync(join(noWeights, 'config.json'), sh.files['config.json']!);
    expect((await rejects(readModelFolder(noWeights))).message).toMatch(new RegExp(`^${join(noWeights, 'model.safetensors')}: no model\\.safetensors there`));
  });

  it('loadFromFileList finds files by name or by path inside a picked folder', async () => {
    const sh = sharded();
    const files = Object.entries(sh.files).map(([p, b]) => new File([b as Uint8Array<ArrayBuffer>], p));
    const m = await loadFromFileList(files);
    expect(m.source).toBe('5 picked files');
    expectSameTensors(m.weights, GPT2, new Set(m.weights[1]!.tensors.keys()));
    const e = await rejects(loadFromFileList(files.filter((f) => f.name !== SHARD2)));
    expect(e.message).toMatch(/model-00002-of-00002\.safetensors: no model-00002-of-00002\.safetensors there/);
    expect((await rejects(loadFromFileList([]))).message).toBe('no files selected');
  });

  it('loadFromFileList with a folder picker: paths inside the folder first, ambiguous names refused', async () => {
    const picked = (rel: string, bytes: Uint8Array) => {
      const f = new File([bytes as Uint8Array<ArrayBuffer>], rel.slice(rel.lastIndexOf('/') + 1));
      Object.defineProperty(f, 'webkitRelativePath', { value: rel }); // what <input webkitdirectory> sets
      return f;
    };
    const gpt2 = ['config.json', 'model.safetensors', 'tokenizer.json'].map((p) => picked(`gpt2-tiny/${p}`, fixture('gpt2-tiny', p)));
    const other = picked('gpt2-tiny/other/model.safetensors', fixture('llama-tiny', 'model.safetensors'));
    const m = await loadFromFileList([other, ...gpt2]);
    expect(m.source).toBe('gpt2-tiny/ (picked folder)');
    expectSameTensors(m.weights, GPT2);
    const flat = [
      ...['config.json', 'model.safetensors'].map((p) => new File([fixture('gpt2-tiny', p) as Uint8Array<ArrayBuffer>], p)),
      new File([new Uint8Array(8)], 'model.safetensors'),
    ];
    expect((await rejects(loadFromFileList(flat))).message).toMatch(/model\.safetensors: 2 picked files are named model\.safetensors/);
  });

  it('browserCache stores files as Responses in Cache Storage', async () => {
    const store = new Map<string, Response>();
    const opened: string[] = [];
    const fake = {
      open: async (name: string) => (
        opened.push(name),
        { match: async (k: string) => store.get(k)?.clone(), put: async (k: string, r: Response) => void store.set(k, r) }
      ),
    };
    const had = Object.getOwnPropertyDescriptor(globalThis, 'caches');
    Object.defineProperty(globalThis, 'caches', { value: fake, configurable: true });
    try {
      const cache = browserCache();
      await loadFromHub('test/gpt2-tiny', { endpoint, cache });
      log = [];
      const m = await loadFromHub('test/gpt2-tiny', { endpoint, cache });
      expect(log).toEqual([]);
      expectSameTensors(m.weights, GPT2);
      expect(opened).toEqual(['rlhf-playground-models-v1']);
      expect([...store.keys()]).toContain(`${endpoint}/test/gpt2-tiny/resolve/main/model.safetensors`);
    } finally {
      if (had) Object.defineProperty(globalThis, 'caches', had);
      else delete (globalThis as { caches?: unknown }).caches;
    }
    // without Cache Storage (an insecure page), a load still works, uncached
    const m = await loadFromHub('test/gpt2-tiny', { endpoint, cache: browserCache() });
    expectSameTensors(m.weights, GPT2);
  });

  it('loadModelFiles works over a bare getter', async () => {
    const files: Record<string, Uint8Array> = {
      'config.json': fixture('llama-tiny', 'config.json'),
      'model.safetensors': fixture('llama-tiny', 'model.safetensors'),
    };
    const asked: string[] = [];
    const m: ModelFiles = await loadModelFiles(async (p) => (asked.push(p), files[p]), 'memory');
    expectSameTensors(m.weights, LLAMA);
    expect(asked[0]).toBe('config.json');
    expect(asked.at(-1)).toBe('model.safetensors');
    files['model.safetensors'] = files['model.safetensors']!.subarray(0, 1000);
    expect((await rejects(loadModelFiles(async (p) => files[p], 'memory'))).message).toMatch(/^memory\/model\.safetensors: /);
  });
});
