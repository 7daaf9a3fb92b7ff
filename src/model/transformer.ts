// The model and its plans, llm.c style: `plan(B, T)` allocates every activation for that shape and
// records the forward as a list of calls that reads like the network diagram (the embedding, each
// layer's block, the final norm, the head); the backward is the same steps reversed. The blocks'
// recipes are in blocks/ (GPT-2; Llama with Qwen's variations), their linear layers with LoRA in
// adapted-linear.ts.
import type { Call, Gpu, View } from '../gpu/runtime.ts';
import type { LayerCache } from '../ops/attention.ts';
import { crossEntropy, type LogitChunk } from '../ops/crossentropy.ts';
import { buildBuckets, embeddingBackward, embeddingForward, type RowChunk } from '../ops/embedding.ts';
import { linearBackward, linearForward, type LinearShape } from '../ops/linear.ts';
import { zero } from '../ops/residual.ts';
import { ropeTable } from '../ops/rope.ts';
import { LinearLayers } from './adapted-linear.ts';
import { BlockEnv, type Block, type BlockGrads, type Step } from './blocks/block.ts';
import { gpt2Block } from './blocks/gpt2.ts';
import { llamaBlock } from './blocks/llama.ts';
import { isHalfWeight } from '../shared/half.ts';
import { paramSpecs, type ModelConfig } from '../shared/model-config.ts';
import { MemoryError } from '../shared/memory.ts';
import { bufferBytes, kvCacheBuffers, planBuffers, type PlanBuffer } from '../shared/plan-buffers.ts';
import type { ScoreHead } from './head.ts';
import type { LoraSet } from './lora.ts';
import { ParamTable, rowAlign } from './params.ts';

export interface ModelOptions {
  grads?: boolean;
  optimizer?: boolean;
  /**
   * The model stays frozen (inference, and the base under LoRA adapters): where the device has 'shader-f16' and
   * GpuOptions.f16Weights did not turn it off, its linear weights (isHalfWeight) are stored as f16, half the
   * bytes, and the matmuls read them so with f32 arithmetic; their f32 values stay on the host (ParamTable), so
   * merges and exports are exact. Ignored with grads or optimizer (the weights train). Off by default: a full
   * fine-tune's reference model, which must compute what the f32 weights compute, never asks for it.
   */
  frozenF16?: boolean;
}

export class Transformer {
  readonly params: ParamTable;
  /** The recipe of every layer (and the names of the weights around the layers). */
  readonly block: Block<{ out: View }, BlockGrads>;
  private ropeCs?: View;

  constructor(
    readonly gpu: Gpu,
    readonly cfg: ModelConfig,
    opts: ModelOptions = {},
  ) {
    const { frozenF16, ...table } = opts;
    // a frozen model (no gradients) asked to, on a device with 'shader-f16' left on: its linear weights in f16
    const half = frozenF16 && !opts.grads && !opts.optimizer && gpu.f16Weights ? isHalfWeight : undefined;
    this.params = new ParamTable(gpu, paramSpecs(cfg), { ...table, ...(half ? { half } : {}) });
    this.block = cfg.arch === 'gpt2' ? gpt2Block : llamaBlock;
    if (cfg.arch === 'llama') {
      this.ropeCs = gpu.tensor(cfg.maxPositions * cfg.headDim, 'rope_cos_sin');
      gpu.write(this.ropeCs, ropeTable(cfg.maxPositions, cfg.headDim, cfg.ropeTheta));
    }
  }

  /** Frees its weights (and their gradients and moments) and its RoPE table. */
  destroy(): void {
    this.params.destroy();
    if (this.ropeCs) this.gpu.destroy(this.ropeCs.buf);
    this.ropeCs = undefined;
  }

  /** Whether the linear weights are stored and read as f16 (ModelOptions.frozenF16 on a device that has it). */
  get f16Weights(): boolean {
    return this.params.hasF16;
  }

  /** Names of the embedding and LM head weights (the same tensor when tied). */
  get embedName(): string {
    return this.block.embed;
  }

