// The benchmark's second peer: jax-js (@jax-js/jax) with its WebGPU backend, run in Node on Dawn through the same
// `navigator.gpu` as the TensorFlow.js peer (peer-tfjs.ts: installNavigatorGpu, `create([])` as our engine), so all
// three engines hold their own device on the same adapter. Everything here is idiomatic jax-js: numpy-style ops,
// `valueAndGrad` under `jit` (which fuses elementwise work into its kernels), the library's own attention and
// gelu, AdamW written with its ops as an optax user would. The point is to measure what a jax-js user gets.
//
// Timing: wall clock from the call to the results being ready on the device. jax-js is lazy: a jitted call only
// records work, which `blockUntilReady()` dispatches and then waits on (a read of zero bytes after every kernel
// of that array). A training step waits on every output (loss, new weights, both moments), then reads the loss.
//
// jax-js does not look at WebGPU errors outside its shader compilation (a buffer past a binding limit, say, only
// prints "Uncaptured error" and computes garbage; an invalid pipeline "runs" in no time). So the first call of
// each measurement runs inside validation and out-of-memory error scopes, every uncaptured error is counted, and a
// matmul's result is compared with a CPU dot product at a few elements once per shape.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as JAX from '@jax-js/jax';
import { installNavigatorGpu, randomFill, type GptShape, type PeerInfo } from './peer-tfjs.ts';

type Jax = typeof JAX;
type Arr = JAX.Array;

let jax: Jax | undefined;
let info: PeerInfo | undefined;
let device: GPUDevice | undefined;
const uncaptured: string[] = []; // every uncaptured WebGPU error on jax-js's device, in order

const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const firstLine = (s: string) => s.split('\n')[0]!;

function need(): Jax {
  if (!jax || !info?.ok) throw new Error('jax-js peer not initialised (call initJaxjs first)');
  return jax;
}

