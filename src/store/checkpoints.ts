// A run's checkpoint, as large as the model: tensors are written one at a time, in chunks of at most
// CHUNK_BYTES, under a fresh generation id; only then does one small IndexedDB transaction put the manifest
// (the pointer: step, state, each tensor's chunks) and the previous generation's chunks are deleted. So:
//  - a crash, a closed tab or a full disk mid-write leaves the previous checkpoint whole and loadable
//    (the manifest still points at it); the orphaned chunks are removed by cleanOrphanChunks on start;
//  - no step holds the whole checkpoint in one JS array: the writer pulls tensors from an iterator (the
//    GPU download of one tensor at a time) and the reader hands them back one at a time;
//  - before writing, the browser's storage estimate is checked: a checkpoint that cannot fit is refused
//    with the numbers, before anything is written, and the previous one is kept.
// Checkpoints written before v5 (one safetensors file in the manifest's `bytes`) are still read.
//
// Where the chunks go: the Origin Private File System where the browser has one (one file per chunk,
// checkpoints/<run>/<generation>/<index>), IndexedDB's `chunks` store otherwise (Node, old browsers). Not
// IndexedDB where OPFS exists, because of what a kill did: Chromium killed while it wrote a 512 MiB
// checkpoint as IndexedDB values lost the origin's whole database, rankings included, in 1 of 3 tries
// (tests/store-crash-browser.test.ts). With the chunks in files, IndexedDB only ever holds small records.
import { parseSafetensors, readTensorF32 } from '../io/safetensors.ts';
import { checkpointManifest, storageEstimate, type CheckpointRecord, type Store } from './db.ts';
import { opfsChunks, type ChunkFiles } from './chunk-files.ts';

/** Chunk size: well under every browser's per-value limit, large enough that a 2 GB checkpoint is ~130 records. */
export const CHUNK_BYTES = 16 * 2 ** 20;
/** Room left beside a checkpoint's own bytes (IndexedDB's overhead, the old generation until the switch). */
const HEADROOM = 1.1;

export class StorageFullError extends Error {}

export interface CheckpointWrite {
  step: number;
  /** the run's state, stored as JSON */
  state: unknown;
  /** the tensors, pulled one at a time */
  tensors: Iterable<[string, Float32Array]> | AsyncIterable<[string, Float32Array]>;
  /** their total bytes, for the free-space check before anything is written */
  bytes: number;
}

