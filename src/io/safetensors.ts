// Safetensors reader that validates everything, and an F32 writer.
// Format: u64 LE header length N, N bytes of UTF-8 JSON header, then the data section.
// Browser- and Node-safe: only Uint8Array / DataView / TextDecoder / TextEncoder.

import { halfValue } from '../shared/half.ts';
import { isJsonObject, JsonSyntaxError, parseJsonStrict, type JsonValue } from './json-strict.ts';

export type DType = 'F32' | 'F16' | 'BF16';
/** begin/end are relative to the start of the data section. */
export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}
export interface SafetensorsFile {
  file: string;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  bytes: Uint8Array;
  dataOffset: number;
}

export class SafetensorsError extends Error {
  readonly file: string;
  readonly tensor?: string;
  constructor(file: string, message: string, tensor?: string) {
    super(tensor === undefined ? `${file}: ${message}` : `${file}: tensor ${JSON.stringify(tensor)}: ${message}`);
    this.name = 'SafetensorsError';
    this.file = file;
    this.tensor = tensor;
  }
}

const MAX_HEADER = 100_000_000;
const DTYPE_SIZE: ReadonlyMap<string, number> = new Map([
  ['F32', 4],
  ['F16', 2],
  ['BF16', 2],
]); // Map: no prototype lookups
const ENTRY_KEYS = ['dtype', 'shape', 'data_offsets'];
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const kind = (v: JsonValue) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const isUint = (v: JsonValue) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  return { ...parseSafetensorsHeader(bytes, bytes.length, file), bytes };
}

/** The header's length field of a file's first 8 bytes (a BigInt: untrusted, may exceed 2^53). */
export const headerLength = (first8: Uint8Array): bigint => new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);

/**
 * The layout of a safetensors file of `size` bytes from its start alone (`head`: at least the 8 bytes and
 * the header, as far as the file has them), validated as parseSafetensors validates it: so a large file
 * can be read tensor by tensor without holding it whole.
 */
