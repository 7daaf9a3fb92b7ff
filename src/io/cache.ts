// Caches of downloaded model files, keyed by URL (for the Hub: the resolve URL, which names the repo,
// the revision and the path). A file at a commit hash never changes; a branch such as `main` may move,
// and we cache it anyway: the second visit is instant and works offline, and a user who wants the new
// files asks for the new commit. The Hub source also stores "this file is not there" under
// missingKey(url), so a second load of the same id + revision makes no request at all.
//
// A cache is best effort: the Hub source treats a failing get as a miss and ignores a failing put.

export interface FileCache {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, bytes: Uint8Array): Promise<void>;
}

export const BROWSER_CACHE_NAME = 'rlhf-playground-models-v1';

/** The key under which a source records that `url` answered 404. */
export const missingKey = (url: string) => `${url}${url.includes('?') ? '&' : '?'}rlhf-playground-missing`;

/**
 * The browser's Cache Storage (survives reloads, shared by the tabs of this origin, evicted by the
 * browser under storage pressure). Keys must be http(s) URLs. Cache Storage exists only in secure
 * contexts (https, localhost); elsewhere every call rejects, which the sources treat as "no cache".
 */
export function browserCache(name = BROWSER_CACHE_NAME): FileCache {
  let opened: Promise<Cache> | undefined;
  const open = () => {
    if (typeof caches === 'undefined') return Promise.reject(new Error('Cache Storage is not available here (it needs a secure context)'));
    return (opened ??= caches.open(name));
  };
  return {
    async get(key) {
      const r = await (await open()).match(key);
      return r ? new Uint8Array(await r.arrayBuffer()) : undefined;
    },
    async put(key, bytes) {
      const body = bytes as Uint8Array<ArrayBuffer>; // never a SharedArrayBuffer here
      await (await open()).put(key, new Response(body, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } }));
    },
  };
}

/** In memory, for tests and for one page session. Stores copies, so callers may keep mutating theirs. */
export function memoryCache(): FileCache & { keys(): string[] } {
  const m = new Map<string, Uint8Array>();
  return {
    async get(key) {
      const b = m.get(key);
      return b && b.slice();
    },
    async put(key, bytes) {
      m.set(key, bytes.slice());
    },
    keys: () => [...m.keys()],
  };
}

/**
 * Files under `dir` (Node). The file name is the SHA-256 of the key, so no key (a URL, "..", a
 * drive letter) can name a path outside `dir`; the key's last segment, sanitised, follows the hash
 * so a person can tell the files apart. Writes go to a temporary file renamed into place, so a
 * crash never leaves a truncated entry.
 */
export function folderCache(dir: string): FileCache {
  // Imported on first use, so this module stays loadable in a browser.
  type Fs = typeof import('node:fs/promises');
  type Path = typeof import('node:path');
  const nodeFs = 'node:fs/promises',
    nodePath = 'node:path';
  let mods: Promise<[Fs, Path]> | undefined;
  const load = () => (mods ??= Promise.all([import(/* @vite-ignore */ nodeFs) as Promise<Fs>, import(/* @vite-ignore */ nodePath) as Promise<Path>]));
  const fileOf = async (key: string): Promise<string> => {
    const [, path] = await load();
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(key)));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
    const tail = key
      .slice(key.lastIndexOf('/') + 1)
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .slice(0, 80);
    return path.join(dir, `${hex}-${tail}`);
  };
  return {
    async get(key) {
      const [fs] = await load();
      try {
        const b = await fs.readFile(await fileOf(key));
        return new Uint8Array(b.buffer, b.byteOffset, b.length); // a plain Uint8Array, not a Buffer
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
    async put(key, bytes) {
      const [fs] = await load();
      const file = await fileOf(key);
      await fs.mkdir(dir, { recursive: true });
      const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      try {
        await fs.writeFile(tmp, bytes);
        await fs.rename(tmp, file);
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
    },
  };
}
