// The buffers a plan allocates, by name and size (32-bit elements), as a pure function of the model's
// config, the plan's shape and its options: `Plan` (src/model/transformer.ts) allocates exactly this list
// and its block recipes and linear layers take their tensors from it by name; the memory estimate
// (memory.ts) sums the same list. One list, so the estimate cannot drift from what is allocated.
import type { ModelConfig } from './model-config.ts';

export interface PlanBuffer {
  label: string;
  n: number;
}

export interface PlanBufferOptions {
  training: boolean;
  /** generation with a KV cache: logits only for each sequence's last position */
  kvCache?: boolean;
  /** a scalar head in place of the LM head (no logits; scores, and their gradient when training) */
  score?: boolean;
  /** the LM head's vocabulary chunks, each [rows, vn] in a buffer of its own (default: one chunk) */
  logitChunks?: readonly { v0: number; vn: number }[];
  /** a LoRA adapter: its rank, dropout (applied when training) and adapted modules with their input widths */
  lora?: { r: number; dropout: number; modules: readonly { module: string; In: number }[] };
}

/** The embedding backward's token buckets for BT positions (ops/embedding.ts). */
export const bucketLength = (BT: number) => 3 * BT + 2;

/** What a block keeps per layer (blocks' `activations`), by name, for B x T tokens. */
export function layerActivations(cfg: ModelConfig, B: number, T: number): [string, number][] {
  const BT = B * T,
    { hidden: C, heads: Hq, kvHeads: Hkv, headDim: D, intermediate: I } = cfg;
  const S = (Hq + 2 * Hkv) * D,
    llama = cfg.arch === 'llama';
  const a: [string, number][] = [
    ['n1', BT * C],
    ['s1', 2 * BT],
    ['qkv', BT * S],
    ['att', BT * Hq * D],
    ['lse', B * Hq * T],
    ['res2', BT * C],
    ['n2', BT * C],
    ['s2', 2 * BT],
    ['mid', BT * (llama ? 2 * I : I)], // GPT-2: c_fc's output; Llama: gate | up
    ['act', BT * I],
    ['out', BT * C],
  ];
  // Qwen3: q and k before their per-head norms, and the norms' stats
  if (cfg.qkNorm) a.push(['qk', BT * S], ['sq', 2 * BT * Hq], ['sk', 2 * BT * Hkv]);
  return a;
}

/** The backward's gradient buffers, shared by every layer (blocks' `gradients`). */
export function blockGradients(cfg: ModelConfig, B: number, T: number): [string, number][] {
  const BT = B * T,
    { hidden: C, heads: Hq, kvHeads: Hkv, headDim: D, intermediate: I } = cfg;
  const S = (Hq + 2 * Hkv) * D;
  const g: [string, number][] = [
    ['dres', BT * C],
    ['dC', BT * C],
    ['dI', BT * I],
    ['dqkv', BT * S],
    ['dsum', B * Hq * T],
  ];
  if (cfg.qkNorm) g.push(['dqk', BT * S]);
  if (Hq * D !== C) g.push(['dA', BT * Hq * D]); // else the attention output's gradient is dC
  if (cfg.arch === 'llama') g.push(['dgu', BT * 2 * I]);
  return g;
}

/**
 * Every buffer of a B x T plan in the order allocated: `io` (batch, targets, losses, logits, scores: made
 * with the plan) and `body` (the activations, made when it is built).
 */
export function planBuffers(cfg: ModelConfig, B: number, T: number, o: PlanBufferOptions): { io: PlanBuffer[]; body: PlanBuffer[] } {
  const BT = B * T,
    C = cfg.hidden,
    I = cfg.intermediate,
    A = cfg.heads * cfg.headDim;
  const io: PlanBuffer[] = ['ids', 'pos', 'targets', 'weights', 'losses'].map((label) => ({ label, n: BT }));
  if (!o.score) {
    const rows = o.kvCache ? B : BT;
    for (const { v0, vn } of o.logitChunks ?? [{ v0: 0, vn: cfg.vocabSize }]) io.push({ label: `logits[${v0}:${v0 + vn}]`, n: rows * vn });
    io.push({ label: 'ce_stats', n: 3 * BT });
  }
  if (o.training) io.push({ label: 'buckets', n: bucketLength(BT) });
  if (o.score) {
    io.push({ label: 'scores', n: BT });
    if (o.training) io.push({ label: 'dscores', n: BT });
  }
  const body: PlanBuffer[] = [];
  const r = o.lora?.r ?? 0;
  // inference with an adapter: one h serves every module (adapted-linear.ts)
  if (o.lora && !o.training) body.push({ label: 'lora_h', n: BT * r });
  body.push({ label: 'embed', n: BT * C }, { label: 'proj_out', n: BT * C });
  const layer = layerActivations(cfg, B, T);
  if (!o.training) {
    // nothing is kept for a backward: one set of activations serves every layer, the residual alternating
    body.push(...layer.map(([name, n]) => ({ label: `l*.${name}`, n })), { label: 'out_alt', n: BT * C });
  } else {
    for (let l = 0; l < cfg.layers; l++) body.push(...layer.map(([name, n]) => ({ label: `l${l}.${name}`, n })));
    // what the adapter keeps of each adapted module's forward: h, and the dropped-out input
    for (const m of o.lora?.modules ?? []) {
      body.push({ label: `${m.module}.lora_h`, n: BT * r });
      if (o.lora!.dropout > 0) body.push({ label: `${m.module}.lora_xd`, n: BT * m.In });
    }
  }
  body.push({ label: 'final_norm', n: BT * C }, { label: 'final_norm_stats', n: 2 * BT });
  if (o.training) {
    body.push(...blockGradients(cfg, B, T).map(([label, n]) => ({ label, n })));
    // the adapter's backward scratch, as wide as any linear's input
    if (o.lora) body.push({ label: 'lora_dh', n: BT * r }, { label: 'lora_dxd', n: BT * Math.max(C, I, A) });
  }
  return { io, body };
}

/** A KV cache's buffers for B sequences of L positions: each layer's keys and values, and the position. */
export function kvCacheBuffers(cfg: ModelConfig, B: number, L: number): PlanBuffer[] {
  const n = B * L * cfg.kvHeads * cfg.headDim,
    out: PlanBuffer[] = [{ label: 'kv_meta', n: 4 }];
  for (let l = 0; l < cfg.layers; l++) out.push({ label: `l${l}.kcache`, n }, { label: `l${l}.vcache`, n });
  return out;
}

/** Bytes of a buffer of n elements as the runtime makes it (at least 16, a multiple of 16). */
export const bufferBytes = (n: number) => Math.max(16, Math.ceil((n * 4) / 16) * 16);

/** Bytes of a list of buffers. */
export const buffersBytes = (list: readonly PlanBuffer[]) => list.reduce((s, b) => s + bufferBytes(b.n), 0);