export function parseSafetensorsHeader(head: Uint8Array, size: number, file: string): Omit<SafetensorsFile, 'bytes'> {
  const bytes = head;
  const err = (message: string, tensor?: string) => new SafetensorsError(file, message, tensor);
  if (size < 8) throw err(`file is ${size} bytes, shorter than the 8-byte header length`);

  // Header length: u64 LE, compared as a BigInt so huge values cannot lose precision.
  const n64 = headerLength(bytes);
  if (n64 > BigInt(MAX_HEADER)) throw err(`header length ${n64} exceeds the limit of ${MAX_HEADER} bytes`);
  const n = Number(n64);
  if (n === 0) throw err('header length is 0');
  if (8 + n > size) throw err(`header length ${n} runs past the end of the file (${size} bytes)`);
  if (8 + n > bytes.length) throw new Error(`${file}: parseSafetensorsHeader was given ${bytes.length} bytes of a ${8 + n}-byte header`);
  const dataOffset = 8 + n,
    dataLen = size - dataOffset;

  // Header: strict UTF-8 (BOM kept, so JSON rejects it), strict JSON.
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, dataOffset));
  } catch {
    throw err('header is not valid UTF-8');
  }
  let header: JsonValue;
  try {
    header = parseJsonStrict(text);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    const top = e.path[0];
    throw err(`invalid header JSON: ${e.message}`, typeof top === 'string' && top !== '__metadata__' ? top : undefined);
  }
  if (!isJsonObject(header)) throw err(`header JSON must be an object, got ${kind(header)}`);

  const metadata: Record<string, string> = Object.create(null);
  const infos: TensorInfo[] = [];
  for (const name of Object.keys(header)) {
    const entry = header[name]!;
    if (name === '__metadata__') {
      if (!isJsonObject(entry)) throw err(`__metadata__ must be an object, got ${kind(entry)}`);
      for (const key of Object.keys(entry)) {
        const v = entry[key]!;
        if (typeof v !== 'string') throw err(`__metadata__ value for key ${JSON.stringify(key)} must be a string, got ${kind(v)}`);
        metadata[key] = v;
      }
      continue;
    }
    const bad = (message: string) => err(message, name);
    if (!isJsonObject(entry)) throw bad(`entry must be an object, got ${kind(entry)}`);
    for (const key of Object.keys(entry)) if (!ENTRY_KEYS.includes(key)) throw bad(`unknown key ${JSON.stringify(key)}`);
    for (const key of ENTRY_KEYS) if (!Object.hasOwn(entry, key)) throw bad(`missing key "${key}"`);
    const { dtype, shape, data_offsets: offsets } = entry;

    const size = typeof dtype === 'string' ? DTYPE_SIZE.get(dtype) : undefined;
    if (size === undefined) throw bad(`unsupported dtype ${JSON.stringify(dtype)} (expected F32, F16 or BF16)`);
    if (!Array.isArray(shape) || !shape.every(isUint)) throw bad(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isUint) || offsets[0]! > offsets[1]!) {
      throw bad(`data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as number[] as [number, number];
    const dims = shape as number[];
    // BigInt: the product of untrusted dims may exceed 2^53.
    const need = dims.reduce((p, d) => p * BigInt(d), BigInt(size));
    if (need !== BigInt(end - begin)) {
      throw bad(`dtype ${dtype} x shape [${dims.join(',')}] needs ${need} bytes but its range holds ${end - begin}`);
    }
    if (end > dataLen) throw bad(`data_offsets [${begin},${end}] run past the data section (${dataLen} bytes)`);
    infos.push({ name, dtype: dtype as DType, shape: dims, begin, end });
  }

  // Ranges must tile [0, dataLen) exactly: no gaps, no overlaps, no trailing bytes.
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: TensorInfo | undefined;
  for (const t of infos) {
    const after = prev ? `tensor ${JSON.stringify(prev.name)} ends` : 'the data section starts';
    if (t.begin > cursor) throw err(`gap: data begins at ${t.begin} but ${after} at ${cursor}`, t.name);
    if (t.begin < cursor) throw err(`overlap: data begins at ${t.begin} but ${after} at ${cursor}`, t.name);
    cursor = t.end;
    prev = t;
  }
  if (cursor !== dataLen)
    throw err(`${dataLen - cursor} trailing bytes after the last tensor (data section is ${dataLen} bytes, tensors end at ${cursor})`, prev?.name);

  return { file, tensors: new Map(infos.map((t) => [t.name, t])), metadata, dataOffset };
}

/** Converts one tensor to a fresh Float32Array (works at any byte alignment). */
export function readTensorF32(st: SafetensorsFile, name: string): Float32Array {
  const t = st.tensors.get(name);
  if (!t) throw new SafetensorsError(st.file, 'no such tensor', name);
  const start = st.dataOffset + t.begin,
    stop = st.dataOffset + t.end;
  if (stop > st.bytes.length) throw new SafetensorsError(st.file, 'range runs past the end of the file', name);
  const raw = new Uint8Array(stop - start); // an aligned copy (Node's Buffer#slice would alias, so no slice())
  raw.set(st.bytes.subarray(start, stop));
  if (t.dtype === 'F32' && LITTLE_ENDIAN_HOST) return new Float32Array(raw.buffer);

  const view = new DataView(raw.buffer);
  const out = new Float32Array(raw.length / DTYPE_SIZE.get(t.dtype)!);
  if (t.dtype === 'F32') {
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (t.dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer); // bf16 is the top half of an f32: keeps NaN payloads exactly
    for (let i = 0; i < out.length; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  } else {
    for (let i = 0; i < out.length; i++) out[i] = halfValue(view.getUint16(2 * i, true));
  }
  return out;
}

/** Writes F32 tensors contiguously in the given order; header padded with spaces to a multiple of 8. */
export function writeSafetensors(tensors: { name: string; shape: number[]; data: Float32Array }[], metadata?: Record<string, string>): Uint8Array {
  const { header, dataBytes } = safetensorsHeader(tensors, metadata);
  for (const { name, shape, data } of tensors) {
    const count = shape.reduce((p, d) => p * d, 1);
    if (count !== data.length)
      throw new SafetensorsError('(writeSafetensors)', `shape [${shape.join(',')}] has ${count} elements but data has ${data.length}`, name);
  }
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header);
  let pos = header.length;
  for (const { data } of tensors) {
    out.set(f32Bytes(data), pos);
    pos += data.byteLength;
  }
  return out;
}

/** An F32 tensor's bytes as they go into a file (little-endian on any host). */
export function f32Bytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength),
    view = new DataView(out.buffer);
  data.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return out;
}

/**
 * The first bytes of an F32 safetensors file (the length, then the header padded with spaces to a multiple
 * of 8) for tensors of these names and shapes, laid out contiguously in this order, and the data
 * section's size: a writer can then stream each tensor's f32Bytes after it.
 */
export function safetensorsHeader(tensors: { name: string; shape: number[] }[], metadata?: Record<string, string>): { header: Uint8Array; dataBytes: number } {
  const file = '(writeSafetensors)';
  const entries: string[] = [];
  if (metadata) {
    const kv = Object.keys(metadata).map((k) => {
      if (typeof metadata[k] !== 'string') throw new SafetensorsError(file, `metadata value for key ${JSON.stringify(k)} must be a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`;
    });
    entries.push(`"__metadata__":{${kv.join(',')}}`);
  }
  const seen = new Set<string>();
  let offset = 0;
  for (const { name, shape } of tensors) {
    if (name === '__metadata__' || seen.has(name)) throw new SafetensorsError(file, seen.has(name) ? 'duplicate tensor name' : 'reserved tensor name', name);
    seen.add(name);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(file, `invalid shape [${shape.join(',')}]`, name);
    const bytes = 4 * shape.reduce((p, d) => p * d, 1);
    entries.push(`${JSON.stringify(name)}:{"dtype":"F32","shape":[${shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`);
    offset += bytes;
  }

  const json = new TextEncoder().encode(`{${entries.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + n);
  const view = new DataView(header.buffer);
  view.setUint32(0, n % 2 ** 32, true);
  view.setUint32(4, Math.floor(n / 2 ** 32), true);
  header.set(json, 8);
  header.fill(0x20, 8 + json.length, 8 + n); // space padding
  return { header, dataBytes: offset };
}
