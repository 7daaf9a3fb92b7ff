// The user's data in IndexedDB (through `idb`): prompts, rankings, datasets, training runs,
// their metrics, PPO rollouts and their latest checkpoint. No GPU here; the worker and the UI both open it.
//
// Rules:
//  1. Every write resolves only after its transaction has completed (`tx.done`): what the UI shows as
//     saved survives a reload, a crash or a closed tab. A failed transaction rejects.
//  2. The schema is versioned: MIGRATIONS[v] takes a database at version v to v + 1, inside the upgrade
//     transaction, and keeps the data. Add a version by appending a function; never edit an old one.
//  3. Records are checked by the one rule set of src/io/datasets.ts when they are saved and when they are
//     read back: a dataset's records (checkRecord), a ranking (checkRankingLabels), a prompt (a prompt
//     record's rule). Bad data is refused with the record named, never stored, and never handed on.
//  4. A run's checkpoint is written as chunks of a new generation, then one small manifest record (the
//     pointer) switches to it in one transaction that also drops the old generation's chunks: a crash
//     mid-write leaves the previous checkpoint whole, and its half-written chunks are cleaned on start
//     (src/store/checkpoints.ts).
import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from 'idb';
import { checkRankingLabels, checkRecord, checkRecords, isQualityScore, naming, type RankingLabels, type Record as DataRecord } from '../io/datasets.ts';
import type { GenerationConfig } from '../io/generation-config.ts';
import { upgradeConfig } from '../shared/config.ts';
import type { CompletionRow } from '../shared/types.ts';

export const DEFAULT_STORE_NAME = 'rlhf-playground';

export interface PromptRecord {
  id?: number;
  text: string;
  source?: string;
  createdAt: number;
}

/**
 * InstructGPT's labeling: a K-way ranking plus, per completion, an optional 1-7 score and flags, and a
 * pairwise verdict with its sides (the fields and their rules: RankingLabels in src/io/datasets.ts).
 */
export interface RankingRecord extends RankingLabels {
  id?: number;
  generation_config?: GenerationConfig;
  createdAt: number;
  /** when it was last edited on the Data tab */
  editedAt?: number;
}

/**
 * A list of records of src/io/datasets.ts (Record: {kind, ...the line's fields}): the user's own (USER_DATASET),
 * or the records a run trains on, snapshotted when it starts (`run:<id>`, the run's datasetId) so that a
 * resumed run trains on exactly them whatever the user changed meanwhile.
 */
export interface DatasetRecord {
  id: string;
  name: string;
  records: DataRecord[];
  createdAt: number;
}

/** The id of the user's own dataset (demonstrations and imported records) in `datasets`. */
export const USER_DATASET = 'user';

export type RunStatus = 'running' | 'paused' | 'cancelled' | 'done' | 'failed';

export interface RunRecord {
  id: string;
  stage: string; // 'sft' | 'rm' | 'dpo' | 'ppo'
  config: Record<string, unknown>; // the resolved config, saved with the run
  status: RunStatus;
  createdAt: number;
  updatedAt: number;
  step?: number; // optimizer steps done
  checkpointStep?: number; // the step of the run's saved checkpoint, when it has one
  totalSteps?: number;
  datasetId?: string;
  model?: Record<string, unknown>; // which model it trains (source, fingerprint, ...)
  error?: string; // why it failed
  result?: Record<string, unknown>; // e.g. held-out accuracy, reward bias
}

/** One optimizer step of one run; metric names as TRL's. */
export interface MetricRecord {
  runId: string;
  step: number;
  time: number;
  values: Record<string, number>;
}

/**
 * A run's checkpoint. Since v5 a manifest: the run's state (JSON) and each tensor's length and chunks, under
 * a generation whose chunks are in `chunks`. Before v5 the whole checkpoint was one safetensors file in
 * `bytes` (still read).
 */
