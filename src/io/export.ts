// Export and import of model folders as files and zips: a Hugging Face model folder (config.json,
// model.safetensors, generation_config.json, tokenizer files), a PEFT LoRA adapter folder
// (adapter_config.json, adapter_model.safetensors), and zips of either.
// Pure I/O on Uint8Arrays: works in browsers and in Node (no fs, no network).
//
// Zips read back are untrusted: entry names that could escape a folder, duplicate names, entries
// that overlap, sizes past a bound and data that does not match its declared size or CRC are errors
// naming the zip (and the entry), checked before anything is inflated where the central directory
// allows it.

import { Inflate, zipSync, type Zippable } from 'fflate';
import { isJsonObject, JsonSyntaxError, parseJsonStrict, type JsonObject, type JsonValue } from './json-strict.ts';
import { parseSafetensors, readTensorF32, SafetensorsError, writeSafetensors, type SafetensorsFile } from './safetensors.ts';

export interface ExportTensor { name: string; shape: number[]; data: Float32Array }

/** Where an exported file came from; written (as strings) into the safetensors `__metadata__`. */
export interface ProvenanceMeta {
  producer: string; // 'rlhf-playground'
  stage: string; // 'base' | 'sft' | 'rm' | 'ppo' | 'dpo'
  steps: number;
  baseModel: string; // hub id or description
  date: string; // ISO 8601
  [k: string]: string | number;
}

export interface LoraTensors {
  /** Full module path as in the base model, e.g. 'transformer.h.0.attn.c_attn' or 'model.layers.0.self_attn.q_proj'. */
  module: string;
  /** [r, inFeatures], row-major. */
  A: Float32Array;
  /** [outFeatures, r], row-major. */
  B: Float32Array;
  inFeatures: number;
  outFeatures: number;
}

/** Input that cannot be written (bad names, inconsistent shapes, values JSON cannot hold). */
export class ExportError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ExportError';
  }
}

/** A zip or a folder that cannot be read back; the message starts with the file it came from. */
export class ImportError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ImportError';
  }
}

// ---------------------------------------------------------------------------------------------
// JSON as Python's json.dumps(obj, indent=2, sort_keys=True) writes it (ensure_ascii included).

const q = JSON.stringify;

function pyString(s: string): string {
  // JSON.stringify escapes quotes, backslashes, control characters and lone surrogates already.
  return q(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function toJson(v: unknown, what: string, indent = '', path = '', depth = 0): string {
  const at = () => `${what}${path === '' ? '' : ` at ${path}`}`;
  if (depth > 64) throw new ExportError(`${at()}: nested deeper than 64 levels`);
  if (v === null || typeof v === 'boolean') return String(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ExportError(`${at()}: ${v} cannot be written as JSON`);
    return q(v);
  }
  if (typeof v === 'string') return pyString(v);
  const inner = indent + '  ';
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    const items = v.map((x, i) => inner + toJson(x, what, inner, `${path}[${i}]`, depth + 1));
    return `[\n${items.join(',\n')}\n${indent}]`;
  }
  if (isPlainObject(v)) {
    const keys = Object.keys(v).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (keys.length === 0) return '{}';
    const items = keys.map((k) => `${inner}${pyString(k)}: ${toJson(v[k], what, inner, `${path}${path === '' ? '' : '.'}${k}`, depth + 1)}`);
    return `{\n${items.join(',\n')}\n${indent}}`;
  }
  throw new ExportError(`${at()}: a value of type ${v === undefined ? 'undefined' : typeof v === 'object' ? v.constructor?.name ?? 'object' : typeof v} cannot be written as JSON`);
}

const utf8 = (s: string) => new TextEncoder().encode(s);
/** transformers writes config.json / generation_config.json with a final newline, PEFT adapter_config.json without. */
const jsonFile = (v: unknown, what: string, newline: boolean) => utf8(toJson(v, what) + (newline ? '\n' : ''));

// ---------------------------------------------------------------------------------------------
// Names

/** Checks a relative path inside a folder: '/'-separated, no empty, '.' or '..' parts, no absolute or drive paths. */
function pathProblem(name: string): string | undefined {
  if (name === '') return 'empty name';
  if (name.includes('\\')) return 'backslash in the name';
  if (/[\u0000-\u001f]/.test(name)) return 'control character in the name';
  if (name.startsWith('/')) return 'absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'drive-letter path';
  for (const part of name.split('/')) {
    if (part === '..') return 'path traversal ("..")';
    if (part === '.' || part === '') return 'empty or "." path component';
  }
  return undefined;
}

function checkExportName(name: string, what: string): void {
  const p = pathProblem(name);
  if (p) throw new ExportError(`${what} ${q(name)}: ${p}`);
}

// ---------------------------------------------------------------------------------------------
// Provenance

function provenanceMetadata(meta: ProvenanceMeta, what: string): Record<string, string> {
  const out: Record<string, string> = { format: 'pt' };
  for (const key of ['producer', 'stage', 'steps', 'baseModel', 'date']) {
    if (!Object.hasOwn(meta, key)) throw new ExportError(`${what}: provenance field ${q(key)} is missing`);
  }
  for (const key of Object.keys(meta)) {
    if (key === 'format') throw new ExportError(`${what}: provenance key "format" is reserved (it is always "pt")`);
    const v = meta[key];
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new ExportError(`${what}: provenance field ${q(key)} is ${v}`);
      out[key] = String(v);
    } else if (typeof v === 'string') {
      out[key] = v;
    } else {
      throw new ExportError(`${what}: provenance field ${q(key)} must be a string or a number`);
    }
  }
  return out;
}

