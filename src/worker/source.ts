// Where the engine's model comes from, and how a run knows it is resumed on the same one.
//   { url }          a server folder (`${url}/config.json`, ...), through loadFromUrl; `files` given
//                    beside it take the place of the server's (e.g. a tokenizer.json from elsewhere)
//   { files }        bytes by path (a picked folder, a test reading a fixture from disk)
import { loadFromUrl } from '../io/hub.ts';
import { loadModelFiles, ProgressTracker, type ModelFiles, type Progress } from '../io/sources.ts';

export type ModelSource = { url: string; files?: Map<string, Uint8Array> } | { files: Map<string, Uint8Array>; name?: string };

/** A fetch that answers from `files` for URLs ending in one of their paths, and goes to the network otherwise. */
function overlayFetch(files: Map<string, Uint8Array>): typeof fetch {
  return (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    for (const [path, bytes] of files) if (url.endsWith('/' + path)) return Promise.resolve(new Response(bytes as BodyInit));
    return fetch(input, init);
  };
}

export async function loadSource(src: ModelSource, onProgress?: Progress): Promise<ModelFiles> {
  if ('url' in src) return loadFromUrl(src.url, { onProgress, fetch: src.files ? overlayFetch(src.files) : undefined });
  const progress = new ProgressTracker(onProgress);
  const name = src.name ?? 'files';
  return loadModelFiles({
    get: async (path) => {
      const b = src.files.get(path);
      if (b) progress.finish(path, b.length);
      return b;
    },
    willFetch: (paths) => progress.willFetch(paths),
    label: (path) => `${name}/${path}`,
  }, name);
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

async function digest(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) return [...new Uint8Array(await subtle.digest('SHA-256', bytes as BufferSource))].map((b) => b.toString(16).padStart(2, '0')).join('');
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return `fnv1a-${(h >>> 0).toString(16)}-${bytes.length}`;
}
