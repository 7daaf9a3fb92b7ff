// The benchmark's peer: TensorFlow.js with its WebGPU backend, run in Node on Dawn (the `webgpu` package), so it
// shares the adapter with our engine. Everything here is idiomatic tfjs (ops, tf.variableGrads, tf.train.adam):
// the point is to measure what a tfjs user gets, not to hand-tune tfjs.
//
// Timing: wall clock from the first op to the GPU queue being idle. For matmul we flush tfjs's deferred command
// encoder and wait on queue.onSubmittedWorkDone() (no read-back, like our side); a training step ends with
// reading the loss back (4 bytes), which waits for the whole queue, Adam included.
import { createRequire } from 'node:module';
import type * as TF from '@tensorflow/tfjs';

export interface PeerInfo {
  ok: boolean;
  backend?: string;
  version?: string;
  why?: string;
}

export interface GptShape {
  vocab: number;
  layers: number;
  hidden: number;
  heads: number;
  seqLen: number;
  batch: number;
  ffn?: number; /* default 4*hidden */
}

type Tf = typeof TF;
type Tensor = TF.Tensor;
type Variable = TF.Variable;

/** The parts of tfjs-backend-webgpu's WebGPUBackend used here (its internals are not in the public types). */
interface WebGpuBackendLike {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  adapterInfo?: { vendor?: string; architecture?: string };
  endComputePassEncoder(): void;
  submitQueue(): void;
}

let tf: Tf | undefined;
let info: PeerInfo | undefined;
let webgpuFactory: (() => unknown) | undefined;

function need(): Tf {
  if (!tf || !info?.ok) throw new Error('tfjs peer not initialised (call initTfjs first)');
  return tf;
}

const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Gives the peers a `navigator.gpu` backed by Dawn; must run before tfjs-backend-webgpu is imported. One Dawn
 * instance for both peers, created as our engine creates its own (src/gpu/node.ts: `create([])`, no flags), so
 * every device in the process sits on the same adapter. jax-js also reads `navigator.userAgent` (Node 20 has no
 * navigator at all).
 */
export async function installNavigatorGpu(): Promise<void> {
  const g = globalThis as { navigator?: { gpu?: unknown; userAgent?: unknown } };
  if (g.navigator?.gpu) {
    if (typeof g.navigator.userAgent !== 'string') {
      try {
        Object.defineProperty(g.navigator, 'userAgent', { value: 'node', configurable: true });
      } catch {
        /* kept as is */
      }
    }
    return;
  }
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  if (!process.env.LP_NUM_THREADS) process.env.LP_NUM_THREADS = '8';
  const webgpu = await import('webgpu');
  // The same objects our engine installs if it got there first (GPUBufferUsage, GPUMapMode, ...).
  Object.assign(globalThis, webgpu.globals);
  const gpu = webgpu.create([]);
  if (g.navigator && typeof g.navigator === 'object') {
    // Node >= 21 has a global Navigator (a getter on globalThis): add gpu to it, else replace it.
    try {
      Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
    } catch {
      /* not extensible: replaced below */
    }
  }
  if (!g.navigator?.gpu) Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true, writable: true });
}

function webgpuBackend(t: Tf): WebGpuBackendLike {
  return t.backend() as unknown as WebGpuBackendLike;
}

/** Flushes tfjs's deferred command encoder and waits until the GPU queue is idle. */
async function gpuIdle(t: Tf, fallback?: Tensor): Promise<void> {
  const b = webgpuBackend(t);
  if (b.device?.queue && typeof b.submitQueue === 'function') {
    if (b.commandEncoder) {
      b.endComputePassEncoder();
      b.submitQueue();
    }
    await b.device.queue.onSubmittedWorkDone();
  } else if (fallback) {
    await fallback.data();
  }
}

/** Wraps obj[method] (an instance's own or its prototype's) to call onCall first; returns the undo, or undefined. */
function countCalls(obj: object, method: string, onCall: () => void): (() => void) | undefined {
  const o = obj as Record<string, unknown>;
  const orig = o[method];
  if (typeof orig !== 'function') return undefined;
  const own = Object.getOwnPropertyDescriptor(o, method);
  o[method] = function (this: unknown, ...args: unknown[]) {
    onCall();
    return (orig as (...a: unknown[]) => unknown).apply(this, args);
  };
  return () => {
    if (own) Object.defineProperty(o, method, own);
    else Reflect.deleteProperty(o, method);
  };
}