function safetensorsOrThrow(tensors: ExportTensor[], metadata: Record<string, string>, file: string): Uint8Array {
  try {
    return writeSafetensors(tensors, metadata);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new ExportError(`${file}: ${e.message.replace(/^\(writeSafetensors\): /, '')}`, { cause: e });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Hugging Face model folder

const ARCHITECTURES: ReadonlyMap<string, string> = new Map([['gpt2', 'GPT2LMHeadModel'], ['llama', 'LlamaForCausalLM'], ['qwen2', 'Qwen2ForCausalLM'], ['qwen3', 'Qwen3ForCausalLM']]);
/** A reward model's class: the trunk and a `score` head ([num_labels, hidden], no bias) instead of the LM head. */
const SEQ_CLS_ARCHITECTURES: ReadonlyMap<string, string> = new Map([
  ['gpt2', 'GPT2ForSequenceClassification'], ['llama', 'LlamaForSequenceClassification'], ['qwen2', 'Qwen2ForSequenceClassification'], ['qwen3', 'Qwen3ForSequenceClassification'],
]);
/** Names the model folder writes itself, or that would make a loader pick other weights than ours. */
const RESERVED_MODEL_FILES = new Set([
  'config.json', 'model.safetensors', 'generation_config.json', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json',
]);

export function hfModelFiles(x: {
  config: Record<string, unknown>;
  tensors: ExportTensor[];
  meta: ProvenanceMeta;
  tokenizerFiles?: Map<string, Uint8Array>;
  generationConfig?: Record<string, unknown>;
  /**
   * A reward model as transformers' *ForSequenceClassification with one label (the tensors then hold
   * `score.weight` and no LM head). `padTokenId` is written unless the config has a pad_token_id: the class
   * reads each row's score at its last token that is not the pad token. No generation_config.json (it
   * does not generate).
   */
  sequenceClassification?: { padTokenId: number };
}): Map<string, Uint8Array> {
  if (!isPlainObject(x.config)) throw new ExportError('config.json: the config must be a plain object');
  const modelType = x.config.model_type;
  const arch = typeof modelType === 'string' ? (x.sequenceClassification ? SEQ_CLS_ARCHITECTURES : ARCHITECTURES).get(modelType) : undefined;
  if (arch === undefined) throw new ExportError(`config.json: unsupported "model_type" ${q(modelType ?? null)} (supported: ${[...ARCHITECTURES.keys()].join(', ')})`);
  if (x.tensors.length === 0) throw new ExportError('model.safetensors: no tensors to write');

  const config: Record<string, unknown> = { ...x.config, architectures: [arch], torch_dtype: 'float32' };
  if (Object.hasOwn(config, 'dtype')) config.dtype = 'float32'; // newer transformers write "dtype" instead of "torch_dtype"
  if (x.sequenceClassification) {
    // one label, as transformers writes num_labels=1 (id2label keys are strings in JSON)
    Object.assign(config, { num_labels: 1, id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 } });
    if (typeof config.pad_token_id !== 'number') config.pad_token_id = x.sequenceClassification.padTokenId;
  }

  let generation: Record<string, unknown>;
  if (x.generationConfig !== undefined) {
    if (!isPlainObject(x.generationConfig)) throw new ExportError('generation_config.json: must be a plain object');
    generation = x.generationConfig;
  } else {
    generation = { _from_model_config: true };
    for (const key of ['bos_token_id', 'eos_token_id']) if (x.config[key] !== undefined && x.config[key] !== null) generation[key] = x.config[key];
  }

  const files = new Map<string, Uint8Array>();
  files.set('config.json', jsonFile(config, 'config.json', true));
  if (!x.sequenceClassification) files.set('generation_config.json', jsonFile(generation, 'generation_config.json', true));
  files.set('model.safetensors', safetensorsOrThrow(x.tensors, provenanceMetadata(x.meta, 'model.safetensors'), 'model.safetensors'));
  for (const [name, bytes] of x.tokenizerFiles ?? []) {
    checkExportName(name, 'tokenizer file');
    if (RESERVED_MODEL_FILES.has(name)) throw new ExportError(`tokenizer file ${q(name)}: name is reserved for the model itself`);
    if (!(bytes instanceof Uint8Array)) throw new ExportError(`tokenizer file ${q(name)}: contents must be a Uint8Array`);
    files.set(name, bytes); // passed through byte-for-byte
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// PEFT LoRA adapter folder

const PEFT_PREFIX = 'base_model.model.';
const LORA_KEY = /^(.+)\.lora_([AB])\.weight$/;
const LORA_PART = /(^|\.)lora_/;

const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
/** PEFT matches a target either as the whole module path or as its last dotted part(s). */
const matchesTarget = (module: string, targets: string[]) => targets.some((t) => module === t || module.endsWith('.' + t));
const underModule = (name: string, modules: string[]) => modules.some((m) => name.startsWith(m + '.') || name.includes('.' + m + '.'));

export function peftAdapterFiles(x: {
  /** base_model_name_or_path: what from_pretrained loads (a bare Hub id, or a path), never "id@revision". */
  baseModel: string;
  /** PEFT's `revision` of the base: a branch, tag or commit; null or absent for the default branch (PEFT's null). */
  baseRevision?: string | null;
  r: number;
  alpha: number;
  dropout: number;
  targetModules: string[];
  fanInFanOut: boolean;
  loras: LoraTensors[];
  modulesToSave?: string[];
  extraTensors?: ExportTensor[];
  /** PEFT's task type: 'SEQ_CLS' for a reward or value model (the base loads as *ForSequenceClassification); default 'CAUSAL_LM'. */
  taskType?: PeftTaskType;
  meta: ProvenanceMeta;
}): Map<string, Uint8Array> {
  const cfg = 'adapter_config.json', st = 'adapter_model.safetensors';
  const taskType = x.taskType ?? 'CAUSAL_LM';
  if (taskType !== 'CAUSAL_LM' && taskType !== 'SEQ_CLS') throw new ExportError(`${cfg}: task_type must be "CAUSAL_LM" or "SEQ_CLS", got ${q(taskType)}`);
  if (!isPosInt(x.r)) throw new ExportError(`${cfg}: r must be a positive integer, got ${x.r}`);
  if (typeof x.alpha !== 'number' || !Number.isFinite(x.alpha)) throw new ExportError(`${cfg}: lora_alpha must be a finite number, got ${x.alpha}`);
  if (typeof x.dropout !== 'number' || !(x.dropout >= 0 && x.dropout < 1)) throw new ExportError(`${cfg}: lora_dropout must be in [0, 1), got ${x.dropout}`);
  if (typeof x.fanInFanOut !== 'boolean') throw new ExportError(`${cfg}: fan_in_fan_out must be a boolean`);
  if (typeof x.baseModel !== 'string') throw new ExportError(`${cfg}: base_model_name_or_path must be a string`);
  if (x.baseRevision != null && (typeof x.baseRevision !== 'string' || x.baseRevision === '')) throw new ExportError(`${cfg}: revision must be a non-empty string or null`);
  const names = (list: unknown, field: string): string[] => {
    if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string' && t !== '')) {
      throw new ExportError(`${cfg}: ${field} must be a non-empty list of non-empty strings`);
    }
    if (new Set(list).size !== list.length) throw new ExportError(`${cfg}: ${field} lists a module twice`);
    return list as string[];
  };
  const targets = names(x.targetModules, 'target_modules');
  const toSave = x.modulesToSave === undefined ? null : names(x.modulesToSave, 'modules_to_save');
  if (x.loras.length === 0) throw new ExportError(`${st}: no LoRA tensors to write`);

  const tensors: ExportTensor[] = [];
  const seen = new Set<string>();
  for (const l of x.loras) {
    const key = PEFT_PREFIX + l.module;
    const bad = (msg: string, suffix = '') => new ExportError(`${st}: tensor ${q(key + suffix)}: ${msg}`);
    if (typeof l.module !== 'string' || pathProblem(l.module.replaceAll('.', '/')) !== undefined) throw bad('invalid module path');
    if (l.module.startsWith(PEFT_PREFIX) || LORA_PART.test(l.module)) throw bad('module must be the path in the base model (no "base_model.model." prefix, no lora_ parts)');
    if (seen.has(l.module)) throw bad('module given twice');
    seen.add(l.module);
    if (!matchesTarget(l.module, targets)) throw bad(`module matches none of target_modules [${targets.join(', ')}]`);
    if (!isPosInt(l.inFeatures) || !isPosInt(l.outFeatures)) throw bad(`inFeatures/outFeatures must be positive integers, got ${l.inFeatures}/${l.outFeatures}`);
    if (!(l.A instanceof Float32Array) || l.A.length !== x.r * l.inFeatures) {
      throw bad(`shape [${x.r},${l.inFeatures}] (r x in) needs ${x.r * l.inFeatures} values, got ${l.A?.length}`, '.lora_A.weight');
    }
    if (!(l.B instanceof Float32Array) || l.B.length !== l.outFeatures * x.r) {
      throw bad(`shape [${l.outFeatures},${x.r}] (out x r) needs ${l.outFeatures * x.r} values, got ${l.B?.length}`, '.lora_B.weight');
    }
    tensors.push({ name: `${key}.lora_A.weight`, shape: [x.r, l.inFeatures], data: l.A });
    tensors.push({ name: `${key}.lora_B.weight`, shape: [l.outFeatures, x.r], data: l.B });
  }
  for (const t of x.extraTensors ?? []) {
    const key = PEFT_PREFIX + t.name;
    if (LORA_PART.test(t.name)) throw new ExportError(`${st}: tensor ${q(key)}: extra tensors cannot have lora_ parts`);
    if (toSave === null || !underModule(t.name, toSave)) {
      throw new ExportError(`${st}: tensor ${q(key)}: extra tensors must belong to a module in modules_to_save (${toSave === null ? 'none given' : toSave.join(', ')})`);
    }
    tensors.push({ name: key, shape: t.shape, data: t.data });
  }

  const config = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: x.baseModel,
    bias: 'none',
    fan_in_fan_out: x.fanInFanOut,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: x.alpha,
    lora_dropout: x.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: toSave,
    peft_type: 'LORA',
    r: x.r,
    rank_pattern: {},
    revision: x.baseRevision ?? null,
    target_modules: targets,
    task_type: taskType,
    use_dora: false,
    use_rslora: false,
  };
  return new Map([
    [cfg, jsonFile(config, cfg, false)],
    [st, safetensorsOrThrow(tensors, provenanceMetadata(x.meta, st), st)],
  ]);
}

export type PeftTaskType = 'CAUSAL_LM' | 'SEQ_CLS';

export interface PeftAdapter {
  config: {
    r: number; alpha: number; dropout: number; targetModules: string[]; fanInFanOut: boolean; baseModel: string; modulesToSave: string[] | null;
    /** PEFT's `revision` of the base (null: the default branch). */
    baseRevision: string | null;
    /** task_type as written (null when absent); 'SEQ_CLS' is a sequence-classification (reward) adapter. */
    taskType: string | null;
  };
  loras: LoraTensors[];
  extraTensors: ExportTensor[];
  metadata: Record<string, string>;
}

/** Reads a PEFT LoRA adapter folder (as a files map); `file` names the folder or zip it came from in errors. */
export function readPeftAdapter(files: Map<string, Uint8Array>, file: string): PeftAdapter {
  const cfgName = `${file}/adapter_config.json`, stName = `${file}/adapter_model.safetensors`;
  const cfgBytes = files.get('adapter_config.json');
  if (cfgBytes === undefined) throw new ImportError(`${file}: no adapter_config.json (not a PEFT adapter folder)`);
  const stBytes = files.get('adapter_model.safetensors');
  if (stBytes === undefined) {
    throw new ImportError(files.has('adapter_model.bin')
      ? `${file}: only adapter_model.bin (a pickle) is there; pickles are not read, save the adapter with safe_serialization=True`
      : `${file}: no adapter_model.safetensors`);
  }

  // --- adapter_config.json
  let raw: JsonValue;
  try {
    raw = parseJsonStrict(new TextDecoder('utf-8', { fatal: true }).decode(cfgBytes));
  } catch (e) {
    throw new ImportError(`${cfgName}: ${e instanceof JsonSyntaxError ? `invalid JSON (${e.message})` : 'not valid UTF-8'}`, { cause: e });
  }
  if (!isJsonObject(raw)) throw new ImportError(`${cfgName}: not a JSON object`);
  const c: JsonObject = raw;
  const bad = (key: string, msg: string) => new ImportError(`${cfgName}: ${q(key)} ${msg}`);
  const has = (key: string) => Object.hasOwn(c, key) && c[key] !== null;
  const unsupported = (key: string, why: string): never => { throw bad(key, `is ${JSON.stringify(c[key])}: ${why}`); };

  if (c.peft_type !== 'LORA') throw bad('peft_type', `is ${JSON.stringify(c.peft_type ?? null)}, only "LORA" adapters are read`);
  const r = c.r;
  if (!isPosInt(r)) throw bad('r', `must be a positive integer, got ${JSON.stringify(r ?? null)}`);
  const alpha = has('lora_alpha') ? c.lora_alpha : 8;
  if (typeof alpha !== 'number') throw bad('lora_alpha', `must be a number, got ${JSON.stringify(alpha)}`);
  const dropout = has('lora_dropout') ? c.lora_dropout : 0;
  if (typeof dropout !== 'number' || dropout < 0 || dropout > 1) throw bad('lora_dropout', `must be a number in [0, 1], got ${JSON.stringify(dropout)}`);
  const tm = c.target_modules;
  if (typeof tm === 'string') unsupported('target_modules', 'a regular expression; only a list of module names is supported');
  if (!Array.isArray(tm) || tm.length === 0 || !tm.every((t) => typeof t === 'string' && t !== '')) throw bad('target_modules', 'must be a non-empty list of module names');
  const targetModules = tm as string[];
  const fif = has('fan_in_fan_out') ? c.fan_in_fan_out : false;
  if (typeof fif !== 'boolean') throw bad('fan_in_fan_out', 'must be a boolean');
  const base = has('base_model_name_or_path') ? c.base_model_name_or_path : '';
  if (typeof base !== 'string') throw bad('base_model_name_or_path', 'must be a string or null');
  const rev = has('revision') ? c.revision : null;
  if (rev !== null && (typeof rev !== 'string' || rev === '')) throw bad('revision', 'must be null or the base model\'s revision (a branch, tag or commit)');
  let modulesToSave: string[] | null = null;
  if (has('modules_to_save')) {
    const m = c.modules_to_save;
    if (!Array.isArray(m) || !m.every((t) => typeof t === 'string' && t !== '')) throw bad('modules_to_save', 'must be null or a list of module names');
    modulesToSave = m as string[];
  }
  const tt = has('task_type') ? c.task_type : null;
  if (tt !== null && typeof tt !== 'string') throw bad('task_type', 'must be null or a string');
  // PeftModelForSequenceClassification saves its classifier head whatever modules_to_save says
  const saved = tt === 'SEQ_CLS' ? [...new Set([...(modulesToSave ?? []), 'classifier', 'score'])] : modulesToSave;
  // Settings that change what the tensors mean: refused rather than applied wrongly.
  if (has('use_dora') && c.use_dora !== false) unsupported('use_dora', 'DoRA adapters are not supported');
  if (has('use_rslora') && c.use_rslora !== false) unsupported('use_rslora', 'rank-stabilized scaling (alpha / sqrt(r)) is not supported');
  if (has('bias') && c.bias !== 'none') unsupported('bias', 'only "none" is supported');
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    if (has(key) && !(isJsonObject(c[key]) && Object.keys(c[key] as JsonObject).length === 0)) unsupported(key, 'per-module ranks or alphas are not supported');
  }
  if (has('layer_replication')) unsupported('layer_replication', 'not supported');

  // --- adapter_model.safetensors
  let st: SafetensorsFile;
  try {
    st = parseSafetensors(stBytes, stName);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new ImportError(e.message, { cause: e });
    throw e;
  }
  const tbad = (name: string, msg: string) => new ImportError(`${stName}: tensor ${q(name)}: ${msg}`);
  const pairs = new Map<string, { A?: string; B?: string }>();
  const extraTensors: ExportTensor[] = [];
  for (const [name, info] of st.tensors) {
    if (!name.startsWith(PEFT_PREFIX)) throw tbad(name, `key does not start with "${PEFT_PREFIX}" as PEFT's keys do`);
    const rest = name.slice(PEFT_PREFIX.length);
    const m = LORA_KEY.exec(rest);
    if (m && !LORA_PART.test(m[1]!)) {
      const module = m[1]!;
      if (!matchesTarget(module, targetModules)) throw tbad(name, `module ${q(module)} matches none of target_modules [${targetModules.join(', ')}]`);
      if (info.shape.length !== 2) throw tbad(name, `must be 2-D, got shape [${info.shape.join(',')}]`);
      const [rows, cols] = info.shape as [number, number];
      if (m[2] === 'A' && rows !== r) throw tbad(name, `shape [${rows},${cols}] has ${rows} rows but r is ${r} (lora_A is [r, in])`);
      if (m[2] === 'B' && cols !== r) throw tbad(name, `shape [${rows},${cols}] has ${cols} columns but r is ${r} (lora_B is [out, r])`);
      const p = pairs.get(module) ?? {};
      p[m[2] as 'A' | 'B'] = name;
      pairs.set(module, p);
    } else if (LORA_PART.test(rest)) {
      throw tbad(name, 'unsupported LoRA tensor (only lora_A.weight / lora_B.weight of linear layers, without an adapter name, are read)');
    } else {
      if (saved === null || !underModule(rest, saved)) {
        throw tbad(name, `neither a LoRA weight nor under a module in modules_to_save (${saved === null ? 'none listed' : saved.join(', ')})`);
      }
      extraTensors.push({ name: rest, shape: info.shape, data: readTensorF32(st, name) });
    }
  }
  if (pairs.size === 0) throw new ImportError(`${stName}: no lora_A / lora_B tensors`);
  const loras: LoraTensors[] = [];
  for (const [module, p] of pairs) {
    const key = PEFT_PREFIX + module;
    if (p.A === undefined) throw tbad(`${key}.lora_A.weight`, `missing (its lora_B is there)`);
    if (p.B === undefined) throw tbad(`${key}.lora_B.weight`, `missing (its lora_A is there)`);
    loras.push({
      module,
      A: readTensorF32(st, p.A),
      B: readTensorF32(st, p.B),
      inFeatures: st.tensors.get(p.A)!.shape[1]!,
      outFeatures: st.tensors.get(p.B)!.shape[0]!,
    });
  }

  return {
    config: { r, alpha, dropout, targetModules, fanInFanOut: fif, baseModel: base, baseRevision: rev as string | null, modulesToSave, taskType: tt },
    loras,
    extraTensors,
    metadata: { ...st.metadata },
  };
}

