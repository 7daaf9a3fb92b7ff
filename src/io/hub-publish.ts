// Publishing to the Hugging Face Hub from the page: sign in (OAuth with PKCE, or a pasted access token),
// keep the token with its expiry, and upload a model folder plus its model card as one commit.
//
// Why @huggingface/hub: it speaks the Hub's upload protocol (preupload decides which files go through
// LFS, the LFS batch API or Xet uploads them, one NDJSON commit lands them all) and its OAuth helpers
// do PKCE and the nonce check. This module adds what the UI needs around them:
//   - one place where the hub endpoint and client id are set (a mirror, or a fake Hub in tests);
//   - the session (token, expiry, user) in sessionStorage by default, localStorage when the user asks
//     to stay signed in; an expired token is dropped on read, never sent;
//   - errors that name the step that failed (checking the token, creating the repo, uploading) and say
//     what to do for 401, 403, 409 and network failures, instead of the library's bare status lines;
//   - `storage`, `url` and `pkce` can be passed in, so the flow runs in Node tests without a window.
import { commitIter, createRepo, HUB_URL, HubApiError, oauthHandleRedirect, oauthLoginUrl, whoAmI, type CommitOperation } from '@huggingface/hub';
import { checkModelId } from './hub.ts';

/** Scopes a publishing session needs: who you are, create repos (manage-repos), push to them (write-repos). */
export const PUBLISH_SCOPES = 'openid profile write-repos manage-repos';
const SESSION_KEY = 'rlhf-playground:hub-session';
const EXPIRY_MARGIN_MS = 60_000; // a token this close to its expiry is treated as expired

export interface HubSession {
  accessToken: string;
  /** ms since the epoch; undefined for a pasted token (the Hub does not say) */
  expiresAt?: number;
  /** the Hub user name (the default namespace of new repos) */
  user?: string;
  /** organisations the token may write to, when the Hub said */
  orgs?: string[];
  via: 'oauth' | 'token';
  /** the endpoint the token belongs to */
  hubUrl: string;
}

export type KeyValueStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

/** A failure of a Hub step; `status` is the HTTP status when the Hub answered. */
export class HubPublishError extends Error {
  constructor(
    message: string,
    readonly step: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'HubPublishError';
  }
}

// ---------------------------------------------------------------------------------------------
// Endpoint, token and repo checks

/** `hubUrl` without a trailing slash, or the Hub's; throws when it is not an http(s) URL. */
export function hubEndpoint(hubUrl?: string): string {
  const raw = hubUrl?.trim() || HUB_URL;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new HubPublishError(`${JSON.stringify(raw)} is not a URL of a Hugging Face Hub`, 'settings');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new HubPublishError(`${raw}: the Hub must be an http(s) URL`, 'settings');
  return raw.replace(/\/+$/, '');
}

function checkToken(token: string, step: string): string {
  const t = token.trim();
  if (!/^hf_[A-Za-z0-9_-]{4,}$/.test(t)) {
    throw new HubPublishError('a Hugging Face access token starts with "hf_" (create one with the "write" role at huggingface.co/settings/tokens)', step);
  }
  return t;
}

/**
 * "owner/name" for a model repo; a bare "name" goes under `user`. Throws HubPublishError naming the
 * rule when the id is not one the Hub accepts.
 */
export function repoId(repo: string, user?: string): string {
  const r = repo.trim();
  const full = r.includes('/') ? r : user ? `${user}/${r}` : r;
  if (!full.includes('/'))
    throw new HubPublishError(`${JSON.stringify(r)}: give the repo as "owner/name" (or sign in, and "name" goes under your account)`, 'settings');
  try {
    return checkModelId(full);
  } catch (e) {
    throw new HubPublishError(e instanceof Error ? e.message : String(e), 'settings');
  }
}

/** The web page of a model repo, built from a checked id (safe to use as a link). */
export function repoUrl(repo: string, hubUrl?: string): string {
  const id = checkModelId(repo);
  return `${hubEndpoint(hubUrl)}/${id.split('/').map(encodeURIComponent).join('/')}`;
}

