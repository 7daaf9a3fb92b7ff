// Where the engine's model comes from, and how a run knows it is resumed on the same one.
//   { url }          a server folder (`${url}/config.json`, ...), through loadFromUrl; `files` given
//                    beside it take the place of the server's (e.g. a tokenizer.json from elsewhere);
//                    `only`: the files the folder holds, when known (the built-in model): the optional
//                    files it lacks are not requested, so a clean load logs no 404
//   { hub }          a Hugging Face Hub model id (`revision`, `endpoint`, `accessToken` optional)
//   { files }        bytes by path (a picked folder, a test reading a fixture from disk)
//   { zip }          a zipped model folder (what the Share view downloads), unpacked safely
// In the browser, URL and Hub downloads go through Cache Storage: a second load makes no request.
import { browserCache, type FileCache } from '../io/cache.ts';
import { unzipFiles } from '../io/zip.ts';
import { hubFileUrl, loadFromHub, loadFromUrl } from '../io/hub.ts';
import { loadModelFiles, ModelSourceError, ProgressTracker, type ModelFiles, type Progress } from '../io/sources.ts';

export type ModelSource =
  | { url: string; files?: Map<string, Uint8Array>; name?: string; only?: readonly string[] }
  | { hub: string; revision?: string; endpoint?: string; accessToken?: string }
  | { files: Map<string, Uint8Array>; name?: string }
  | { zip: Uint8Array; name: string };

const cache = (): FileCache | undefined => (typeof caches !== 'undefined' ? browserCache() : undefined);

/** A short name of a source for messages and the UI. */
export function sourceName(src: ModelSource): string {
  if ('url' in src) return src.name ?? src.url;
  if ('hub' in src) return src.revision ? `${src.hub}@${src.revision}` : src.hub;
  return src.name ?? 'files';
}

/** The files of a PEFT adapter the source holds, or undefined when it is not an adapter (no adapter_config.json). */
export async function adapterFiles(src: ModelSource, fetchImpl: typeof fetch = fetch): Promise<Map<string, Uint8Array> | undefined> {
  if ('files' in src && !('url' in src)) return src.files.has('adapter_config.json') ? src.files : undefined;
  if ('url' in src && src.only && !src.only.includes('adapter_config.json')) return undefined;
  if ('zip' in src) {
    const files = unzipFiles(src.zip, src.name);
    return files.has('adapter_config.json') ? files : undefined;
  }
  const urlOf = (path: string) =>
    'hub' in src ? hubFileUrl(src.hub, path, { revision: src.revision, endpoint: src.endpoint }) : `${src.url.replace(/\/+$/, '')}/${path}`;
  const headers: Record<string, string> = 'hub' in src && src.accessToken ? { Authorization: `Bearer ${src.accessToken}` } : {};
  const get = async (path: string) => {
    const r = await fetchImpl(urlOf(path), { headers });
    const html = (r.headers.get('content-type') ?? '').includes('text/html'); // a dev server's fallback page
    return r.ok && !html ? new Uint8Array(await r.arrayBuffer()) : undefined;
  };
  let cfg: Uint8Array | undefined;
  try {
    cfg = await get('adapter_config.json');
  } catch {
    return undefined; // the model loader reports the network problem with the file it needed
  }
  if (!cfg) return undefined;
  const weights = await get('adapter_model.safetensors');
  if (!weights)
    throw new ModelSourceError(`${urlOf('adapter_model.safetensors')}: missing (an adapter needs adapter_model.safetensors beside adapter_config.json)`);
  return new Map([
    ['adapter_config.json', cfg],
    ['adapter_model.safetensors', weights],
  ]);
}

/** A fetch that answers 404 at once, without a request, for a file not among `only` (the files a folder holds). */
function listedFetch(only: readonly string[], next: typeof fetch): typeof fetch {
  return (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const path = new URL(url, globalThis.location?.href).pathname;
    return only.some((f) => path.endsWith('/' + f)) ? next(input, init) : Promise.resolve(new Response(null, { status: 404 }));
  };
}

/** A fetch that answers from `files` for URLs ending in one of their paths, and goes to the network otherwise. */
function overlayFetch(files: Map<string, Uint8Array>): typeof fetch {
  return (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    for (const [path, bytes] of files) if (url.endsWith('/' + path)) return Promise.resolve(new Response(bytes as BodyInit));
    return fetch(input, init);
  };
}

export async function loadSource(src: ModelSource, onProgress?: Progress): Promise<ModelFiles> {
  if ('url' in src) {
    const net = src.files ? overlayFetch(src.files) : fetch;
    const files = await loadFromUrl(src.url, {
      onProgress,
      fetch: src.only ? listedFetch(src.only, net) : src.files ? net : undefined,
      cache: src.files ? undefined : cache(),
    });
    return src.name ? { ...files, source: src.name } : files; // a stable name (the built-in model's URL depends on the host)
  }
  if ('hub' in src) return loadFromHub(src.hub, { revision: src.revision, endpoint: src.endpoint, accessToken: src.accessToken, onProgress, cache: cache() });
  const progress = new ProgressTracker(onProgress);
  const name = src.name ?? 'files';
  const files = 'zip' in src ? unzipFiles(src.zip, src.name) : src.files;
  return loadModelFiles(
    {
      get: async (path) => {
        const b = files.get(path);
        if (b) progress.finish(path, b.length);
        return b;
      },
      willFetch: (paths) => progress.willFetch(paths),
      // what else the folder holds: a pytorch_model.bin without safetensors is named as such, not "missing"
      exists: async (path) => files.has(path),
      label: (path) => `${name}/${path}`,
    },
    name,
  );
}

// Files whose bytes decide what a run computes: the architecture, the weights, the tokenizer (data is
// stored as text and encoded again on resume).
const IDENTITY = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

/** A SHA-256 (FNV-1a where WebCrypto is missing: plain-http pages) over the files that define the model. */
export async function fingerprint(files: ModelFiles): Promise<string> {
  const names = [...IDENTITY, ...files.weights.map((w) => w.file)].filter((n) => files.raw.has(n));
  const parts = await Promise.all(names.map(async (n) => `${n}:${await digest(files.raw.get(n)!)}`));
  return digest(new TextEncoder().encode(parts.join('\n')));
}

/** The same digest over a text (the identity of a model with runs merged into it). */
export const textFingerprint = (text: string) => digest(new TextEncoder().encode(text));

async function digest(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) return [...new Uint8Array(await subtle.digest('SHA-256', bytes as BufferSource))].map((b) => b.toString(16).padStart(2, '0')).join('');
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return `fnv1a-${(h >>> 0).toString(16)}-${bytes.length}`;
}
