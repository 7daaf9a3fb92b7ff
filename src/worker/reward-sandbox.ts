// The page's reward functions (GRPO, RLOO): a JavaScript module the user writes on the Train tab, kept
// as source in the run's config (config.rewardModule), turned here into the RewardFunction list that
// the stage builder calls (src/shared/rewards.ts: every exported function; each gets
// { prompts, completions, completion_ids } and returns one number or null per completion).
//
// In a browser the module runs in a dedicated Worker of its own (a module worker from a Blob URL),
// never in the engine's worker: a slow or endless function cannot block the engine, and after
// REWARD_TIMEOUT_MS without an answer the call fails with an error naming the function (callReward
// adds the name) and that worker is stopped. Before the module is imported, the worker deletes (and
// pins to undefined) fetch, XMLHttpRequest, WebSocket, EventSource, WebTransport, BroadcastChannel,
// indexedDB, caches, importScripts, Worker and SharedWorker from its global scope, so a reward function
// does not reach the network or the page's storage by accident.
// This is NOT a security boundary against determined code: the worker shares the page's origin, and
// `import()` (which cannot be removed) still loads any script the origin may load, whose code could
// find other ways out. It is a separate thread with the obvious doors shut; run only code you trust,
// as you would paste it into the page's console.
//
// Where there is no Worker (Node: the engine's tests run it there), the module is imported in place
// from a data: URL.
import { rewardFunctionsOf, type RewardFn, type RewardFunction, type RewardInput } from '../shared/rewards.ts';

/** How long a reward function (or the module's loading) may take before it fails. */
export const REWARD_TIMEOUT_MS = 30_000;
/** The module's name in messages, and the name of a default-exported anonymous function (as TRL's reward_funcs name functions: snake_case). */
export const REWARD_MODULE = 'reward_module';

export interface RewardModule {
  functions: RewardFunction[];
  /** 'worker': in a sandbox worker (a browser); 'inline': imported in this thread (no Worker here) */
  where: 'worker' | 'inline';
  /** Stops the sandbox worker (nothing to do inline). */
  dispose(): void;
}

/** What the sandbox reports of one export: a function (with its own name) or the type of something else. */
interface Desc {
  t: string;
  name?: string;
}
interface ExportDesc extends Desc {
  k: string;
  items?: Desc[];
  entries?: [string, Desc][];
}
type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

// The sandbox worker's code, as text (a Blob URL is its script; it must not depend on the bundle).
const SANDBOX_SOURCE = `
const BLOCKED = ['fetch', 'XMLHttpRequest', 'WebSocket', 'EventSource', 'WebTransport', 'BroadcastChannel', 'indexedDB', 'caches', 'importScripts', 'Worker', 'SharedWorker'];
for (const name of BLOCKED) {
  for (let o = self; o; o = Object.getPrototypeOf(o)) {
    try { delete o[name]; } catch {}
  }
  try { Object.defineProperty(self, name, { value: undefined, writable: false, configurable: false, enumerable: false }); } catch {}
}
const post = self.postMessage.bind(self);
const text = (e) => (e && typeof e === 'object' && 'message' in e ? String(e.message) : String(e));
const describe = (v) => (typeof v === 'function' ? { t: 'function', name: typeof v.name === 'string' ? v.name : '' } : { t: v === null ? 'null' : typeof v });
let mod = null;
self.addEventListener('message', async (ev) => {
  const m = ev.data;
  try {
    let value;
    if (m.type === 'load') {
      const url = URL.createObjectURL(new Blob([m.source], { type: 'text/javascript' }));
      try { mod = await import(url); } finally { URL.revokeObjectURL(url); }
      value = Object.entries(mod).map(([k, v]) => (k === 'default' && Array.isArray(v) ? { k, t: 'array', items: v.map(describe) }
        : k === 'default' && v && typeof v === 'object' ? { k, t: 'object', entries: Object.entries(v).map(([n, f]) => [n, describe(f)]) }
        : { k, ...describe(v) }));
    } else {
      let f = mod[m.path[0]];
      if (m.path.length > 1) f = f[m.path[1]];
      value = await f(m.input);
    }
    try { post({ id: m.id, ok: true, value }); }
    catch (e) { post({ id: m.id, ok: false, error: 'returned a value that cannot be passed out of its worker (' + text(e) + '): return an array of numbers or nulls' }); }
  } catch (e) {
    post({ id: m.id, ok: false, error: text(e) });
  }
});
`;

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/** The module's reward functions: in a sandbox worker where Worker exists, else imported in place. Throws, naming the module, when it does not load or exports no reward function. */
export async function loadRewardModule(source: string, opts: { timeoutMs?: number } = {}): Promise<RewardModule> {
  const timeoutMs = opts.timeoutMs ?? REWARD_TIMEOUT_MS;
  if (typeof source !== 'string' || !source.trim()) throw new Error(`${REWARD_MODULE}: empty; write a JavaScript module that exports reward functions`);
  return typeof Worker === 'function' ? inWorker(source, timeoutMs) : inline(source, timeoutMs);
}