/** Turns a library, HTTP or network error of `step` into a HubPublishError that says what to do. */
export function explainHubError(step: string, e: unknown, hubUrl: string): HubPublishError {
  if (e instanceof HubPublishError) return e;
  const detail = e instanceof Error ? e.message.replace(/\. URL: .*$/s, '') : String(e);
  if (e instanceof HubApiError) {
    const s = e.statusCode;
    const say = (what: string) => new HubPublishError(`${step}: ${what} (HTTP ${s}: ${detail})`, step, s, { cause: e });
    if (s === 401) return say('the Hub did not accept the access token; it may have expired or been revoked. Sign in again or paste a new token');
    if (s === 403)
      return say(
        'this token may not do that. An access token needs the "write" role; a sign-in needs the write-repos and manage-repos permissions; and the repo\'s owner must be you or an organisation you may write to',
      );
    if (s === 404) return say('the Hub has no such repo, or this token cannot see it');
    if (s === 409) return say('a conflict: the repo changed meanwhile or the name is taken. Try again, or choose another name');
    if (s === 413) return say('a file is larger than the Hub accepts in one upload');
    if (s === 429) return say('the Hub is rate limiting this client; wait a minute and try again');
    if (s >= 500) return say('the Hub had a problem; try again later');
    return say('the Hub refused the request');
  }
  // fetch rejects with a TypeError on network failures (DNS, refused connections, CORS, offline)
  if (e instanceof TypeError && /fetch|network|load failed|ECONNREFUSED/i.test(`${e.message} ${String((e as { cause?: unknown }).cause ?? '')}`)) {
    return new HubPublishError(`${step}: could not reach ${hubUrl} (${detail}); check the connection and try again`, step, undefined, { cause: e });
  }
  if (e instanceof Error && e.name === 'AbortError') return new HubPublishError(`${step}: cancelled`, step, undefined, { cause: e });
  return new HubPublishError(`${step}: ${detail}`, step, undefined, { cause: e });
}

async function hubStep<T>(step: string, hubUrl: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw explainHubError(step, e, hubUrl);
  }
}

// ---------------------------------------------------------------------------------------------
// Session storage

/** A Web Storage, or undefined where there is none (Node) or the browser refuses it (storage blocked: a SecurityError). */
function webStorage(name: 'sessionStorage' | 'localStorage'): Storage | undefined {
  try {
    return globalThis[name];
  } catch {
    return undefined;
  }
}

const stores = (): KeyValueStorage[] => [webStorage('sessionStorage'), webStorage('localStorage')].filter((s): s is Storage => s !== undefined);

/** The stored session for `hubUrl`, unless it is missing, for another Hub, unreadable or expired (then removed). */
export function loadSession(hubUrl?: string, storage: KeyValueStorage[] = stores()): HubSession | undefined {
  const endpoint = hubEndpoint(hubUrl);
  for (const s of storage) {
    const text = s.getItem(SESSION_KEY);
    if (!text) continue;
    let v: Partial<HubSession>;
    try {
      v = JSON.parse(text) as Partial<HubSession>;
    } catch {
      s.removeItem(SESSION_KEY);
      continue;
    }
    if (typeof v.accessToken !== 'string' || v.hubUrl !== endpoint) continue;
    if (typeof v.expiresAt === 'number' && v.expiresAt - EXPIRY_MARGIN_MS <= Date.now()) {
      s.removeItem(SESSION_KEY);
      continue;
    }
    return v as HubSession;
  }
  return undefined;
}

/** Keeps the session for this tab (sessionStorage), or across visits (`remember`: localStorage). */
export function saveSession(session: HubSession, opts: { remember?: boolean; storage?: KeyValueStorage } = {}): void {
  const target = opts.storage ?? webStorage(opts.remember ? 'localStorage' : 'sessionStorage');
  if (!target) throw new Error('no Web Storage here to keep the Hugging Face session in');
  for (const s of stores()) if (s !== target) s.removeItem(SESSION_KEY);
  target.setItem(SESSION_KEY, JSON.stringify(session));
}

/** Forgets the token (both storages). The Hub token itself stays valid until it expires or is revoked. */
export function signOut(storage: KeyValueStorage[] = stores()): void {
  for (const s of storage) s.removeItem(SESSION_KEY);
}

// ---------------------------------------------------------------------------------------------
// Sign in

export interface OAuthSettings {
  /** The OAuth app's client id (huggingface.co/settings/applications); inside a Space with hf_oauth the Space's own. */
  clientId?: string;
  hubUrl?: string;
  scopes?: string;
  /** Where the Hub sends the user back; default this page without a previous code/state (its #fragment comes back through the OAuth state). */
  redirectUrl?: string;
  /** Holds the PKCE verifier and nonce instead of localStorage (Node tests); pass the same object to completeSignIn. */
  pkce?: { codeVerifier?: string; nonce?: string };
}