interface BufferPoolLike {
  freeBuffers?: Map<string, GPUBuffer[]>;
  numFreeBuffers: number;
  numBytesAllocated: number;
}
const bufferPool = (t: Tf) => (webgpuBackend(t) as unknown as { bufferManager?: BufferPoolLike }).bufferManager;

/**
 * tfjs's WebGPU buffer pool only grows: freed tensors' buffers stay allocated for reuse. Destroy the free ones
 * (call with the queue idle) so that a big model's step does not keep its memory from what the benchmark runs next.
 */
function releasePool(t: Tf): void {
  const bm = bufferPool(t);
  if (!bm?.freeBuffers) return;
  for (const [key, list] of bm.freeBuffers) {
    for (const b of list) {
      bm.numBytesAllocated -= b.size;
      b.destroy();
    }
    bm.freeBuffers.set(key, []); // keep the keys: releaseBuffer() is a no-op on an empty map
  }
  bm.numFreeBuffers = 0;
}

export async function initTfjs(): Promise<PeerInfo> {
  if (info?.ok && tf) return info;
  try {
    await installNavigatorGpu();
    const core = (await import('@tensorflow/tfjs')) as unknown as Tf & { default?: Tf };
    const t: Tf = core.default && typeof core.default.matMul === 'function' ? core.default : core;
    await import('@tensorflow/tfjs-backend-webgpu'); // registers the 'webgpu' backend (if navigator.gpu is there)
    // disposeTfjs() removed the registration; put the factory back so that the peer can start again.
    if (!t.findBackendFactory('webgpu') && webgpuFactory) t.registerBackend('webgpu', webgpuFactory as never, 3);
    if (!t.findBackendFactory('webgpu')) return (info = { ok: false, why: 'tfjs-backend-webgpu did not register (navigator.gpu missing?)' });
    webgpuFactory = t.findBackendFactory('webgpu') as () => unknown;
    if (!(await t.setBackend('webgpu'))) return (info = { ok: false, why: 'tf.setBackend("webgpu") failed (no adapter or device?)' });
    await t.ready();
    if (t.getBackend() !== 'webgpu') return (info = { ok: false, why: `tfjs picked backend ${t.getBackend()}, not webgpu` });
    // One real kernel and a read-back, so that a broken device is found here rather than mid-benchmark.
    const x = t.tensor2d([1, 2, 3, 4], [2, 2]);
    const y = t.matMul(x, x);
    const v = await y.data();
    x.dispose();
    y.dispose();
    if (v[0] !== 7 || v[3] !== 22) return (info = { ok: false, why: `tfjs webgpu smoke test gave ${Array.from(v).join(',')}` });
    tf = t;
    const ai = webgpuBackend(t).adapterInfo;
    const adapter = [ai?.vendor, ai?.architecture].filter(Boolean).join(' ');
    let beVersion: string | undefined;
    try {
      beVersion = (createRequire(import.meta.url)('@tensorflow/tfjs-backend-webgpu/package.json') as { version?: string }).version;
    } catch {
      /* version unknown */
    }
    info = {
      ok: true,
      backend: `webgpu${adapter ? ` (${adapter})` : ''}`,
      version: `${t.version.tfjs}${beVersion && beVersion !== t.version.tfjs ? ` (backend-webgpu ${beVersion})` : ''}`,
    };
    return info;
  } catch (e) {
    tf = undefined;
    return (info = { ok: false, why: errMsg(e) });
  }
}

/** Fast deterministic N(0, std) (or uniform) fill: JS-side generation of 10^8 values must not take minutes. */
export function randomFill(n: number, seed: number, std: number, kind: 'normal' | 'uniform' = 'normal'): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n);
  let s = (seed * 0x9e3779b9) >>> 0 || 1;
  const next = () => {
    // xorshift32 -> (0, 1)
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  if (kind === 'uniform') {
    for (let i = 0; i < n; i++) out[i] = (next() - 0.5) * 2 * std;
    return out;
  }
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next())) * std,
      th = 2 * Math.PI * next();
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}

