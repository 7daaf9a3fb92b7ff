// A tiny Hugging Face Hub on node:http for tests: the endpoints @huggingface/hub (2.x) calls to sign in,
// create a repo and commit files, and the `resolve` URLs models are read back from. It checks what the
// real Hub checks where a client bug would show (bearer tokens and their permissions, the PKCE verifier,
// the LFS object's SHA-256 and size, a commit naming only uploaded objects) and records what arrived, so
// a test can assert on bytes and headers. CORS is open, so a page on another port can use it.
//
//   GET  /.well-known/openid-configuration      OpenID discovery (oauthLoginUrl, oauthHandleRedirect)
//   GET  /oauth/authorize                       signs in `user` at once: 302 to redirect_uri?code&state
//   POST /oauth/token                           code + code_verifier (S256) -> hf_oauth_... token
//   GET  /oauth/userinfo                        the user of a bearer token
//   GET  /api/whoami-v2                         (whoAmI)
//   POST /api/repos/create                      (createRepo) 409 when it exists
//   POST /api/models/:ns/:name/preupload/:rev   which files go through LFS: *.safetensors, *.bin, *.zip, binary or > 10 MB
//   POST /:ns/:name.git/info/lfs/objects/batch  LFS batch, answered with the "basic" transfer (the client falls back from Xet)
//   PUT  /_lfs/:oid                             the object's bytes (no auth, like a signed storage URL)
//   POST /api/models/:ns/:name/commit/:rev      NDJSON: header, file (base64), lfsFile (oid), deletedFile
//   GET  /:ns/:name/resolve/:rev/:path          a file, with the Hub's X-Error-Code on 404
//
// `fail(...)` makes the next matching request answer with a given status, for error paths.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenInfo {
  user: string;
  role?: 'read' | 'write';
  scopes?: string[];
}
export interface FakeRepo {
  id: string;
  private: boolean;
  files: Map<string, Uint8Array>;
}
export interface ReceivedRequest {
  method: string;
  path: string;
  auth?: string;
  contentType?: string;
}
export interface ReceivedCommit {
  repo: string;
  title: string;
  auth?: string;
  files: Map<string, Uint8Array>;
  lfs: string[];
}

export interface FakeHubOptions {
  /** the OAuth app's client id that authorize accepts (default 'test-client') */
  clientId?: string;
  /** the user OAuth signs in (default 'alice') and the organisations they belong to */
  user?: string;
  orgs?: string[];
  /** access tokens the Hub knows, besides the ones OAuth issues */
  tokens?: Record<string, TokenInfo>;
  /** seconds an OAuth token lives (default 8 hours, as the Hub's) */
  expiresIn?: number;
}

export interface FakeHub {
  url: string;
  repos: Map<string, FakeRepo>;
  requests: ReceivedRequest[];
  commits: ReceivedCommit[];
  /** the transfer methods each LFS batch request offered */
  lfsTransfers: string[][];
  tokens: Map<string, TokenInfo>;
  /** the next request matching `method` and `path` answers `status` with `{ error }` */
  fail(method: string, path: RegExp, status: number, error?: string): void;
  /** files read through `resolve` whose path matches are sent `chunkBytes` at a time, `delayMs` apart (a slow network) */
  throttle(path: RegExp, chunkBytes: number, delayMs: number): void;
  close(): Promise<void>;
}

