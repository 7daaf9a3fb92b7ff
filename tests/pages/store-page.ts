// The store in a real browser, for tests/store-crash-browser.test.ts: the test calls these through
// page.evaluate, kills the browser while they run, starts it again on the same profile and checks what is
// on disk. Tensor data follows a pattern from (seed, tensor, index), so a read can be checked without a copy.
import { listRankings, openStore, saveRanking, type Store } from '../../src/store/db.ts';
import { cleanOrphanChunks, readCheckpoint, writeCheckpoint } from '../../src/store/checkpoints.ts';

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
  async verify(runId: string): Promise<{ step: number; state: unknown; tensors: number; intact: boolean } | undefined> {
    const ck = await readCheckpoint<{ seed: number; n: number }>(await store(), runId);
    if (!ck) return undefined;
    let intact = true, count = 0;
    for await (const [name, data] of ck.tensors()) {
      const t = Number(name.slice(1));
      if (data.length !== FLOATS) intact = false;
      for (let i = 0; i < data.length && intact; i++) if (data[i] !== value(ck.state.seed, t, i)) intact = false;
      count++;
    }
    return { step: ck.step, state: ck.state, tensors: count, intact: intact && count === ck.state.n };
  },
  clean: async () => cleanOrphanChunks(await store()),
  rankingIds: async () => (await listRankings(await store())).map((r) => r.id!),
  chunkCount: async () => (await store()).count('chunks'),
};

Object.assign(globalThis, { storeTest: api });
document.body.dataset.ready = '1';