export async function tfjsMatmul(M: number, N: number, K: number, transA: boolean, transB: boolean, reps: number): Promise<{ ms: number }> {
  const t = need();
  const a = t.tensor(randomFill(M * K, 1, 1, 'uniform'), transA ? [K, M] : [M, K]);
  const b = t.tensor(randomFill(K * N, 2, 1, 'uniform'), transB ? [N, K] : [K, N]);
  try {
    const once = async () => {
      const t0 = performance.now();
      const c = t.matMul(a, b, transA, transB);
      await gpuIdle(t, c);
      const ms = performance.now() - t0;
      c.dispose();
      return ms;
    };
    for (let i = 0; i < 2; i++) await once(); // upload of a and b, pipeline compilation
    const times: number[] = [];
    for (let i = 0; i < Math.max(1, reps); i++) times.push(await once());
    return { ms: median(times) };
  } finally {
    a.dispose();
    b.dispose();
    try {
      await gpuIdle(t);
      releasePool(t);
    } catch {
      /* best effort */
    }
  }
}

interface Layer {
  ln1g: Variable;
  ln1b: Variable;
  wqkv: Variable;
  bqkv: Variable;
  wproj: Variable;
  bproj: Variable;
  ln2g: Variable;
  ln2b: Variable;
  wfc: Variable;
  bfc: Variable;
  wfc2: Variable;
  bfc2: Variable;
}

