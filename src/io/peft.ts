// A PEFT LoRA adapter folder: adapter_config.json as PEFT writes it and adapter_model.safetensors under
// PEFT's key names (base_model.model.<module>.lora_A/B.weight), written and read back. What is read is
// untrusted: settings that would change what the tensors mean (DoRA, rsLoRA, per-module ranks) are refused,
// and every tensor must be a LoRA pair of a target module or belong to a module in modules_to_save.
// Pure I/O on Uint8Arrays: works in browsers and in Node (no fs, no network).

import { ExportError, ImportError, jsonFile, pathProblem, provenanceMetadata, safetensorsOrThrow, type ExportTensor, type ProvenanceMeta } from './export.ts';
import { isJsonObject, JsonSyntaxError, parseJsonStrict, type JsonObject, type JsonValue } from './json-strict.ts';
import { parseSafetensors, readTensorF32, SafetensorsError, type SafetensorsFile } from './safetensors.ts';

const q = JSON.stringify;

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
  const cfg = 'adapter_config.json',
    st = 'adapter_model.safetensors';
  const taskType = x.taskType ?? 'CAUSAL_LM';
  if (taskType !== 'CAUSAL_LM' && taskType !== 'SEQ_CLS') throw new ExportError(`${cfg}: task_type must be "CAUSAL_LM" or "SEQ_CLS", got ${q(taskType)}`);
  if (!isPosInt(x.r)) throw new ExportError(`${cfg}: r must be a positive integer, got ${x.r}`);
  if (typeof x.alpha !== 'number' || !Number.isFinite(x.alpha)) throw new ExportError(`${cfg}: lora_alpha must be a finite number, got ${x.alpha}`);
  if (typeof x.dropout !== 'number' || !(x.dropout >= 0 && x.dropout < 1)) throw new ExportError(`${cfg}: lora_dropout must be in [0, 1), got ${x.dropout}`);
  if (typeof x.fanInFanOut !== 'boolean') throw new ExportError(`${cfg}: fan_in_fan_out must be a boolean`);
  if (typeof x.baseModel !== 'string') throw new ExportError(`${cfg}: base_model_name_or_path must be a string`);
  if (x.baseRevision != null && (typeof x.baseRevision !== 'string' || x.baseRevision === ''))
    throw new ExportError(`${cfg}: revision must be a non-empty string or null`);
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
    if (l.module.startsWith(PEFT_PREFIX) || LORA_PART.test(l.module))
      throw bad('module must be the path in the base model (no "base_model.model." prefix, no lora_ parts)');
    if (seen.has(l.module)) throw bad('module given twice');
    seen.add(l.module);
    if (!matchesTarget(l.module, targets)) throw bad(`module matches none of target_modules [${targets.join(', ')}]`);
    if (!isPosInt(l.inFeatures) || !isPosInt(l.outFeatures))
      throw bad(`inFeatures/outFeatures must be positive integers, got ${l.inFeatures}/${l.outFeatures}`);
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
      throw new ExportError(
        `${st}: tensor ${q(key)}: extra tensors must belong to a module in modules_to_save (${toSave === null ? 'none given' : toSave.join(', ')})`,
      );
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
    r: number;
    alpha: number;
    dropout: number;
    targetModules: string[];
    fanInFanOut: boolean;
    baseModel: string;
    modulesToSave: string[] | null;
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
  const cfgName = `${file}/adapter_config.json`,
    stName = `${file}/adapter_model.safetensors`;
  const cfgBytes = files.get('adapter_config.json');
  if (cfgBytes === undefined) throw new ImportError(`${file}: no adapter_config.json (not a PEFT adapter folder)`);
  const stBytes = files.get('adapter_model.safetensors');
  if (stBytes === undefined) {
    throw new ImportError(
      files.has('adapter_model.bin')
        ? `${file}: only adapter_model.bin (a pickle) is there; pickles are not read, save the adapter with safe_serialization=True`
        : `${file}: no adapter_model.safetensors`,
    );
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
  const unsupported = (key: string, why: string): never => {
    throw bad(key, `is ${JSON.stringify(c[key])}: ${why}`);
  };

  if (c.peft_type !== 'LORA') throw bad('peft_type', `is ${JSON.stringify(c.peft_type ?? null)}, only "LORA" adapters are read`);
  const r = c.r;
  if (!isPosInt(r)) throw bad('r', `must be a positive integer, got ${JSON.stringify(r ?? null)}`);
  const alpha = has('lora_alpha') ? c.lora_alpha : 8;
  if (typeof alpha !== 'number') throw bad('lora_alpha', `must be a number, got ${JSON.stringify(alpha)}`);
  const dropout = has('lora_dropout') ? c.lora_dropout : 0;
  if (typeof dropout !== 'number' || dropout < 0 || dropout > 1) throw bad('lora_dropout', `must be a number in [0, 1], got ${JSON.stringify(dropout)}`);
  const tm = c.target_modules;
  if (typeof tm === 'string') unsupported('target_modules', 'a regular expression; only a list of module names is supported');
  if (!Array.isArray(tm) || tm.length === 0 || !tm.every((t) => typeof t === 'string' && t !== ''))
    throw bad('target_modules', 'must be a non-empty list of module names');
  const targetModules = tm as string[];
  const fif = has('fan_in_fan_out') ? c.fan_in_fan_out : false;
  if (typeof fif !== 'boolean') throw bad('fan_in_fan_out', 'must be a boolean');
  const base = has('base_model_name_or_path') ? c.base_model_name_or_path : '';
  if (typeof base !== 'string') throw bad('base_model_name_or_path', 'must be a string or null');
  const rev = has('revision') ? c.revision : null;
  if (rev !== null && (typeof rev !== 'string' || rev === '')) throw bad('revision', "must be null or the base model's revision (a branch, tag or commit)");
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