const OAUTH_PARAMS = ['code', 'state', 'error', 'error_description'];

/** `url` without the parameters the OAuth redirect adds. */
export function withoutOAuthParams(url: string): string {
  const u = new URL(url);
  for (const p of OAUTH_PARAMS) u.searchParams.delete(p);
  return u.href;
}

/** Whether "Sign in with Hugging Face" can work here: an OAuth app's client id, or a Space with `hf_oauth: true` (the library finds the Space's own). */
export function oauthAvailable(clientId: string | undefined): boolean {
  return !!clientId || !!(globalThis as { huggingface?: { variables?: { OAUTH_CLIENT_ID?: string } } }).huggingface?.variables?.OAUTH_CLIENT_ID;
}

/** The Hub's authorization URL to send the user to (location.assign it). */
export async function signInUrl(o: OAuthSettings): Promise<string> {
  const hubUrl = hubEndpoint(o.hubUrl);
  // a redirect URI has no fragment (RFC 6749 3.1.2): the page's #tab travels in the OAuth state instead
  const here = typeof location !== 'undefined' ? new URL(withoutOAuthParams(location.href)) : undefined;
  const hash = here?.hash || undefined;
  if (here) here.hash = '';
  const redirectUrl = o.redirectUrl ?? here?.href;
  if (!oauthAvailable(o.clientId)) {
    throw new HubPublishError(
      `starting the sign-in: no OAuth client id is set. Register an app at ${hubUrl}/settings/applications and set its id, or paste an access token instead`,
      'starting the sign-in',
    );
  }
  return hubStep('starting the sign-in', hubUrl, () =>
    oauthLoginUrl({
      clientId: o.clientId || undefined,
      hubUrl,
      scopes: o.scopes ?? PUBLISH_SCOPES,
      redirectUrl,
      state: o.redirectUrl ? undefined : hash,
      ...(o.pkce ? { localStorage: o.pkce } : {}),
    }),
  );
}

/**
 * After the Hub sent the user back: exchanges the code for a token, stores the session and removes the
 * code from the address bar. Undefined when `url` (default: this page) carries no OAuth answer, or
 * when it is a stale one (a reload after signing in).
 */
export async function completeSignIn(
  o: { hubUrl?: string; url?: string; pkce?: { codeVerifier?: string; nonce?: string }; remember?: boolean; storage?: KeyValueStorage } = {},
): Promise<HubSession | undefined> {
  const hubUrl = hubEndpoint(o.hubUrl);
  const url = o.url ?? (typeof location !== 'undefined' ? location.href : undefined);
  if (!url) return undefined;
  const params = new URL(url).searchParams;
  if (!params.has('code') && !params.has('error')) return undefined;
  const cleanUp = () => {
    if (o.url === undefined && typeof history !== 'undefined') history.replaceState(history.state, '', withoutOAuthParams(url));
  };
  const nonce = o.pkce?.nonce ?? webStorage('localStorage')?.getItem('huggingface.co:oauth:nonce') ?? undefined;
  if (params.has('code') && !nonce) {
    cleanUp(); // a code we have already exchanged (the page was reloaded): nothing to do
    return undefined;
  }
  try {
    const r = await hubStep('signing in with Hugging Face', hubUrl, () =>
      oauthHandleRedirect({ hubUrl, redirectedUrl: url, ...(o.pkce ? { nonce: o.pkce.nonce, codeVerifier: o.pkce.codeVerifier } : {}) }),
    );
    const session: HubSession = {
      accessToken: r.accessToken,
      expiresAt: r.accessTokenExpiresAt.getTime(),
      user: r.userInfo.preferred_username,
      orgs: r.userInfo.orgs?.map((g) => g.preferred_username),
      via: 'oauth',
      hubUrl,
    };
    saveSession(session, { remember: o.remember, storage: o.storage });
    cleanUp();
    // back to the part of the page the user signed in from (a hash change, so a tabbed page follows it)
    if (o.url === undefined && r.state?.startsWith('#') && typeof location !== 'undefined' && !location.hash) location.hash = r.state;
    return session;
  } catch (e) {
    cleanUp();
    throw e;
  }
}