// ---------------------------------------------------------------------------------------------
// Zip writing (fflate; no ZIP64, so each file and the whole zip stay under 4 GiB)

const U32_MAX = 0xffffffff;

export function zipFiles(files: Map<string, Uint8Array>, folder?: string, opts: { mtime?: Date | number } = {}): Uint8Array {
  if (folder !== undefined) checkExportName(folder, 'zip folder');
  if (files.size > 0xffff) throw new ExportError(`zip: ${files.size} files, more than the 65535 a zip without ZIP64 holds`);
  const prefix = folder === undefined ? '' : folder + '/';
  const z: Zippable = Object.create(null) as Zippable;
  let total = 0;
  for (const [name, bytes] of files) {
    checkExportName(name, 'zip entry');
    if (name.endsWith('/')) throw new ExportError(`zip entry ${q(name)}: names a folder, not a file`);
    if (!(bytes instanceof Uint8Array)) throw new ExportError(`zip entry ${q(name)}: contents must be a Uint8Array`);
    if (bytes.length >= U32_MAX) throw new ExportError(`zip entry ${q(name)}: ${bytes.length} bytes, too large for a zip without ZIP64 (4 GiB)`);
    total += bytes.length + 2 * (46 + prefix.length + name.length);
    // Weights are stored as they are (deflate gains little on floats and costs a lot); text is deflated.
    z[prefix + name] = [bytes, { level: name.endsWith('.safetensors') ? 0 : 6, mtime: opts.mtime }];
  }
  if (total >= U32_MAX) throw new ExportError(`zip: about ${total} bytes in all, too large for a zip without ZIP64 (4 GiB)`);
  return zipSync(z);
}