/** `p`, or an error once `ms` have passed without it. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>(
    (_, fail) => (timer = setTimeout(() => fail(new Error(`no answer within ${seconds(ms)} (an endless loop, or too slow?)`)), ms)),
  );
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function inline(source: string, timeoutMs: number): Promise<RewardModule> {
  let mod: Record<string, unknown>;
  try {
    mod = await within(import(/* @vite-ignore */ `data:text/javascript,${encodeURIComponent(source)}`) as Promise<Record<string, unknown>>, timeoutMs);
  } catch (e) {
    throw new Error(`${REWARD_MODULE}: cannot load the module: ${firstLine(e)}`);
  }
  const functions = rewardFunctionsOf(mod, REWARD_MODULE).map((f) => ({
    ...f,
    fn: ((input: RewardInput) =>
      within(
        Promise.resolve().then(() => f.fn(input)),
        timeoutMs,
      )) as RewardFn,
  }));
  return { functions, where: 'inline', dispose() {} };
}

/** One sandbox worker and the requests waiting on it. */
class Sandbox {
  private readonly url = URL.createObjectURL(new Blob([SANDBOX_SOURCE], { type: 'text/javascript' }));
  private readonly worker = new Worker(this.url, { type: 'module', name: 'reward functions' });
  private readonly pending = new Map<number, { ok(v: unknown): void; fail(e: Error): void; timer: ReturnType<typeof setTimeout> }>();
  private seq = 0;
  private stopped?: string;

  constructor(private readonly timeoutMs: number) {
    this.worker.onmessage = (ev: MessageEvent<Reply>) => {
      const m = ev.data,
        p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.ok(m.value);
      else p.fail(new Error(m.error));
    };
    this.worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      this.stop(`its worker stopped with an error: ${ev.message || 'no message'}`);
    };
    this.worker.onmessageerror = () => this.stop('a message from its worker could not be read');
  }

  request(msg: { type: 'load'; source: string } | { type: 'call'; path: (string | number)[]; input: RewardInput }): Promise<unknown> {
    if (this.stopped) return Promise.reject(new Error(this.stopped));
    const id = ++this.seq;
    return new Promise((ok, fail) => {
      const timer = setTimeout(
        () => this.stop(`no answer within ${seconds(this.timeoutMs)} (an endless loop, or too slow?); its worker was stopped`),
        this.timeoutMs,
      );
      this.pending.set(id, { ok, fail, timer });
      this.worker.postMessage({ ...msg, id });
    });
  }

  /** Ends the worker; every request waiting fails with `why`, and later ones too. */
  stop(why = "the reward functions' worker was stopped (the run ended)"): void {
    if (this.stopped) return;
    this.stopped = why;
    this.worker.terminate();
    URL.revokeObjectURL(this.url);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.fail(new Error(why));
    }
    this.pending.clear();
  }
}

async function inWorker(source: string, timeoutMs: number): Promise<RewardModule> {
  const box = new Sandbox(timeoutMs);
  try {
    let shape: ExportDesc[];
    try {
      shape = (await box.request({ type: 'load', source })) as ExportDesc[];
    } catch (e) {
      throw new Error(`${REWARD_MODULE}: cannot load the module: ${firstLine(e)}`);
    }
    // the module as the engine sees it: a stub per function, named as the sandbox's, that calls it there;
    // rewardFunctionsOf then names and checks the exports exactly as it does the command line's modules
    const stub = (path: (string | number)[], d: Desc): unknown => {
      if (d.t !== 'function')
        return d.t === 'null' ? null : d.t === 'undefined' ? undefined : d.t === 'number' ? 0 : d.t === 'string' ? '' : d.t === 'boolean' ? false : {};
      const f = (input: RewardInput) => box.request({ type: 'call', path, input });
      Object.defineProperty(f, 'name', { value: d.name ?? '' });
      return f;
    };
    const mod: Record<string, unknown> = {};
    for (const e of shape) {
      mod[e.k] =
        e.t === 'array'
          ? (e.items ?? []).map((d, j) => stub([e.k, j], d))
          : e.t === 'object'
            ? Object.fromEntries((e.entries ?? []).map(([n, d]) => [n, stub([e.k, n], d)]))
            : stub([e.k], e);
    }
    return { functions: rewardFunctionsOf(mod, REWARD_MODULE), where: 'worker', dispose: () => box.stop() };
  } catch (e) {
    box.stop();
    throw e;
  }
}
