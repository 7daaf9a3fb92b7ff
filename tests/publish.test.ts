// Publishing to the Hub through @huggingface/hub, against the fake Hub of tests/helpers/fake-hub.ts: the files
// arrive byte for byte (text inline in the commit, weights through LFS), README.md is the model card,
// every API call carries the token, and 401 / 403 / network / server failures say which step failed and
// what to do. The OAuth sign-in (PKCE) runs in Node too, with the verifier kept in an object.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  completeSignIn,
  HubPublishError,
  loadSession,
  publish,
  repoId,
  repoUrl,
  saveSession,
  signInUrl,
  signInWithToken,
  signOut,
  withoutOAuthParams,
  type KeyValueStorage,
  type PublishProgress,
} from '../src/io/hub-publish.ts';
import { modelCard } from '../src/io/model-card.ts';
import { startFakeHub, type FakeHub } from './helpers/fake-hub.ts';
import { readFrontMatter } from './helpers/front-matter.ts';

const WRITE = 'hf_writeToken0123456789',
  READ = 'hf_readToken0123456789',
  BOB = 'hf_bobToken0123456789';
let hub: FakeHub;

beforeAll(async () => {
  hub = await startFakeHub({
    user: 'alice',
    orgs: ['alice-lab'],
    tokens: { [WRITE]: { user: 'alice', role: 'write' }, [READ]: { user: 'alice', role: 'read' }, [BOB]: { user: 'bob', role: 'write' } },
  });
});
afterAll(() => hub.close());
beforeEach(() => {
  hub.requests.length = 0;
});

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

function adapterFiles(): Map<string, Uint8Array> {
  return new Map([
    ['adapter_config.json', utf8(JSON.stringify({ base_model_name_or_path: 'openai-community/gpt2', peft_type: 'LORA', r: 4 }))],
    ['adapter_model.safetensors', new Uint8Array(randomBytes(300_000))], // binary: goes through LFS
    ['extra/notes.txt', utf8('weights trained in a tab\n')],
  ]);
}
const card = modelCard({
  kind: 'adapter',
  baseModel: 'openai-community/gpt2',
  repo: 'alice/tiny-adapter',
  license: 'mit',
  description: 'He said "hi"\n---\nlicense: evil',
  stages: [{ stage: 'sft', steps: 3, config: { lr: 2e-4, loraRank: 4, loraAlpha: 8 }, metrics: { loss: 1.25 } }],
  data: { demonstrations: 6 },
});

/** A Web Storage stand-in. */
function memoryStorage(): KeyValueStorage & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v), removeItem: (k) => void map.delete(k) };
}

async function failure(p: Promise<unknown>): Promise<HubPublishError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(HubPublishError);
  return e as HubPublishError;
}

