// npm run bench [-- --out FILE.json] [--quick] [--no-peer | --peers tfjs,jaxjs] [--reps N] [--only matmul|train|matmul,train|stages|smollm|f16|generate|device-sampling|rl-memory]
// Our engine against two peers, TensorFlow.js's WebGPU backend and jax-js's, in the same run on the same adapter
// (Dawn in Node):
//   1. matmul throughput for GPT-2-small layer shapes, forward and both backward products
//   2. one full training step (forward, backward, AdamW) of a GPT-2-shaped model at two sizes
//   3. generation tokens/s with the KV cache at batch 1 and 8, and recomputing without it, after 32 and 256 tokens
//   3b. sampling a token on the CPU from a vocabulary of 8k to 152k logits: ours against sorting them (what it did before)
//   3c. decoding with SmolLM2's and Qwen's vocabularies, the tokens drawn on the CPU against on the device
//   4. memory: bytes per parameter (full, LoRA), and a PPO setup with a shared base vs four models
//   5. a SmolLM2-135M-shaped Llama with LoRA: an SFT step, a PPO and a GRPO iteration, tokens/s and memory (bench/smollm.ts)
//   6. every stage of the recipe on the built-in model: ms per step, positions computed vs tokens held,
//      with batches on plans as long as their rows and at full length (bench/stages.ts)
// Medians over repeats after a warm-up. Our GPU time comes from timestamp queries where the adapter has
// them; speedups compare wall times (submit to idle, every side), since the peers offer nothing finer. A figure a
// peer cannot produce (an error, an unsupported op, a buffer past a limit) is a `<peer>_error` string in its row.
import { execSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createNodeGpu } from '../src/gpu/node.ts';
import type { Call, Gpu } from '../src/gpu/runtime.ts';
import { parseConfig, type ModelConfig } from '../src/shared/model-config.ts';
import { initWeights } from '../src/model/init.ts';
import { LoraSet, LORA_DEFAULTS } from '../src/model/lora.ts';
import { ScoreHead } from '../src/model/head.ts';
import { checkFits, estimateMemory } from '../src/shared/memory.ts';
import { KVCache, Transformer } from '../src/model/transformer.ts';
import { matmul } from '../src/ops/matmul.ts';
import { AdamW, ADAMW_DEFAULTS } from '../src/train/adamw.ts';
import { GENERATE_DEFAULTS, Generator } from '../src/train/generate.ts';
import { draw, Rng, sampleToken, samplingDistribution } from '../src/shared/sampling.ts';
import { benchF16Sft, benchSmolLM2, SMOLLM2_135M, type F16Row } from './smollm.ts';
import { benchStages, type StageRow } from './stages.ts';
import { disposeJaxjs, initJaxjs, jaxjsMatmul, jaxjsTrainStep } from './peer-jaxjs.ts';
import { initTfjs, tfjsMatmul, tfjsTrainStep, type GptShape, type PeerInfo } from './peer-tfjs.ts';

const { values: opt } = parseArgs({
  options: {
    out: { type: 'string' },
    quick: { type: 'boolean' },
    'no-peer': { type: 'boolean' },
    peers: { type: 'string' },
    reps: { type: 'string' },
    rows: { type: 'string' },
    sizes: { type: 'string' },
    only: { type: 'string' },
  },
});
const REPS = Number(opt.reps ?? (opt.quick ? 2 : 3));
const ROWS = (opt.rows ?? (opt.quick ? '512' : '512,4096')).split(',').map(Number);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number | undefined, d = 2) => (x === undefined ? undefined : Number(x.toFixed(d)));
const log = (s: string) => process.stderr.write(s + '\n');
const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));

// ---- peers ----
type PeerKey = 'tfjs' | 'jaxjs';
interface TrainResult {
  ms: number;
  lossFirst: number;
  lossLast: number;
  kernels?: number;
  notes: string[];
}
interface Peer {
  key: PeerKey;
  label: string;
  info: PeerInfo;
  matmul: (M: number, N: number, K: number, transA: boolean, transB: boolean, reps: number) => Promise<{ ms: number }>;
  train: (s: GptShape, o: { warmup: number; reps: number }) => Promise<TrainResult>;
}
const PEER_KEYS: PeerKey[] = ['tfjs', 'jaxjs'];

interface Timing {
  wallMs: number;
  gpuMs?: number;
  walls: number[];
  gpus: number[];
}

async function timeCalls(gpu: Gpu, calls: Call[], reps: number, warm = true): Promise<Timing> {
  if (warm) await gpu.checkAsync('warm-up', () => gpu.timeRun(calls));
  const walls: number[] = [],
    gpus: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = await gpu.timeRun(calls);
    walls.push(t.wallMs);
    if (t.gpuMs !== undefined) gpus.push(t.gpuMs);
  }
  return { wallMs: median(walls), gpuMs: gpus.length ? median(gpus) : undefined, walls, gpus };
}

/**
 * Ours against each peer on a machine whose load may drift (a shared CPU adapter, other jobs): ours is timed
 * right before and right after each peer, and each speedup is the peer's time over the median of our times
 * around it; our figure is the median of all of them. Timed once and the peers after, a speedup compared
 * times from different minutes (on 2026-12-07 that read 0.69x against jax-js for a step measured 1.15-1.37x
 * alternating). `peer` returns its result with its ms, or throws (its error goes into the row).
 */
