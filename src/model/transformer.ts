// GPT-2 and Llama trunks built from the ops, llm.c style: `plan(B, T)` allocates every activation for
// that shape and records the forward as a list of calls that reads like the network diagram; the
// backward is the same list reversed. Parameter gradients accumulate (+=); activation gradients
// overwrite, except the residual stream's `dres`, which every branch adds into.
import type { Call, Gpu, View } from '../gpu/runtime.ts';
import { dropoutBackward, dropoutForward, geluBackward, geluForward, swigluBackward, swigluForward } from '../ops/activation.ts';
import { attentionBackward, attentionCached, attentionForward, kvAppend, type LayerCache } from '../ops/attention.ts';
import { crossEntropy, type LogitChunk } from '../ops/crossentropy.ts';
import { bucketLength, buildBuckets, embeddingBackward, embeddingForward, type RowChunk } from '../ops/embedding.ts';
import { linearBackward, linearForward, type LinearShape } from '../ops/linear.ts';
import { normBackward, normForward } from '../ops/norm.ts';
import { accumulate, add, zero } from '../ops/residual.ts';
import { rope, ropeTable } from '../ops/rope.ts';
import { paramSpecs, type ModelConfig } from './config.ts';
import type { ScoreHead } from './head.ts';
import type { LoraSet } from './lora.ts';
import { ParamTable, rowAlign } from './params.ts';

export class Transformer {
  readonly params: ParamTable;
  private ropeCs?: View;

  constructor(readonly gpu: Gpu, readonly cfg: ModelConfig, opts: { grads?: boolean; optimizer?: boolean } = {}) {
    this.params = new ParamTable(gpu, paramSpecs(cfg), opts);
    if (cfg.arch === 'llama') {
      this.ropeCs = gpu.tensor(cfg.maxPositions * cfg.headDim, 'rope_cos_sin');
      gpu.write(this.ropeCs, ropeTable(cfg.maxPositions, cfg.headDim, cfg.ropeTheta));
    }
  }