// ---------------------------------------------------------------------------------------------
// Zip reading

export interface UnzipLimits {
  /** Bound on the sum of the declared uncompressed sizes (default 8 GiB). */
  maxTotalBytes?: number;
  /** Bound on the number of entries, folders included (default 10000). */
  maxEntries?: number;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(d: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < d.length; i++) c = CRC_TABLE[(c ^ d[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface Entry { name: string; method: number; crc: number; csize: number; usize: number; local: number; nameBytes: Uint8Array; dataStart: number }

const INFLATE_STEP = 1 << 16; // compressed bytes per push: bounds the work past a lying declared size to ~66 MB

/** Inflates into exactly `usize` bytes; more or fewer is an error (a lying size cannot make it allocate more). */
function inflateBounded(src: Uint8Array, usize: number, fail: (msg: string) => ImportError): Uint8Array {
  const out = new Uint8Array(usize);
  let n = 0;
  const inflater = new Inflate((chunk) => {
    if (n + chunk.length > usize) throw fail(`inflates to more than its declared ${usize} bytes`);
    out.set(chunk, n);
    n += chunk.length;
  });
  try {
    if (src.length === 0) inflater.push(src, true);
    for (let i = 0; i < src.length; i += INFLATE_STEP) inflater.push(src.subarray(i, i + INFLATE_STEP), i + INFLATE_STEP >= src.length);
  } catch (e) {
    if (e instanceof ImportError) throw e;
    throw fail(`invalid deflate data (${e instanceof Error ? e.message : String(e)})`);
  }
  if (n !== usize) throw fail(`inflates to ${n} bytes but declares ${usize}`);
  return out;
}

/**
 * Reads a zip into a files map. A single top-level folder holding every file is removed from the names
 * (so a zip of `my-model/` gives `config.json`, ...); macOS `__MACOSX/` entries and folder entries are skipped.
 * `file` names the zip in errors.
 */
export function unzipFiles(zip: Uint8Array, file: string, limits: UnzipLimits = {}): Map<string, Uint8Array> {
  const maxTotal = limits.maxTotalBytes ?? 8 * 2 ** 30;
  const maxEntries = limits.maxEntries ?? 10_000;
  const fail = (msg: string) => new ImportError(`${file}: ${msg}`);
  const entryFail = (name: string) => (msg: string) => new ImportError(`${file}: entry ${q(name)}: ${msg}`);
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);
  const u64 = (o: number, what: string) => {
    const v = dv.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`${what} ${v} is out of range`);
    return Number(v);
  };
  const len = zip.length;

  // End of central directory: the last signature whose comment runs exactly to the end of the file.
  let eocd = -1;
  for (let p = len - 22; p >= 0 && p >= len - 22 - 0xffff; p--) {
    if (u32(p) === 0x06054b50 && p + 22 + u16(p + 20) === len) { eocd = p; break; }
  }
  if (eocd < 0) throw fail(len < 22 ? `${len} bytes, too short to be a zip` : 'not a zip file (no end-of-central-directory record)');
  if (u16(eocd + 4) !== 0 || u16(eocd + 6) !== 0) throw fail('multi-part (split) zips are not supported');
  let count = u16(eocd + 10), cdSize = u32(eocd + 12), cdOffset = u32(eocd + 16);
  let cdLimit = eocd; // the central directory must end before this
  if (u16(eocd + 8) !== count) throw fail('multi-part (split) zips are not supported');
  if (count === 0xffff || cdSize === U32_MAX || cdOffset === U32_MAX) {
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== 0x07064b50) throw fail('ZIP64 sizes without a ZIP64 end-of-central-directory locator');
    const rec = u64(loc + 8, 'ZIP64 record offset');
    if (rec + 56 > loc || u32(rec) !== 0x06064b50) throw fail('ZIP64 end-of-central-directory locator points at no record');
    if (u32(rec + 16) !== 0 || u32(rec + 20) !== 0) throw fail('multi-part (split) zips are not supported');
    count = u64(rec + 32, 'ZIP64 entry count');
    cdSize = u64(rec + 40, 'ZIP64 central directory size');
    cdOffset = u64(rec + 48, 'ZIP64 central directory offset');
    cdLimit = rec;
  }
  if (count > maxEntries) throw fail(`${count} entries, more than the limit of ${maxEntries}`);
  if (cdOffset + cdSize > cdLimit) throw fail('central directory runs past its end record');

  // Central directory: names, sizes, offsets; everything is checked before anything is inflated.
  const entries: Entry[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let total = 0;
  let p = cdOffset;
  const cdEnd = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || u32(p) !== 0x02014b50) throw fail(`central directory entry ${i} is malformed`);
    const flags = u16(p + 8), method = u16(p + 10), crc = u32(p + 16);
    let csize = u32(p + 20), usize = u32(p + 24), local = u32(p + 42);
    const n = u16(p + 28), m = u16(p + 30), k = u16(p + 32);
    if (p + 46 + n + m + k > cdEnd) throw fail(`central directory entry ${i} runs past the central directory`);
    const nameBytes = zip.subarray(p + 46, p + 46 + n);
    let name: string;
    try {
      name = decoder.decode(nameBytes);
    } catch {
      throw fail(`entry ${i}: name is not valid UTF-8`);
    }
    const efail = entryFail(name);
    // ZIP64 extra field: the 64-bit values of the fields set to 0xFFFFFFFF, in this order.
    if (usize === U32_MAX || csize === U32_MAX || local === U32_MAX) {
      let e = p + 46 + n, found = false;
      while (e + 4 <= p + 46 + n + m) {
        const id = u16(e), size = u16(e + 2);
        if (e + 4 + size > p + 46 + n + m) break;
        if (id === 0x0001) {
          let f = e + 4;
          const next = (what: string) => {
            if (f + 8 > e + 4 + size) throw efail('ZIP64 extra field is too short');
            const v = u64(f, what);
            f += 8;
            return v;
          };
          if (usize === U32_MAX) usize = next('uncompressed size');
          if (csize === U32_MAX) csize = next('compressed size');
          if (local === U32_MAX) local = next('local header offset');
          found = true;
          break;
        }
        e += 4 + size;
      }
      if (!found) throw efail('ZIP64 sizes without a ZIP64 extra field');
    }
    p += 46 + n + m + k;

    const problem = pathProblem(name.endsWith('/') ? name.slice(0, -1) : name);
    if (problem) throw efail(`unsafe name: ${problem}`);
    if (flags & 1) throw efail('encrypted entries are not supported');
    if (method !== 0 && method !== 8) throw efail(`compression method ${method} is not supported (only stored and deflate)`);
    if (method === 0 && csize !== usize) throw efail(`stored entry with compressed size ${csize} != size ${usize}`);
    total += usize;
    if (total > maxTotal) throw fail(`uncompressed contents exceed the limit of ${maxTotal} bytes (at entry ${q(name)}, declared ${usize} bytes)`);

    if (local + 30 > cdOffset || u32(local) !== 0x04034b50) throw efail('local header missing or not before the central directory');
    const ln = u16(local + 26), lm = u16(local + 28);
    const dataStart = local + 30 + ln + lm;
    if (dataStart + csize > cdOffset) throw efail('data runs into the central directory');
    const localName = zip.subarray(local + 30, local + 30 + ln);
    if (ln !== n || !localName.every((b, j) => b === nameBytes[j])) throw efail('local header names a different file than the central directory');
    entries.push({ name, method, crc, csize, usize, local, nameBytes, dataStart });
  }
  if (p !== cdEnd) throw fail(`central directory holds ${cdEnd - p} bytes after its ${count} entries`);