async function besidePeers<R extends { ms: number }>(
  gpu: Gpu,
  calls: Call[],
  reps: number,
  peers: Peer[],
  peer: (p: Peer) => Promise<R>,
): Promise<{ ours: Timing; peers: Map<PeerKey, { result: R; oursMs: number } | { error: string }> }> {
  let last = await timeCalls(gpu, calls, reps);
  const walls = [...last.walls],
    gpus = [...last.gpus],
    out = new Map<PeerKey, { result: R; oursMs: number } | { error: string }>();
  for (const p of peers) {
    const before = last;
    let result: R;
    try {
      result = await peer(p);
    } catch (e) {
      out.set(p.key, { error: errMsg(e) });
      continue;
    }
    last = await timeCalls(gpu, calls, reps, false);
    walls.push(...last.walls);
    gpus.push(...last.gpus);
    out.set(p.key, { result, oursMs: median([...before.walls, ...last.walls]) });
  }
  return { ours: { wallMs: median(walls), gpuMs: gpus.length ? median(gpus) : undefined, walls, gpus }, peers: out };
}

/**
 * Where a step's time goes: each dispatch run alone in its own pass (GPU time from timestamp queries where
 * the adapter has them, else wall time), summed by kernel. Alone, a dispatch pays its own pass's start-up,
 * so the total is above the step's; the shares show which kernels to work on.
 */
async function profileCalls(gpu: Gpu, calls: Call[]): Promise<{ kernel: string; dispatches: number; ms: number; share: number }[]> {
  const by = new Map<string, { dispatches: number; ms: number }>();
  for (const c of calls) {
    const t = await gpu.timeRun([c]);
    const e = by.get(c.kernel.name) ?? { dispatches: 0, ms: 0 };
    e.dispatches++;
    e.ms += t.gpuMs ?? t.wallMs;
    by.set(c.kernel.name, e);
  }
  const total = [...by.values()].reduce((a, e) => a + e.ms, 0);
  return [...by.entries()]
    .map(([kernel, e]) => ({ kernel, dispatches: e.dispatches, ms: round(e.ms)!, share: round(e.ms / total, 3)! }))
    .sort((a, b) => b.ms - a.ms);
}

const rand = (n: number, seed: number) => {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.next() - 0.5);
};

// ---- 1. matmul ----
type MatmulRow = {
  shape: string;
  rows: number;
  product: string;
  M: number;
  N: number;
  K: number;
  ours_ms: number;
  ours_gpu_ms?: number;
  ours_gflops: number;
} & Partial<Record<`${PeerKey}_ms` | `${PeerKey}_gflops` | `speedup_vs_${PeerKey}`, number>> &
  Partial<Record<`${PeerKey}_error`, string>>;

async function benchMatmul(gpu: Gpu, peers: Peer[]): Promise<MatmulRow[]> {
  const out: MatmulRow[] = [];
  for (const [fin, fout] of [
    [768, 768],
    [768, 3072],
    [3072, 768],
  ] as const) {
    for (const rows of ROWS) {
      // forward Y = X W; input gradient dX = dY W^T; weight gradient dW = X^T dY
      const products = [
        { product: 'forward', M: rows, N: fout, K: fin, transA: false, transB: false },
        { product: 'dX', M: rows, N: fin, K: fout, transA: false, transB: true },
        { product: 'dW', M: fin, N: fout, K: rows, transA: true, transB: false },
      ];
      for (const p of products) {
        const a = gpu.tensor(p.M * p.K, 'a'),
          b = gpu.tensor(p.K * p.N, 'b'),
          c = gpu.tensor(p.M * p.N, 'c');
        gpu.write(a, rand(p.M * p.K, 1));
        gpu.write(b, rand(p.K * p.N, 2));
        const calls = await matmul(gpu, { c, a, b, M: p.M, N: p.N, K: p.K, transA: p.transA, transB: p.transB });
        const { ours: t, peers: got } = await besidePeers(gpu, calls, REPS, peers, (peer) => peer.matmul(p.M, p.N, p.K, p.transA, p.transB, REPS));
        for (const v of [a, b, c]) gpu.destroy(v.buf);
        const flop = 2 * p.M * p.N * p.K;
        const row: MatmulRow = {
          shape: `${fin}x${fout}`,
          rows,
          product: p.product,
          M: p.M,
          N: p.N,
          K: p.K,
          ours_ms: round(t.wallMs)!,
          ours_gpu_ms: round(t.gpuMs),
          ours_gflops: round(flop / t.wallMs / 1e6)!,
        };
        let said = '';
        for (const peer of peers) {
          const pm = got.get(peer.key)!;
          if ('error' in pm) {
            row[`${peer.key}_error`] = pm.error;
            said += `, ${peer.label} failed: ${pm.error.split('\n')[0]}`;
            continue;
          }
          Object.assign(row, {
            [`${peer.key}_ms`]: round(pm.result.ms),
            [`${peer.key}_gflops`]: round(flop / pm.result.ms / 1e6),
            [`speedup_vs_${peer.key}`]: round(pm.result.ms / pm.oursMs),
          });
          said += `, ${peer.label} ${row[`${peer.key}_gflops`]} GFLOP/s, x${row[`speedup_vs_${peer.key}`]}`;
        }
        log(`matmul ${row.shape} rows ${rows} ${p.product}: ours ${row.ours_gflops} GFLOP/s${said}`);
        out.push(row);
      }
    }
  }
  return out;
}

// ---- 2. training step ----
const gpt2Config = (s: GptShape): ModelConfig =>
  parseConfig({
    model_type: 'gpt2',
    vocab_size: s.vocab,
    n_layer: s.layers,
    n_embd: s.hidden,
    n_head: s.heads,
    n_positions: Math.max(1024, s.seqLen),
    tie_word_embeddings: true,
  });