  get headName(): string {
    return this.cfg.tiedEmbeddings ? this.embedName : 'lm_head.weight';
  }

  /**
   * Plans a forward (and, when training, a backward) for B sequences of T tokens. With a KV cache the T
   * tokens continue sequences already in the cache (positions pos0 ..), and only the last position's
   * logits are computed: that is generation (prefill with T = prompt length, then T = 1 per step).
   */
  async plan(B: number, T: number, opts: PlanOptions = {}): Promise<Plan> {
    if (opts.training && opts.cache) throw new Error('a plan with a KV cache is for inference only');
    if (opts.cache && opts.cache.B !== B) throw new Error(`KV cache holds ${opts.cache.B} sequences, the plan has ${B}`);
    if (opts.lora && opts.lora.model !== this) throw new Error('the LoRA adapter belongs to another model');
    if (opts.score && opts.cache) throw new Error('a scalar head has no use for a KV cache');
    // an allocation the GPU refuses (out of memory) fails here, named, with what was allocated freed,
    // rather than as an uncaptured error and an invalid buffer in the first step that uses it: the
    // constructor's buffers (ids, targets, logits: often the largest) as well as build()'s
    let plan: Plan | undefined;
    try {
      await this.gpu.checkAsync(`a plan of ${B} x ${T} tokens`, () => {
        plan = new Plan(this, B, T, !!opts.training, opts.cache, opts.lora, opts.score, opts.share);
        return plan.build();
      });
    } catch (e) {
      plan?.destroy();
      throw e;
    }
    return plan!;
  }

  get ropeTable(): View | undefined {
    return this.ropeCs;
  }
}

/** Keys and values of every layer for B sequences of up to L positions. */
export class KVCache {
  readonly layers: LayerCache[] = [];
  private readonly meta: View;
  readonly bytes: number;

  constructor(
    readonly model: Transformer,
    readonly B: number,
    readonly L: number,
  ) {
    const c = model.cfg;
    if (L > c.maxPositions) throw new Error(`a KV cache of ${L} positions exceeds the model's ${c.maxPositions}`);
    const n = B * L * c.kvHeads * c.headDim;
    if (n * 4 > model.gpu.maxBinding)
      throw new Error(`a KV cache of ${B} x ${L} positions needs ${((n * 4) / 2 ** 20).toFixed(0)} MiB per layer, over this adapter's storage binding`);
    // the buffers kvCacheBuffers lists (what the memory estimate counts): the position, then each layer's keys and values
    const [meta, ...kv] = kvCacheBuffers(c, B, L).map((b) => model.gpu.tensor(b.n, b.label));
    this.meta = meta!;
    for (let l = 0; l < c.layers; l++) this.layers.push({ k: kv[2 * l]!, v: kv[2 * l + 1]!, meta: this.meta, L });
    this.bytes = 2 * c.layers * n * 4;
  }

  /** The position of the first token of the next call (the number of tokens already cached). */
  setPos0(pos0: number): void {
    this.model.gpu.write(this.meta, Uint32Array.of(pos0, 0, 0, 0));
  }

  destroy(): void {
    for (const l of this.layers) for (const v of [l.k, l.v]) this.model.gpu.destroy(v.buf);
    this.model.gpu.destroy(this.meta.buf);
  }
}

export interface PlanOptions {
  training?: boolean;
  cache?: KVCache;
  lora?: LoraSet;
  score?: ScoreHead;
  /**
   * A plan of the same model, batch and options for at least T positions whose buffers this one uses
   * instead of allocating its own (its i-th tensor in the i-th of `share`'s): plans for shorter batches
   * (src/model/plan-set.ts) then cost no memory. Only one of them may be in use at a time.
   */
  share?: Plan;
}