const MAX_BODY = 256 * 2 ** 20;
const LFS_EXT = /\.(safetensors|bin|zip|pt|pth|ckpt|gguf|onnx|msgpack|h5)$/i;
const b64url = (b: Buffer) => b.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_BODY) throw new HttpError(413, 'request body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

function json<T>(b: Buffer, what: string): T {
  try {
    return JSON.parse(b.toString('utf8')) as T;
  } catch {
    throw new HttpError(400, `${what}: the body is not JSON`);
  }
}

export async function startFakeHub(opts: FakeHubOptions = {}): Promise<FakeHub> {
  const clientId = opts.clientId ?? 'test-client';
  const user = opts.user ?? 'alice';
  const orgs = opts.orgs ?? [];
  const tokens = new Map(Object.entries(opts.tokens ?? {}));
  const repos = new Map<string, FakeRepo>();
  const requests: ReceivedRequest[] = [];
  const commits: ReceivedCommit[] = [];
  const lfsTransfers: string[][] = [];
  const lfs = new Map<string, Uint8Array>();
  const codes = new Map<string, { challenge: string; redirectUri: string; scopes: string[] }>();
  const failures: { method: string; path: RegExp; status: number; error: string }[] = [];
  const throttles: { path: RegExp; chunkBytes: number; delayMs: number }[] = [];
  let url = '';

  const send = (res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}) => {
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
    res.writeHead(status, { 'Content-Type': typeof payload === 'string' ? 'text/plain' : 'application/json', ...headers });
    res.end(text);
  };

  /** The token of the request, checked; 401 like the Hub when it is missing or unknown. */
  const auth = (req: IncomingMessage): TokenInfo => {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const t = m ? tokens.get(m[1]!) : undefined;
    if (!t) throw new HttpError(401, 'Invalid credentials in Authorization header');
    return t;
  };
  const may = (t: TokenInfo, what: 'write-repos' | 'manage-repos') => t.role === 'write' || (t.scopes ?? []).includes(what);
  const namespaces = (t: TokenInfo) => (t.user === user ? [user, ...orgs] : [t.user]);
  const writable = (req: IncomingMessage, id: string): FakeRepo => {
    const t = auth(req);
    const repo = repos.get(id);
    if (!repo || (repo.private && !namespaces(t).includes(id.split('/')[0]!))) throw new HttpError(404, `Repository not found: ${id}`, 'RepoNotFound');
    if (!may(t, 'write-repos') || !namespaces(t).includes(id.split('/')[0]!)) throw new HttpError(403, `You don't have the rights to write to ${id}`);
    return repo;
  };

  const routes: [string, RegExp, (req: IncomingMessage, res: ServerResponse, m: RegExpExecArray, q: URLSearchParams) => Promise<void> | void][] = [
    [
      'GET',
      /^\/\.well-known\/openid-configuration$/,
      (_req, res) =>
        send(res, 200, {
          issuer: url,
          authorization_endpoint: `${url}/oauth/authorize`,
          token_endpoint: `${url}/oauth/token`,
          userinfo_endpoint: `${url}/oauth/userinfo`,
          response_types_supported: ['code'],
          code_challenge_methods_supported: ['S256'],
          scopes_supported: ['openid', 'profile', 'read-repos', 'write-repos', 'manage-repos'],
        }),
    ],
    [
      'GET',
      /^\/oauth\/authorize$/,
      (_req, res, _m, q) => {
        const redirect = q.get('redirect_uri') ?? '';
        if (!/^https?:\/\//.test(redirect)) throw new HttpError(400, 'invalid redirect_uri');
        const back = new URL(redirect);
        const deny = (error: string, description: string) => {
          back.searchParams.set('error', error);
          back.searchParams.set('error_description', description);
          back.searchParams.set('state', q.get('state') ?? '');
          send(res, 302, '', { Location: back.href });
        };
        if (q.get('client_id') !== clientId) return deny('invalid_client', `unknown client_id ${q.get('client_id')}`);
        if (q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge'))
          return deny('invalid_request', 'PKCE with S256 and response_type=code required');
        const code = randomBytes(12).toString('hex');
        codes.set(code, { challenge: q.get('code_challenge')!, redirectUri: redirect, scopes: (q.get('scope') ?? '').split(' ').filter(Boolean) });
        back.searchParams.set('code', code);
        back.searchParams.set('state', q.get('state') ?? '');
        send(res, 302, '', { Location: back.href });
      },
    ],
    [
      'POST',
      /^\/oauth\/token$/,
      async (req, res) => {
        const f = new URLSearchParams((await body(req)).toString('utf8'));
        const c = codes.get(f.get('code') ?? '');
        if (f.get('grant_type') !== 'authorization_code' || !c) throw new HttpError(400, 'invalid_grant');
        codes.delete(f.get('code')!); // a code is used once
        if (f.get('redirect_uri') !== c.redirectUri) throw new HttpError(400, 'invalid_grant: redirect_uri does not match');
        if (
          b64url(
            createHash('sha256')
              .update(f.get('code_verifier') ?? '')
              .digest(),
          ) !== c.challenge
        )
          throw new HttpError(400, 'invalid_grant: code_verifier does not match the challenge');
        const token = `hf_oauth_${randomBytes(16).toString('hex')}`;
        tokens.set(token, { user, scopes: c.scopes });
        send(res, 200, {
          access_token: token,
          token_type: 'bearer',
          expires_in: opts.expiresIn ?? 28_800,
          scope: c.scopes.join(' '),
          id_token: 'fake.id.token',
        });
      },
    ],
    [
      'GET',
      /^\/oauth\/userinfo$/,
      (req, res) => {
        const t = auth(req);
        send(res, 200, {
          sub: `id-${t.user}`,
          name: t.user.toUpperCase(),
          preferred_username: t.user,
          picture: '',
          profile: `${url}/${t.user}`,
          isPro: false,
          orgs: (t.user === user ? orgs : []).map((o) => ({ sub: `id-${o}`, name: o, preferred_username: o, picture: '' })),
        });
      },
    ],
    [
      'GET',
      /^\/api\/whoami-v2$/,
      (req, res) => {
        const t = auth(req);
        send(res, 200, {
          type: 'user',
          id: `id-${t.user}`,
          name: t.user,
          fullname: t.user.toUpperCase(),
          email: null,
          emailVerified: false,
          isPro: false,
          canPay: false,
          avatarUrl: '',
          periodEnd: null,
          billingMode: 'prepaid',
          orgs: (t.user === user ? orgs : []).map((o) => ({ type: 'org', id: `id-${o}`, name: o, fullname: o })),
          auth: t.scopes
            ? { type: 'oauth', expiresAt: null }
            : { type: 'access_token', accessToken: { displayName: 'test token', role: t.role ?? 'read', createdAt: new Date(0).toISOString() } },
        });
      },
    ],
    [
      'POST',
      /^\/api\/repos\/create$/,
      async (req, res) => {
        const t = auth(req);
        const p = json<{ name?: string; organization?: string; type?: string; visibility?: string; private?: boolean }>(await body(req), 'repos/create');
        const ns = p.organization ?? t.user;
        if (!p.name || (p.type ?? 'model') !== 'model') throw new HttpError(400, 'this fake Hub creates model repos only');
        if (!may(t, 'manage-repos') || !namespaces(t).includes(ns))
          throw new HttpError(403, `You don't have the rights to create a model under the namespace "${ns}"`);
        const id = `${ns}/${p.name}`;
        if (repos.has(id)) return send(res, 409, { error: 'You already created this model repo', url: `${url}/${id}` });
        repos.set(id, { id, private: p.visibility === 'private' || p.private === true, files: new Map() });
        send(res, 200, { url: `${url}/${id}`, name: id, id: `repo-${repos.size}` });
      },
    ],
    [
      'POST',
      /^\/api\/models\/([^/]+\/[^/]+)\/preupload\/([^/]+)$/,
      async (req, res, m) => {
        writable(req, m[1]!);
        const p = json<{ files: { path: string; size: number; sample: string }[] }>(await body(req), 'preupload');
        send(res, 200, {
          files: p.files.map((f) => {
            const sample = Buffer.from(f.sample, 'base64');
            const lfsMode = LFS_EXT.test(f.path) || f.size > 10 * 2 ** 20 || sample.includes(0);
            return { path: f.path, uploadMode: lfsMode ? 'lfs' : 'regular', shouldIgnore: false };
          }),
        });
      },
    ],
    [
      'POST',
      /^\/([^/]+\/[^/]+)\.git\/info\/lfs\/objects\/batch$/,
      async (req, res, m) => {
        writable(req, m[1]!);
        const p = json<{ operation: string; transfers?: string[]; objects: { oid: string; size: number }[] }>(await body(req), 'lfs batch');
        lfsTransfers.push(p.transfers ?? ['basic']);
        if (p.operation !== 'upload' || !(p.transfers ?? ['basic']).includes('basic')) throw new HttpError(422, 'only basic uploads');
        send(
          res,
          200,
          {
            transfer: 'basic',
            objects: p.objects.map((o) =>
              lfs.has(o.oid)
                ? { oid: o.oid, size: o.size }
                : { oid: o.oid, size: o.size, authenticated: true, actions: { upload: { href: `${url}/_lfs/${o.oid}?size=${o.size}`, expires_in: 3600 } } },
            ),
          },
          { 'Content-Type': 'application/vnd.git-lfs+json' },
        );
      },
    ],
    [
      'PUT',
      /^\/_lfs\/([0-9a-f]{64})$/,
      async (req, res, m, q) => {
        const bytes = await body(req);
        if (sha256(bytes) !== m[1] || String(bytes.length) !== q.get('size'))
          throw new HttpError(400, `the object's bytes do not match its oid or size (${bytes.length} bytes)`);
        lfs.set(m[1]!, new Uint8Array(bytes));
        send(res, 200, '', { ETag: `"${m[1]}"` });
      },
    ],
    [
      'POST',
      /^\/api\/models\/([^/]+\/[^/]+)\/commit\/([^/]+)$/,
      async (req, res, m) => {
        const id = m[1]!;
        const repo = writable(req, id);
        if (!/ndjson/.test(req.headers['content-type'] ?? '')) throw new HttpError(400, 'commit: expected application/x-ndjson');
        const lines = (await body(req))
          .toString('utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => json<{ key: string; value: Record<string, unknown> }>(Buffer.from(l), 'commit line'));
        const header = lines[0];
        if (header?.key !== 'header') throw new HttpError(400, 'commit: the first line must be the header');
        const files = new Map<string, Uint8Array>(),
          lfsPaths: string[] = [],
          deleted: string[] = [];
        for (const { key, value } of lines.slice(1)) {
          const path = String(value.path);
          if (key === 'file') {
            if (value.encoding !== 'base64') throw new HttpError(400, `commit: ${path}: only base64 content`);
            files.set(path, new Uint8Array(Buffer.from(String(value.content), 'base64')));
          } else if (key === 'lfsFile') {
            const obj = lfs.get(String(value.oid));
            if (!obj || obj.length !== value.size) throw new HttpError(422, `commit: ${path}: LFS object ${String(value.oid)} was not uploaded`);
            files.set(path, obj);
            lfsPaths.push(path);
          } else if (key === 'deletedFile') deleted.push(path);
          else throw new HttpError(400, `commit: unknown line ${key}`);
        }
        for (const p of deleted) repo.files.delete(p);
        for (const [p, b] of files) repo.files.set(p, b);
        commits.push({ repo: id, title: String(header.value.summary), auth: req.headers.authorization, files, lfs: lfsPaths });
        const oid = sha256(Buffer.from(`${id}:${commits.length}`)).slice(0, 40);
        send(res, 200, { success: true, commitOid: oid, commitUrl: `${url}/${id}/commit/${oid}`, hookOutput: '' });
      },
    ],
    [
      'GET',
      /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/,
      (req, res, m) => {
        const repo = repos.get(m[1]!);
        const t = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
        const reader = t ? tokens.get(t[1]!) : undefined;
        if (!repo || (repo.private && !(reader && namespaces(reader).includes(m[1]!.split('/')[0]!))))
          throw new HttpError(repo ? 401 : 404, 'Repository not found', 'RepoNotFound');
        const file = repo.files.get(decodeURIComponent(m[3]!));
        if (!file) throw new HttpError(404, 'Entry not found', 'EntryNotFound');
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(file.length) });
        const slow = throttles.find((t) => t.path.test(new URL(req.url ?? '/', url).pathname));
        if (!slow) return void res.end(file);
        let at = 0;
        const next = () => {
          if (res.destroyed) return;
          const end = Math.min(file.length, at + slow.chunkBytes);
          res.write(file.subarray(at, end));
          at = end;
          if (at < file.length) setTimeout(next, slow.delayMs);
          else res.end();
        };
        next();
      },
    ],
  ];

  const server = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'X-Error-Code, X-Error-Message, X-Request-Id, ETag, Content-Length');
    const u = new URL(req.url ?? '/', url);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, HEAD, POST, PUT, OPTIONS',
        'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? 'Authorization, Content-Type',
        'Access-Control-Max-Age': '600',
      });
      return res.end();
    }
    requests.push({ method: req.method ?? '', path: u.pathname, auth: req.headers.authorization, contentType: req.headers['content-type'] });
    void (async () => {
      const f = failures.findIndex((x) => x.method === req.method && x.path.test(u.pathname));
      if (f >= 0) {
        const [x] = failures.splice(f, 1);
        await body(req);
        return send(res, x!.status, { error: x!.error });
      }
      for (const [method, re, handle] of routes) {
        const m = re.exec(u.pathname);
        if (m && (method === req.method || (method === 'GET' && req.method === 'HEAD'))) return await handle(req, res, m, u.searchParams);
      }
      throw new HttpError(404, `fake Hub: no route for ${req.method} ${u.pathname}`);
    })().catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      const msg = e instanceof Error ? e.message : String(e);
      if (!res.headersSent) send(res, status, { error: msg }, e instanceof HttpError && e.code ? { 'X-Error-Code': e.code } : {});
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    repos,
    requests,
    commits,
    lfsTransfers,
    tokens,
    fail: (method, path, status, error = `fake failure ${status}`) => void failures.push({ method, path, status, error }),
    throttle: (path, chunkBytes, delayMs) => void throttles.push({ path, chunkBytes, delayMs }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