/** Model FLOPs of one training step: 6 x (matmul parameters, the tied LM head included) x tokens + attention. */
function stepFlops(s: GptShape): number {
  const C = s.hidden,
    tokens = s.batch * s.seqLen;
  const matmulParams = s.layers * 12 * C * C + s.vocab * C;
  return 6 * matmulParams * tokens + (12 * s.layers * s.seqLen * C * tokens) / 2; // causal attention: half the scores
}

async function benchTrain(gpu: Gpu, peers: Peer[], name: string, s: GptShape, bestGflops: number) {
  const cfg = gpt2Config(s);
  try {
    checkFits(estimateMemory(cfg, 'full', { batch: s.batch, seqLen: s.seqLen }), gpu.limits);
  } catch (e) {
    return { name, shape: s, skipped: (e as Error).message };
  }
  const model = new Transformer(gpu, cfg, { optimizer: true });
  initWeights(model, 1);
  const plan = await model.plan(s.batch, s.seqLen, { training: true });
  const adam = await AdamW.create(gpu, model.params, { ...ADAMW_DEFAULTS, lr: 1e-4 });
  adam.prepare(1, 1e-4);
  const rng = new Rng(3);
  plan.setBatch(Array.from({ length: s.batch * s.seqLen }, () => Math.floor(rng.next() * s.vocab)));
  const calls = [...plan.zeroGrads, ...plan.forward, ...plan.lossFused, ...plan.backward, ...adam.calls];
  const reps = s.layers >= 12 ? Math.min(REPS, 2) : REPS;
  const { ours: t, peers: got } = await besidePeers(gpu, calls, reps, peers, (peer) => peer.train(s, { warmup: 1, reps }));
  const loss = await plan.readLoss();
  const profile = await gpu.checkAsync('kernel profile', () => profileCalls(gpu, calls));
  log(
    `train ${name}: per-kernel profile (each dispatch alone): ${profile
      .slice(0, 8)
      .map((k) => `${k.kernel} ${(k.share * 100).toFixed(0)}%`)
      .join(', ')}`,
  );
  const flops = stepFlops(s);
  const tokens = s.batch * s.seqLen;
  const row: Record<string, unknown> = {
    name,
    shape: s,
    params: model.params.count,
    dispatches: calls.length,
    ours_ms: round(t.wallMs),
    ours_gpu_ms: round(t.gpuMs),
    tokens_per_s: round((tokens / t.wallMs) * 1000, 1),
    model_tflop_per_step: round(flops / 1e12, 4),
    mfu_vs_own_best_matmul: bestGflops > 0 ? round(flops / t.wallMs / 1e6 / bestGflops, 3) : undefined,
    loss_after: round(loss, 4),
    kernel_profile: profile,
  };
  plan.destroy();
  model.params.destroy();
  let said = '';
  for (const peer of peers) {
    const k = peer.key,
      pm = got.get(k)!;
    if ('error' in pm) {
      row[`${k}_error`] = pm.error;
      said += `, ${peer.label} failed: ${pm.error.split('\n')[0]}`;
      continue;
    }
    const p = pm.result;
    Object.assign(row, {
      [`${k}_ms`]: round(p.ms),
      [`${k}_tokens_per_s`]: round((tokens / p.ms) * 1000, 1),
      [`${k}_kernels`]: p.kernels,
      [`${k}_loss_first`]: round(p.lossFirst, 4),
      [`${k}_loss_last`]: round(p.lossLast, 4),
      [`${k}_notes`]: p.notes,
      [`speedup_vs_${k}`]: round(p.ms / pm.oursMs),
    });
    said += `, ${peer.label} ${row[`${k}_ms`]} ms/step${p.kernels ? ` (${p.kernels} kernels)` : ''}, loss ${row[`${k}_loss_first`]} -> ${row[`${k}_loss_last`]}, x${row[`speedup_vs_${k}`]}`;
  }
  log(`train ${name}: ours ${row.ours_ms} ms/step (${row.tokens_per_s} tok/s, MFU ${row.mfu_vs_own_best_matmul}, ${calls.length} dispatches)${said}`);
  return row;
}