export class Plan {
  readonly BT: number;
  readonly ids: View;
  readonly pos: View;
  readonly targets: View;
  readonly weights: View;
  readonly losses: View;
  /** The LM head's logits by vocabulary chunk (the head's row chunks), each [rows, vn] in a buffer of its own:
   *  a large vocabulary's logits need not fit one binding or one buffer. readLogits() puts them together. */
  readonly logitChunks: LogitChunk[];
  private readonly ceStats?: View;
  readonly buckets?: View;
  /** With a scalar head: score of every position [B*T], and the gradient the trainer writes for it. */
  readonly scores?: View;
  readonly dscores?: View;
  forward: Call[] = [];
  /** Cross-entropy into `losses`, logits kept. */
  loss: Call[] = [];
  /** Cross-entropy with dlogits written over the logits: the start of the backward. */
  lossFused: Call[] = [];
  backward: Call[] = [];
  zeroGrads: Call[] = [];
  /** Bytes of activations and scratch this plan allocated. */
  activationBytes = 0;
  private owned: GPUBuffer[] = [];
  /** Every tensor's buffer in the order allocated (owned or `share`'s). */
  private readonly allocs: GPUBuffer[] = [];
  /** The buffers this plan allocates (planBuffers), and each by its label once allocated. */
  private readonly layout: { io: PlanBuffer[]; body: PlanBuffer[] };
  private readonly byLabel = new Map<string, View>();

  constructor(
    readonly model: Transformer,
    readonly B: number,
    readonly T: number,
    readonly training: boolean,
    readonly cache?: KVCache,
    readonly lora?: LoraSet,
    readonly score?: ScoreHead,
    private readonly share?: Plan,
  ) {
    const cfg = model.cfg;
    if (T > cfg.maxPositions) throw new Error(`sequence length ${T} exceeds the model's ${cfg.maxPositions} positions`);
    if (
      share &&
      (share.model !== model ||
        share.B !== B ||
        share.T < T ||
        share.training !== training ||
        share.cache !== cache ||
        share.lora !== lora ||
        share.score !== score)
    ) {
      throw new Error(`a plan of ${B} x ${T} can only share the buffers of a plan of the same model, batch and options, at least ${T} long`);
    }
    this.BT = B * T;
    const logitRows = score ? 0 : cache ? B : this.BT;
    // a chunk's logits [rows, vn] must fit one binding, so the rows bound how many columns a chunk holds
    // (a sharing plan chunks as the plan it shares with, so that its logit tensors line up with those)
    const maxCols = Math.floor(model.gpu.maxBinding / 4 / Math.max(1, share ? share.logitRows : logitRows));
    if (!score && maxCols < rowAlign(cfg.hidden)) {
      throw new Error(
        `batch ${B} x ${T}: even ${rowAlign(cfg.hidden)} vocabulary columns of logits (${logitRows} rows) are over this adapter's ${(model.gpu.maxBinding / 2 ** 20).toFixed(0)} MiB storage binding: use fewer tokens per step`,
      );
    }
    const chunks = score ? [] : model.params.rowChunks(model.headName, maxCols);
    // every buffer, from the list the memory estimate sums: the batch's and the head's now, the rest in build()
    this.layout = planBuffers(cfg, B, T, {
      training,
      kvCache: !!cache,
      score: !!score,
      logitChunks: chunks,
      lora: lora && { r: lora.cfg.r, dropout: lora.cfg.dropout, modules: [...lora.modules.values()] },
    });
    // refused before anything is allocated, on every path that makes a plan (trainers, plan sets, scorers,
    // generation): each buffer is bound whole by some kernel, so none may exceed a binding or a buffer
    const limit = Math.min(model.gpu.maxBinding, model.gpu.maxBuffer);
    const over = [...this.layout.io, ...this.layout.body].find((b) => bufferBytes(b.n) > limit);
    if (over) {
      const mib = (n: number) => `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 2 : 0)} MiB`;
      throw new MemoryError(
        `a plan of ${B} x ${T} tokens: its ${over.label} needs ${mib(bufferBytes(over.n))} in one buffer, over this adapter's ${mib(limit)} storage binding: use a smaller batch or sequence length`,
      );
    }
    this.allocate(this.layout.io);
    this.ids = this.take('ids');
    this.pos = this.take('pos');
    this.targets = this.take('targets');
    this.weights = this.take('weights');
    this.losses = this.take('losses');
    this.logitChunks = chunks.map(({ v0, vn }) => ({ v0, vn, view: this.take(`logits[${v0}:${v0 + vn}]`) }));
    if (!score) this.ceStats = this.take('ce_stats');
    if (training) this.buckets = this.take('buckets');
    if (score) {
      this.scores = this.take('scores');
      if (training) this.dscores = this.take('dscores');
    }
  }