/** Checks a pasted access token with the Hub (whoami) and stores the session. */
export async function signInWithToken(token: string, o: { hubUrl?: string; remember?: boolean; storage?: KeyValueStorage } = {}): Promise<HubSession> {
  const hubUrl = hubEndpoint(o.hubUrl);
  const step = 'checking the access token';
  const accessToken = checkToken(token, step);
  const me = await hubStep(step, hubUrl, () => whoAmI({ accessToken, hubUrl }));
  if (me.type !== 'user')
    throw new HubPublishError(`${step}: this is a token of ${me.type} ${JSON.stringify(me.name)}, not of a user; create a user access token`, step);
  const session: HubSession = { accessToken, user: me.name, orgs: me.orgs?.map((g) => g.name), via: 'token', hubUrl };
  saveSession(session, { remember: o.remember, storage: o.storage });
  return session;
}

// ---------------------------------------------------------------------------------------------
// Publish

export interface PublishProgress {
  phase: 'checking' | 'creating' | 'preuploading' | 'uploading' | 'committing' | 'done';
  /** the file being hashed or uploaded, and how far (0..1) */
  file?: string;
  fraction?: number;
}

export interface PublishInput {
  repo: string; // "owner/name", or "name" for the token's user
  files: Map<string, Uint8Array>;
  card: string; // README.md
  private: boolean;
  accessToken: string;
  hubUrl?: string;
  commitTitle?: string;
  onProgress?: (p: PublishProgress) => void;
  signal?: AbortSignal;
}

export interface PublishResult {
  repo: string;
  /** the repo's page (built from the checked id) */
  url: string;
  /** false when the repo was there already (its visibility is left as it was) */
  created: boolean;
  commit?: string;
}

function checkPath(path: string): string {
  if (
    !path ||
    path.startsWith('/') ||
    path.endsWith('/') ||
    path.includes('\\') ||
    path.split('/').some((p) => p === '' || p === '.' || p === '..') ||
    /[\u0000-\u001f]/.test(path)
  ) {
    throw new HubPublishError(`${JSON.stringify(path)} is not a file path a repo can hold`, 'settings');
  }
  return path;
}

/**
 * Creates the model repo (an existing one is reused) and uploads `files` plus `card` as README.md in
 * one commit. Throws HubPublishError naming the step that failed.
 */
export async function publish(x: PublishInput): Promise<PublishResult> {
  const hubUrl = hubEndpoint(x.hubUrl);
  const accessToken = checkToken(x.accessToken, 'settings');
  const progress = (p: PublishProgress) => x.onProgress?.(p);
  for (const path of x.files.keys()) checkPath(path);

  let repo = x.repo.trim();
  if (!repo.includes('/')) {
    progress({ phase: 'checking' });
    const me = await hubStep('checking the access token', hubUrl, () => whoAmI({ accessToken, hubUrl }));
    repo = `${me.name}/${repo}`;
  }
  repo = repoId(repo);

  progress({ phase: 'creating' });
  let created = true;
  await hubStep(`creating the repo ${repo}`, hubUrl, async () => {
    try {
      await createRepo({ repo: { type: 'model', name: repo }, accessToken, hubUrl, visibility: x.private ? 'private' : 'public' });
    } catch (e) {
      if (!(e instanceof HubApiError && e.statusCode === 409)) throw e; // 409: it exists; upload into it
      created = false;
    }
  });

  const operations: CommitOperation[] = [
    ...[...x.files]
      .filter(([path]) => path !== 'README.md')
      .map(([path, bytes]): CommitOperation => ({ operation: 'addOrUpdate', path, content: new Blob([bytes as BlobPart]) })),
    { operation: 'addOrUpdate', path: 'README.md', content: new Blob([x.card], { type: 'text/markdown' }) },
  ];
  const out = await hubStep(`uploading ${operations.length} files to ${repo}`, hubUrl, async () => {
    // useXet: false keeps to LFS basic/multipart uploads, which the Hub still takes and our tests check
    // (the Xet path loads a wasm chunker in the page and is not exercised by the fake Hub)
    const it = commitIter({
      repo: { type: 'model', name: repo },
      operations,
      title: x.commitTitle ?? 'Upload from RLHF Playground',
      accessToken,
      hubUrl,
      abortSignal: x.signal,
      useXet: false,
    });
    for (let r = await it.next(); ; r = await it.next()) {
      if (r.done) return r.value;
      const ev = r.value;
      if (ev.event === 'phase') progress({ phase: ev.phase === 'uploadingLargeFiles' ? 'uploading' : ev.phase });
      else if (ev.state === 'error') throw new Error(`the Hub did not take ${ev.path}`);
      else progress({ phase: 'uploading', file: ev.path, fraction: ev.progress });
    }
  });
  progress({ phase: 'done' });
  return { repo, url: repoUrl(repo, hubUrl), created, commit: out?.commit.oid };
}
