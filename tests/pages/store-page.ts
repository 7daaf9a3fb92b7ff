// The store in a real browser, for tests/store-crash-browser.test.ts: the test calls these through
// page.evaluate, kills the browser while they run, starts it again on the same profile and checks what is
// on disk. Tensor data follows a pattern from (seed, tensor, index), so a read can be checked without a copy.
import { checkpointManifest, deleteRun, listRankings, openStore, saveRanking, type Store } from '../../src/store/db.ts';
import { chunkCount, cleanOrphanChunks, deleteCheckpointFiles, readCheckpoint, readCheckpointAll, writeCheckpoint } from '../../src/store/checkpoints.ts';
import { opfsChunks } from '../../src/store/chunk-files.ts';

const FLOATS = 4 * 2 ** 20; // 16 MiB tensors
const value = (seed: number, t: number, i: number) => ((seed * 131 + t * 31 + i) % 8191) - 4095;

function tensor(seed: number, t: number): Float32Array {
  const out = new Float32Array(FLOATS);
  for (let i = 0; i < FLOATS; i++) out[i] = value(seed, t, i);
  return out;
}

let dbP: Promise<Store> | undefined;
const store = () => (dbP ??= openStore());

const api = {
  /** Saves rankings one after another; each id is pushed to `saved` once its save resolved (what the UI shows as saved). */
  saved: [] as number[],
  async rankForever(): Promise<void> {
    const db = await store();
    for (let k = 0; ; k++) {
      const id = await saveRanking(db, { prompt: `prompt ${k}`, completions: [`a${k}`, `b${k}`], ranks: [0, 1] });
      api.saved.push(id);
    }
  },
  /** Tensors written so far by the checkpoint being written now. */
  written: 0,
  /** A checkpoint of `mib` MiB (16 MiB tensors) with data from `seed`; resolves once its manifest points at it. */
  async checkpoint(runId: string, step: number, mib: number, seed: number): Promise<void> {
    const db = await store();
    const n = Math.round(mib / 16);
    api.written = 0;
    async function* tensors(): AsyncGenerator<[string, Float32Array]> {
      for (let t = 0; t < n; t++) {
        yield [`t${t}`, tensor(seed, t)];
        api.written = t + 1;
      }
    }
    await writeCheckpoint(db, runId, { step, state: { seed, n }, tensors: tensors(), bytes: n * FLOATS * 4 });
  },
  /** The run's checkpoint as read back: its step and state, and whether every float is the pattern's. */
  async verify(runId: string): Promise<{ step: number; state: unknown; tensors: number; intact: boolean; where: string } | undefined> {
    const ck = await readCheckpoint<{ seed: number; n: number }>(await store(), runId);
    if (!ck) return undefined;
    const where = (await checkpointManifest(await store(), runId))?.where ?? 'idb';
    let intact = true,
      count = 0;
    for await (const [name, data] of ck.tensors()) {
      const t = Number(name.slice(1));
      if (data.length !== FLOATS) intact = false;
      for (let i = 0; i < data.length && intact; i++) if (data[i] !== value(ck.state.seed, t, i)) intact = false;
      count++;
    }
    return { step: ck.step, state: ck.state, tensors: count, intact: intact && count === ck.state.n, where };
  },
  clean: async () => cleanOrphanChunks(await store()),
  rankingIds: async () => (await listRankings(await store())).map((r) => r.id!),
  chunkCount: async () => chunkCount(await store()),
  /** Chunks in IndexedDB's store alone (none where the chunks go to files). */
  idbChunkCount: async () => (await store()).count('chunks'),

  /**
   * The checkpoint rules on the Origin Private File System, small: what each step leaves, for the test to
   * check (the same rules as the IndexedDB chunks' test in tests/store.test.ts).
   */
  async opfsRules(): Promise<Record<string, unknown>> {
    const db = await store();
    const files = (await opfsChunks())!;
    const seen: Record<string, unknown> = { opfs: !!files };
    const t = (n: number, v: number) => Float32Array.from({ length: n }, (_, i) => v + i);
    // a tensor of 5 MiB + 4 bytes spans two chunks
    const long = (16 * 2 ** 20) / 4 + 1;
    await writeCheckpoint(db, 'rules', {
      step: 1,
      state: { k: 1 },
      tensors: [
        ['a', t(3, 1)],
        ['b', t(long, 7)],
      ],
      bytes: 12 + 4 * long,
    });
    const one = await readCheckpointAll<{ k: number }>(db, 'rules');
    seen.first = {
      step: one?.step,
      state: one?.state,
      a: [...one!.tensors.get('a')!],
      b: one!.tensors.get('b')!.length === long && one!.tensors.get('b')![long - 1] === 7 + long - 1,
      where: (await checkpointManifest(db, 'rules'))?.where,
      files: await files.count(),
      idb: await db.count('chunks'),
    };
    // a write that fails midway: the previous checkpoint is the checkpoint, its files alone remain
    async function* failing(): AsyncGenerator<[string, Float32Array]> {
      yield ['a', t(4, 9)];
      throw new Error('the GPU was lost');
    }
    seen.failed = await writeCheckpoint(db, 'rules', { step: 2, state: {}, tensors: failing(), bytes: 16 }).then(
      () => 'written',
      (e: Error) => e.message,
    );
    seen.afterFailed = { step: (await readCheckpointAll(db, 'rules'))?.step, files: await files.count() };
    // the next write switches, and the old generation's files go
    await writeCheckpoint(db, 'rules', { step: 3, state: { k: 3 }, tensors: [['a', t(2, 5)]], bytes: 8 });
    seen.switched = {
      step: (await readCheckpointAll(db, 'rules'))?.step,
      a: [...(await readCheckpointAll(db, 'rules'))!.tensors.get('a')!],
      files: await files.count(),
    };
    // what a crash between the files and the switch leaves, and files of a run that is gone: cleaned
    await files.put('rules', 'cut-short', 0, new Uint8Array(8));
    await files.put('gone', 'x', 0, new Uint8Array(8));
    seen.cleaned = { removed: await cleanOrphanChunks(db), files: await files.count(), a: [...(await readCheckpointAll(db, 'rules'))!.tensors.get('a')!] };
    // a checkpoint whose file went missing is refused, not read short
    await writeCheckpoint(db, 'hole', {
      step: 1,
      state: {},
      tensors: [
        ['a', t(2, 0)],
        ['b', t(2, 0)],
      ],
      bytes: 16,
    });
    const m = (await checkpointManifest(db, 'hole'))!;
    const dir = await (
      await (await (await navigator.storage.getDirectory()).getDirectoryHandle('checkpoints')).getDirectoryHandle('r-hole')
    ).getDirectoryHandle(m.gen!);
    await dir.removeEntry('1');
    seen.hole = await readCheckpointAll(db, 'hole').then(
      () => 'read',
      (e: Error) => e.message,
    );
    // deleting a run deletes its files
    for (const id of ['rules', 'hole']) {
      await deleteRun(db, id);
      await deleteCheckpointFiles(id);
    }
    seen.deleted = { files: await files.count(), manifest: (await checkpointManifest(db, 'rules')) ?? null };
    return seen;
  },
};

Object.assign(globalThis, { storeTest: api });
document.body.dataset.ready = '1';