// ---- 3. generation ----
// Decoding with the KV cache against recomputing the whole sequence for every token, after a prompt of 32
// and of 256 tokens (the cost of recomputing grows with the context; the cache's barely), at batch 1, and
// with the cache at batch 8 (8 samples of one prompt, as the Rank tab and the rollouts draw them).
async function benchGenerate(gpu: Gpu, name: string, s: GptShape) {
  const cfg = gpt2Config(s);
  const model = new Transformer(gpu, cfg);
  initWeights(model, 2);
  // 32 new tokens and the median of 5 timings even in a quick run: the decode of a few tokens is a difference of
  // two short times, and one timing of 8 tokens moved by 2x between runs on a loaded machine. Each batch size has
  // its own generator (no re-planning between them), and their timings alternate, so a change in the machine's
  // load falls on both sides of the batch-8 over batch-1 ratio.
  const NEW = 32,
    TIMES = 5;
  const rows: Record<string, unknown>[] = [];
  const gens = new Map<number, Generator>();
  for (const ctx of [32, 256]) {
    const prompt = Array.from({ length: ctx }, (_, i) => (i * 37) % s.vocab);
    const Ks = ctx === 32 ? [1, 8] : [1];
    // the decode rate after the prompt: NEW tokens less 1 token, both after the same prefill
    const run = async (K: number, n: number) => {
      const gen = gens.get(K) ?? gens.set(K, new Generator(model)).get(K)!;
      const t0 = performance.now();
      await gen.generate(prompt, { ...GENERATE_DEFAULTS, numSamples: K, maxNewTokens: n, temperature: 1, seed: 1 });
      return performance.now() - t0;
    };
    for (const K of Ks) await run(K, NEW);
    const diffs = new Map<number, number[]>(Ks.map((K) => [K, []]));
    for (let i = 0; i < TIMES; i++) for (const K of Ks) diffs.get(K)!.push((await run(K, NEW)) - (await run(K, 1)));
    for (const K of Ks)
      rows.push({
        name,
        context: ctx,
        cache: true,
        batch: K,
        new_tokens: NEW,
        tokens_per_s: round(((K * (NEW - 1)) / median(diffs.get(K)!)) * 1000, 1),
        note: `decode only: the time of NEW tokens less that of 1, the same prefill in both; the median of ${TIMES}, batch sizes alternating`,
      });
    // Without a cache: every token recomputes the whole sequence (one plan at full length; causal attention
    // makes the logits at position t independent of the padding after it).
    const L = prompt.length + NEW;
    const plan = await model.plan(1, L);
    const recompute = async () => {
      const seq = [...prompt, ...Array(NEW).fill(0)];
      const t0 = performance.now();
      for (let t = 0; t < NEW; t++) {
        plan.setBatch(seq);
        gpu.run(plan.forward);
        const logits = await plan.readLogits(prompt.length + t - 1, 1);
        let best = 0;
        for (let v = 1; v < s.vocab; v++) if (logits[v]! > logits[best]!) best = v;
        seq[prompt.length + t] = best;
      }
      return performance.now() - t0;
    };
    const times: number[] = [];
    for (let i = 0; i < 3; i++) times.push(await recompute()); // long runs: 3 timings are steady
    rows.push({ name, context: ctx, cache: false, batch: 1, new_tokens: NEW, tokens_per_s: round((NEW / median(times)) * 1000, 1) });
    plan.destroy();
  }
  for (const gen of gens.values()) gen.destroy();
  model.params.destroy();
  const tps = (ctx: number, cache: boolean, batch: number) =>
    rows.find((r) => r.context === ctx && r.cache === cache && r.batch === batch)?.tokens_per_s as number;
  for (const ctx of [32, 256]) rows.push({ name, context: ctx, cache_over_recompute: round(tps(ctx, true, 1) / tps(ctx, false, 1)) });
  rows.push({ name, context: 32, batch8_over_batch1: round(tps(32, true, 8) / tps(32, true, 1)) });
  for (const r of rows) log(`generate ${name} ${JSON.stringify(r)}`);
  return rows;
}

// ---- 3b. sampling on the CPU ----
// A decode step reads back each row's logits and draws its token on the CPU: that draw costs time beside the
// GPU's step, once per sample per token. The draw (sampleToken: bins, no sort) against the sorted distribution
// it must equal (samplingDistribution, what the draw did before), over vocabularies of the shipped families.
// The logits: Gaussian, standard deviation 2.5 (nats), a seeded stream: the shape of a small model's logits.
function benchSampling() {
  const rows: Record<string, unknown>[] = [];
  const configs = [
    { name: 'temperature 1', temperature: 1, topK: 0, topP: 1 },
    { name: 'temperature 0.7, top-p 0.9', temperature: 0.7, topK: 0, topP: 0.9 },
    { name: 'top-k 50', temperature: 1, topK: 50, topP: 1 },
  ];
  for (const [family, V] of [
    ['gpt-small-4x256', 8192],
    ['gpt2', 50257],
    ['smollm2', 49152],
    ['qwen2.5', 151936],
  ] as const) {
    const r = new Rng(V);
    const logits = Float32Array.from({ length: V }, () => 2.5 * Math.sqrt(-2 * Math.log(1 - r.next())) * Math.cos(2 * Math.PI * r.next()));
    for (const c of configs) {
      const time = (draw: () => void) => {
        draw(); // warm the JIT
        const n = Math.max(3, Math.round(2e6 / V)),
          t0 = performance.now();
        for (let i = 0; i < n; i++) draw();
        return (performance.now() - t0) / n;
      };
      const rng = new Rng(1);
      const sorted = time(() => draw(samplingDistribution(logits, c), rng.next()));
      const ours = time(() => sampleToken(logits, c, rng));
      rows.push({ vocab: V, family, config: c.name, sort_ms: round(sorted, 3), ours_ms: round(ours, 3), speedup: round(sorted / ours, 1) });
    }
  }
  for (const row of rows) log(`sampling ${JSON.stringify(row)}`);
  return rows;
}