export interface CheckpointRecord {
  runId: string;
  step: number;
  savedAt: number;
  gen?: string;
  /** 'opfs': the generation's chunks are files in the Origin Private File System (src/store/chunk-files.ts); else in `chunks` */
  where?: 'opfs';
  state?: string;
  tensors?: { name: string; length: number; first: number; chunks: number }[];
  bytes?: Uint8Array;
}
/** One piece of a checkpoint generation's tensor data (at most CHUNK_BYTES). */
export interface ChunkRecord {
  runId: string;
  gen: string;
  index: number;
  data: Uint8Array;
}

/** One blind A/B vote of the Compare view: which of two answers to a prompt the user preferred. */
export interface VoteRecord {
  id?: number;
  prompt: string;
  tuned: string; // what the tuned model answered
  reference: string; // what the reference (SFT or base) model answered
  tunedModel: string; // e.g. 'run:<id>' or an imported adapter's name
  referenceModel: string; // e.g. 'base' or 'run:<id>'
  tunedShownAs: 'A' | 'B'; // the side the tuned answer was shown on
  winner: 'tuned' | 'reference' | 'tie';
  /** the sampling seed both answers were drawn with (a fresh one per blind comparison) */
  seed?: number;
  /** the sampling settings both answers were drawn with (none in votes saved before it was recorded) */
  generation_config?: GenerationConfig;
  createdAt: number;
}

/** The user's own 1-7 score of a PPO rollout shown during training (the spot check). */
export interface SpotCheckRecord {
  id?: number;
  runId: string;
  step: number;
  prompt: string;
  response: string;
  reward: number; // the reward model's score of it
  score: number; // the user's, 1..7
  createdAt: number;
}

/** A PPO rollout as the engine reports it: decoded, with its reward-model score and per-token diagnostics. */
export interface RolloutSample {
  prompt: string;
  response: string;
  score: number;
  tokens?: string[];
  kl?: number[];
  value?: number[];
  advantage?: number[];
}

/** The few rollouts of one online step the Inspect view shows (a handful per step, a few KiB); GRPO and RLOO also keep every completion with each reward (TRL's completions table). */
export interface RolloutRecord {
  runId: string;
  step: number;
  samples: RolloutSample[];
  completions?: CompletionRow[];
}

export interface Schema extends DBSchema {
  prompts: { key: number; value: PromptRecord };
  rankings: { key: number; value: RankingRecord; indexes: { createdAt: number } };
  datasets: { key: string; value: DatasetRecord };
  runs: { key: string; value: RunRecord; indexes: { updatedAt: number } };
  metrics: { key: [string, number]; value: MetricRecord; indexes: { runId: string } };
  checkpoints: { key: string; value: CheckpointRecord };
  chunks: { key: [string, string, number]; value: ChunkRecord };
  votes: { key: number; value: VoteRecord; indexes: { createdAt: number } };
  spotchecks: { key: number; value: SpotCheckRecord; indexes: { runId: string } };
  rollouts: { key: [string, number]; value: RolloutRecord };
}

export type Store = IDBPDatabase<Schema>;

/** Stores that an old version created and a later migration deleted: only the migrations name them. */
interface RetiredStores extends DBSchema {
  /** v1 to v5: sampled completions per prompt; nothing ever wrote to it, v6 deletes it. */
  generations: { key: number; value: unknown; indexes: { promptId: number } };
}
type UpgradeDb = IDBPDatabase<Schema & RetiredStores>;
type UpgradeTx = IDBPTransaction<Schema, StoreNames<Schema>[], 'versionchange'>;
export type Migration = (db: UpgradeDb, tx: UpgradeTx) => Promise<void>;

