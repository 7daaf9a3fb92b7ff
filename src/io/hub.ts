// Models over HTTP: a Hugging Face Hub model id (+ revision), or any base URL laid out like a repo.
//
// Every file is one GET of `${endpoint}/${id}/resolve/${encodeURIComponent(revision)}/${path}` (the
// Hub answers LFS and Xet files with a redirect to its CDN, which fetch follows), read chunk by
// chunk from `response.body` for byte progress (Content-Length gives the size).
//
// Why not @huggingface/hub's downloadFile: it first probes every file with a `Range: bytes=0-0`
// request (one more round trip per file, and we probe five optional files), treats a 404 as "not
// there" only when the server sends the Hub's `X-Error-Code: EntryNotFound` (so it cannot serve
// loadFromUrl on a plain static server), requires an ETag, takes no AbortSignal, and returns a lazy
// Blob whose stream() turns HTTP errors into a bare message string. Reading the body ourselves gives
// one request per file, progress, cancellation and messages that say what to do, on the Hub and on
// any other server alike. From @huggingface/hub we take the Hub's address (HUB_URL) and its
// shard-name check (assertSafeShardFilename, in sources.ts), both in its browser build too.

import { HUB_URL } from '@huggingface/hub';
import { missingKey, type FileCache } from './cache.ts';
import { loadModelFiles, ModelSourceError, ProgressTracker, type ModelFiles, type Progress } from './sources.ts';

// The Hub's default branch. (@huggingface/hub exports DEFAULT_REVISION from its Node build only.)
const DEFAULT_REVISION = 'main';

export interface HttpOptions {
  /** Custom fetch (a proxy, tests); default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Where downloaded files are kept; a second load of the same files makes no request. */
  cache?: FileCache;
  onProgress?: Progress;
  /** A Hugging Face access token (gated or private models), sent as `Authorization: Bearer`. */
  accessToken?: string;
  signal?: AbortSignal;
}

export interface HubOptions extends HttpOptions {
  /** Branch, tag or commit hash; default "main". */
  revision?: string;
  /** Default https://huggingface.co (a mirror, or a local server in tests). */
  endpoint?: string;
}

// Hub repo names: word characters, '-' and '.', starting and ending with a word character, at most
// 96 characters, no "--" or ".." (the rules of huggingface_hub's validate_repo_id).
const ID_PART = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?$/;

/** Returns the id if it is `owner/name` or `name` as the Hub allows them; throws ModelSourceError otherwise. */
export function checkModelId(id: string): string {
  const bad = (why: string): never => {
    throw new ModelSourceError(`${JSON.stringify(id)} is not a Hugging Face model id: ${why}`);
  };
  if (typeof id !== 'string' || id.length === 0) bad('it is empty');
  const parts = id.split('/');
  if (parts.length > 2) bad('expected "owner/name" or "name" (one "/" at most)');
  if (parts.length === 2 && (parts[0] === 'datasets' || parts[0] === 'spaces')) bad('only model repos hold models');
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..') bad(`empty or "." / ".." part`);
    if (!ID_PART.test(p)) bad('use letters, digits, "-", "_" and "." (not first or last), at most 96 characters per part');
    if (p.includes('--') || p.includes('..')) bad('"--" and ".." are not allowed');
  }
  if (id.endsWith('.git')) bad('it ends with ".git"');
  return id;
}

