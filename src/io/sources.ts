// Where a model's files come from: the Hub, any URL, files picked in the browser, a folder on disk.
// Every source is a "file getter" (path inside the repo -> bytes, or undefined when the file is not
// there); `loadModelFiles` holds the one piece of logic they share: which files to fetch, in which
// order, and what makes them a valid model.
//
//   1. config.json (required), validated with parseConfig: an unsupported model fails here, before any
//      weight byte is requested;
//   2. the optional small files, together: model.safetensors.index.json, tokenizer.json,
//      tokenizer_config.json, generation_config.json, special_tokens_map.json;
//   3. the weights, all shards at once: the index's distinct shards, or model.safetensors.
//
// Pure I/O, browser- and Node-safe (no node: imports here; the Node folder getter is in folder.ts).

import { assertSafeShardFilename } from '@huggingface/hub';
import { decodeText, TextFileError } from './text.ts';
import { JsonSyntaxError, parseJsonStrict } from './json-strict.ts';
import { parseSafetensors, SafetensorsError, type SafetensorsFile } from './safetensors.ts';
import { ConfigError, parseConfig } from '../shared/model-config.ts';

/** Everything a model needs, already fetched and validated. */
export interface ModelFiles {
  /** Human description: "openai-community/gpt2@main", a URL, a folder path. */
  source: string;
  /** Parsed config.json (strict JSON); parseConfig accepted it. */
  config: unknown;
  /** One per shard, in index order (file = the path inside the repo). */
  weights: SafetensorsFile[];
  tokenizer?: unknown;
  tokenizerConfig?: unknown;
  generationConfig?: unknown;
  specialTokensMap?: unknown;
  /** Every fetched file by path, bytes as received (an export passes the tokenizer files through unchanged). */
  raw: Map<string, Uint8Array>;
}

export type Progress = (p: { file: string; loaded: number; total?: number; overallLoaded: number; overallTotal?: number }) => void;

/** A model that cannot be loaded. The message is one line naming the file or URL and the problem. */
export class ModelSourceError extends Error {
  override name = 'ModelSourceError';
}

/** Bytes of one file (path inside the repo, '/'-separated), or undefined when the source has no such file. */
export type FileGetter = (path: string) => Promise<Uint8Array | undefined>;

/** A getter plus what a source may know beyond bytes. */
export interface FileSource {
  get: FileGetter;
  /** Whether a file exists without fetching it (used only to explain a missing checkpoint). */
  exists?: (path: string) => Promise<boolean>;
  /** How messages name a file; default `${source}/${path}`. */
  label?: (path: string) => string;
  /** Called once with the weight files, before they are requested (lets progress compute a total). */
  willFetch?: (paths: string[]) => void;
}

export const CONFIG_FILE = 'config.json';
export const INDEX_FILE = 'model.safetensors.index.json';
export const WEIGHTS_FILE = 'model.safetensors';
const OPTIONAL_JSON = [
  ['tokenizer.json', 'tokenizer'],
  ['tokenizer_config.json', 'tokenizerConfig'],
  ['generation_config.json', 'generationConfig'],
  ['special_tokens_map.json', 'specialTokensMap'],
] as const;
/** Files read as bytes and carried, never parsed: a SentencePiece model, which exports hand on beside tokenizer.json
 *  (tokenizerFilesOf) for the tools that load a slow tokenizer from it. */
const OPTIONAL_BYTES = ['tokenizer.model'] as const;
/** Checkpoints we recognise but cannot read, probed only to explain a missing model.safetensors. */
const UNSUPPORTED_CHECKPOINTS = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'tf_model.h5', 'flax_model.msgpack'];

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const oneLine = (s: string) => s.split('\n')[0]!;