// ---- 3c. drawing on the device ----
// Decoding with a large vocabulary: the bench's GPT (4 x 256) with SmolLM2's and Qwen's vocabularies, 32 new tokens
// after 32 of prompt at temperature 1, the tokens drawn on the CPU (each row's logits read back, sampleToken) or on
// the device (Generator.deviceSampling: two numbers a row read back); decode only (the time of 32 tokens less that
// of 1), the median of 5, the two alternating.
async function benchDeviceSampling(gpu: Gpu) {
  const rows: Record<string, unknown>[] = [];
  for (const vocab of [49152, 151936]) {
    const model = new Transformer(gpu, gpt2Config({ ...SMALL, vocab }));
    initWeights(model, 2);
    const prompt = Array.from({ length: 32 }, (_, i) => (i * 37) % vocab);
    for (const K of [1, 8]) {
      const gens = { cpu: new Generator(model), device: new Generator(model) };
      gens.cpu.deviceSampling = false;
      gens.device.deviceSampling = true;
      const run = async (g: Generator, n: number) => {
        const t0 = performance.now();
        await g.generate(prompt, { ...GENERATE_DEFAULTS, numSamples: K, maxNewTokens: n, temperature: 1, seed: 1 });
        return performance.now() - t0;
      };
      const NEW = 32;
      for (const g of Object.values(gens)) await run(g, NEW);
      const diffs = { cpu: [] as number[], device: [] as number[] };
      for (let i = 0; i < 5; i++) for (const k of ['cpu', 'device'] as const) diffs[k].push((await run(gens[k], NEW)) - (await run(gens[k], 1)));
      const tps = (k: 'cpu' | 'device') => round(((K * (NEW - 1)) / median(diffs[k])) * 1000, 1);
      rows.push({
        name: 'gpt-small-4x256',
        vocab,
        batch: K,
        cpu_draw_tokens_per_s: tps('cpu'),
        device_draw_tokens_per_s: tps('device'),
        speedup: round(tps('device')! / tps('cpu')!),
      });
      if (!(gens.device.deviceDraws > 0) || gens.cpu.deviceDraws !== 0)
        throw new Error(
          `device sampling bench: the draws did not happen where asked (${gens.device.deviceDraws} on the device, ${gens.cpu.deviceDraws} by the CPU generator)`,
        );
      for (const g of Object.values(gens)) g.destroy();
    }
    model.params.destroy();
  }
  for (const r of rows) log(`device sampling ${JSON.stringify(r)}`);
  return rows;
}

// ---- 4. memory ----
async function benchMemory(gpu: Gpu, s: GptShape) {
  const cfg = gpt2Config(s);
  const full = estimateMemory(cfg, 'full', { batch: 1, seqLen: 1 });
  const lora = estimateMemory(cfg, 'lora', { batch: 1, seqLen: 1, loraRank: 8 });
  const perParam = (e: typeof full) => (e.bytes.weights + e.bytes.gradients + e.bytes.optimizer) / e.parameters;
  // PPO's four roles, measured as allocated GPU bytes (models + the policy's training plan):
  const measure = async (build: () => Promise<() => void>) => {
    const before = gpu.allocatedBytes;
    const free = await build();
    const bytes = gpu.allocatedBytes - before;
    free();
    return bytes;
  };
  const T = Math.min(128, s.seqLen),
    B = 4;
  const separate = await measure(async () => {
    const policy = new Transformer(gpu, cfg, { optimizer: true }),
      ref = new Transformer(gpu, cfg),
      rm = new Transformer(gpu, cfg),
      value = new Transformer(gpu, cfg, { optimizer: true });
    const heads = [new ScoreHead(rm), new ScoreHead(value, { optimizer: true })];
    const plan = await policy.plan(B, T, { training: true });
    return () => {
      plan.destroy();
      for (const h of heads) h.destroy();
      for (const m of [policy, ref, rm, value]) m.params.destroy();
    };
  });
  const shared = await measure(async () => {
    const base = new Transformer(gpu, cfg);
    const l = LORA_DEFAULTS.gpt2;
    const policy = new LoraSet(base, l, { optimizer: true }),
      value = new LoraSet(base, l, { optimizer: true }),
      rm = new LoraSet(base, l);
    const heads = [new ScoreHead(base), new ScoreHead(base, { optimizer: true })];
    const plan = await base.plan(B, T, { training: true, lora: policy });
    return () => {
      plan.destroy();
      for (const h of heads) h.destroy();
      for (const x of [policy, value, rm]) x.destroy();
      base.params.destroy();
    };
  });
  const r = {
    model: s,
    params: full.parameters,
    bytes_per_param_full_training: round(perParam(full)),
    bytes_per_param_lora_r8: round(perParam(lora), 3),
    ppo_setup_bytes: {
      four_separate_models: separate,
      shared_base_with_lora: shared,
      ratio: round(separate / shared),
      batch: B,
      seq: T,
      note: "policy, reference, reward and value roles with their score heads, plus the policy's training plan (batch 4 x 128)",
    },
  };
  log(
    `memory: ${r.bytes_per_param_full_training} B/param full, ${r.bytes_per_param_lora_r8} B/param LoRA r=8; PPO setup ${(separate / 2 ** 20).toFixed(0)} MiB as four models vs ${(shared / 2 ** 20).toFixed(0)} MiB shared base (x${r.ppo_setup_bytes.ratio})`,
  );
  return r;
}

// ---- 4b. memory of the online stages: PPO's four roles vs GRPO's one adapter, as allocated ----

/**
 * GPU bytes allocated by a LoRA run's setup, everything a step holds: PPO (policy, value and RM adapters
 * on one base, two score heads; the policy's and value's training plans, the reference's and the RM's
 * forward plans, the rollouts' KV cache) against GRPO (one adapter; its training plan, the reference's
 * forward plan only with beta > 0, the KV cache). Batch: 4 prompts x 4 samples, as both stages' defaults,
 * of 32 positions: 16 rows x 128 would need 393 MiB of logits in one binding for a 50k vocabulary, over
 * the 128 MiB many adapters allow (the plans refuse it; the vocabulary is not yet cut into chunks).
 */