/** MIGRATIONS[v]: version v -> v + 1. */
export const MIGRATIONS: Migration[] = [
  // v1: the data a person makes while labeling.
  async (db) => {
    db.createObjectStore('prompts', { keyPath: 'id', autoIncrement: true });
    db.createObjectStore('generations', { keyPath: 'id', autoIncrement: true }).createIndex('promptId', 'promptId');
    db.createObjectStore('rankings', { keyPath: 'id', autoIncrement: true });
    db.createObjectStore('datasets', { keyPath: 'id' });
  },
  // v2: training runs, their metrics and checkpoints; rankings get explicit ranks (v1 kept completions
  // best first, no ties) and an index by time.
  async (db, tx) => {
    db.createObjectStore('runs', { keyPath: 'id' }).createIndex('updatedAt', 'updatedAt');
    db.createObjectStore('metrics', { keyPath: ['runId', 'step'] }).createIndex('runId', 'runId');
    db.createObjectStore('checkpoints', { keyPath: 'runId' });
    const rankings = tx.objectStore('rankings');
    rankings.createIndex('createdAt', 'createdAt');
    for (let c = await rankings.openCursor(); c; c = await c.continue()) {
      const r = c.value as Partial<RankingRecord> & Pick<RankingRecord, 'completions'>;
      if (!r.ranks || r.createdAt === undefined) {
        await c.update({ ...r, ranks: r.ranks ?? r.completions.map((_, i) => i), createdAt: r.createdAt ?? 0 } as RankingRecord);
      }
    }
  },
  // v3: the Compare view's blind votes and the Inspect view's spot checks.
  async (db) => {
    db.createObjectStore('votes', { keyPath: 'id', autoIncrement: true }).createIndex('createdAt', 'createdAt');
    db.createObjectStore('spotchecks', { keyPath: 'id', autoIncrement: true }).createIndex('runId', 'runId');
  },
  // v4: PPO's rollouts per step, so a run can be inspected after a reload (they lived in the page only).
  async (db) => {
    db.createObjectStore('rollouts', { keyPath: ['runId', 'step'] });
  },
  // v5: checkpoints in chunks under a manifest (one record could not hold a GPT-2 full fine-tune's 2 GB).
  async (db) => {
    db.createObjectStore('chunks', { keyPath: ['runId', 'gen', 'index'] });
  },
  // v6: the unused `generations` store goes (no version of the app wrote to it); every other store stays as it is.
  async (db) => {
    db.deleteObjectStore('generations');
  },
  // v7: a prompt is a prompt record. The data a PPO, GRPO or RLOO run snapshotted held the store's prompts
  // as demonstrations with an empty completion ({"kind": "completion", "completion": ""}); they become
  // {"kind": "prompt"} records in place. The stages read the same prompts in the same order from either
  // (a demonstration with no completion never trained PPO-ptx), so a resumed run goes on as it would have.
  async (_db, tx) => {
    const datasets = tx.objectStore('datasets');
    for (const run of await tx.objectStore('runs').getAll()) {
      if (!['ppo', 'grpo', 'rloo'].includes(run.stage) || !run.datasetId) continue;
      const d = await datasets.get(run.datasetId);
      const old = d?.records as unknown[] | undefined;
      if (!d || !Array.isArray(old)) continue;
      const prompt = (r: unknown) => {
        const x = r as { kind?: unknown; prompt?: unknown; completion?: unknown };
        return x?.kind === 'completion' && x.completion === '' && typeof x.prompt === 'string' && x.prompt.trim() !== '' ? x.prompt : undefined;
      };
      if (!old.some((r) => prompt(r) !== undefined)) continue;
      await datasets.put({
        ...d,
        records: old.map((r) => {
          const p = prompt(r);
          return (p === undefined ? r : { kind: 'prompt', prompt: p }) as DataRecord;
        }),
      });
    }
  },
  // v8: a run's saved config has every key in camelCase: the 18 snake_case keys it held before (kl_coef,
  // reward_funcs, ..., RENAMED_KEYS) are renamed in place, with their values; a run resumes with the
  // same settings, and every reader of a run's config reads one spelling.
  async (_db, tx) => {
    const runs = tx.objectStore('runs');
    for (let c = await runs.openCursor(); c; c = await c.continue()) {
      const old: unknown = c.value.config;
      if (typeof old !== 'object' || old === null) continue; // nothing to rename; a failed upgrade would lock the whole store
      const config = upgradeConfig(old as Record<string, unknown>);
      if (config !== old) await c.update({ ...c.value, config });
    }
  },
];
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Opens (creating or migrating) the store. `version` below SCHEMA_VERSION is for tests of migrations. */
export function openStore(name = DEFAULT_STORE_NAME, version = SCHEMA_VERSION): Promise<Store> {
  return openDB<Schema>(name, version, {
    async upgrade(db, oldVersion, newVersion, tx) {
      for (let v = oldVersion; v < (newVersion ?? version); v++) await MIGRATIONS[v]!(db as unknown as UpgradeDb, tx);
    },
    // another tab opens a newer schema: give way (this connection closes)
    blocking(_current, _blocked, event) {
      (event.target as IDBDatabase).close();
    },
  });
}