export async function loadModelFiles(src: FileGetter | FileSource, source: string): Promise<ModelFiles> {
  const s: FileSource = typeof src === 'function' ? { get: src } : src;
  const label = s.label ?? ((p: string) => `${source}/${p}`);
  const raw = new Map<string, Uint8Array>();
  const fail = (path: string, problem: string): never => {
    throw new ModelSourceError(`${label(path)}: ${problem}`);
  };
  const fetchFile = async (path: string): Promise<Uint8Array | undefined> => {
    const bytes = await s.get(path);
    if (bytes !== undefined) raw.set(path, bytes);
    return bytes;
  };
  const json = (path: string, bytes: Uint8Array): unknown => {
    let text: string;
    try {
      text = decodeText(bytes, path);
    } catch (e) {
      if (e instanceof TextFileError) return fail(path, e.problem); // under the source's label
      throw e;
    }
    try {
      return parseJsonStrict(text);
    } catch (e) {
      return fail(path, `invalid JSON (${e instanceof JsonSyntaxError ? e.message : String(e)})`);
    }
  };

  // 1. config.json, validated before anything else is requested.
  const cfgBytes = await fetchFile(CONFIG_FILE);
  if (cfgBytes === undefined) fail(CONFIG_FILE, `no ${CONFIG_FILE} there`);
  const config = json(CONFIG_FILE, cfgBytes!);
  try {
    parseConfig(config, label(CONFIG_FILE));
  } catch (e) {
    if (e instanceof ConfigError) throw new ModelSourceError(oneLine(e.message), { cause: e });
    throw e;
  }

  // 2. The small optional files, together.
  const [indexBytes, ...optional] = await Promise.all([INDEX_FILE, ...OPTIONAL_JSON.map(([p]) => p), ...OPTIONAL_BYTES].map(fetchFile));
  const out: ModelFiles = { source, config, weights: [], raw };
  OPTIONAL_JSON.forEach(([path, key], i) => {
    const b = optional[i];
    if (b !== undefined) out[key] = json(path, b);
  });

  // 3. The weights.
  let weightMap: Map<string, string> | undefined; // tensor -> shard
  let shards: string[];
  if (indexBytes !== undefined) {
    weightMap = parseIndex(json(INDEX_FILE, indexBytes), (problem) => fail(INDEX_FILE, problem));
    shards = [...new Set(weightMap.values())].sort(); // model-00001-of-000NN first
  } else {
    shards = [WEIGHTS_FILE];
  }
  s.willFetch?.(shards);
  // Each shard fails on its own (a missing or corrupt one rejects at once; an HTTP source then
  // cancels the others), and is parsed as soon as it arrives.
  out.weights = await Promise.all(
    shards.map(async (path) => {
      const bytes = await fetchFile(path);
      if (bytes === undefined) {
        if (weightMap) fail(path, `no ${path} there (listed in ${INDEX_FILE})`);
        const found = await findUnsupported(s);
        if (found)
          fail(
            found,
            `only safetensors checkpoints are supported, and there is no ${INDEX_FILE} or ${WEIGHTS_FILE} (convert the model to safetensors, or pick a revision that has it)`,
          );
        fail(WEIGHTS_FILE, `no ${WEIGHTS_FILE} there (looked for ${INDEX_FILE} and ${WEIGHTS_FILE})`);
      }
      try {
        return parseSafetensors(bytes!, path);
      } catch (e) {
        if (e instanceof SafetensorsError) fail(path, oneLine(e.message.slice(e.file.length + 2)));
        throw e;
      }
    }),
  );
  if (weightMap) checkIndex(weightMap, out.weights, (problem) => fail(INDEX_FILE, problem));
  return out;
}

async function findUnsupported(s: FileSource): Promise<string | undefined> {
  if (!s.exists) return undefined;
  for (const p of UNSUPPORTED_CHECKPOINTS) if (await s.exists(p)) return p;
  return undefined;
}

/** `{"metadata": ..., "weight_map": {tensor: shard}}` -> tensor -> shard, shard names checked for path tricks. */
function parseIndex(index: unknown, fail: (problem: string) => never): Map<string, string> {
  if (typeof index !== 'object' || index === null || Array.isArray(index)) fail(`must be a JSON object, got ${kind(index)}`);
  const wm = (index as Record<string, unknown>).weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) fail(`"weight_map" must be an object, got ${kind(wm)}`);
  const map = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string') fail(`weight_map: tensor ${JSON.stringify(tensor)} maps to ${kind(shard)}, not a file name`);
    try {
      assertSafeShardFilename(shard as string); // untrusted: becomes a URL, a cache key, a path on disk
    } catch (e) {
      fail(`weight_map: tensor ${JSON.stringify(tensor)}: ${(e as Error).message}`);
    }
    if (!(shard as string).endsWith('.safetensors'))
      fail(`weight_map: tensor ${JSON.stringify(tensor)} maps to ${JSON.stringify(shard)}, not a .safetensors file`);
    map.set(tensor, shard as string);
  }
  if (map.size === 0) fail('"weight_map" is empty');
  return map;
}

/** The index and the shards must agree exactly: each listed tensor in its shard, each shard tensor listed there. */
function checkIndex(weightMap: Map<string, string>, weights: SafetensorsFile[], fail: (problem: string) => never): void {
  const byFile = new Map(weights.map((w) => [w.file, w]));
  for (const [tensor, shard] of weightMap) {
    if (!byFile.get(shard)!.tensors.has(tensor)) fail(`weight_map puts tensor ${JSON.stringify(tensor)} in ${shard}, which has no such tensor`);
  }
  for (const w of weights) {
    for (const tensor of w.tensors.keys()) {
      const listed = weightMap.get(tensor);
      if (listed === undefined) fail(`${w.file} has tensor ${JSON.stringify(tensor)}, which weight_map does not list`);
      if (listed !== w.file) fail(`${w.file} has tensor ${JSON.stringify(tensor)}, which weight_map puts in ${listed}`);
    }
  }
}