describe('publish', () => {
  it('creates the repo and uploads the files and the model card in one commit, byte for byte', async () => {
    const files = adapterFiles();
    const seen: PublishProgress['phase'][] = [];
    const r = await publish({
      repo: 'alice/tiny-adapter',
      files,
      card,
      private: true,
      accessToken: WRITE,
      hubUrl: hub.url + '/',
      onProgress: (p) => void seen.push(p.phase),
    });
    expect(r).toMatchObject({ repo: 'alice/tiny-adapter', url: `${hub.url}/alice/tiny-adapter`, created: true });
    expect(r.commit).toMatch(/^[0-9a-f]{40}$/);

    const repo = hub.repos.get('alice/tiny-adapter')!;
    expect(repo.private).toBe(true);
    expect([...repo.files.keys()].sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'extra/notes.txt']);
    for (const [path, bytes] of files) expect(Buffer.from(repo.files.get(path)!).equals(Buffer.from(bytes)), path).toBe(true);
    expect(text(repo.files.get('README.md'))).toBe(card);

    // one commit; the weights went through LFS, the text inline
    expect(hub.commits).toHaveLength(1);
    expect(hub.commits[0]!.lfs).toEqual(['adapter_model.safetensors']);
    // the tested path: LFS basic/multipart uploads, never the Xet protocol this fake Hub cannot check
    expect(hub.lfsTransfers.length).toBeGreaterThan(0);
    expect(hub.lfsTransfers.flat()).not.toContain('xet');
    expect(hub.commits[0]!.title).toBe('Upload from RLHF Playground');

    // the README's front matter as the Hub reads it
    const { meta, body } = readFrontMatter(text(repo.files.get('README.md')));
    expect(meta.get('base_model')).toBe('openai-community/gpt2');
    expect(meta.get('library_name')).toBe('peft');
    expect(meta.get('license')).toBe('mit');
    expect(meta.get('tags')).toEqual(['rlhf-playground', 'rlhf', 'sft', 'lora']);
    // the description as written, its line break kept as a hard break, and the "---" line escaped (no front matter end, no rule)
    expect(body).toContain('He said "hi"\\\n\\---\\\nlicense: evil');

    // every Hub API call carried the token; the LFS upload (a storage URL) did not need it
    const api = hub.requests.filter((q) => !q.path.startsWith('/_lfs/'));
    expect(api.map((q) => `${q.method} ${q.path}`)).toEqual([
      'POST /api/repos/create',
      'POST /api/models/alice/tiny-adapter/preupload/main',
      'POST /alice/tiny-adapter.git/info/lfs/objects/batch',
      'POST /api/models/alice/tiny-adapter/commit/main',
    ]);
    for (const q of api) expect(q.auth, q.path).toBe(`Bearer ${WRITE}`);
    expect(hub.requests.filter((q) => q.path.startsWith('/_lfs/'))).toHaveLength(1);
    expect(seen[0]).toBe('creating');
    expect(seen).toEqual(expect.arrayContaining(['preuploading', 'uploading', 'committing']));
    expect(seen.at(-1)).toBe('done');
  });

  it("publishes into an existing repo (a second version), and puts a bare name under the token's user", async () => {
    const files = new Map([['adapter_config.json', utf8('{"r": 8}')]]);
    const again = await publish({ repo: 'alice/tiny-adapter', files, card: '# v2\n', private: false, accessToken: WRITE, hubUrl: hub.url });
    expect(again.created).toBe(false);
    const repo = hub.repos.get('alice/tiny-adapter')!;
    expect(text(repo.files.get('adapter_config.json'))).toBe('{"r": 8}');
    expect(text(repo.files.get('README.md'))).toBe('# v2\n');
    expect(repo.private).toBe(true); // visibility stays as it was
    expect(repo.files.has('adapter_model.safetensors')).toBe(true);

    hub.requests.length = 0;
    const bare = await publish({ repo: 'bare-name', files, card: '# b\n', private: false, accessToken: WRITE, hubUrl: hub.url });
    expect(bare.repo).toBe('alice/bare-name');
    expect(hub.requests[0]).toMatchObject({ method: 'GET', path: '/api/whoami-v2', auth: `Bearer ${WRITE}` });
    // an organisation of the user
    expect((await publish({ repo: 'alice-lab/shared', files, card: '#\n', private: false, accessToken: WRITE, hubUrl: hub.url })).created).toBe(true);
  });

  it('a rejected token (401) says to sign in again and names the step', async () => {
    const e = await failure(publish({ repo: 'alice/x', files: adapterFiles(), card, private: false, accessToken: 'hf_unknownToken1234', hubUrl: hub.url }));
    expect(e.status).toBe(401);
    expect(e.step).toBe('creating the repo alice/x');
    expect(e.message).toMatch(/^creating the repo alice\/x: the Hub did not accept the access token.*sign in again/i);
    expect(e.message).toMatch(/HTTP 401: Invalid credentials/);
  });

  it("a read-only token, or another user's namespace, is a 403 that says what permission is missing", async () => {
    const e = await failure(publish({ repo: 'alice/y', files: adapterFiles(), card, private: false, accessToken: READ, hubUrl: hub.url }));
    expect(e.status).toBe(403);
    expect(e.message).toMatch(/creating the repo alice\/y: this token may not do that.*"write" role/);
    const f = await failure(publish({ repo: 'alice/z', files: adapterFiles(), card, private: false, accessToken: BOB, hubUrl: hub.url }));
    expect(f.status).toBe(403);
    expect(f.message).toMatch(/owner must be you or an organisation/);
    expect(hub.repos.has('alice/y') || hub.repos.has('alice/z')).toBe(false);
  });

  it('a failure during the upload names the upload step; a server error says to try later', async () => {
    hub.fail('POST', /\/commit\//, 500, 'Internal Error');
    const e = await failure(publish({ repo: 'alice/flaky', files: adapterFiles(), card, private: false, accessToken: WRITE, hubUrl: hub.url }));
    expect(e.status).toBe(500);
    expect(e.message).toMatch(/^uploading 4 files to alice\/flaky: the Hub had a problem; try again later \(HTTP 500: Internal Error\)/);
    hub.fail('POST', /\/preupload\//, 409, 'conflict');
    const c = await failure(publish({ repo: 'alice/flaky', files: adapterFiles(), card, private: false, accessToken: WRITE, hubUrl: hub.url }));
    expect(c.status).toBe(409);
    expect(c.message).toMatch(/a conflict/);
  });

  it('an unreachable Hub is a network error naming the address', async () => {
    const gone = await startFakeHub();
    await gone.close();
    const e = await failure(publish({ repo: 'alice/x', files: adapterFiles(), card, private: false, accessToken: WRITE, hubUrl: gone.url }));
    expect(e.status).toBeUndefined();
    expect(e.message).toContain(`creating the repo alice/x: could not reach ${gone.url}`);
  });

  it('refuses bad input before any request', async () => {
    await expect(publish({ repo: 'alice/x', files: adapterFiles(), card, private: false, accessToken: 'not-a-token', hubUrl: hub.url })).rejects.toThrow(
      /starts with "hf_"/,
    );
    await expect(publish({ repo: 'alice/../x', files: adapterFiles(), card, private: false, accessToken: WRITE, hubUrl: hub.url })).rejects.toThrow(
      /not a Hugging Face model id/,
    );
    await expect(
      publish({ repo: 'alice/x', files: new Map([['../evil', utf8('x')]]), card, private: false, accessToken: WRITE, hubUrl: hub.url }),
    ).rejects.toThrow(/not a file path/);
    await expect(publish({ repo: 'alice/x', files: adapterFiles(), card, private: false, accessToken: WRITE, hubUrl: 'ftp://x' })).rejects.toThrow(/http\(s\)/);
    expect(hub.requests).toEqual([]);
    expect(repoId('name', 'alice')).toBe('alice/name');
    expect(() => repoId('name')).toThrow(/"owner\/name"/);
    expect(repoUrl('alice/x', hub.url)).toBe(`${hub.url}/alice/x`);
    expect(() => repoUrl('javascript:alert(1)//x')).toThrow();
  });
});

describe('sign-in', () => {
  it('OAuth with PKCE: the Hub sends back a code, the verifier gets a token with the publishing scopes, the session is kept', async () => {
    const pkce = {};
    const storage = memoryStorage();
    const url = await signInUrl({ clientId: 'test-client', hubUrl: hub.url, redirectUrl: 'http://app.test/share?tab=share', pkce });
    const u = new URL(url);
    expect(u.origin + u.pathname).toBe(`${hub.url}/oauth/authorize`);
    expect(u.searchParams.get('scope')).toBe('openid profile write-repos manage-repos');
    expect(u.searchParams.get('code_challenge_method')).toBe('S256');
    const back = (await fetch(url, { redirect: 'manual' })).headers.get('location')!;
    expect(back).toMatch(/^http:\/\/app\.test\/share\?tab=share&code=/);

    const session = (await completeSignIn({ hubUrl: hub.url, url: back, pkce, storage }))!;
    expect(session).toMatchObject({ user: 'alice', orgs: ['alice-lab'], via: 'oauth', hubUrl: hub.url });
    expect(session.accessToken).toMatch(/^hf_oauth_/);
    expect(Math.abs(session.expiresAt! - (Date.now() + 8 * 3600_000))).toBeLessThan(60_000);
    expect(loadSession(hub.url, [storage])).toEqual(session);
    expect(loadSession('https://huggingface.co', [storage])).toBeUndefined(); // another Hub's token is not sent there

    // the OAuth token publishes
    const r = await publish({ repo: 'oauth-made', files: adapterFiles(), card, private: false, accessToken: session.accessToken, hubUrl: hub.url });
    expect(r.repo).toBe('alice/oauth-made');
    expect(hub.commits.at(-1)!.auth).toBe(`Bearer ${session.accessToken}`);

    // a code is good once
    await expect(completeSignIn({ hubUrl: hub.url, url: back, pkce, storage })).rejects.toThrow(/signing in with Hugging Face: .*invalid_grant/);
  });

  it('a denied or misconfigured sign-in is an error; a page without an OAuth answer is no sign-in', async () => {
    const pkce = {};
    const url = await signInUrl({ clientId: 'wrong-client', hubUrl: hub.url, redirectUrl: 'http://app.test/', pkce });
    const back = (await fetch(url, { redirect: 'manual' })).headers.get('location')!;
    await expect(completeSignIn({ hubUrl: hub.url, url: back, pkce, storage: memoryStorage() })).rejects.toThrow(
      /signing in with Hugging Face: invalid_client/,
    );
    expect(await completeSignIn({ hubUrl: hub.url, url: 'http://app.test/?tab=share', pkce: {} })).toBeUndefined();
    await expect(signInUrl({ hubUrl: hub.url, redirectUrl: 'http://app.test/', pkce: {} })).rejects.toThrow(/no OAuth client id is set/);
    expect(withoutOAuthParams('http://app.test/p?hub=x&code=1&state=2')).toBe('http://app.test/p?hub=x');
  });

  it('a pasted token is checked with whoami; expired sessions are dropped', async () => {
    const storage = memoryStorage();
    const s = await signInWithToken(`  ${WRITE} `, { hubUrl: hub.url, storage });
    expect(s).toMatchObject({ accessToken: WRITE, user: 'alice', via: 'token' });
    expect(s.expiresAt).toBeUndefined(); // the Hub does not say when a pasted token expires
    expect(loadSession(hub.url, [storage])).toEqual(s);
    signOut([storage]);
    expect(loadSession(hub.url, [storage])).toBeUndefined();

    const e = await failure(signInWithToken('hf_unknownToken1234', { hubUrl: hub.url, storage }));
    expect(e.status).toBe(401);
    expect(e.message).toMatch(/^checking the access token: the Hub did not accept/);

    saveSession({ accessToken: WRITE, via: 'oauth', hubUrl: hub.url, expiresAt: Date.now() + 30_000 }, { storage });
    expect(loadSession(hub.url, [storage])).toBeUndefined(); // within a minute of expiry: gone
    expect(storage.map.size).toBe(0);
  });
});