/**
 * What the user made by hand (hours of their work): written with durability 'strict', so that "saved"
 * means on disk, not in the browser's write cache (Chromium's default is 'relaxed').
 */
const USER_MADE = new Set<string>(['prompts', 'rankings', 'datasets', 'votes', 'spotchecks']);

/** put/add in one readwrite transaction; resolves with the key once the transaction has completed. */
async function write<N extends StoreNames<Schema>>(db: Store, store: N, value: Schema[N]['value'], mode: 'put' | 'add' = 'put'): Promise<Schema[N]['key']> {
  const tx = db.transaction(store, 'readwrite', USER_MADE.has(store) ? { durability: 'strict' } : {});
  const [key] = await Promise.all([tx.store[mode]!(value), tx.done]);
  return key;
}

// ---- prompts, rankings, datasets ----

/** A prompt's text, checked as a prompt record's (non-empty): a RecordError naming it otherwise. */
function checkPromptText(text: string): void {
  naming(`prompt ${JSON.stringify(text.slice(0, 60))}`, () => checkRecord({ kind: 'prompt', prompt: text }));
}

/** A ranking by the one rule set, or a RecordError naming it (`ranking 12: ...`). */
function checkRanking(r: Omit<RankingRecord, 'createdAt'>, what = r.id === undefined ? 'a new ranking' : `ranking ${r.id}`): void {
  naming(what, () => checkRankingLabels(r));
}

/**
 * Adds the prompts whose text is not stored yet (nor earlier in `texts`), in one transaction: the one rule
 * for every place that adds prompts (the Data tab and its import, the Rank tab, the example prompts).
 * The texts added, in order, and how many were there already.
 */
export async function addPrompts(
  db: Store,
  texts: readonly string[],
  source?: string,
  createdAt = Date.now(),
): Promise<{ added: string[]; duplicates: number }> {
  texts.forEach(checkPromptText);
  const tx = db.transaction('prompts', 'readwrite', { durability: 'strict' });
  const have = new Set((await tx.store.getAll()).map((p) => p.text));
  const added = texts.filter((t) => !have.has(t) && !!have.add(t));
  await Promise.all([...added.map((text) => tx.store.add({ text, ...(source === undefined ? {} : { source }), createdAt })), tx.done]);
  return { added, duplicates: texts.length - added.length };
}
/** One prompt, by the same rule: its id, or undefined when a prompt with this text is stored already. */
export async function addPrompt(db: Store, p: Omit<PromptRecord, 'createdAt' | 'id'> & { createdAt?: number }): Promise<number | undefined> {
  checkPromptText(p.text);
  const tx = db.transaction('prompts', 'readwrite', { durability: 'strict' });
  if ((await tx.store.getAll()).some((x) => x.text === p.text)) {
    await tx.done;
    return undefined;
  }
  const [id] = await Promise.all([tx.store.add({ ...p, createdAt: p.createdAt ?? Date.now() }), tx.done]);
  return id;
}
export const listPrompts = (db: Store) => db.getAll('prompts');
/** Replaces a prompt's text (its id stays). */
export const putPrompt = async (db: Store, p: PromptRecord) => (checkPromptText(p.text), write(db, 'prompts', p) as Promise<number>);
export const deletePrompt = async (db: Store, id: number) => {
  const tx = db.transaction('prompts', 'readwrite', { durability: 'strict' });
  await Promise.all([tx.store.delete(id), tx.done]);
};