  private allocate(list: readonly PlanBuffer[]): void {
    for (const { label, n } of list) this.byLabel.set(label, this.t(n, label));
  }

  /** A buffer of the plan's list by name (`n`, when given, must be its size): a recipe cannot allocate what the list lacks. */
  private take(label: string, n?: number): View {
    const v = this.byLabel.get(label);
    if (!v) throw new Error(`plan ${this.B} x ${this.T}: no buffer '${label}' in planBuffers (src/shared/plan-buffers.ts)`);
    if (n !== undefined && v.n !== n) throw new Error(`plan ${this.B} x ${this.T}: buffer '${label}' is ${v.n} elements in planBuffers, ${n} asked`);
    return v;
  }

  private t(n: number, label: string): View {
    const theirs = this.share?.allocs[this.allocs.length];
    if (theirs && theirs.size >= n * 4) {
      this.allocs.push(theirs);
      return { buf: theirs, off: 0, n };
    }
    const v = this.model.gpu.tensor(n, label);
    this.owned.push(v.buf);
    this.allocs.push(v.buf);
    this.activationBytes += v.buf.size;
    return v;
  }

  /** Writes a batch: ids [B*T]; targets default to the next token (last position ignored), weights to 1/count. */
  setBatch(ids: ArrayLike<number>, targets?: ArrayLike<number>, weights?: ArrayLike<number>): void {
    const { B, T, BT } = this;
    const V = this.model.cfg.vocabSize;
    if (ids.length !== BT) throw new Error(`batch has ${ids.length} ids, the plan expects ${B} x ${T}`);
    for (let i = 0; i < BT; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`token id ${id} at position ${i} is outside the vocabulary (0..${V - 1})`);
    }
    const gpu = this.model.gpu;
    gpu.write(this.ids, Uint32Array.from(ids));
    gpu.write(
      this.pos,
      Uint32Array.from({ length: BT }, (_, i) => i % T),
    );
    let tg: Int32Array;
    if (targets) tg = Int32Array.from(targets);
    else tg = Int32Array.from({ length: BT }, (_, i) => (i % T === T - 1 ? -1 : ids[i + 1]!));
    const count = tg.reduce((s, x) => s + (x >= 0 ? 1 : 0), 0);
    const w = weights ? Float32Array.from(weights) : Float32Array.from(tg, (x) => (x >= 0 ? 1 / Math.max(1, count) : 0));
    gpu.write(this.targets, tg);
    gpu.write(this.weights, w);
    if (this.buckets) gpu.write(this.buckets, buildBuckets(ids));
  }

  /** Generation: B x T new tokens continuing cached sequences at positions pos0 .. pos0+T-1. */
  setTokens(ids: ArrayLike<number>, pos0: number): void {
    const { B, T, BT, cache } = this;
    if (!cache) throw new Error('setTokens is for plans with a KV cache');
    if (ids.length !== BT) throw new Error(`${ids.length} ids for a plan of ${B} x ${T}`);
    if (pos0 + T > cache.L) throw new Error(`positions up to ${pos0 + T} exceed the KV cache's ${cache.L}`);
    const V = this.model.cfg.vocabSize;
    for (let i = 0; i < BT; i++) if (!(ids[i]! >= 0 && ids[i]! < V)) throw new Error(`token id ${ids[i]} is outside the vocabulary (0..${V - 1})`);
    const gpu = this.model.gpu;
    gpu.write(this.ids, Uint32Array.from(ids));
    gpu.write(
      this.pos,
      Uint32Array.from({ length: BT }, (_, i) => pos0 + (i % T)),
    );
    cache.setPos0(pos0);
  }

  async build(): Promise<void> {
    const { gpu, cfg, params, block } = this.model;
    const { B, T, BT, training, lora } = this;
    const C = cfg.hidden;
    this.allocate(this.layout.body);
    const tensor = (n: number, label: string) => this.take(label, n);
    // With a LoRA adapter the base is frozen: no base gradients, only the adapter's.
    const trainBase = training && !lora;
    const linears = new LinearLayers({ gpu, params, N: BT, training, trainBase, lora, tensor });
    const x0 = this.take('embed');
    const env = new BlockEnv({
      gpu,
      cfg,
      B,
      T,
      params,
      trainBase,
      linears,
      tensor,
      pos: this.pos,
      ropeTable: this.model.ropeTable,
      cache: this.cache,
      branch: this.take('proj_out'),
    });
    // ---- forward: the steps in order, each layer's activations allocated as it is reached ----
    const steps: Step<BlockGrads>[] = [];
    const record = async (more: Step<BlockGrads>[]) => {
      for (const step of more) this.forward.push(...(await step.forward()));
      steps.push(...more);
    };
    await record([this.embedding(env, x0, trainBase)]);
    // Without a backward nothing needs to be kept per layer: one set of activations serves every layer,
    // with two residual buffers taking turns as input and output.
    const shared = training ? undefined : block.activations(env, '*');
    const altOut = shared && this.take('out_alt');
    let x = x0;
    for (let l = 0; l < cfg.layers; l++) {
      const acts = shared ? { ...shared, out: l % 2 === 0 ? shared.out : altOut! } : block.activations(env, l);
      await record(block.layer(env, l, x, acts));
      x = acts.out;
    }
    const final = { x, y: this.take('final_norm'), stats: this.take('final_norm_stats') };
    await record([
      env.norm<BlockGrads>(block.finalNorm, { N: BT, C, eps: cfg.eps, rms: block.rms }, final, (g) => ({ dx: g.dres, dy: g.dC, accum: false })),
      this.score ? this.scoreHead(final.y) : this.lmHead(final.y, trainBase),
    ]);
    if (this.cache) return;
    const ce = { chunks: this.logitChunks, targets: this.targets, weights: this.weights, stats: this.ceStats!, losses: this.losses };
    if (!this.score) this.loss = await crossEntropy(gpu, { N: BT }, { ...ce, fused: false });
    if (!training) return;
    if (!this.score) this.lossFused = await crossEntropy(gpu, { N: BT }, { ...ce, fused: true });

    // ---- backward: the same steps reversed ----
    const grads = block.gradients(env);
    for (const step of steps.reverse()) if (step.backward) this.backward.push(...(await step.backward(grads)));
    for (const { view } of (trainBase ? params : lora!.params).arenaViews('grad')) this.zeroGrads.push(...(await zero(gpu, view)));
    if (this.score?.trainable) for (const { view } of this.score.params.arenaViews('grad')) this.zeroGrads.push(...(await zero(gpu, view)));
  }

  /** A vocabulary table (embedding, LM head) by row chunk: it may exceed one binding or one buffer. */
  private tableRows(name: string, chunks: { v0: number; vn: number }[], slot: 'param' | 'grad' = 'param'): RowChunk[] {
    return chunks.map(({ v0, vn }) => ({ v0, vn, view: this.model.params.rows(name, v0, vn, slot) }));
  }

  /** Token (and GPT-2's position) embeddings into x0; their gradients come from dres. */
  private embedding(env: BlockEnv, x0: View, trainBase: boolean): Step<BlockGrads> {
    const { gpu, cfg, params, block } = this.model;
    const shape = { B: this.B, T: this.T, C: cfg.hidden, V: cfg.vocabSize };
    const chunks = params.rowChunks(block.embed);
    return {
      forward: () =>
        embeddingForward(gpu, shape, {
          out: x0,
          ids: this.ids,
          pos: this.pos,
          wte: this.tableRows(block.embed, chunks),
          wpe: block.positions ? env.param(block.positions) : undefined,
        }),
      backward: async (g) =>
        trainBase
          ? embeddingBackward(gpu, shape, {
              dwte: this.tableRows(block.embed, chunks, 'grad'),
              dwpe: block.positions ? env.grad(block.positions) : undefined,
              dout: g.dres,
              buckets: this.buckets!,
            })
          : [],
    };
  }

  /** The LM head, by vocabulary chunk: logits[:, v0:v0+vn] = x W[v0:v0+vn]^T into each chunk's own buffer. */
  private lmHead(x: View, trainBase: boolean): Step<BlockGrads> {
    const { gpu, cfg, headName } = this.model;
    const C = cfg.hidden,
      weights = this.tableRows(headName, this.logitChunks);
    // With a cache only each sequence's last position gets logits: rows b*T + T-1 of x.
    const rows = this.cache ? { N: this.B, ldx: this.T * C, xOff: (this.T - 1) * C } : { N: this.BT };
    return {
      forward: async () => {
        const calls: Call[] = [];
        for (const [i, { vn, view }] of this.logitChunks.entries()) {
          calls.push(...(await linearForward(gpu, { ...rows, In: C, Out: vn, layout: 'out_in' }, { y: view, x, w: weights[i]!.view })));
        }
        return calls;
      },
      // dlogits, written over the logits by the fused cross-entropy, into dC (summed over the chunks)
      backward: async (g) => {
        const grads = trainBase ? this.tableRows(headName, this.logitChunks, 'grad') : undefined;
        const calls: Call[] = [];
        for (const [i, { vn, view }] of this.logitChunks.entries()) {
          calls.push(
            ...(await linearBackward(
              gpu,
              { N: this.BT, In: C, Out: vn, layout: 'out_in' },
              { dx: g.dC, dw: grads?.[i]!.view, dy: view, x, w: weights[i]!.view, accumDx: i > 0 },
            )),
          );
        }
        return calls;
      },
    };
  }

  /** The scalar head in place of the LM head: scores = x w, its gradient from the trainer's dscores. */
  private scoreHead(x: View): Step<BlockGrads> {
    const { gpu, cfg } = this.model,
      score = this.score!;
    const shape: LinearShape = { N: this.BT, In: cfg.hidden, Out: 1, layout: 'out_in' };
    const w = score.params.view('score.weight');
    return {
      forward: () => linearForward(gpu, shape, { y: this.scores!, x, w }),
      backward: (g) =>
        linearBackward(gpu, shape, { dx: g.dC, dw: score.trainable ? score.params.view('score.weight', 'grad') : undefined, dy: this.dscores!, x, w }),
    };
  }

  /** Rows of logits the LM head writes: B*T, or B with a KV cache (none with a scalar head). */
  get logitRows(): number {
    const c = this.logitChunks[0];
    return c ? c.view.n / c.vn : 0;
  }

  /** Logit rows r0 .. r0+n-1 (by default all) as one [n, V] array, put together from the vocabulary chunks. */
  async readLogits(r0 = 0, n = this.logitRows - r0): Promise<Float32Array> {
    const cs = this.logitChunks,
      V = this.model.cfg.vocabSize;
    const flat = await this.model.gpu.readAll(cs.map((c) => ({ buf: c.view.buf, off: c.view.off + r0 * c.vn * 4, n: n * c.vn })));
    if (cs.length === 1) return flat;
    const out = new Float32Array(n * V);
    let at = 0;
    for (const { v0, vn } of cs) {
      for (let r = 0; r < n; r++) out.set(flat.subarray(at + r * vn, at + (r + 1) * vn), r * V + v0);
      at += n * vn;
    }
    return out;
  }

  /** Mean loss of the current batch (sum of the weighted per-token losses). */
  async readLoss(): Promise<number> {
    const l = await this.model.gpu.read(this.losses);
    let s = 0;
    for (const x of l) s += x;
    return s;
  }

  destroy(): void {
    for (const b of this.owned) this.model.gpu.destroy(b);
    this.owned = [];
    this.model.gpu.release([...this.forward, ...this.loss, ...this.lossFused, ...this.backward, ...this.zeroGrads]);
    this.forward = this.loss = this.lossFused = this.backward = this.zeroGrads = [];
  }
}