async function benchRlMemory(gpu: Gpu, name: string, cfg: ModelConfig) {
  const P = 4,
    G = 4,
    rows = P * G,
    T = 32;
  const measure = async (build: () => Promise<(() => void)[]>) => {
    const before = gpu.allocatedBytes;
    const frees = await build();
    const bytes = gpu.allocatedBytes - before;
    for (const f of frees.reverse()) f();
    return bytes;
  };
  const targets = { ...LORA_DEFAULTS[cfg.arch], dropout: 0 }; // the online stages' default: no LoRA dropout
  // the rollouts decode one prompt's G samples at a time: a KV cache of G rows x T positions
  const kv = () => new KVCache(base, G, T);
  const base = new Transformer(gpu, cfg);
  const baseBytes = gpu.allocatedBytes;
  const ppo = await measure(async () => {
    const policy = new LoraSet(base, targets, { optimizer: true }),
      value = new LoraSet(base, targets, { optimizer: true }),
      rm = new LoraSet(base, targets);
    const rmHead = new ScoreHead(base),
      valueHead = new ScoreHead(base, { optimizer: true });
    const plans = [
      await base.plan(rows, T, { training: true, lora: policy }),
      await base.plan(rows, T, { training: true, lora: value, score: valueHead }),
      await base.plan(rows, T),
      await base.plan(rows, T, { lora: rm, score: rmHead }),
    ];
    const cache = kv();
    return [
      () => cache.destroy(),
      ...plans.map((p) => () => p.destroy()),
      () => rmHead.destroy(),
      () => valueHead.destroy(),
      () => policy.destroy(),
      () => value.destroy(),
      () => rm.destroy(),
    ];
  });
  const grpo = async (beta: number) =>
    measure(async () => {
      const policy = new LoraSet(base, targets, { optimizer: true });
      const plans = [await base.plan(rows, T, { training: true, lora: policy }), ...(beta > 0 ? [await base.plan(rows, T)] : [])];
      const cache = kv();
      return [() => cache.destroy(), ...plans.map((p) => () => p.destroy()), () => policy.destroy()];
    });
  const grpo0 = await grpo(0),
    grpoKl = await grpo(0.04);
  base.params.destroy();
  const mib = (b: number) => Math.round(b / 2 ** 20);
  const r = {
    model: name,
    base_weights_bytes: baseBytes,
    batch: `${P} prompts x ${G} samples`,
    seq: T,
    ppo_lora_bytes: ppo,
    grpo_lora_bytes: grpo0,
    grpo_lora_with_kl_bytes: grpoKl,
    ppo_over_grpo: round(ppo / grpo0),
    ppo_over_grpo_with_kl: round(ppo / grpoKl),
    note: "bytes allocated on the GPU beyond the frozen base: adapters, heads, AdamW moments, every plan a step uses and the rollouts' KV cache",
  };
  log(
    `memory ${name}: base ${mib(baseBytes)} MiB; beyond it PPO LoRA ${mib(ppo)} MiB, GRPO LoRA ${mib(grpo0)} MiB (beta 0), ${mib(grpoKl)} MiB (beta > 0): PPO x${r.ppo_over_grpo}`,
  );
  return r;
}

