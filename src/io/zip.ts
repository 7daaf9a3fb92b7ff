// Zips of model folders, adapters and data: written with fflate (no ZIP64), read back by our own reader.
//
// Zips read back are untrusted: entry names that could escape a folder, duplicate names, entries
// that overlap, sizes past a bound and data that does not match its declared size or CRC are errors
// naming the zip (and the entry), checked before anything is inflated where the central directory
// allows it.
// Pure I/O on Uint8Arrays: works in browsers and in Node (no fs, no network).

import { Inflate, zipSync, type Zippable } from 'fflate';
import { checkExportName, ExportError, ImportError, pathProblem } from './export.ts';

const q = JSON.stringify;

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

interface Entry {
  name: string;
  method: number;
  crc: number;
  csize: number;
  usize: number;
  local: number;
  nameBytes: Uint8Array;
  dataStart: number;
}

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
    if (u32(p) === 0x06054b50 && p + 22 + u16(p + 20) === len) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) throw fail(len < 22 ? `${len} bytes, too short to be a zip` : 'not a zip file (no end-of-central-directory record)');
  if (u16(eocd + 4) !== 0 || u16(eocd + 6) !== 0) throw fail('multi-part (split) zips are not supported');
  let count = u16(eocd + 10),
    cdSize = u32(eocd + 12),
    cdOffset = u32(eocd + 16);
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
    const flags = u16(p + 8),
      method = u16(p + 10),
      crc = u32(p + 16);
    let csize = u32(p + 20),
      usize = u32(p + 24),
      local = u32(p + 42);
    const n = u16(p + 28),
      m = u16(p + 30),
      k = u16(p + 32);
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
      let e = p + 46 + n,
        found = false;
      while (e + 4 <= p + 46 + n + m) {
        const id = u16(e),
          size = u16(e + 2);
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
    const ln = u16(local + 26),
      lm = u16(local + 28);
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
    const prev = byOffset[i - 1]!,
      cur = byOffset[i]!;
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
