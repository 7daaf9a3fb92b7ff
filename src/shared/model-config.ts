// Model configuration from a Hugging Face config.json. Anything the engine does not implement is an
// error naming the field: a model we cannot run exactly must not run with wrong numbers.

export type Arch = 'gpt2' | 'llama';

/** config.json's model_type: what users are shown (Qwen2 and Qwen3 run as the Llama block, arch 'llama'). */
export type ModelType = 'gpt2' | 'llama' | 'qwen2' | 'qwen3';

export interface ModelConfig {
  /** The block the engine runs: code branches on this, never on modelType. */
  arch: Arch;
  modelType: ModelType;
  vocabSize: number;
  hidden: number; // C
  layers: number; // L
  heads: number; // Hq
  kvHeads: number; // Hkv (= Hq for GPT-2)
  headDim: number; // D
  intermediate: number; // MLP width
  maxPositions: number;
  eps: number;
  ropeTheta: number; // llama only
  tiedEmbeddings: boolean;
  /** config.json names a *ForSequenceClassification class (a reward model): its checkpoint holds `score.weight`
   *  beside the trunk and no LM head (see loadWeights). */
  sequenceClassification: boolean;
  /** Llama-block biases: on q_proj/k_proj/v_proj (Llama's attention_bias, always on Qwen2) and on o_proj
   *  (Llama's and Qwen3's attention_bias; never on Qwen2). GPT-2 always has biases. */
  qkvBias: boolean;
  oBias: boolean;
  /** Qwen3: RMSNorm over head_dim (one weight [head_dim] each) on every head of q and k, before RoPE. */
  qkNorm: boolean;
  mlpBias: boolean;
  bosTokenId?: number;
  eosTokenId?: number | number[];
  /** The config as read, kept so an export writes back what came in. */
  raw: Record<string, unknown>;
}

export class ConfigError extends Error {}

type Raw = Record<string, unknown>;