/** Saves a ranking; resolves with its id once it is on disk. */
export function saveRanking(db: Store, r: Omit<RankingRecord, 'createdAt'> & { createdAt?: number }): Promise<number> {
  checkRanking(r);
  return write(db, 'rankings', { ...r, createdAt: r.createdAt ?? Date.now() }, r.id === undefined ? 'add' : 'put') as Promise<number>;
}
/** Oldest first; each checked by the one rule set (a bad one is a RecordError naming its id). */
export const listRankings = async (db: Store): Promise<RankingRecord[]> => {
  const all = await db.getAllFromIndex('rankings', 'createdAt');
  for (const r of all) checkRanking(r);
  return all;
};

export const deleteRanking = async (db: Store, id: number) => {
  const tx = db.transaction('rankings', 'readwrite', { durability: 'strict' });
  await Promise.all([tx.store.delete(id), tx.done]);
};

/** The dataset with its records checked by the one rule set (plain copies, keys in order), or a RecordError naming the record. */
const checkedDataset = (d: DatasetRecord): DatasetRecord => ({ ...d, records: checkRecords(d.records, `dataset ${JSON.stringify(d.id)}`) });

/** Saves a dataset; a record that breaks the rules refuses the whole save (`dataset "user", record 3 of 9: ...`). */
export const saveDataset = async (db: Store, d: DatasetRecord) => write(db, 'datasets', checkedDataset(d));
/** A dataset, its records checked as they are read. */
export const getDataset = async (db: Store, id: string): Promise<DatasetRecord | undefined> => {
  const d = await db.get('datasets', id);
  return d && checkedDataset(d);
};

/** What the user made, read in one transaction (one consistent state): the prompts' texts, the rankings (oldest first) and their own records. */
export async function userData(db: Store): Promise<{ prompts: string[]; rankings: RankingRecord[]; records: DataRecord[] }> {
  const tx = db.transaction(['prompts', 'rankings', 'datasets']);
  const [prompts, rankings, own] = await Promise.all([
    tx.objectStore('prompts').getAll(),
    tx.objectStore('rankings').index('createdAt').getAll(),
    tx.objectStore('datasets').get(USER_DATASET),
    tx.done,
  ]);
  for (const r of rankings) checkRanking(r);
  return { prompts: prompts.map((p) => p.text), rankings, records: own ? checkedDataset(own).records : [] };
}

// ---- runs, metrics, checkpoints ----

export const putRun = (db: Store, run: RunRecord) => write(db, 'runs', run);
export const getRun = (db: Store, id: string) => db.get('runs', id);
/** Most recently updated first. */
export const listRuns = async (db: Store) => (await db.getAllFromIndex('runs', 'updatedAt')).reverse();

/** Changes some fields of a run (and updatedAt) in one transaction. */
export async function updateRun(db: Store, id: string, patch: Partial<Omit<RunRecord, 'id'>>): Promise<RunRecord> {
  const tx = db.transaction('runs', 'readwrite');
  const run = await tx.store.get(id);
  if (!run) throw new Error(`no run ${id}`);
  const next = { ...run, ...patch, updatedAt: Date.now() };
  await Promise.all([tx.store.put(next), tx.done]);
  return next;
}

/** Writes metric rows; a step written again (a resumed run redoing it) replaces the old row. */
export async function appendMetrics(db: Store, rows: MetricRecord[]): Promise<void> {
  const tx = db.transaction('metrics', 'readwrite');
  await Promise.all([...rows.map((r) => tx.store.put(r)), tx.done]);
}

/** A run's metrics in step order. */
export const getMetrics = (db: Store, runId: string) => db.getAllFromIndex('metrics', 'runId', runId);