/** Returns the revision if it can name a branch, tag or commit; throws ModelSourceError otherwise. */
export function checkRevision(rev: string): string {
  // encodeURIComponent turns "/" into %2F, so the revision is one URL segment; only "." and ".."
  // could still be dot segments, and git forbids ".." in ref names anyway.
  if (typeof rev !== 'string' || rev.length === 0 || rev.length > 255 || rev.includes('..') || rev === '.' || /[\s\x00-\x1f\x7f~^:?*[\\]/.test(rev)) {
    throw new ModelSourceError(`${JSON.stringify(rev)} is not a revision (a branch, tag or commit hash)`);
  }
  return rev;
}

/**
 * What a user types: "owner/name", "owner/name@revision", or a model page URL
 * (`${endpoint}/owner/name` or `${endpoint}/owner/name/tree/revision`). Checked; throws ModelSourceError.
 */
export function parseModelRef(text: string, endpoint = HUB_URL): { id: string; revision?: string } {
  let t = text.trim();
  const base = endpoint.replace(/\/+$/, '') + '/';
  if (t.startsWith(base)) {
    const [owner, name, tree, ...rev] = t.slice(base.length).replace(/\/+$/, '').split('/');
    if (tree !== undefined && tree !== 'tree')
      throw new ModelSourceError(`${text}: not a model page URL (expected ${base}owner/name or ${base}owner/name/tree/revision)`);
    t = name === undefined ? owner! : `${owner}/${name}`;
    if (rev.length) return { id: checkModelId(t), revision: checkRevision(decodeURIComponent(rev.join('/'))) };
    return { id: checkModelId(t) };
  }
  const at = t.indexOf('@');
  if (at < 0) return { id: checkModelId(t) };
  return { id: checkModelId(t.slice(0, at)), revision: checkRevision(t.slice(at + 1)) };
}

/**
 * A model's source as a loader outside the page must name it: a Hub model (`loadFromHub` names its
 * files "id@revision") by its bare repo id, which `from_pretrained` takes, and the revision apart, or
 * null for the Hub's default branch (what PEFT's adapter_config.json `revision` and TRL's
 * `model_revision` hold when the base is not pinned: both load `main` then). Any other source (a
 * folder, a URL, a name) is returned as it is, with no revision.
 */
export function baseRefOf(source: string): { name: string; revision: string | null } {
  if (source.includes('@')) {
    try {
      const { id, revision } = parseModelRef(source);
      if (revision !== undefined) return { name: id, revision: revision === DEFAULT_REVISION ? null : revision };
    } catch {
      // not "id@revision": a path or a name that holds an "@"
    }
  }
  return { name: source, revision: null };
}

function checkEndpoint(endpoint: string): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new ModelSourceError(`${JSON.stringify(endpoint)} is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ModelSourceError(`${endpoint}: only http(s) endpoints are supported`);
  return endpoint.replace(/\/+$/, '');
}

const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');

/** The resolve URL of one file of a model repo. */
export function hubFileUrl(id: string, path: string, opts: { revision?: string; endpoint?: string } = {}): string {
  const endpoint = checkEndpoint(opts.endpoint ?? HUB_URL);
  const rev = checkRevision(opts.revision ?? DEFAULT_REVISION);
  return `${endpoint}/${checkModelId(id)}/resolve/${encodeURIComponent(rev)}/${encodePath(path)}`;
}

/** Fetches a model from the Hugging Face Hub: config.json first, then tokenizer files, then the weights. */
export async function loadFromHub(id: string, opts: HubOptions = {}): Promise<ModelFiles> {
  checkModelId(id);
  const revision = checkRevision(opts.revision ?? DEFAULT_REVISION);
  const endpoint = checkEndpoint(opts.endpoint ?? HUB_URL);
  const base = `${endpoint}/${id}/resolve/${encodeURIComponent(revision)}`;
  return loadOverHttp(base, `${id}@${revision}`, opts, (res, path) => explainHub(res, endpoint, id, revision, path, opts.accessToken !== undefined));
}

/** Fetches a model from any server that lays the files out under one base URL (`${baseUrl}/config.json`, ...). */
export async function loadFromUrl(baseUrl: string, opts: HttpOptions = {}): Promise<ModelFiles> {
  let u: URL;
  try {
    u = new URL(baseUrl, globalThis.location?.href); // relative URLs in a page
  } catch {
    throw new ModelSourceError(`${JSON.stringify(baseUrl)} is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ModelSourceError(`${baseUrl}: only http(s) URLs are supported`);
  if (u.search || u.hash) throw new ModelSourceError(`${baseUrl}: a base URL cannot have a query or fragment (the file names are appended to it)`);
  const base = u.href.replace(/\/+$/, '');
  return loadOverHttp(base, base, opts, () => undefined);
}

/** A message for an HTTP error of the Hub, or undefined to use the generic one; 'missing' = the file is not there. */
type Explain = (res: Response, path: string) => string | 'missing' | undefined;

function explainHub(res: Response, endpoint: string, id: string, revision: string, path: string, hasToken: boolean): string | 'missing' | undefined {
  const code = res.headers.get('x-error-code');
  const page = `${endpoint}/${id}`;
  if (code === 'EntryNotFound') return 'missing';
  if (code === 'RepoNotFound')
    return `${id}: no such model on the Hub, or it is private or gated${hasToken ? ' and this access token cannot read it' : ' (sign in: pass an access token)'}`;
  if (code === 'RevisionNotFound') return `${id}: the model has no revision ${JSON.stringify(revision)}`;
  if (code === 'GatedRepo' || res.status === 403)
    return `${id}: the model is gated; accept its conditions on ${page}${hasToken ? ' with the account of this access token' : ' and pass an access token'} (HTTP ${res.status} for ${path})`;
  if (res.status === 401)
    return `${id}: the Hub refused ${path} (HTTP 401): the model does not exist, or it is private or gated${hasToken ? ' and this access token cannot read it' : ' (pass an access token)'}`;
  if (res.status === 404) return 'missing'; // a mirror that does not send X-Error-Code
  if (res.status === 429)
    return `${id}: the Hub is rate limiting this client (HTTP 429 for ${path}); wait a minute${hasToken ? '' : ', or pass an access token'}`;
  return undefined;
}

async function loadOverHttp(base: string, source: string, opts: HttpOptions, explain: Explain): Promise<ModelFiles> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const headers: Record<string, string> = opts.accessToken ? { authorization: `Bearer ${opts.accessToken}` } : {};
  const progress = new ProgressTracker(opts.onProgress);
  const cache = opts.cache;
  // One controller for every request of this load: the caller's signal, or our own when one shard
  // fails (the other downloads are cancelled).
  const ac = new AbortController();
  const onAbort = () => ac.abort(opts.signal!.reason);
  opts.signal?.throwIfAborted();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const urlOf = (path: string) => `${base}/${encodePath(path)}`;
  const aborted = () => ac.signal.aborted;

  const request = async (url: string, path: string, method: 'GET' | 'HEAD'): Promise<Response> => {
    try {
      return await doFetch(url, { method, headers, signal: ac.signal });
    } catch (e) {
      if (aborted()) throw ac.signal.reason;
      throw new ModelSourceError(`${url}: cannot fetch ${path} (${(e as Error).message}; offline, or the server does not allow this page to read it)`);
    }
  };

  const get = async (path: string): Promise<Uint8Array | undefined> => {
    const url = urlOf(path);
    if (cache) {
      const hit = await cache.get(url).catch(() => undefined);
      if (hit) {
        progress.finish(path, hit.length);
        return hit;
      }
      if (await cache.get(missingKey(url)).catch(() => undefined)) return undefined;
    }
    const res = await request(url, path, 'GET');
    if (!res.ok) {
      void res.body?.cancel().catch(() => {});
      const why = explain(res, path) ?? (res.status === 404 || res.status === 410 ? 'missing' : undefined);
      if (why === 'missing') {
        await cache?.put(missingKey(url), new Uint8Array(0)).catch(() => {});
        return undefined;
      }
      const detail = res.headers.get('x-error-message');
      throw new ModelSourceError(
        why ?? `${url}: HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}${detail ? ` (${detail.split('\n')[0]})` : ''}`,
      );
    }
    const bytes = await readBody(res, url, path, progress, aborted, () => ac.signal.reason);
    await cache?.put(url, bytes).catch(() => {}); // best effort: a full disk must not fail the load
    progress.finish(path, bytes.length);
    return bytes;
  };

  const exists = async (path: string): Promise<boolean> => {
    const res = await request(urlOf(path), path, 'HEAD');
    return res.ok;
  };

  try {
    return await loadModelFiles({ get, exists, label: urlOf, willFetch: (p) => progress.willFetch(p) }, source);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    ac.abort(); // whatever is still in flight after a failure
  }
}