// ---- run ----
const SMALL: GptShape = { vocab: 8192, layers: 4, hidden: 256, heads: 4, seqLen: 128, batch: 8 };
const gpu = await createNodeGpu();
log(`adapter: ${gpu.adapter.name}`);
/** The checkout's commit, or 'unknown' outside a git checkout. */
function gitHead(): string {
  try {
    return execSync('git rev-parse HEAD', { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}
/** The commit measured: BENCH_COMMIT (the commit a packed bundle was built from, bench/gpu/run.sh), else the checkout's. */
const commitOf = (): string => process.env.BENCH_COMMIT || gitHead();
/** A one-section run (--only smollm, generate, device-sampling, f16, stages, rl-memory): its document printed, and written to --out when given. */
function emitSection(section: Record<string, unknown>): never {
  const text = JSON.stringify({ adapter: gpu.adapter, date: new Date().toISOString(), commit: commitOf(), ...section }, null, 2);
  console.log(text);
  if (opt.out) writeFileSync(opt.out, text + '\n');
  process.exit(0);
}
if (opt.only === 'smollm') emitSection({ smollm2: await benchSmolLM2(gpu, log, !!opt.quick) });
if (opt.only === 'generate')
  emitSection({ generation: await benchGenerate(gpu, 'gpt-small-4x256', SMALL), sampling: benchSampling(), device_sampling: await benchDeviceSampling(gpu) });
if (opt.only === 'device-sampling') emitSection({ device_sampling: await benchDeviceSampling(gpu) });
// the LoRA SFT step on an f32 and an f16 base, in one run (issue 10)
if (opt.only === 'f16') emitSection({ f16_base: await benchF16Sft(gpu, log, !!opt.quick) });
if (opt.only === 'stages') emitSection({ stages: await benchStages(gpu, log, !!opt.quick) });
if (opt.only === 'rl-memory') {
  // just the online stages' memory table (allocations, no timing): quick, and what the README's table shows
  emitSection({
    rl_memory: [
      await benchRlMemory(gpu, 'gpt2-124m', gpt2Config({ vocab: 50257, layers: 12, hidden: 768, heads: 12, seqLen: 256, batch: 1 })),
      await benchRlMemory(gpu, 'smollm2-135m', SMOLLM2_135M()),
    ],
  });
}
const wanted = (opt.peers ?? PEER_KEYS.join(','))
  .split(',')
  .map((x) => x.trim())
  .filter(Boolean);
for (const w of wanted) if (!PEER_KEYS.includes(w as PeerKey)) throw new Error(`--peers: unknown peer ${w} (known: ${PEER_KEYS.join(', ')})`);
const peerInfo = async (key: PeerKey, init: () => Promise<PeerInfo>): Promise<PeerInfo> =>
  opt['no-peer'] ? { ok: false, why: 'disabled with --no-peer' } : !wanted.includes(key) ? { ok: false, why: `not in --peers ${opt.peers}` } : init();
const peerList: Peer[] = [
  { key: 'tfjs', label: 'tfjs', info: await peerInfo('tfjs', initTfjs), matmul: tfjsMatmul, train: tfjsTrainStep },
  { key: 'jaxjs', label: 'jax-js', info: await peerInfo('jaxjs', initJaxjs), matmul: jaxjsMatmul, train: jaxjsTrainStep },
];
for (const p of peerList) log(p.info.ok ? `peer: ${p.label} ${p.info.version} (${p.info.backend})` : `peer ${p.label} unavailable: ${p.info.why}`);
const peers = peerList.filter((p) => p.info.ok);
const GPT2: GptShape = { vocab: 50257, layers: 12, hidden: 768, heads: 12, seqLen: opt.quick ? 128 : 256, batch: 1 };
const sizes = (opt.sizes ?? (opt.quick ? 'small' : 'small,gpt2')).split(',');
// --only matmul, --only train or --only matmul,train: those sections (and the peers' part of them), e.g. to
// measure again on a busy machine; both together give the step's MFU against the run's best matmul
const only = opt.only?.split(',');
for (const o of only ?? [])
  if (!['matmul', 'train'].includes(o))
    throw new Error(`--only: matmul, train (or both: matmul,train), generate, smollm, f16, stages or rl-memory, not ${opt.only}`);
const matmulRows = only && !only.includes('matmul') ? [] : await benchMatmul(gpu, peers);
const best = Math.max(...matmulRows.map((r) => r.ours_gflops)); // -Infinity without matmuls: no MFU
const train: Record<string, unknown>[] = [];
if (!only || only.includes('train')) {
  if (sizes.includes('small')) train.push(await benchTrain(gpu, peers, 'gpt-small-4x256', SMALL, best));
  if (sizes.includes('gpt2')) train.push(await benchTrain(gpu, peers, 'gpt2-12x768', GPT2, best));
}
disposeJaxjs(); // its buffer pool never shrinks: let go of the memory before the rest
const generation = opt.only ? [] : await benchGenerate(gpu, 'gpt-small-4x256', SMALL);
const sampling = opt.only ? [] : benchSampling();
const deviceSampling = opt.only ? [] : await benchDeviceSampling(gpu);
const memory = opt.only ? undefined : await benchMemory(gpu, GPT2);
const rlMemory = opt.only ? [] : [await benchRlMemory(gpu, 'gpt2-124m', gpt2Config(GPT2)), await benchRlMemory(gpu, 'smollm2-135m', SMOLLM2_135M())];
const smollm2 = opt.only ? undefined : await benchSmolLM2(gpu, log, !!opt.quick);
const stages: StageRow[] = opt.only ? [] : await benchStages(gpu, log, !!opt.quick);
const f16Base: F16Row[] = opt.only ? [] : await benchF16Sft(gpu, log, !!opt.quick);
const geo = (xs: number[]) => (xs.length ? Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length) : undefined);
const nums = (xs: unknown[]) => xs.filter((x): x is number => typeof x === 'number');
const matmulSpeedup = (k: PeerKey) => round(geo(nums(matmulRows.map((r) => r[`speedup_vs_${k}`]))), 3) ?? null;
const trainSpeedup = (k: PeerKey) => round(geo(nums(train.map((t) => t[`speedup_vs_${k}`]))), 3) ?? null;
const unavailable = Object.fromEntries(peerList.filter((p) => !p.info.ok).map((p) => [p.key, p.info.why]));
const commit = commitOf();
const doc = {
  adapter: gpu.adapter,
  date: new Date().toISOString(),
  commit,
  node: process.version,
  settings: {
    reps: REPS,
    rows: ROWS,
    quick: !!opt.quick,
    timing: 'median wall ms from submit to results ready on the device (every side); ours_gpu_ms from timestamp queries',
  },
  peers: { tfjs: peerList[0]!.info, jaxjs: peerList[1]!.info },
  units: { ms: 'milliseconds', gflops: 'GFLOP/s', tokens_per_s: 'tokens per second', bytes: 'bytes' },
  matmul: matmulRows,
  train,
  generation,
  sampling,
  device_sampling: deviceSampling,
  memory: memory ?? null,
  rl_memory: rlMemory,
  smollm2: smollm2 ?? null,
  stages,
  f16_base: f16Base,
  summary: {
    matmul_speedup_vs_tfjs: matmulSpeedup('tfjs'),
    train_step_speedup_vs_tfjs: trainSpeedup('tfjs'),
    matmul_speedup_vs_jaxjs: matmulSpeedup('jaxjs'),
    train_step_speedup_vs_jaxjs: trainSpeedup('jaxjs'),
    best_matmul_gflops: best,
    ...(Object.keys(unavailable).length ? { peers_unavailable: unavailable } : {}),
  },
};
/** A peer's figure, or "error" where its row has a <peer>_error (the JSON has the message). */
const cell = (r: Record<string, unknown>, field: string, key: PeerKey) => String(r[field] ?? (r[`${key}_error`] ? 'error' : '-'));
const table = [
  `adapter: ${gpu.adapter.name}`,
  '',
  '| matmul | rows | product | ours GFLOP/s | tfjs GFLOP/s | vs tfjs | jax-js GFLOP/s | vs jax-js |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...matmulRows.map(
    (r) =>
      `| ${r.shape} | ${r.rows} | ${r.product} | ${r.ours_gflops} | ${cell(r, 'tfjs_gflops', 'tfjs')} | ${r.speedup_vs_tfjs ?? '-'} | ${cell(r, 'jaxjs_gflops', 'jaxjs')} | ${r.speedup_vs_jaxjs ?? '-'} |`,
  ),
  '',
  '| training step | ours ms | tokens/s | MFU | dispatches | tfjs ms | tfjs kernels | vs tfjs | jax-js ms | jax-js kernels | vs jax-js |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...train.map((t) => {
    const r = t as Record<string, unknown>;
    return r.skipped
      ? `| ${r.name} | skipped: ${r.skipped} | | | | | | | | | |`
      : `| ${r.name} | ${r.ours_ms} | ${r.tokens_per_s} | ${r.mfu_vs_own_best_matmul ?? '-'} | ${r.dispatches} | ${cell(r, 'tfjs_ms', 'tfjs')} | ${r.tfjs_kernels ?? '-'} | ${r.speedup_vs_tfjs ?? '-'} | ${cell(r, 'jaxjs_ms', 'jaxjs')} | ${r.jaxjs_kernels ?? '-'} | ${r.speedup_vs_jaxjs ?? '-'} |`;
  }),
  '',
  ...(memory
    ? [
        '| generation | context | batch | KV cache | tokens/s |',
        '| --- | --- | --- | --- | --- |',
        ...generation
          .filter((g) => g.tokens_per_s !== undefined)
          .map((g) => `| ${g.name} | ${g.context} | ${g.batch} | ${g.cache ? 'yes' : 'no'} | ${g.tokens_per_s} |`),
        ...generation
          .filter((g) => g.tokens_per_s === undefined)
          .map(
            (g) =>
              `${g.name}, ${g.context} tokens of context: ${g.cache_over_recompute !== undefined ? `cache ${g.cache_over_recompute}x recomputing` : `batch 8 ${g.batch8_over_batch1}x batch 1`}`,
          ),
        '',
        '| sampling a token on the CPU | vocabulary | settings | sorting ms | ours ms | speedup |',
        '| --- | --- | --- | --- | --- | --- |',
        ...sampling.map((r) => `| ${r.family} | ${r.vocab} | ${r.config} | ${r.sort_ms} | ${r.ours_ms} | ${r.speedup} |`),
        '',
        '| decoding, drawn on the CPU vs the device | vocabulary | batch | CPU draw tokens/s | device draw tokens/s | speedup |',
        '| --- | --- | --- | --- | --- | --- |',
        ...deviceSampling.map((r) => `| ${r.name} | ${r.vocab} | ${r.batch} | ${r.cpu_draw_tokens_per_s} | ${r.device_draw_tokens_per_s} | ${r.speedup} |`),
        '',
        `memory (GPT-2 124M): ${memory.bytes_per_param_full_training} bytes/param full training, ${memory.bytes_per_param_lora_r8} bytes/param with LoRA r=8; PPO setup ${(memory.ppo_setup_bytes.four_separate_models / 2 ** 20).toFixed(0)} MiB as four models vs ${(memory.ppo_setup_bytes.shared_base_with_lora / 2 ** 20).toFixed(0)} MiB on a shared base`,
        '',
      ]
    : []),
  ...(smollm2
    ? [
        `| smollm2-135m-shaped (random weights, LoRA r 8) | ms | tokens/s | MiB beyond the ${(smollm2.base_weights_bytes / 2 ** 20).toFixed(0)} MiB base | setting |`,
        '| --- | --- | --- | --- | --- |',
        ...smollm2.rows.map((r) => `| ${r.name} | ${r.ms} | ${r.tokens_per_s} | ${(r.memory_bytes / 2 ** 20).toFixed(0)} | ${r.setting} |`),
        '',
      ]
    : []),
  ...(f16Base.length
    ? [
        '| smollm2-135m-shaped LoRA SFT step | base weights | ms | tokens/s | base MiB | MiB beyond the base | total MiB |',
        '| --- | --- | --- | --- | --- | --- | --- |',
        ...f16Base.map((r) =>
          r.error
            ? `| ${r.setting} | ${r.base} | ${r.error} | | | | |`
            : `| ${r.setting} | ${r.base} | ${r.ms} | ${r.tokens_per_s} | ${(r.base_bytes / 2 ** 20).toFixed(0)} | ${(r.memory_bytes / 2 ** 20).toFixed(0)} | ${((r.base_bytes + r.memory_bytes) / 2 ** 20).toFixed(0)} |`,
        ),
        '',
      ]
    : []),
  ...(stages.length
    ? [
        '| stage (built-in model) | ms/step | positions computed | tokens held | full length ms/step | full length positions | speedup |',
        '| --- | --- | --- | --- | --- | --- | --- |',
        ...stages.map(
          (r) => `| ${r.stage} | ${r.ms_per_step} | ${r.positions} | ${r.tokens} | ${r.full_length_ms_per_step} | ${r.full_length_positions} | ${r.speedup} |`,
        ),
        '',
      ]
    : []),
  `summary: matmul speedup vs tfjs ${doc.summary.matmul_speedup_vs_tfjs ?? 'n/a'}, vs jax-js ${doc.summary.matmul_speedup_vs_jaxjs ?? 'n/a'}; training step speedup vs tfjs ${doc.summary.train_step_speedup_vs_tfjs ?? 'n/a'}, vs jax-js ${doc.summary.train_step_speedup_vs_jaxjs ?? 'n/a'} (peer time / our time)`,
].join('\n');
process.stdout.write(table + '\n');
if (opt.out) writeFileSync(opt.out, JSON.stringify(doc, null, 2) + '\n');
process.exit(0);