export interface CheckpointRead<S = unknown> {
  step: number;
  state: S;
  /** tensor names, in the order `tensors` yields them */
  names: string[];
  tensors(): AsyncIterable<[string, Float32Array]>;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 1 : 0)} MiB`;

/**
 * Writes `c` as the run's checkpoint. Resolves once the manifest points at it (on disk); rejects with a
 * StorageFullError when the disk is too full (checked before writing, or refused by the browser midway),
 * and in every failure the previous checkpoint stays the run's checkpoint.
 */
export interface WriteOptions {
  estimate?: () => Promise<{ usage: number; quota: number } | undefined>;
  /** where the chunks go: 'opfs' where the browser has it (the default there), 'idb' otherwise */
  where?: 'opfs' | 'idb';
}

export async function writeCheckpoint(db: Store, runId: string, c: CheckpointWrite, opts: WriteOptions = {}): Promise<void> {
  // shared: writers of several runs (tabs) go on together; the start-up clean waits for none of them
  return withLock('shared', () => write(db, runId, c, opts));
}

/** The Web Lock that keeps cleanOrphanChunks (another tab starting) off a generation being written; none in Node. */
function withLock<T>(mode: 'shared' | 'exclusive', f: () => Promise<T>, ifAvailable = false): Promise<T | undefined> {
  const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks;
  if (!locks) return f();
  return locks.request('rlhf-playground-checkpoint-chunks', { mode, ifAvailable }, (lock) => (lock ? f() : undefined));
}

async function write(db: Store, runId: string, c: CheckpointWrite, opts: WriteOptions): Promise<void> {
  const previous = await checkpointManifest(db, runId);
  const kept = previous ? `the checkpoint of step ${previous.step} is kept` : 'nothing was written';
  const e = await (opts.estimate ?? storageEstimate)();
  // the previous generation's chunks are freed only after the switch: the new one needs its own room
  if (e && e.quota - e.usage < c.bytes * HEADROOM) {
    throw new StorageFullError(
      `not enough storage for the checkpoint of step ${c.step}: it needs ${mib(c.bytes * HEADROOM)}, ${mib(Math.max(0, e.quota - e.usage))} is free; ${kept}. Delete old runs on the Train tab (or free disk space) and resume.`,
    );
  }
  const gen = crypto.randomUUID();
  const files = opts.where === 'idb' ? undefined : await opfsChunks();
  if (opts.where === 'opfs' && !files) throw new Error('this browser has no Origin Private File System');
  const tensors: NonNullable<CheckpointRecord['tensors']> = [];
  let index = 0;
  try {
    for await (const [name, data] of c.tensors) {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const first = index,
        n = Math.max(1, Math.ceil(bytes.length / CHUNK_BYTES));
      for (let k = 0; k < n; k++) {
        const piece = bytes.subarray(k * CHUNK_BYTES, Math.min(bytes.length, (k + 1) * CHUNK_BYTES));
        if (files) await files.put(runId, gen, index++, piece);
        else {
          const tx = db.transaction('chunks', 'readwrite');
          // a copy of exactly this range: structured cloning a view stores its whole buffer
          await Promise.all([tx.store.put({ runId, gen, index: index++, data: piece.slice() }), tx.done]);
        }
      }
      tensors.push({ name, length: data.length, first, chunks: index - first });
    }
    // the switch: the previous generation's IndexedDB chunks go in the same transaction, its files just after
    const tx = db.transaction(['checkpoints', 'chunks'], 'readwrite', { durability: 'strict' });
    await Promise.all([
      tx
        .objectStore('checkpoints')
        .put({ runId, step: c.step, savedAt: Date.now(), gen, ...(files ? { where: 'opfs' as const } : {}), state: JSON.stringify(c.state), tensors }),
      ...(previous?.gen ? [tx.objectStore('chunks').delete(IDBKeyRange.bound([runId, previous.gen], [runId, previous.gen, Infinity]))] : []),
      tx.done,
    ]);
  } catch (err) {
    // this generation's chunks go; the manifest still points at the previous one
    await deleteGeneration(db, files, runId, gen).catch(() => undefined);
    const quota = (err as { name?: string })?.name === 'QuotaExceededError';
    if (quota)
      throw new StorageFullError(
        `the disk filled up while writing the checkpoint of step ${c.step}; ${kept}. Delete old runs on the Train tab (or free disk space) and resume.`,
      );
    throw err;
  }
  if (previous?.where === 'opfs' && previous.gen) await (await opfsChunks())?.deleteGeneration(runId, previous.gen).catch(() => undefined); // else cleaned on start
}

async function deleteGeneration(db: Store, files: ChunkFiles | undefined, runId: string, gen: string): Promise<void> {
  if (files) return files.deleteGeneration(runId, gen);
  const tx = db.transaction('chunks', 'readwrite');
  await Promise.all([tx.store.delete(IDBKeyRange.bound([runId, gen], [runId, gen, Infinity])), tx.done]);
}

/** The run's checkpoint, its tensors read one at a time; undefined when it has none. */
export async function readCheckpoint<S = unknown>(db: Store, runId: string): Promise<CheckpointRead<S> | undefined> {
  const m = await checkpointManifest(db, runId);
  if (!m) return undefined;
  const file = `checkpoint of run ${runId}`;
  if (m.bytes) {
    // before v5: one safetensors file
    const st = parseSafetensors(m.bytes, file);
    if (st.metadata.format !== 'rlhf-playground-checkpoint') throw new Error(`${file}: not a training checkpoint`);
    const names = [...st.tensors.keys()];
    return {
      step: m.step,
      state: JSON.parse(st.metadata.state ?? 'null') as S,
      names,
      async *tensors() {
        for (const n of names) yield [n, readTensorF32(st, n)];
      },
    };
  }
  const { gen, tensors = [] } = m;
  const files = m.where === 'opfs' ? await opfsChunks() : undefined;
  if (m.where === 'opfs' && !files) throw new Error(`${file}: its chunks are in the Origin Private File System, which this browser does not offer here`);
  return {
    step: m.step,
    state: JSON.parse(m.state ?? 'null') as S,
    names: tensors.map((t) => t.name),
    async *tensors() {
      for (const t of tensors) {
        const out = new Float32Array(t.length),
          bytes = new Uint8Array(out.buffer);
        let at = 0,
          found = 0;
        const take = (data: Uint8Array) => {
          if (at + data.length > bytes.length) throw new Error(`${file}: tensor "${t.name}" has more data than its ${t.length} floats`);
          bytes.set(data, at);
          at += data.length;
          found++;
        };
        if (files) {
          for (let i = t.first; i < t.first + t.chunks; i++) {
            const data = await files.get(runId, gen!, i);
            if (!data) break;
            take(data);
          }
        } else {
          for (const c of await db.getAll('chunks', IDBKeyRange.bound([runId, gen!, t.first], [runId, gen!, t.first + t.chunks - 1]))) take(c.data);
        }
        if (found !== t.chunks || at !== bytes.length) throw new Error(`${file}: tensor "${t.name}" is incomplete (${at} of ${bytes.length} bytes)`);
        yield [t.name, out];
      }
    },
  };
}

/** The whole checkpoint in memory (a small one: a LoRA reward model's adapter and head). */
export async function readCheckpointAll<S = unknown>(
  db: Store,
  runId: string,
): Promise<{ step: number; state: S; tensors: Map<string, Float32Array> } | undefined> {
  const c = await readCheckpoint<S>(db, runId);
  if (!c) return undefined;
  const tensors = new Map<string, Float32Array>();
  for await (const [n, t] of c.tensors()) tensors.set(n, t);
  return { step: c.step, state: c.state, tensors };
}

/**
 * Removes chunks no manifest points at (a write cut short by a crash or a closed tab). Reads keys only.
 * Run on start. Resolves with the number of chunks removed.
 */
export async function cleanOrphanChunks(db: Store): Promise<number> {
  // a tab writing a checkpoint now holds the lock shared: its chunks are not orphans; clean another time
  return (await withLock('exclusive', () => clean(db), true)) ?? 0;
}

async function clean(db: Store): Promise<number> {
  const manifests = await db.getAll('checkpoints');
  const live = new Map(manifests.filter((m) => m.where !== 'opfs').map((m) => [m.runId, m.gen]));
  const tx = db.transaction('chunks', 'readwrite');
  let removed = 0;
  for (let c = await tx.store.openKeyCursor(); c; c = await c.continue()) {
    const [runId, gen] = c.primaryKey;
    if (live.get(runId) !== gen) {
      await tx.store.delete(c.primaryKey);
      removed++;
    }
  }
  await tx.done;
  const files = await opfsChunks();
  if (files) {
    const liveFiles = new Map(manifests.filter((m) => m.where === 'opfs').map((m) => [m.runId, m.gen]));
    removed += await files.deleteExcept(liveFiles);
  }
  return removed;
}

/** Removes a deleted run's chunk files (db.deleteRun removes its records and IndexedDB chunks). */
export async function deleteCheckpointFiles(runId: string): Promise<void> {
  await (await opfsChunks())?.deleteRun(runId);
}

/** How many chunks are stored, in IndexedDB and in files (for tests and the storage view). */
export async function chunkCount(db: Store): Promise<number> {
  return (await db.count('chunks')) + ((await (await opfsChunks())?.count()) ?? 0);
}