/** The response body, read chunk by chunk with progress; the length checked against Content-Length. */
async function readBody(
  res: Response,
  url: string,
  path: string,
  progress: ProgressTracker,
  aborted: () => boolean,
  reason: () => unknown,
): Promise<Uint8Array> {
  // With a Content-Encoding (gzip from a plain server), Content-Length counts compressed bytes
  // while the stream yields decompressed ones: the size is then unknown until the end.
  const enc = res.headers.get('content-encoding');
  const lenHeader = res.headers.get('content-length');
  const total = (!enc || enc === 'identity') && lenHeader !== null && /^\d+$/.test(lenHeader) ? Number(lenHeader) : undefined;
  const fail = (problem: string): never => {
    throw new ModelSourceError(`${url}: ${problem}`);
  };
  let out: Uint8Array | undefined;
  if (total !== undefined) {
    try {
      out = new Uint8Array(total); // one allocation: a multi-GB shard is never held twice
    } catch {
      fail(`${path} is ${total} bytes, more than this JavaScript engine can hold in one buffer`);
    }
  }
  progress.update(path, 0, total);
  if (!res.body) {
    const all = new Uint8Array(await res.arrayBuffer());
    if (total !== undefined && all.length !== total) fail(`received ${all.length} bytes of ${path}, Content-Length said ${total}`);
    progress.update(path, all.length, total);
    return all;
  }
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = res.body.getReader();
  let finished = false;
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        if (aborted()) throw reason();
        return fail(`download of ${path} broke off after ${loaded}${total !== undefined ? ` of ${total}` : ''} bytes (${(e as Error).message})`);
      }
      if (r.done) {
        finished = true;
        break;
      }
      const chunk = r.value;
      if (out) {
        if (loaded + chunk.length > out.length) fail(`received more bytes of ${path} than its Content-Length (${total})`);
        out.set(chunk, loaded);
      } else {
        chunks.push(chunk);
      }
      loaded += chunk.length;
      progress.update(path, loaded, total);
    }
  } finally {
    if (!finished)
      void reader.cancel().catch(() => {}); // stop the transfer we gave up on
    else reader.releaseLock();
  }
  if (out) {
    if (loaded !== total) fail(`download of ${path} ended after ${loaded} of ${total} bytes`);
    return out;
  }
  out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
