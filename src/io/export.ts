// What the model-folder, PEFT-adapter and zip files (hf-folder.ts, peft.ts, zip.ts) share: the tensor and
// provenance types, the two errors (input that cannot be written, files that cannot be read back), JSON as
// Python writes it, the rule for names inside a folder, and safetensors with provenance in its metadata.
// Pure I/O on Uint8Arrays: works in browsers and in Node (no fs, no network).

import { SafetensorsError, writeSafetensors } from './safetensors.ts';

export interface ExportTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Where an exported file came from; written (as strings) into the safetensors `__metadata__`. */
export interface ProvenanceMeta {
  producer: string; // 'rlhf-playground'
  stage: string; // 'base' | 'sft' | 'rm' | 'ppo' | 'dpo'
  steps: number;
  baseModel: string; // hub id or description
  date: string; // ISO 8601
  [k: string]: string | number;
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

export function isPlainObject(v: unknown): v is Record<string, unknown> {
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
  throw new ExportError(
    `${at()}: a value of type ${v === undefined ? 'undefined' : typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v} cannot be written as JSON`,
  );
}

const utf8 = (s: string) => new TextEncoder().encode(s);
/** transformers writes config.json / generation_config.json with a final newline, PEFT adapter_config.json without. */
export const jsonFile = (v: unknown, what: string, newline: boolean) => utf8(toJson(v, what) + (newline ? '\n' : ''));

// ---------------------------------------------------------------------------------------------
// Names

/** Checks a relative path inside a folder: '/'-separated, no empty, '.' or '..' parts, no absolute or drive paths. */
export function pathProblem(name: string): string | undefined {
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

export function checkExportName(name: string, what: string): void {
  const p = pathProblem(name);
  if (p) throw new ExportError(`${what} ${q(name)}: ${p}`);
}

// ---------------------------------------------------------------------------------------------
// Provenance

export function provenanceMetadata(meta: ProvenanceMeta, what: string): Record<string, string> {
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

export function safetensorsOrThrow(tensors: ExportTensor[], metadata: Record<string, string>, file: string): Uint8Array {
  try {
    return writeSafetensors(tensors, metadata);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new ExportError(`${file}: ${e.message.replace(/^\(writeSafetensors\): /, '')}`, { cause: e });
    throw e;
  }
}