function jaxVersion(): string | undefined {
  try {
    // the package's exports do not list package.json: find it beside the resolved entry (dist/index.cjs)
    const entry = createRequire(import.meta.url).resolve('@jax-js/jax');
    return (JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

export async function initJaxjs(): Promise<PeerInfo> {
  if (info?.ok && jax) return info;
  try {
    await installNavigatorGpu();
    const j = (await import('@jax-js/jax')) as Jax;
    const devices = await j.init('webgpu'); // only WebGPU: the Wasm backend is not what is compared
    if (!devices.includes('webgpu')) return (info = { ok: false, why: 'jax-js found no WebGPU device (navigator.gpu gave no adapter?)' });
    j.defaultDevice('webgpu');
    const dev = j.getWebGPUDevice();
    dev.addEventListener('uncapturederror', (ev) => uncaptured.push(firstLine((ev as GPUUncapturedErrorEvent).error.message)));
    // One real kernel and a read-back, so that a broken device is found here rather than mid-benchmark.
    const x = j.numpy.array(new Float32Array([1, 2, 3, 4])).reshape([2, 2]);
    const v = await j.numpy.matmul(x.ref, x).data();
    if (v[0] !== 7 || v[3] !== 22) return (info = { ok: false, why: `jax-js webgpu smoke test gave ${Array.from(v).join(',')}` });
    jax = j;
    device = dev;
    const ai = (dev as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    const adapter = [ai?.vendor, ai?.architecture].filter(Boolean).join(' ');
    info = { ok: true, backend: `webgpu${adapter ? ` (${adapter})` : ''}`, version: jaxVersion() ?? 'unknown' };
    return info;
  } catch (e) {
    jax = undefined;
    return (info = { ok: false, why: errMsg(e) });
  }
}

/** Runs fn inside validation and out-of-memory error scopes on jax-js's device; a GPU error becomes an exception. */
async function checked<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const dev = device!;
  const before = uncaptured.length;
  dev.pushErrorScope('out-of-memory');
  dev.pushErrorScope('validation');
  let res: T | undefined, err: unknown;
  try {
    res = await fn();
  } catch (e) {
    err = e;
  }
  const validation = await dev.popErrorScope(),
    oom = await dev.popErrorScope();
  const gpuErr = oom ?? validation;
  if (gpuErr) throw new Error(`jax-js ${what} failed on the GPU (${oom ? 'out of memory' : 'validation'}): ${firstLine(gpuErr.message)}`);
  if (err !== undefined) throw err;
  noNewErrors(what, before);
  return res!;
}

function noNewErrors(what: string, before: number): void {
  if (uncaptured.length > before) throw new Error(`jax-js ${what}: uncaptured WebGPU error: ${uncaptured[before]}`);
}

/**
 * Counts GPU compute dispatches: jax-js encodes every kernel in a command encoder of its own
 * (device.createCommandEncoder, one compute pass per dispatch). Returns the undo, or undefined if the device's
 * methods cannot be wrapped.
 */
function countDispatches(dev: GPUDevice, onDispatch: () => void): (() => void) | undefined {
  const d = dev as unknown as Record<string, unknown>;
  const orig = d.createCommandEncoder as GPUDevice['createCommandEncoder'];
  const own = Object.getOwnPropertyDescriptor(d, 'createCommandEncoder');
  try {
    d.createCommandEncoder = function (this: GPUDevice, desc?: GPUCommandEncoderDescriptor) {
      const enc = orig.call(this, desc);
      const begin = enc.beginComputePass;
      enc.beginComputePass = function (this: GPUCommandEncoder, pd?: GPUComputePassDescriptor) {
        const pass = begin.call(this, pd);
        const dispatch = pass.dispatchWorkgroups;
        pass.dispatchWorkgroups = function (this: GPUComputePassEncoder, x: number, y?: number, z?: number) {
          onDispatch();
          return dispatch.call(this, x, y, z);
        };
        return pass;
      };
      return enc;
    };
  } catch {
    return undefined;
  }
  if (d.createCommandEncoder === orig) return undefined;
  return () => {
    if (own) Object.defineProperty(d, 'createCommandEncoder', own);
    else Reflect.deleteProperty(d, 'createCommandEncoder');
  };
}

/** C[i, j] of op(A) op(B) on the CPU in float64, and the sum of |terms| (the scale of float32 rounding). */
function cpuDot(a: Float32Array, b: Float32Array, M: number, N: number, K: number, transA: boolean, transB: boolean, i: number, j: number) {
  let s = 0,
    abs = 0;
  for (let k = 0; k < K; k++) {
    const x = transA ? a[k * M + i]! : a[i * K + k]!,
      y = transB ? b[j * K + k]! : b[k * N + j]!;
    s += x * y;
    abs += Math.abs(x * y);
  }
  return { s, abs };
}

export async function jaxjsMatmul(M: number, N: number, K: number, transA: boolean, transB: boolean, reps: number): Promise<{ ms: number }> {
  const j = need();
  const np = j.numpy;
  const aData = randomFill(M * K, 1, 1, 'uniform'),
    bData = randomFill(K * N, 2, 1, 'uniform');
  const a = np.array(aData).reshape(transA ? [K, M] : [M, K]);
  const b = np.array(bData).reshape(transB ? [N, K] : [K, N]);
  // jit: a transposed operand is read in place by the matmul kernel instead of being copied first
  const f = j.jit((x: Arr, y: Arr) => np.matmul(transA ? x.transpose() : x, transB ? y.transpose() : y));
  try {
    // first call: compiles, and its result is compared with the CPU at a few elements
    const c = await checked(`matmul ${M}x${N}x${K}`, () => f(a.ref, b.ref).data());
    for (const [i, jj] of [
      [0, 0],
      [M - 1, N - 1],
      [M >> 1, N >> 1],
      [(M * 7) >> 3, N >> 3],
    ] as const) {
      const ref = cpuDot(aData, bData, M, N, K, transA, transB, i, jj);
      const got = c[i * N + jj]!;
      if (!(Math.abs(got - ref.s) <= 1e-3 * ref.abs + 1e-6))
        throw new Error(`jax-js matmul ${M}x${N}x${K} gave C[${i}, ${jj}] = ${got}, the CPU ${ref.s.toPrecision(6)}`);
    }
    const before = uncaptured.length;
    const once = async () => {
      const t0 = performance.now();
      const r = f(a.ref, b.ref);
      await r.blockUntilReady();
      const ms = performance.now() - t0;
      r.dispose();
      return ms;
    };
    await once(); // a second warm-up, as the tfjs peer has
    const times: number[] = [];
    for (let i = 0; i < Math.max(1, reps); i++) times.push(await once());
    noNewErrors(`matmul ${M}x${N}x${K}`, before);
    return { ms: median(times) };
  } finally {
    a.dispose();
    b.dispose();
    f.dispose();
  }
}

type LayerParams = {
  ln1g: Arr;
  ln1b: Arr;
  wqkv: Arr;
  bqkv: Arr;
  wproj: Arr;
  bproj: Arr;
  ln2g: Arr;
  ln2b: Arr;
  wfc: Arr;
  bfc: Arr;
  wfc2: Arr;
  bfc2: Arr;
};
// a type alias, not an interface: jax-js's JsTree typing (grad, jit, tree.*) only accepts the former
type Params = { wte: Arr; wpe: Arr; layers: LayerParams[]; lnfg: Arr; lnfb: Arr };

/**
 * One GPT-2 training step as the tfjs peer does it (same shapes, init, batch, AdamW and clipping), in jax-js.
 * jax-js's rule: every function takes ownership of its array arguments, so an array used twice is passed as
 * `x.ref` the first time (tracers inside jit included).
 */
export async function jaxjsTrainStep(
  shape: GptShape,
  opts: { warmup: number; reps: number },
): Promise<{ ms: number; lossFirst: number; lossLast: number; kernels?: number; params: number; notes: string[] }> {
  const j = need();
  const { numpy: np, nn, tree } = j;
  const { vocab: V, layers: L, hidden: C, heads: H, seqLen: T, batch: B } = shape;
  const F = shape.ffn ?? 4 * C;
  if (C % H !== 0) throw new Error(`hidden ${C} not divisible by heads ${H}`);
  if (T < 2) throw new Error('seqLen must be at least 2');
  const D = C / H,
    P = Math.max(1024, T),
    N = B * (T - 1);
  const lr = 1e-4,
    beta1 = 0.9,
    beta2 = 0.95,
    adamEps = 1e-8,
    weightDecay = 0.1,
    maxGradNorm = 1.0,
    eps = 1e-5;
  const notes: string[] = [];

  let seed = 1; // the same seeds in the same order as the tfjs peer: the same initial weights
  const param = (shp: number[], init: 'normal' | 'zeros' | 'ones'): Arr => {
    const n = shp.reduce((x, y) => x * y, 1);
    return init === 'normal' ? np.array(randomFill(n, seed++, 0.02)).reshape(shp) : init === 'ones' ? np.ones(shp) : np.zeros(shp);
  };
  // Same fixed batch as the tfjs peer; targets are the next tokens of positions 0..T-2.
  const tokData = new Int32Array(B * T);
  let r = 12345;
  for (let i = 0; i < tokData.length; i++) {
    r = (Math.imul(r, 1103515245) + 12345) >>> 0;
    tokData[i] = (r >>> 8) % V;
  }
  const tgtData = new Int32Array(N);
  for (let b = 0; b < B; b++) for (let i = 0; i < T - 1; i++) tgtData[b * (T - 1) + i] = tokData[b * T + i + 1]!;

  let params: Params | undefined, m: Params | undefined, v: Params | undefined, tokens: Arr | undefined, targets: Arr | undefined, mask: Arr | undefined;
  let step: { dispose(): void } | undefined;
  try {
    const layers: LayerParams[] = [];
    params = { wte: param([V, C], 'normal'), wpe: param([P, C], 'normal'), layers, lnfg: np.ones([C]), lnfb: np.zeros([C]) };
    for (let l = 0; l < L; l++) {
      layers.push({
        ln1g: param([C], 'ones'),
        ln1b: param([C], 'zeros'),
        wqkv: param([C, 3 * C], 'normal'),
        bqkv: param([3 * C], 'zeros'),
        wproj: param([C, C], 'normal'),
        bproj: param([C], 'zeros'),
        ln2g: param([C], 'ones'),
        ln2b: param([C], 'zeros'),
        wfc: param([C, F], 'normal'),
        bfc: param([F], 'zeros'),
        wfc2: param([F, C], 'normal'),
        bfc2: param([C], 'zeros'),
      });
    }
    const leaves = tree.leaves(params) as Arr[];
    const nParams = leaves.reduce((s, x) => s + x.size, 0);
    const zerosLike = (p: Params) => tree.map((x: Arr) => np.zeros(x.shape), p) as Params;
    m = zerosLike(params);
    v = zerosLike(params);
    tokens = np.array(tokData, { dtype: np.int32 });
    targets = np.array(tgtData, { dtype: np.int32 });
    const maskData = new Float32Array(T * T); // causal: -1e9 above the diagonal, added to the scores
    for (let i = 0; i < T; i++) for (let k = i + 1; k < T; k++) maskData[i * T + k] = -1e9;
    mask = np.array(maskData).reshape([T, T]);

    const layerNorm = (x: Arr, g: Arr, b: Arr): Arr => {
      const xc = x.ref.sub(x.mean(-1, { keepdims: true }));
      const variance = np.square(xc.ref).mean(-1, { keepdims: true });
      return xc
        .mul(np.reciprocal(np.sqrt(variance.add(eps))))
        .mul(g)
        .add(b);
    };
    const linear = (x: Arr, w: Arr, b: Arr): Arr => np.matmul(x, w).add(b);
    const scale = 1 / Math.sqrt(D);
    const lossFn = (p: Params, tok: Arr, tgt: Arr, msk: Arr): Arr => {
      // embeddings: [B*T, C]. No view (reshape) right after take: under jit, jax-js 0.1 refuses a scatter (take's
      // gradient) whose input is a view ("routine primitive scatter input is not imm"), so positions are tiled.
      let x = np.take(p.wte.ref, tok, 0).add(np.tile(p.wpe.slice([0, T]), [B, 1]));
      for (const l of p.layers) {
        const h = layerNorm(x.ref, l.ln1g, l.ln1b);
        const qkv = linear(h, l.wqkv, l.bqkv).reshape([B, T, 3, H, D]).transpose([2, 0, 3, 1, 4]); // [3, B, H, T, D]
        const q = qkv.ref.slice(0),
          k = qkv.ref.slice(1),
          val = qkv.slice(2); // [B, H, T, D]
        const att = nn.softmax(
          np
            .matmul(q, k.transpose([0, 1, 3, 2]))
            .mul(scale)
            .add(msk.ref),
        );
        const y = np
          .matmul(att, val)
          .transpose([0, 2, 1, 3])
          .reshape([B * T, C]);
        x = x.add(linear(y, l.wproj, l.bproj));
        const mlp = linear(nn.gelu(linear(layerNorm(x.ref, l.ln2g, l.ln2b), l.wfc, l.bfc)), l.wfc2, l.bfc2); // gelu: tanh form by default
        x = x.add(mlp);
      }
      // positions 0..T-2 only (position T-1 has no target): [N, C] -> tied head [N, V]
      const hs = layerNorm(x, p.lnfg, p.lnfb)
        .reshape([B, T, C])
        .slice([], [0, T - 1])
        .reshape([N, C]);
      const logp = nn.logSoftmax(np.matmul(hs, p.wte.transpose()));
      msk.dispose();
      // cross-entropy: the log-probabilities where the column is the target. Not takeAlongAxis (its gradient is a
      // scatter of a view: refused as above), nor nn.oneHot (it gathers rows of eye(V): a V x V constant, 256 MiB
      // for 8192 tokens, past the binding limit)
      const hit = np.equal(tgt.reshape([N, 1]), np.arange(0, V, 1, { dtype: np.int32 }).reshape([1, V]));
      return np
        .where(hit, logp, 0)
        .sum()
        .mul(-1 / N);
    };

    // One jitted step: value and gradients, global-norm clipping, AdamW (decoupled decay on the 2-D weights:
    // wte, wpe, qkv, proj, fc, fc2). bc holds the bias corrections [1 / (1 - beta1^t), 1 / (1 - beta2^t)].
    const decayFactor = 1 - lr * weightDecay;
    const stepFn = (p: Params, m0: Params, v0: Params, tok: Arr, tgt: Arr, msk: Arr, bc: Arr): [Arr, Params, Params, Params] => {
      const [loss, grads] = j.valueAndGrad(lossFn)(tree.ref(p), tok, tgt, msk);
      const [pl, def] = tree.flatten(p) as [Arr[], JAX.JsTreeDef];
      const gl = tree.leaves(grads) as Arr[],
        ml = tree.leaves(m0) as Arr[],
        vl = tree.leaves(v0) as Arr[];
      const sq = gl.map((g) => np.square(g.ref).sum()).reduce((s, x) => s.add(x));
      const clip = np.minimum(np.reciprocal(np.sqrt(sq).add(1e-6)).mul(maxGradNorm), 1);
      const bc1 = bc.ref.slice(0),
        bc2 = bc.slice(1);
      const np1: Arr[] = [],
        nm: Arr[] = [],
        nv: Arr[] = [];
      for (let i = 0; i < pl.length; i++) {
        const w = pl[i]!,
          g = gl[i]!.mul(clip.ref);
        const mi = ml[i]!.mul(beta1).add(g.ref.mul(1 - beta1));
        const vi = vl[i]!.mul(beta2).add(np.square(g).mul(1 - beta2));
        const upd = mi.ref
          .mul(bc1.ref)
          .div(np.sqrt(vi.ref.mul(bc2.ref)).add(adamEps))
          .mul(lr);
        np1.push((w.ndim === 2 ? w.mul(decayFactor) : w).sub(upd));
        nm.push(mi);
        nv.push(vi);
      }
      clip.dispose();
      bc1.dispose();
      bc2.dispose();
      return [loss, tree.unflatten(def, np1) as Params, tree.unflatten(def, nm) as Params, tree.unflatten(def, nv) as Params];
    };
    const jitted = j.jit(stepFn);
    step = jitted;

    let t = 0;
    const run = async (): Promise<{ ms: number; loss: number }> => {
      t++;
      const bc = np.array(new Float32Array([1 / (1 - beta1 ** t), 1 / (1 - beta2 ** t)]));
      await bc.blockUntilReady(); // its upload is not part of the step
      const t0 = performance.now();
      const out = jitted(params!, m!, v!, tokens!.ref, targets!.ref, mask!.ref, bc);
      [, params, m, v] = out;
      await j.blockUntilReady(out); // every output: the loss, and Adam's new weights and moments
      const lv = (await out[0].data())[0]!;
      const ms = performance.now() - t0;
      if (!Number.isFinite(lv)) throw new Error(`jax-js loss is ${lv}`);
      return { ms, loss: lv };
    };

    const dev = device!;
    for (let i = 0; i < opts.warmup; i++) await (i === 0 ? checked('training step', run) : run());
    let dispatches = 0;
    const times: number[] = [],
      losses: number[] = [];
    const before = uncaptured.length;
    let uncount: (() => void) | undefined;
    let counted = false;
    try {
      for (let i = 0; i < Math.max(1, opts.reps); i++) {
        // dispatches of the first measured step
        if (i === 0) {
          uncount = countDispatches(dev, () => dispatches++);
          counted = uncount !== undefined;
        }
        const s = await (i === 0 && opts.warmup <= 0 ? checked('training step', run) : run());
        if (i === 0) {
          uncount?.();
          uncount = undefined;
        }
        times.push(s.ms);
        losses.push(s.loss);
      }
    } finally {
      uncount?.();
    }
    noNewErrors('training step', before);
    notes.push(
      'AdamW written with jax-js ops inside the jitted step (lr 1e-4, betas 0.9/0.95, eps 1e-8, bias-corrected; decoupled weight decay 0.1 on the 2-D weights wte, wpe, qkv, proj, fc, fc2) and global grad-norm clipping at 1.0, as our AdamW',
      `position table ${P} x ${C} (GPT-2's n_positions); logits only for positions 0..T-2; same initial weights and batch as the tfjs peer`,
      "composed from jax-js ops under jit(valueAndGrad): LayerNorm from mean/square/sqrt, attention as batched np.matmul with a causal mask added before nn.softmax (nn.dotProductAttention goes through einsum, which needs Node 22's iterator helpers), nn.gelu (tanh form, = gelu_new), cross-entropy as the sum of nn.logSoftmax where a column equals the target (takeAlongAxis's gradient, a scatter of a view, is refused under jit by jax-js 0.1; nn.oneHot gathers from a V x V eye(), past the binding limit for V = 8192), position embeddings tiled over the batch rather than a reshape after take (same scatter rule)",
      counted ? `kernels = GPU compute dispatches of one step (${dispatches})` : 'kernels not counted (device methods could not be wrapped)',
      'timing = wall ms from the jitted call to every output ready on the device (blockUntilReady), then the loss read back',
    );
    return {
      ms: median(times),
      lossFirst: losses[0]!,
      lossLast: losses[losses.length - 1]!,
      kernels: counted ? dispatches : undefined,
      params: nParams,
      notes,
    };
  } finally {
    for (const x of [params, m, v, tokens, targets, mask]) {
      try {
        tree.dispose(x);
      } catch {
        /* already consumed by a failed step */
      }
    }
    step?.dispose();
  }
}

/** Destroys jax-js's device: its buffer pool keeps freed buffers (up to 64 MiB each) for reuse, never releasing them. */
export function disposeJaxjs(): void {
  try {
    device?.destroy();
  } finally {
    jax = undefined;
    info = undefined;
    device = undefined;
  }
}