  /** Names of the embedding and LM head weights (the same tensor when tied). */
  get embedName(): string {
    return this.cfg.arch === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight';
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
    const plan = new Plan(this, B, T, !!opts.training, opts.cache, opts.lora, opts.score, opts.share);
    await plan.build();
    return plan;
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

  constructor(readonly model: Transformer, readonly B: number, readonly L: number) {
    const c = model.cfg;
    if (L > c.maxPositions) throw new Error(`a KV cache of ${L} positions exceeds the model's ${c.maxPositions}`);
    const n = B * L * c.kvHeads * c.headDim;
    if (n * 4 > model.gpu.maxBinding) throw new Error(`a KV cache of ${B} x ${L} positions needs ${(n * 4 / 2 ** 20).toFixed(0)} MiB per layer, over this adapter's storage binding`);
    this.meta = model.gpu.tensor(4, 'kv_meta');
    for (let l = 0; l < c.layers; l++) this.layers.push({ k: model.gpu.tensor(n, `l${l}.kcache`), v: model.gpu.tensor(n, `l${l}.vcache`), meta: this.meta, L });
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

interface LayerActs {
  n1: View; s1: View; qkv: View; att: View; lse: View; res2: View; n2: View; s2: View;
  mid: View; // GPT-2: c_fc output (pre-gelu); Llama: gate | up
  act: View; // GPT-2: gelu output; Llama: silu(gate) * up
  out: View;
  /** Qwen3: q and k before their per-head norms, in qkv's row layout (its v columns unused), and the norms' stats. */
  qk?: View; sq?: View; sk?: View;
}

export interface PlanOptions {
  training?: boolean; cache?: KVCache; lora?: LoraSet; score?: ScoreHead;
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

  constructor(
    readonly model: Transformer, readonly B: number, readonly T: number, readonly training: boolean,
    readonly cache?: KVCache, readonly lora?: LoraSet, readonly score?: ScoreHead, private readonly share?: Plan,
  ) {
    const cfg = model.cfg;
    if (T > cfg.maxPositions) throw new Error(`sequence length ${T} exceeds the model's ${cfg.maxPositions} positions`);
    if (share && (share.model !== model || share.B !== B || share.T < T || share.training !== training || share.cache !== cache || share.lora !== lora || share.score !== score)) {
      throw new Error(`a plan of ${B} x ${T} can only share the buffers of a plan of the same model, batch and options, at least ${T} long`);
    }
    this.BT = B * T;
    const logitRows = score ? 0 : cache ? B : this.BT;
    // a chunk's logits [rows, vn] must fit one binding, so the rows bound how many columns a chunk holds
    // (a sharing plan chunks as the plan it shares with, so that its logit tensors line up with those)
    const maxCols = Math.floor(model.gpu.maxBinding / 4 / Math.max(1, share ? share.logitRows : logitRows));
    if (!score && maxCols < rowAlign(cfg.hidden)) {
      throw new Error(`batch ${B} x ${T}: even ${rowAlign(cfg.hidden)} vocabulary columns of logits (${logitRows} rows) are over this adapter's ${(model.gpu.maxBinding / 2 ** 20).toFixed(0)} MiB storage binding: use fewer tokens per step`);
    }
    const chunks = score ? [] : model.params.rowChunks(model.headName, maxCols);
    this.ids = this.t(this.BT, 'ids');
    this.pos = this.t(this.BT, 'pos');
    this.targets = this.t(this.BT, 'targets');
    this.weights = this.t(this.BT, 'weights');
    this.losses = this.t(this.BT, 'losses');
    this.logitChunks = chunks.map(({ v0, vn }) => ({ v0, vn, view: this.t(logitRows * vn, `logits[${v0}:${v0 + vn}]`) }));
    if (!score) this.ceStats = this.t(3 * this.BT, 'ce_stats');
    if (training) this.buckets = this.t(bucketLength(this.BT), 'buckets');
    if (score) {
      this.scores = this.t(this.BT, 'scores');
      if (training) this.dscores = this.t(this.BT, 'dscores');
    }
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
    gpu.write(this.pos, Uint32Array.from({ length: BT }, (_, i) => i % T));
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
    gpu.write(this.pos, Uint32Array.from({ length: BT }, (_, i) => pos0 + (i % T)));
    cache.setPos0(pos0);
  }

  async build(): Promise<void> {
    const { gpu, cfg, params } = this.model;
    const { B, T, BT } = this;
    const C = cfg.hidden, V = cfg.vocabSize, Hq = cfg.heads, Hkv = cfg.kvHeads, D = cfg.headDim, I = cfg.intermediate;
    const S = (Hq + 2 * Hkv) * D;
    const A = Hq * D; // attention output width
    const llama = cfg.arch === 'llama';
    const rms = llama;
    const qkNorm = cfg.qkNorm;
    const P = (n: string) => params.view(n);
    // the vocabulary tables (embedding, LM head) by row chunk: they may exceed one binding or one buffer
    const rowsP = (n: string, cs: { v0: number; vn: number }[], slot: 'param' | 'grad' = 'param'): RowChunk[] =>
      cs.map(({ v0, vn }) => ({ v0, vn, view: params.rows(n, v0, vn, slot) }));
    const embedChunks = params.rowChunks(this.model.embedName);
    // With a LoRA adapter the base is frozen: no base gradients, only the adapter's.
    const lora = this.lora;
    const trainBase = this.training && !lora;
    const G = (n: string) => (trainBase ? params.view(n, 'grad') : undefined);
    const has = (n: string) => params.has(n);
    const bias = (n: string) => (has(n) ? P(n) : undefined);
    const gbias = (n: string) => (has(n) ? G(n) : undefined);
    // Linear layers, with the adapter's low-rank update where LoRA targets the module:
    //   forward  y += (alpha / r) * (dropout(x) A^T) B^T
    //   backward dB += s dy^T h, dh = s dy B, dA += dh^T xd, dx += dropout'(dh A)
    const loraSaved = new Map<string, { h: View; xd?: View; salt: number }>();
    const loraShared = lora && !this.training ? this.t(BT * lora.cfg.r, 'lora_h') : undefined;
    const LP = (n: string) => lora!.params.view(n);
    const LG = (n: string) => lora!.params.view(n, 'grad');
    const dropP = this.training && lora ? lora.cfg.dropout : 0;
    const linF = async (s: LinearShape, io: { y: View; x: View; w: string; b?: View }): Promise<Call[]> => {
      const calls = await linearForward(gpu, s, { y: io.y, x: io.x, w: P(io.w), b: io.b });
      const mod = io.w.slice(0, -'.weight'.length);
      const m = lora?.modules.get(mod);
      if (!m) return calls;
      const r = lora!.cfg.r;
      const st = { h: loraShared ?? this.t(BT * r, `${mod}.lora_h`), xd: dropP > 0 ? this.t(BT * m.In, `${mod}.lora_xd`) : undefined, salt: loraSaved.size + 1 };
      loraSaved.set(mod, st);
      if (st.xd) calls.push(...(await dropoutForward(gpu, { y: st.xd, x: io.x, seed: lora!.seed, n: BT * m.In, p: dropP, salt: st.salt })));
      calls.push(...(await linearForward(gpu, { N: BT, In: m.In, Out: r, layout: 'out_in' }, { y: st.h, x: st.xd ?? io.x, w: LP(`${mod}.lora_A.weight`) })));
      calls.push(...(await linearForward(gpu, { N: BT, In: r, Out: m.Out, layout: 'out_in', ldy: s.ldy, yOff: s.yOff, alpha: lora!.scale },
        { y: io.y, x: st.h, w: LP(`${mod}.lora_B.weight`), accum: true })));
      return calls;
    };
    let loraScratch: { dh: View; dxd: View } | undefined;
    const linB = async (s: LinearShape, io: { dx: View; db?: View; dy: View; x: View; w: string; accumDx?: boolean }): Promise<Call[]> => {
      const calls = await linearBackward(gpu, s, { dx: io.dx, dw: G(io.w), db: io.db, dy: io.dy, x: io.x, w: P(io.w), accumDx: io.accumDx });
      const mod = io.w.slice(0, -'.weight'.length);
      const m = lora?.modules.get(mod);
      if (!m) return calls;
      const r = lora!.cfg.r, st = loraSaved.get(mod)!;
      loraScratch ??= { dh: this.t(BT * r, 'lora_dh'), dxd: this.t(BT * Math.max(C, I, A), 'lora_dxd') };
      const { dh, dxd } = loraScratch;
      calls.push(...(await linearBackward(gpu, { N: BT, In: r, Out: m.Out, layout: 'out_in', ldy: s.ldy, yOff: s.yOff, alpha: lora!.scale },
        { dx: dh, dw: LG(`${mod}.lora_B.weight`), dy: io.dy, x: st.h, w: LP(`${mod}.lora_B.weight`) })));
      const aShape: LinearShape = { N: BT, In: m.In, Out: r, layout: 'out_in' };
      if (st.xd) {
        calls.push(...(await linearBackward(gpu, aShape, { dx: dxd, dw: LG(`${mod}.lora_A.weight`), dy: dh, x: st.xd, w: LP(`${mod}.lora_A.weight`) })));
        calls.push(...(await dropoutBackward(gpu, { d: dxd, seed: lora!.seed, n: BT * m.In, p: dropP, salt: st.salt })));
        calls.push(...(await accumulate(gpu, { acc: io.dx, src: dxd, n: BT * m.In })));
      } else {
        calls.push(...(await linearBackward(gpu, aShape, { dx: io.dx, dw: LG(`${mod}.lora_A.weight`), dy: dh, x: io.x, w: LP(`${mod}.lora_A.weight`), accumDx: true })));
      }
      return calls;
    };
    const norm = { N: BT, C, eps: cfg.eps, rms };
    // Qwen3's q_norm / k_norm: RMSNorm over each head's D values, read from and written to the fused qkv rows
    const qNorm = { N: BT * Hq, C: D, eps: cfg.eps, rms: true, rows: { group: Hq, ld: S, off: 0 } };
    const kNorm = { N: BT * Hkv, C: D, eps: cfg.eps, rms: true, rows: { group: Hkv, ld: S, off: Hq * D } };
    const att = { B, T, Hq, Hkv, D };
    const lin = (In: number, Out: number, extra: Partial<LinearShape> = {}): LinearShape =>
      ({ N: BT, In, Out, layout: llama ? 'out_in' : 'in_out', ...extra });
    const f: Call[] = this.forward;

    // ---- forward ----
    const x0 = this.t(BT * C, 'embed');
    const emb = { B, T, C, V };
    f.push(...(await embeddingForward(gpu, emb, { out: x0, ids: this.ids, pos: this.pos, wte: rowsP(this.model.embedName, embedChunks), wpe: llama ? undefined : P('wpe.weight') })));
    const sC = this.t(BT * C, 'proj_out');
    const acts: LayerActs[] = [];
    let x = x0;
    const cache = this.cache;
    const newActs = (l: number | string): LayerActs => ({
      n1: this.t(BT * C, `l${l}.n1`), s1: this.t(2 * BT, `l${l}.s1`), qkv: this.t(BT * S, `l${l}.qkv`),
      att: this.t(BT * A, `l${l}.att`), lse: this.t(B * Hq * T, `l${l}.lse`), res2: this.t(BT * C, `l${l}.res2`),
      n2: this.t(BT * C, `l${l}.n2`), s2: this.t(2 * BT, `l${l}.s2`),
      mid: this.t(BT * (llama ? 2 * I : I), `l${l}.mid`), act: this.t(BT * I, `l${l}.act`), out: this.t(BT * C, `l${l}.out`),
      ...(qkNorm ? { qk: this.t(BT * S, `l${l}.qk`), sq: this.t(2 * BT * Hq, `l${l}.sq`), sk: this.t(2 * BT * Hkv, `l${l}.sk`) } : {}),
    });
    // Without a backward nothing needs to be kept per layer: one set of activations serves every layer,
    // with two residual buffers taking turns as input and output.
    const shared = this.training ? undefined : newActs('*');
    const altOut = this.training ? undefined : this.t(BT * C, 'out_alt');
    const attend = async (a: LayerActs, l: number): Promise<Call[]> =>
      cache
        ? [...(await kvAppend(gpu, att, { qkv: a.qkv, cache: cache.layers[l]! })), ...(await attentionCached(gpu, att, { out: a.att, qkv: a.qkv, cache: cache.layers[l]! }))]
        : attentionForward(gpu, att, { out: a.att, lse: a.lse, qkv: a.qkv });
    for (let l = 0; l < cfg.layers; l++) {
      const a: LayerActs = shared ? { ...shared, out: l % 2 === 0 ? shared.out : altOut! } : newActs(l);
      if (!llama) {
        const h = `h.${l}.`;
        f.push(...(await normForward(gpu, norm, { y: a.n1, stats: a.s1, x, w: P(h + 'ln_1.weight'), b: P(h + 'ln_1.bias') })));
        f.push(...(await linF(lin(C, 3 * C), { y: a.qkv, x: a.n1, w: (h + 'attn.c_attn.weight'), b: P(h + 'attn.c_attn.bias') })));
        f.push(...(await attend(a, l)));
        f.push(...(await linF(lin(C, C), { y: sC, x: a.att, w: (h + 'attn.c_proj.weight'), b: P(h + 'attn.c_proj.bias') })));
        f.push(...(await add(gpu, { y: a.res2, a: x, b: sC, n: BT * C })));
        f.push(...(await normForward(gpu, norm, { y: a.n2, stats: a.s2, x: a.res2, w: P(h + 'ln_2.weight'), b: P(h + 'ln_2.bias') })));
        f.push(...(await linF(lin(C, I), { y: a.mid, x: a.n2, w: (h + 'mlp.c_fc.weight'), b: P(h + 'mlp.c_fc.bias') })));
        f.push(...(await geluForward(gpu, { y: a.act, x: a.mid, n: BT * I })));
        f.push(...(await linF(lin(I, C), { y: sC, x: a.act, w: (h + 'mlp.c_proj.weight'), b: P(h + 'mlp.c_proj.bias') })));
        f.push(...(await add(gpu, { y: a.out, a: a.res2, b: sC, n: BT * C })));
      } else {
        const h = `model.layers.${l}.`;
        f.push(...(await normForward(gpu, norm, { y: a.n1, stats: a.s1, x, w: P(h + 'input_layernorm.weight') })));
        for (const [name, off, rows] of [['q', 0, Hq * D], ['k', Hq * D, Hkv * D], ['v', (Hq + Hkv) * D, Hkv * D]] as const) {
          const w = h + `self_attn.${name}_proj.`;
          // with q/k norms, q and k land in a.qk and their norms write them into a.qkv (the norm cannot run in place)
          const y = qkNorm && name !== 'v' ? a.qk! : a.qkv;
          f.push(...(await linF(lin(C, rows, { ldy: S, yOff: off }), { y, x: a.n1, w: (w + 'weight'), b: bias(w + 'bias') })));
        }
        if (qkNorm) {
          f.push(...(await normForward(gpu, qNorm, { y: a.qkv, stats: a.sq!, x: a.qk!, w: P(h + 'self_attn.q_norm.weight') })));
          f.push(...(await normForward(gpu, kNorm, { y: a.qkv, stats: a.sk!, x: a.qk!, w: P(h + 'self_attn.k_norm.weight') })));
        }
        f.push(...(await rope(gpu, { BT, Hq, Hkv, D }, { qkv: a.qkv, pos: this.pos, table: this.model.ropeTable!, backward: false })));
        f.push(...(await attend(a, l)));
        f.push(...(await linF(lin(A, C), { y: sC, x: a.att, w: (h + 'self_attn.o_proj.weight'), b: bias(h + 'self_attn.o_proj.bias') })));
        f.push(...(await add(gpu, { y: a.res2, a: x, b: sC, n: BT * C })));
        f.push(...(await normForward(gpu, norm, { y: a.n2, stats: a.s2, x: a.res2, w: P(h + 'post_attention_layernorm.weight') })));
        f.push(...(await linF(lin(C, I, { ldy: 2 * I, yOff: 0 }), { y: a.mid, x: a.n2, w: (h + 'mlp.gate_proj.weight'), b: bias(h + 'mlp.gate_proj.bias') })));
        f.push(...(await linF(lin(C, I, { ldy: 2 * I, yOff: I }), { y: a.mid, x: a.n2, w: (h + 'mlp.up_proj.weight'), b: bias(h + 'mlp.up_proj.bias') })));
        f.push(...(await swigluForward(gpu, { h: a.act, gu: a.mid, N: BT, I })));
        f.push(...(await linF(lin(I, C), { y: sC, x: a.act, w: (h + 'mlp.down_proj.weight'), b: bias(h + 'mlp.down_proj.bias') })));
        f.push(...(await add(gpu, { y: a.out, a: a.res2, b: sC, n: BT * C })));
      }
      acts.push(a);
      x = a.out;
    }
    const fin = this.t(BT * C, 'final_norm'), fins = this.t(2 * BT, 'final_norm_stats');
    const lnf = llama ? 'model.norm.weight' : 'ln_f.weight';
    f.push(...(await normForward(gpu, norm, { y: fin, stats: fins, x, w: P(lnf), b: llama ? undefined : P('ln_f.bias') })));
    const score = this.score;
    const scoreShape: LinearShape = { N: BT, In: C, Out: 1, layout: 'out_in' };
    if (score) f.push(...(await linearForward(gpu, scoreShape, { y: this.scores!, x: fin, w: score.params.view('score.weight') })));
    // LM head, by vocabulary chunk: logits[:, v0:v0+vn] = fin W[v0:v0+vn]^T into each chunk's own buffer
    const head = this.model.headName;
    const headW = rowsP(head, this.logitChunks);
    // With a cache only each sequence's last position gets logits: rows b*T + T-1 of the final norm.
    const headRows = cache ? { N: B, ldx: T * C, xOff: (T - 1) * C } : { N: BT };
    for (const [i, { vn, view }] of this.logitChunks.entries()) {
      f.push(...(await linearForward(gpu, { ...headRows, In: C, Out: vn, layout: 'out_in' }, { y: view, x: fin, w: headW[i]!.view })));
    }
    if (cache) return;
    const ce = { chunks: this.logitChunks, targets: this.targets, weights: this.weights, stats: this.ceStats!, losses: this.losses };
    if (!score) this.loss = await crossEntropy(gpu, { N: BT }, { ...ce, fused: false });
    if (!this.training) return;
    if (!score) this.lossFused = await crossEntropy(gpu, { N: BT }, { ...ce, fused: true });

    // ---- backward: the same list reversed ----
    const bw: Call[] = this.backward;
    const dres = this.t(BT * C, 'dres'), dC = this.t(BT * C, 'dC'), dI = this.t(BT * I, 'dI');
    const dqkv = this.t(BT * S, 'dqkv'), dsum = this.t(B * Hq * T, 'dsum');
    const dqk = qkNorm ? this.t(BT * S, 'dqk') : undefined;
    const dA = A === C ? dC : this.t(BT * A, 'dA');
    const dGU = llama ? this.t(BT * 2 * I, 'dgu') : dI;
    if (score) {
      bw.push(...(await linearBackward(gpu, scoreShape, { dx: dC, dw: score.trainable ? score.params.view('score.weight', 'grad') : undefined, dy: this.dscores!, x: fin, w: score.params.view('score.weight') })));
    }
    const headG = trainBase ? rowsP(head, this.logitChunks, 'grad') : undefined;
    for (const [i, { vn, view }] of this.logitChunks.entries()) {
      bw.push(...(await linearBackward(gpu, { N: BT, In: C, Out: vn, layout: 'out_in' },
        { dx: dC, dw: headG?.[i]!.view, dy: view, x: fin, w: headW[i]!.view, accumDx: i > 0 })));
    }
    bw.push(...(await normBackward(gpu, norm, { dx: dres, dw: G(lnf), db: llama ? undefined : G('ln_f.bias'), dy: dC, x, w: P(lnf), stats: fins, accum: false })));
    for (let l = cfg.layers - 1; l >= 0; l--) {
      const a = acts[l]!;
      const xin = l === 0 ? x0 : acts[l - 1]!.out;
      if (!llama) {
        const h = `h.${l}.`;
        bw.push(...(await linB(lin(I, C), { dx: dI, db: G(h + 'mlp.c_proj.bias'), dy: dres, x: a.act, w: (h + 'mlp.c_proj.weight') })));
        bw.push(...(await geluBackward(gpu, { d: dI, x: a.mid, n: BT * I })));
        bw.push(...(await linB(lin(C, I), { dx: dC, db: G(h + 'mlp.c_fc.bias'), dy: dI, x: a.n2, w: (h + 'mlp.c_fc.weight') })));
        bw.push(...(await normBackward(gpu, norm, { dx: dres, dw: G(h + 'ln_2.weight'), db: G(h + 'ln_2.bias'), dy: dC, x: a.res2, w: P(h + 'ln_2.weight'), stats: a.s2, accum: true })));
        bw.push(...(await linB(lin(C, C), { dx: dC, db: G(h + 'attn.c_proj.bias'), dy: dres, x: a.att, w: (h + 'attn.c_proj.weight') })));
        bw.push(...(await attentionBackward(gpu, att, { dqkv, dsum, dout: dC, out: a.att, lse: a.lse, qkv: a.qkv })));
        bw.push(...(await linB(lin(C, 3 * C), { dx: dC, db: G(h + 'attn.c_attn.bias'), dy: dqkv, x: a.n1, w: (h + 'attn.c_attn.weight') })));
        bw.push(...(await normBackward(gpu, norm, { dx: dres, dw: G(h + 'ln_1.weight'), db: G(h + 'ln_1.bias'), dy: dC, x: xin, w: P(h + 'ln_1.weight'), stats: a.s1, accum: true })));
      } else {
        const h = `model.layers.${l}.`;
        const mlp = (n: string) => h + `mlp.${n}_proj.`;
        bw.push(...(await linB(lin(I, C), { dx: dI, db: gbias(mlp('down') + 'bias'), dy: dres, x: a.act, w: (mlp('down') + 'weight') })));
        bw.push(...(await swigluBackward(gpu, { dgu: dGU, dh: dI, gu: a.mid, N: BT, I })));
        bw.push(...(await linB(lin(C, I, { ldy: 2 * I, yOff: 0 }), { dx: dC, db: gbias(mlp('gate') + 'bias'), dy: dGU, x: a.n2, w: (mlp('gate') + 'weight') })));
        bw.push(...(await linB(lin(C, I, { ldy: 2 * I, yOff: I }), { dx: dC, db: gbias(mlp('up') + 'bias'), dy: dGU, x: a.n2, w: (mlp('up') + 'weight'), accumDx: true })));
        bw.push(...(await normBackward(gpu, norm, { dx: dres, dw: G(h + 'post_attention_layernorm.weight'), dy: dC, x: a.res2, w: P(h + 'post_attention_layernorm.weight'), stats: a.s2, accum: true })));
        const o = h + 'self_attn.o_proj.';
        bw.push(...(await linB(lin(A, C), { dx: dA, db: gbias(o + 'bias'), dy: dres, x: a.att, w: (o + 'weight') })));
        bw.push(...(await attentionBackward(gpu, att, { dqkv, dsum, dout: dA, out: a.att, lse: a.lse, qkv: a.qkv })));
        bw.push(...(await rope(gpu, { BT, Hq, Hkv, D }, { qkv: dqkv, pos: this.pos, table: this.model.ropeTable!, backward: true })));
        if (qkNorm) {
          const qn = h + 'self_attn.q_norm.weight', kn = h + 'self_attn.k_norm.weight';
          bw.push(...(await normBackward(gpu, qNorm, { dx: dqk!, dw: G(qn), dy: dqkv, x: a.qk!, w: P(qn), stats: a.sq!, accum: false })));
          bw.push(...(await normBackward(gpu, kNorm, { dx: dqk!, dw: G(kn), dy: dqkv, x: a.qk!, w: P(kn), stats: a.sk!, accum: false })));
        }
        for (const [i, [name, off, rows]] of ([['q', 0, Hq * D], ['k', Hq * D, Hkv * D], ['v', (Hq + Hkv) * D, Hkv * D]] as const).entries()) {
          const w = h + `self_attn.${name}_proj.`;
          const dy = qkNorm && name !== 'v' ? dqk! : dqkv;
          bw.push(...(await linB(lin(C, rows, { ldy: S, yOff: off }), { dx: dC, db: gbias(w + 'bias'), dy, x: a.n1, w: (w + 'weight'), accumDx: i > 0 })));
        }
        bw.push(...(await normBackward(gpu, norm, { dx: dres, dw: G(h + 'input_layernorm.weight'), dy: dC, x: xin, w: P(h + 'input_layernorm.weight'), stats: a.s1, accum: true })));
      }
    }
    if (trainBase) bw.push(...(await embeddingBackward(gpu, emb, { dwte: rowsP(this.model.embedName, embedChunks, 'grad'), dwpe: llama ? undefined : G('wpe.weight'), dout: dres, buckets: this.buckets! })));
    for (const { view } of (trainBase ? params : lora!.params).arenaViews('grad')) this.zeroGrads.push(...(await zero(gpu, view)));
    if (score?.trainable) for (const { view } of score.params.arenaViews('grad')) this.zeroGrads.push(...(await zero(gpu, view)));
  }

  /** Rows of logits the LM head writes: B*T, or B with a KV cache (none with a scalar head). */
  get logitRows(): number {
    const c = this.logitChunks[0];
    return c ? c.view.n / c.vn : 0;
  }

  /** Logit rows r0 .. r0+n-1 (by default all) as one [n, V] array, put together from the vocabulary chunks. */
  async readLogits(r0 = 0, n = this.logitRows - r0): Promise<Float32Array> {
    const cs = this.logitChunks, V = this.model.cfg.vocabSize;
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
  }
}