  // Entries must not share bytes (overlapping entries are how a small zip claims huge contents).
  const byOffset = [...entries].sort((a, b) => a.local - b.local);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!, cur = byOffset[i]!;
    if (prev.dataStart + prev.csize > cur.local) throw entryFail(cur.name)(`overlaps entry ${q(prev.name)}`);
  }

  // Names: no duplicates, no file that is also a folder; drop folder entries and macOS resource forks.
  const seen = new Set<string>();
  const fileEntries: Entry[] = [];
  for (const e of entries) {
    const key = e.name.endsWith('/') ? e.name.slice(0, -1) : e.name;
    if (seen.has(key)) throw entryFail(e.name)('duplicate name');
    seen.add(key);
    if (e.name.endsWith('/')) {
      if (e.usize !== 0) throw entryFail(e.name)('folder entry with contents');
      continue;
    }
    if (key === '__MACOSX' || key.startsWith('__MACOSX/')) continue;
    fileEntries.push(e);
  }
  const fileNames = new Set(fileEntries.map((e) => e.name));
  for (const e of fileEntries) {
    for (let j = e.name.indexOf('/'); j >= 0; j = e.name.indexOf('/', j + 1)) {
      const dir = e.name.slice(0, j);
      if (fileNames.has(dir)) throw entryFail(e.name)(`${q(dir)} is both a file and a folder`);
    }
  }

  // One top-level folder holding everything: strip it.
  let strip = 0;
  if (fileEntries.length > 0) {
    const top = fileEntries[0]!.name.split('/')[0]!;
    if (fileEntries.every((e) => e.name.startsWith(top + '/'))) strip = top.length + 1;
  }

  const out = new Map<string, Uint8Array>();
  for (const e of fileEntries) {
    const efail = entryFail(e.name);
    const src = zip.subarray(e.dataStart, e.dataStart + e.csize);
    let data: Uint8Array;
    if (e.method === 0) {
      data = new Uint8Array(e.usize);
      data.set(src);
    } else {
      data = inflateBounded(src, e.usize, efail);
    }
    if (crc32(data) !== e.crc) throw efail('CRC-32 mismatch (the zip is corrupt)');
    out.set(e.name.slice(strip), data);
  }
  return out;
}