/** Saves a PPO step's rollouts; a step written again (a resumed run redoing it) replaces them. */
export const saveRollouts = (db: Store, r: RolloutRecord) => write(db, 'rollouts', r);
/** A run's rollouts in step order. */
export const listRollouts = (db: Store, runId: string) => db.getAll('rollouts', IDBKeyRange.bound([runId, -Infinity], [runId, Infinity]));

/** A run's checkpoint manifest (no tensor data): its step, or undefined when it has none. Written and read by src/store/checkpoints.ts. */
export const checkpointManifest = (db: Store, runId: string) => db.get('checkpoints', runId);

/** Every chunk of a run, of any generation (an array sorts above every string, so [id, []] bounds them). */
export const runChunks = (runId: string) => IDBKeyRange.bound([runId], [runId, []]);

/** Removes a run with its metrics, checkpoint and data, in one transaction. */
export async function deleteRun(db: Store, id: string): Promise<void> {
  const tx = db.transaction(['runs', 'metrics', 'checkpoints', 'chunks', 'datasets', 'spotchecks', 'rollouts'], 'readwrite');
  const run = await tx.objectStore('runs').get(id);
  await Promise.all([
    tx.objectStore('runs').delete(id),
    tx.objectStore('metrics').delete(IDBKeyRange.bound([id, -Infinity], [id, Infinity])),
    tx.objectStore('rollouts').delete(IDBKeyRange.bound([id, -Infinity], [id, Infinity])),
    tx.objectStore('checkpoints').delete(id),
    tx.objectStore('chunks').delete(runChunks(id)),
    ...(run?.datasetId ? [tx.objectStore('datasets').delete(run.datasetId)] : []),
    (async () => {
      for (let c = await tx.objectStore('spotchecks').index('runId').openCursor(id); c; c = await c.continue()) await c.delete();
    })(),
    tx.done,
  ]);
}

// ---- votes and spot checks ----

export const addVote = (db: Store, v: Omit<VoteRecord, 'createdAt'> & { createdAt?: number }) =>
  write(db, 'votes', { ...v, createdAt: v.createdAt ?? Date.now() }, 'add') as Promise<number>;
/** Oldest first. */
export const listVotes = (db: Store) => db.getAllFromIndex('votes', 'createdAt');

/** The tuned model's win rate over decided votes, ties counting half (as Chatbot-Arena-style tallies do). */
export function winRate(votes: Pick<VoteRecord, 'winner'>[]): { wins: number; losses: number; ties: number; rate: number | null } {
  const wins = votes.filter((v) => v.winner === 'tuned').length,
    losses = votes.filter((v) => v.winner === 'reference').length;
  const ties = votes.length - wins - losses;
  return { wins, losses, ties, rate: votes.length ? (wins + ties / 2) / votes.length : null };
}

export function addSpotCheck(db: Store, s: Omit<SpotCheckRecord, 'createdAt'> & { createdAt?: number }): Promise<number> {
  if (!isQualityScore(s.score)) throw new Error(`a spot-check score is 1 to 7, got ${s.score}`);
  return write(db, 'spotchecks', { ...s, createdAt: s.createdAt ?? Date.now() }, 'add') as Promise<number>;
}
export const listSpotChecks = (db: Store, runId: string) => db.getAllFromIndex('spotchecks', 'runId', runId);
/** Every run's spot checks, oldest first. */
export const listAllSpotChecks = (db: Store) => db.getAll('spotchecks');

// ---- the browser's storage quota ----

/** Bytes used and available to this origin, where the browser tells. */
export async function storageEstimate(): Promise<{ usage: number; quota: number } | undefined> {
  const s = globalThis.navigator?.storage;
  if (!s?.estimate) return undefined;
  const e = await s.estimate();
  return { usage: e.usage ?? 0, quota: e.quota ?? 0 };
}

/** Asks the browser not to evict this origin's data under storage pressure (a page, not a worker, can ask). */
export async function requestPersistence(): Promise<boolean> {
  const s = globalThis.navigator?.storage as (StorageManager & { persist?: () => Promise<boolean> }) | undefined;
  if (!s?.persist) return false;
  if (await s.persisted?.()) return true;
  return s.persist();
}