/** Bytes of tensor data over all shards (headers excluded): what the weights occupy as stored. */
export function totalWeightBytes(files: Pick<ModelFiles, 'weights'>): number {
  let n = 0;
  for (const w of files.weights) n += w.bytes.length - w.dataOffset;
  return n;
}

// ---------------------------------------------------------------------------------------------------
// Progress over several files, some in flight at once.

/**
 * Turns per-file byte counts into Progress events. overallLoaded never decreases; overallTotal is
 * known once the weight files are announced (willFetch) and every one of them has reported its size,
 * and the last event has overallLoaded === overallTotal.
 */
export class ProgressTracker {
  private done = 0; // bytes of finished files
  private readonly inflight = new Map<string, { loaded: number; total?: number }>();
  private pending?: Set<string>; // announced weight files not started yet

  constructor(private readonly onProgress?: Progress) {}

  willFetch(paths: string[]): void {
    this.pending = new Set(paths);
  }

  update(file: string, loaded: number, total?: number): void {
    this.pending?.delete(file);
    this.inflight.set(file, { loaded, total });
    this.emit(file, loaded, total);
  }

  finish(file: string, size: number): void {
    this.pending?.delete(file);
    this.inflight.delete(file);
    this.done += size;
    this.emit(file, size, size);
  }

  /** A file that will not be delivered (missing, failed): forget its partial bytes. */
  drop(file: string): void {
    this.pending?.delete(file);
    this.inflight.delete(file);
  }

  private emit(file: string, loaded: number, total?: number): void {
    if (!this.onProgress) return;
    let overallLoaded = this.done;
    let overallTotal: number | undefined = this.pending && this.pending.size === 0 ? this.done : undefined;
    for (const f of this.inflight.values()) {
      overallLoaded += f.loaded;
      overallTotal = overallTotal === undefined || f.total === undefined ? undefined : overallTotal + f.total;
    }
    this.onProgress({ file, loaded, total, overallLoaded, overallTotal });
  }
}

// ---------------------------------------------------------------------------------------------------
// Files picked in the browser: <input type=file multiple>, or a folder picker (webkitdirectory).

/**
 * Loads a model from picked files. A file is found by its path inside the picked folder
 * (webkitRelativePath without the folder's own name), else by its base name if only one file has it.
 */
export async function loadFromFileList(files: ArrayLike<File> | Iterable<File>, opts: { onProgress?: Progress } = {}): Promise<ModelFiles> {
  const list = Array.from(files as ArrayLike<File>);
  if (list.length === 0) throw new ModelSourceError('no files selected');
  const rel = (f: File) => {
    const p = (f.webkitRelativePath || f.name).replace(/\\/g, '/');
    const i = p.indexOf('/');
    return f.webkitRelativePath && i >= 0 ? p.slice(i + 1) : p;
  };
  const top = list[0]!.webkitRelativePath ? list[0]!.webkitRelativePath.split(/[\\/]/)[0]! : '';
  const source = top ? `${top}/ (picked folder)` : `${list.length} picked file${list.length > 1 ? 's' : ''}`;
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  const label = (p: string) => (top ? `${top}/${p}` : p);
  const find = (path: string): File | undefined => {
    const exact = list.filter((f) => rel(f) === path);
    const same = exact.length ? exact : list.filter((f) => base(rel(f)) === base(path));
    if (same.length > 1)
      throw new ModelSourceError(
        `${label(path)}: ${same.length} picked files are named ${base(path)} (${same.map(rel).join(', ')}); pick the model's folder or only its files`,
      );
    return same[0];
  };
  const progress = new ProgressTracker(opts.onProgress);
  return loadModelFiles(
    {
      label,
      willFetch: (paths) => progress.willFetch(paths),
      exists: async (path) => find(path) !== undefined,
      get: async (path) => {
        const f = find(path);
        if (!f) return undefined;
        let bytes: Uint8Array;
        try {
          bytes = new Uint8Array(await f.arrayBuffer());
        } catch (e) {
          throw new ModelSourceError(`${label(path)}: cannot read (${(e as Error).message})`);
        }
        progress.finish(path, bytes.length);
        return bytes;
      },
    },
    source,
  );
}