function num(raw: Raw, file: string, key: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ConfigError(`${file}: required field "${key}" is missing`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new ConfigError(`${file}: field "${key}" must be a non-negative number, got ${JSON.stringify(v)}`);
  return v;
}

function int(raw: Raw, file: string, key: string, fallback?: number): number {
  const v = num(raw, file, key, fallback);
  if (!Number.isInteger(v) || v === 0) throw new ConfigError(`${file}: field "${key}" must be a positive integer, got ${v}`);
  return v;
}

function unsupported(file: string, key: string, value: unknown, why: string): never {
  throw new ConfigError(`${file}: unsupported value of "${key}": ${JSON.stringify(value)} (${why})`);
}

export function parseConfig(raw: unknown, file = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${file}: not a JSON object`);
  const r = raw as Raw;
  const type = r.model_type;
  if (type === 'gpt2') return gpt2(r, file);
  if (type === 'llama' || type === 'qwen2' || type === 'qwen3') return llama(r, file, type);
  return unsupported(file, 'model_type', type, 'supported: gpt2, llama, qwen2, qwen3');
}

function eosOf(r: Raw): number | number[] | undefined {
  const e = r.eos_token_id;
  return typeof e === 'number' || Array.isArray(e) ? (e as number | number[]) : undefined;
}

/** architectures lists a *ForSequenceClassification class (transformers' reward-model layout). */
const isSequenceClassification = (r: Raw) =>
  Array.isArray(r.architectures) && r.architectures.some((a) => typeof a === 'string' && a.endsWith('ForSequenceClassification'));

function gpt2(r: Raw, file: string): ModelConfig {
  const act = r.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') unsupported(file, 'activation_function', act, 'supported: gelu_new');
  if (r.scale_attn_by_inverse_layer_idx === true) unsupported(file, 'scale_attn_by_inverse_layer_idx', true, 'not implemented');
  if (r.scale_attn_weights === false) unsupported(file, 'scale_attn_weights', false, 'not implemented');
  if (r.add_cross_attention === true) unsupported(file, 'add_cross_attention', true, 'decoder-only models only');
  const hidden = int(r, file, 'n_embd');
  const heads = int(r, file, 'n_head');
  if (hidden % heads !== 0) throw new ConfigError(`${file}: "n_embd" (${hidden}) is not a multiple of "n_head" (${heads})`);
  const inner = r.n_inner === null || r.n_inner === undefined ? 4 * hidden : int(r, file, 'n_inner');
  return {
    arch: 'gpt2',
    modelType: 'gpt2',
    vocabSize: int(r, file, 'vocab_size'),
    hidden,
    layers: int(r, file, 'n_layer'),
    heads,
    kvHeads: heads,
    headDim: hidden / heads,
    intermediate: inner,
    maxPositions: int(r, file, 'n_positions', 1024),
    eps: num(r, file, 'layer_norm_epsilon', 1e-5),
    ropeTheta: 0,
    tiedEmbeddings: r.tie_word_embeddings !== false,
    sequenceClassification: isSequenceClassification(r),
    qkvBias: true,
    oBias: true,
    qkNorm: false,
    mlpBias: true,
    bosTokenId: typeof r.bos_token_id === 'number' ? r.bos_token_id : undefined,
    eosTokenId: eosOf(r),
    raw: r,
  };
}

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * RoPE's base from either layout transformers writes: a top-level `rope_theta` (up to 4.x, with an optional
 * `rope_scaling` dict), or `rope_parameters: {"rope_type": "default", "rope_theta": ...}` (5.x, which reads a
 * `rope_scaling` dict as its rope_parameters). Only the default rope over the whole head is implemented: any
 * other rope_type (linear, dynamic, yarn, longrope, llama3, ...), a per-layer-type dict or a
 * partial_rotary_factor other than 1 is refused by name; two thetas that disagree are refused with both values
 * (transformers 5 would silently take rope_parameters' one).
 */
function ropeThetaOf(r: Raw, file: string): number {
  const thetas: [string, number][] = [];
  if (r.rope_theta !== undefined && r.rope_theta !== null) thetas.push(['rope_theta', num(r, file, 'rope_theta')]);
  if (r.partial_rotary_factor !== undefined && r.partial_rotary_factor !== null && r.partial_rotary_factor !== 1)
    unsupported(file, 'partial_rotary_factor', r.partial_rotary_factor, 'rope over part of the head is not implemented');
  for (const key of ['rope_scaling', 'rope_parameters']) {
    const rope = r[key];
    if (rope === undefined || rope === null) continue;
    if (!isObject(rope)) unsupported(file, key, rope, 'must be an object');
    if (Object.values(rope).some(isObject)) unsupported(file, key, rope, 'per-layer-type rope parameters are not implemented');
    const type = rope.rope_type ?? rope.type ?? 'default';
    if (type !== 'default') unsupported(file, `${key}.rope_type`, type, 'only the default rope is implemented');
    const prf = rope.partial_rotary_factor;
    if (prf !== undefined && prf !== null && prf !== 1) unsupported(file, `${key}.partial_rotary_factor`, prf, 'rope over part of the head is not implemented');
    if (rope.rope_theta !== undefined && rope.rope_theta !== null) thetas.push([`${key}.rope_theta`, num(rope, `${file}: "${key}"`, 'rope_theta')]);
  }
  const differ = thetas.find(([, t]) => t !== thetas[0]![1]);
  if (differ)
    throw new ConfigError(`${file}: ${thetas.map(([k, t]) => `"${k}" (${t})`).join(' and ')} differ; which one the model was trained with is unknown`);
  return thetas[0]?.[1] ?? 10000;
}

/** Llama and the Qwen models built on its block (Qwen2ForCausalLM, Qwen3ForCausalLM), told apart by what
 *  transformers' classes hard-code: Qwen2 always biases q/k/v and never o; Qwen3 norms q and k per head and
 *  reads head_dim from its config (Qwen3Config's default 128 when absent, never hidden / heads). */
function llama(r: Raw, file: string, type: Exclude<ModelType, 'gpt2'>): ModelConfig {
  // Qwen configs carry sliding_window / max_window_layers, which take effect only with use_sliding_window
  if (type !== 'llama' && r.use_sliding_window === true) unsupported(file, 'use_sliding_window', true, 'sliding-window attention is not implemented');
  const act = r.hidden_act ?? 'silu';
  if (act !== 'silu') unsupported(file, 'hidden_act', act, 'supported: silu');
  if (typeof r.pretraining_tp === 'number' && r.pretraining_tp !== 1) unsupported(file, 'pretraining_tp', r.pretraining_tp, 'only 1');
  const hidden = int(r, file, 'hidden_size');
  const heads = int(r, file, 'num_attention_heads');
  const kvHeads = int(r, file, 'num_key_value_heads', heads);
  if (heads % kvHeads !== 0) throw new ConfigError(`${file}: "num_attention_heads" (${heads}) is not a multiple of "num_key_value_heads" (${kvHeads})`);
  const headDim = r.head_dim === undefined || r.head_dim === null ? (type === 'qwen3' ? 128 : hidden / heads) : int(r, file, 'head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new ConfigError(`${file}: head size ${headDim} must be an even integer for rotary embeddings`);
  return {
    arch: 'llama',
    modelType: type,
    vocabSize: int(r, file, 'vocab_size'),
    hidden,
    layers: int(r, file, 'num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    intermediate: int(r, file, 'intermediate_size'),
    maxPositions: int(r, file, 'max_position_embeddings', 2048),
    eps: num(r, file, 'rms_norm_eps', 1e-6),
    ropeTheta: ropeThetaOf(r, file),
    tiedEmbeddings: r.tie_word_embeddings === true,
    sequenceClassification: isSequenceClassification(r),
    qkvBias: type === 'qwen2' || r.attention_bias === true,
    oBias: type !== 'qwen2' && r.attention_bias === true,
    qkNorm: type === 'qwen3',
    // transformers' Qwen MLPs have no biases whatever the config says
    mlpBias: type === 'llama' && r.mlp_bias === true,
    bosTokenId: typeof r.bos_token_id === 'number' ? r.bos_token_id : undefined,
    eosTokenId: eosOf(r),
    raw: r,
  };
}

/** The parameters of an architecture: canonical name (Hub name without prefix), shape, weight-decayed or not. */
export interface ParamSpec {
  name: string;
  shape: number[];
  decay: boolean;
}

export function paramSpecs(c: ModelConfig): ParamSpec[] {
  const C = c.hidden;
  const out: ParamSpec[] = [];
  const p = (name: string, shape: number[], decay = shape.length > 1) => out.push({ name, shape, decay });
  if (c.arch === 'gpt2') {
    p('wte.weight', [c.vocabSize, C]);
    p('wpe.weight', [c.maxPositions, C]);
    for (let l = 0; l < c.layers; l++) {
      const h = `h.${l}.`;
      p(h + 'ln_1.weight', [C]);
      p(h + 'ln_1.bias', [C]);
      p(h + 'attn.c_attn.weight', [C, 3 * C]);
      p(h + 'attn.c_attn.bias', [3 * C]);
      p(h + 'attn.c_proj.weight', [C, C]);
      p(h + 'attn.c_proj.bias', [C]);
      p(h + 'ln_2.weight', [C]);
      p(h + 'ln_2.bias', [C]);
      p(h + 'mlp.c_fc.weight', [C, c.intermediate]);
      p(h + 'mlp.c_fc.bias', [c.intermediate]);
      p(h + 'mlp.c_proj.weight', [c.intermediate, C]);
      p(h + 'mlp.c_proj.bias', [C]);
    }
    p('ln_f.weight', [C]);
    p('ln_f.bias', [C]);
    if (!c.tiedEmbeddings) p('lm_head.weight', [c.vocabSize, C]);
  } else {
    const D = c.headDim;
    p('model.embed_tokens.weight', [c.vocabSize, C]);
    for (let l = 0; l < c.layers; l++) {
      const h = `model.layers.${l}.`;
      p(h + 'input_layernorm.weight', [C]);
      for (const [n, rows] of [
        ['q', c.heads * D],
        ['k', c.kvHeads * D],
        ['v', c.kvHeads * D],
      ] as const) {
        p(h + `self_attn.${n}_proj.weight`, [rows, C]);
        if (c.qkvBias) p(h + `self_attn.${n}_proj.bias`, [rows]);
      }
      p(h + 'self_attn.o_proj.weight', [C, c.heads * D]);
      if (c.oBias) p(h + 'self_attn.o_proj.bias', [C]);
      if (c.qkNorm) {
        p(h + 'self_attn.q_norm.weight', [D]);
        p(h + 'self_attn.k_norm.weight', [D]);
      }
      p(h + 'post_attention_layernorm.weight', [C]);
      p(h + 'mlp.gate_proj.weight', [c.intermediate, C]);
      p(h + 'mlp.up_proj.weight', [c.intermediate, C]);
      p(h + 'mlp.down_proj.weight', [C, c.intermediate]);
      if (c.mlpBias) {
        p(h + 'mlp.gate_proj.bias', [c.intermediate]);
        p(h + 'mlp.up_proj.bias', [c.intermediate]);
        p(h + 'mlp.down_proj.bias', [C]);
      }
    }
    p('model.norm.weight', [C]);
    if (!c.tiedEmbeddings) p('lm_head.weight', [c.vocabSize, C]);
  }
  return out;
}