export async function tfjsTrainStep(
  shape: GptShape,
  opts: { warmup: number; reps: number },
): Promise<{ ms: number; lossFirst: number; lossLast: number; kernels?: number; params: number; notes: string[] }> {
  const t = need();
  const { vocab: V, layers: L, hidden: C, heads: H, seqLen: T, batch: B } = shape;
  const F = shape.ffn ?? 4 * C;
  if (C % H !== 0) throw new Error(`hidden ${C} not divisible by heads ${H}`);
  if (T < 2) throw new Error('seqLen must be at least 2');
  const D = C / H,
    P = Math.max(1024, T),
    N = B * (T - 1);
  if (N * V > 2 ** 31 - 1) throw new Error(`batch x seq x vocab too large for int32 target indices (${N} x ${V})`);
  const lr = 1e-4,
    weightDecay = 0.1,
    maxGradNorm = 1.0,
    eps = 1e-5;
  const notes: string[] = [];

  const vars: Variable[] = [];
  const decay: Variable[] = []; // 2-D weights: decoupled weight decay
  let seed = 1;
  const param = (shp: number[], init: 'normal' | 'zeros' | 'ones', wd = false): Variable => {
    const n = shp.reduce((x, y) => x * y, 1);
    const v = t.tidy(() => t.variable(init === 'normal' ? t.tensor(randomFill(n, seed++, 0.02), shp) : init === 'ones' ? t.ones(shp) : t.zeros(shp), true));
    vars.push(v);
    if (wd) decay.push(v);
    return v;
  };
  const created: Tensor[] = [];
  let optimizer: TF.AdamOptimizer | undefined;
  try {
    const wte = param([V, C], 'normal', true),
      wpe = param([P, C], 'normal', true);
    const layers: Layer[] = [];
    for (let l = 0; l < L; l++) {
      layers.push({
        ln1g: param([C], 'ones'),
        ln1b: param([C], 'zeros'),
        wqkv: param([C, 3 * C], 'normal', true),
        bqkv: param([3 * C], 'zeros'),
        wproj: param([C, C], 'normal', true),
        bproj: param([C], 'zeros'),
        ln2g: param([C], 'ones'),
        ln2b: param([C], 'zeros'),
        wfc: param([C, F], 'normal', true),
        bfc: param([F], 'zeros'),
        wfc2: param([F, C], 'normal', true),
        bfc2: param([C], 'zeros'),
      });
    }
    const lnfg = param([C], 'ones'),
      lnfb = param([C], 'zeros');
    const params = vars.reduce((s, v) => s + v.size, 0);

    // Fixed random batch; targets are the next tokens of positions 0..T-2, as flat indices into [N, V] logits.
    const tokens = new Int32Array(B * T);
    let r = 12345;
    for (let i = 0; i < tokens.length; i++) {
      r = (Math.imul(r, 1103515245) + 12345) >>> 0;
      tokens[i] = (r >>> 8) % V;
    }
    const pick = new Int32Array(N);
    for (let b = 0; b < B; b++) for (let i = 0; i < T - 1; i++) pick[b * (T - 1) + i] = (b * (T - 1) + i) * V + tokens[b * T + i + 1]!;
    const tokIds = t.tensor1d(tokens, 'int32'),
      pickIds = t.tensor1d(pick, 'int32');
    const maskData = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskData[i * T + j] = -1e9;
    const mask = t.tensor2d(maskData, [T, T]);
    created.push(tokIds, pickIds, mask);

    const layerNorm = (x: Tensor, g: Tensor, b: Tensor) => {
      const { mean, variance } = t.moments(x, -1, true);
      return t.add(t.mul(t.mul(t.sub(x, mean), t.rsqrt(t.add(variance, eps))), g), b);
    };
    const linear = (x: Tensor, w: Tensor, b: Tensor) => t.fused.matMul({ a: x as TF.Tensor2D, b: w as TF.Tensor2D, bias: b });
    const geluNew = (x: Tensor) => {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const inner = t.mul(t.add(x, t.mul(t.mul(t.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
      return t.mul(t.mul(x, 0.5), t.add(t.tanh(inner), 1));
    };
    const scale = 1 / Math.sqrt(D);
    const lossFn = (): TF.Scalar => {
      // embeddings: [B*T, C]
      let x: Tensor = t.reshape(t.add(t.reshape(t.gather(wte, tokIds), [B, T, C]), t.slice(wpe, [0, 0], [T, C])), [B * T, C]);
      for (const p of layers) {
        const h = layerNorm(x, p.ln1g, p.ln1b);
        const qkv = t.transpose(t.reshape(linear(h, p.wqkv, p.bqkv), [B, T, 3, H, D]), [2, 0, 3, 1, 4]); // [3, B, H, T, D]
        const [q, k, v] = t.split(qkv, 3, 0).map((z) => t.reshape(z, [B * H, T, D]));
        const att = t.softmax(t.add(t.mul(t.matMul(q!, k!, false, true), scale), mask));
        const y = t.reshape(t.transpose(t.reshape(t.matMul(att, v!), [B, H, T, D]), [0, 2, 1, 3]), [B * T, C]);
        x = t.add(x, linear(y, p.wproj, p.bproj));
        const m = linear(geluNew(linear(layerNorm(x, p.ln2g, p.ln2b), p.wfc, p.bfc)), p.wfc2, p.bfc2);
        x = t.add(x, m);
      }
      const hf = layerNorm(x, lnfg, lnfb);
      // positions 0..T-2 only (position T-1 has no target): [N, C] -> tied head [N, V]
      const hs = t.reshape(t.slice(t.reshape(hf, [B, T, C]), [0, 0, 0], [B, T - 1, C]), [N, C]);
      const logits = t.matMul(hs, wte, false, true);
      const logp = t.logSoftmax(logits);
      return t.neg(t.mean(t.gather(t.reshape(logp, [N * V]), pickIds))) as TF.Scalar;
    };

    optimizer = t.train.adam(lr, 0.9, 0.95, 1e-8);
    const opt = optimizer;
    const decayFactor = 1 - lr * weightDecay;
    const step = (): Tensor =>
      t.tidy(() => {
        const { value, grads } = t.variableGrads(lossFn, vars);
        // global gradient-norm clipping (as our engine's AdamW does)
        const names = Object.keys(grads);
        // tf.stack, not tf.addN: WebGPU addN binds every input at once and fails past the adapter's storage-buffer limit
        const norm = t.sqrt(t.sum(t.stack(names.map((n) => t.sum(t.square(grads[n]!))))));
        const clip = t.minimum(t.div(maxGradNorm, t.add(norm, 1e-6)), 1);
        const clipped = names.map((name) => ({ name, tensor: t.mul(grads[name]!, clip) }));
        for (const w of decay) w.assign(t.mul(w, decayFactor)); // AdamW: decoupled decay before the Adam step
        opt.applyGradients(clipped);
        return value;
      });

    const run = async (): Promise<{ ms: number; loss: number }> => {
      const t0 = performance.now();
      const loss = step();
      const lv = (await loss.data())[0]!; // waits for the queue: everything recorded so far, Adam included
      const ms = performance.now() - t0;
      loss.dispose();
      if (!Number.isFinite(lv)) throw new Error(`tfjs loss is ${lv}`);
      return { ms, loss: lv };
    };

    // The first step runs inside error scopes: tfjs does not look at WebGPU errors (an out-of-memory buffer or an
    // invalid pipeline only prints a warning and computes garbage), so turn them into an exception here.
    const dev = webgpuBackend(t).device;
    const checked = async () => {
      dev.pushErrorScope('out-of-memory');
      dev.pushErrorScope('validation');
      let res: { ms: number; loss: number } | undefined, err: unknown;
      try {
        res = await run();
      } catch (e) {
        err = e;
      }
      const validation = await dev.popErrorScope(),
        oom = await dev.popErrorScope();
      const gpuErr = oom ?? validation;
      if (gpuErr) throw new Error(`tfjs training step failed on the GPU (${oom ? 'out of memory' : 'validation'}): ${gpuErr.message.split('\n')[0]}`);
      if (err !== undefined) throw err;
      return res!;
    };
    for (let i = 0; i < opts.warmup; i++) await (i === 0 ? checked() : run());
    // Count on the first measured step: GPU dispatches (every tfjs WebGPU program goes through
    // backend.recordAndSubmit, one dispatchWorkgroups each) and tfjs kernel invocations (what tf.profile lists,
    // including data-free ones such as Reshape), without tf.profile's per-kernel timestamp queries.
    let dispatches = 0,
      tfKernels = 0;
    const restores = [countCalls(webgpuBackend(t), 'recordAndSubmit', () => dispatches++), countCalls(t.engine(), 'runKernelFunc', () => tfKernels++)];
    const canCount = restores.every((r) => r !== undefined);
    const uncount = () => {
      for (const r of restores.splice(0)) r?.();
    };
    if (!canCount) uncount();
    const times: number[] = [],
      losses: number[] = [];
    try {
      for (let i = 0; i < Math.max(1, opts.reps); i++) {
        const s = await (i === 0 && opts.warmup <= 0 ? checked() : run());
        if (i === 0) uncount();
        times.push(s.ms);
        losses.push(s.loss);
      }
    } finally {
      uncount();
    }
    const held = bufferPool(t)?.numBytesAllocated;
    notes.push(
      'tfjs has no AdamW: tf.train.adam(1e-4, 0.9, 0.95, 1e-8) plus decoupled weight decay 0.1 on the 2-D weights (wte, wpe, qkv, proj, fc, fc2: one multiply each) and global grad-norm clipping at 1.0, as our AdamW',
      `position table ${P} x ${C} (GPT-2's n_positions); logits only for positions 0..T-2`,
      'composed from tfjs ops: LayerNorm via tf.moments, gelu_new from tanh, causal mask added before tf.softmax, linear layers as tf.fused.matMul with bias, cross-entropy as gather of tf.logSoftmax',
      canCount
        ? `kernels = GPU compute dispatches of one step (${dispatches}); tfjs kernel invocations, what tf.profile lists, incl. data-free reshapes: ${tfKernels}`
        : 'kernels not counted (tfjs backend internals not found)',
      "init N(0, 0.02) without GPT-2's residual-projection scaling; timing = wall ms from first op to the loss read back",
    );
    if (held !== undefined)
      notes.push(`GPU buffers held by tfjs after the steps (its pool never shrinks; released afterwards): ${(held / 2 ** 20).toFixed(1)} MiB`);
    return { ms: median(times), lossFirst: losses[0]!, lossLast: losses[losses.length - 1]!, kernels: canCount ? dispatches : undefined, params, notes };
  } finally {
    optimizer?.dispose();
    for (const v of vars) v.dispose();
    for (const x of created) x.dispose();
    // Let tfjs's deferred disposals settle, then free its buffer pool, so that the next measurement starts clean.
    try {
      await gpuIdle(t);
      releasePool(t);
    } catch {
      /* best effort */
    }
  }
}

export async function disposeTfjs(): Promise<void> {
  const t = tf;
  if (!t) return;
  try {
    t.disposeVariables();
    try {
      await gpuIdle(t);
    } catch {
      /* best effort */
    }
    const b = webgpuBackend(t);
    t.removeBackend('webgpu'); // disposes the backend's buffers
    b.device?.destroy?.();
  } finally {
    tf = undefined;
    info = undefined;
  }
}
