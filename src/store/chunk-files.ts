// Checkpoint chunks as files in the Origin Private File System: checkpoints/r-<run>/<generation>/<index>,
// one file per chunk (at most CHUNK_BYTES). Used by src/store/checkpoints.ts, which keeps the manifest (the
// pointer to one generation) in IndexedDB. A file is written through a writable stream, which Chromium
// writes beside the file and moves into place on close: a chunk is either all there or not there, and a
// write cut short leaves only a stray file in a generation no manifest points at (removed on start).
// Works in a page and in a worker; undefined where the browser has no OPFS (Node, a private window that
// refuses it), and the chunks then go to IndexedDB.

/** The chunk files of every run's checkpoints. */
export interface ChunkFiles {
  put(runId: string, gen: string, index: number, data: Uint8Array): Promise<void>;
  /** a chunk's bytes, or undefined when the file is missing */
  get(runId: string, gen: string, index: number): Promise<Uint8Array | undefined>;
  deleteGeneration(runId: string, gen: string): Promise<void>;
  deleteRun(runId: string): Promise<void>;
  /** removes every generation but each run's live one (runs not in `live` lose all); resolves with the chunks removed */
  deleteExcept(live: Map<string, string | undefined>): Promise<number>;
  /** chunks stored, of every run and generation */
  count(): Promise<number>;
}

// what TypeScript's DOM library lacks of the File System Access API (async iteration over a directory)
type Dir = FileSystemDirectoryHandle & { entries(): AsyncIterable<[string, FileSystemHandle]> };
type Writable = { write(data: BufferSource): Promise<void>; close(): Promise<void>; abort(): Promise<void> };
type FileHandle = FileSystemFileHandle & { createWritable(): Promise<Writable> };

const ROOT = 'checkpoints';
const runDirName = (runId: string) => `r-${encodeURIComponent(runId)}`;
const runIdOf = (dirName: string) => (dirName.startsWith('r-') ? decodeURIComponent(dirName.slice(2)) : undefined);
/** a chunk's file; a Chromium write in progress (or cut short) is a `<name>.crswap` beside it */
const isChunk = (name: string) => /^\d+$/.test(name);

let filesP: Promise<ChunkFiles | undefined> | undefined;

/** The OPFS chunk files, or undefined where there is no OPFS. */
export function opfsChunks(): Promise<ChunkFiles | undefined> {
  return (filesP ??= open());
}

async function open(): Promise<ChunkFiles | undefined> {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: () => Promise<FileSystemDirectoryHandle> } } }).navigator?.storage;
  if (!storage?.getDirectory) return undefined;
  let root: Dir;
  try {
    root = (await (await storage.getDirectory()).getDirectoryHandle(ROOT, { create: true })) as Dir;
  } catch {
    return undefined; // refused (a private window, a policy): IndexedDB it is
  }
  const notFound = (e: unknown) => (e as { name?: string })?.name === 'NotFoundError';
  const genDir = async (runId: string, gen: string, create: boolean) =>
    (await (await root.getDirectoryHandle(runDirName(runId), { create })).getDirectoryHandle(gen, { create })) as Dir;
  const remove = async (dir: FileSystemDirectoryHandle, name: string) => {
    try {
      await dir.removeEntry(name, { recursive: true });
    } catch (e) {
      if (!notFound(e)) throw e;
    }
  };
  const chunksIn = async (dir: Dir) => {
    let n = 0;
    for await (const [name, h] of dir.entries()) if (h.kind === 'file' && isChunk(name)) n++;
    return n;
  };
  const each = async (f: (runId: string, run: Dir, gen: string, dir: Dir) => Promise<void>) => {
    for await (const [runName, run] of root.entries()) {
      const runId = runIdOf(runName);
      if (run.kind !== 'directory' || runId === undefined) continue;
      for await (const [gen, dir] of (run as Dir).entries()) if (dir.kind === 'directory') await f(runId, run as Dir, gen, dir as Dir);
    }
  };
  return {
    async put(runId, gen, index, data) {
      const file = (await (await genDir(runId, gen, true)).getFileHandle(String(index), { create: true })) as FileHandle;
      const w = await file.createWritable();
      try {
        await w.write(data as Uint8Array<ArrayBuffer>);
        await w.close();
      } catch (e) {
        await w.abort().catch(() => undefined);
        throw e;
      }
    },
    async get(runId, gen, index) {
      try {
        const f = await (await (await genDir(runId, gen, false)).getFileHandle(String(index))).getFile();
        return new Uint8Array(await f.arrayBuffer());
      } catch (e) {
        if (notFound(e)) return undefined;
        throw e;
      }
    },
    async deleteGeneration(runId, gen) {
      try {
        await remove(await root.getDirectoryHandle(runDirName(runId)), gen);
      } catch (e) {
        if (!notFound(e)) throw e;
      }
    },
    deleteRun: (runId) => remove(root, runDirName(runId)),
    async deleteExcept(live) {
      const gone: [Dir, string, number][] = [];
      await each(async (runId, run, gen, dir) => {
        if (live.get(runId) !== gen) gone.push([run, gen, await chunksIn(dir)]);
      });
      let removed = 0;
      for (const [run, gen, n] of gone) {
        await remove(run, gen);
        removed += n;
      }
      // a run's folder with no generation left goes too
      for await (const [runName, run] of root.entries()) {
        if (run.kind !== 'directory') continue;
        let empty = true;
        for await (const _ of (run as Dir).entries()) {
          empty = false;
          break;
        }
        if (empty) await remove(root, runName);
      }
      return removed;
    },
    async count() {
      let n = 0;
      await each(async (_r, _run, _g, dir) => {
        n += await chunksIn(dir);
      });
      return n;
    },
  };
}
