// The IndexedDB store (fake-indexeddb in Node): the schema, a migration that keeps the data, writes that
// resolve only once their transaction is on disk, the metrics history and checkpoint replacement.
import 'fake-indexeddb/auto';
import { CHUNK_BYTES, cleanOrphanChunks, readCheckpoint, readCheckpointAll, StorageFullError, writeCheckpoint } from '../src/store/checkpoints.ts';
import { checkpointBytes } from '../src/train/checkpoint.ts';
import type { IDBPDatabase } from 'idb';
import { describe, expect, it } from 'vitest';
import {
  checkpointManifest,
  addPrompt,
  addPrompts,
  addSpotCheck,
  addVote,
  appendMetrics,
  deletePrompt,
  deleteRun,
  listRollouts,
  listSpotChecks,
  saveRollouts,
  listVotes,
  putPrompt,
  winRate,
  getMetrics,
  getRun,
  listPrompts,
  listRankings,
  listRuns,
  openStore,
  putRun,
  getDataset,
  saveDataset,
  saveRanking,
  SCHEMA_VERSION,
  storageEstimate,
  updateRun,
  userData,
  USER_DATASET,
  type RunRecord,
  type Store,
} from '../src/store/db.ts';
import { RecordError, toPrompts, type Record as DataRecord } from '../src/io/datasets.ts';

let n = 0;
const fresh = () => `store-test-${n++}`;
const run = (id: string, t = 1): RunRecord => ({ id, stage: 'sft', config: { lr: 1e-4 }, status: 'running', createdAt: t, updatedAt: t });
/** Every store of the latest schema. */
const STORES = ['checkpoints', 'chunks', 'datasets', 'metrics', 'prompts', 'rankings', 'rollouts', 'runs', 'spotchecks', 'votes'] as const;
/** Each store's key path, indexes and records. */
const contents = async (db: Store) =>
  Object.fromEntries(
    await Promise.all(
      STORES.map(async (name) => {
        const store = db.transaction(name).store;
        return [name, { keyPath: store.keyPath, indexes: [...store.indexNames], records: await db.getAll(name) }] as const;
      }),
    ),
  );

describe('store', () => {
  it('creates every store and index of the latest schema', async () => {
    const db = await openStore(fresh());
    expect(db.version).toBe(SCHEMA_VERSION);
    expect([...db.objectStoreNames].sort()).toEqual([...STORES]);
    const tx = db.transaction(['metrics', 'rankings', 'runs']);
    expect(tx.objectStore('metrics').keyPath).toEqual(['runId', 'step']);
    expect([...tx.objectStore('metrics').indexNames]).toEqual(['runId']);
    expect([...tx.objectStore('rankings').indexNames]).toEqual(['createdAt']);
    expect([...tx.objectStore('runs').indexNames]).toEqual(['updatedAt']);
    db.close();
  });

  it('edits and deletes prompts; keeps votes with a win rate and spot checks by run (deleted with the run)', async () => {
    const db = await openStore(fresh());
    const id = (await addPrompt(db, { text: 'first' }))!;
    await addPrompt(db, { text: 'second' });
    // one rule wherever prompts are added: a text that is stored is not stored again
    expect(await addPrompt(db, { text: 'second', source: 'typed in the rank view' })).toBeUndefined();
    expect(await addPrompts(db, ['third', 'first', 'third', 'fourth'], 'file.jsonl')).toEqual({ added: ['third', 'fourth'], duplicates: 2 });
    expect((await listPrompts(db)).map((p) => p.text)).toEqual(['first', 'second', 'third', 'fourth']);
    await deletePrompt(db, id + 2);
    await deletePrompt(db, id + 3);
    await putPrompt(db, { id, text: 'first, edited', createdAt: 1 });
    await deletePrompt(db, id + 1);
    expect((await listPrompts(db)).map((p) => p.text)).toEqual(['first, edited']);
    const vote = { prompt: 'p', tuned: 't', reference: 'r', tunedModel: 'run:a', referenceModel: 'base', tunedShownAs: 'A' as const };
    for (const winner of ['tuned', 'tuned', 'reference', 'tie'] as const) await addVote(db, { ...vote, winner });
    expect(winRate(await listVotes(db))).toEqual({ wins: 2, losses: 1, ties: 1, rate: 2.5 / 4 });
    expect(winRate([]).rate).toBeNull();
    await putRun(db, run('r1'));
    await addSpotCheck(db, { runId: 'r1', step: 1, prompt: 'p', response: 'x', reward: 0.5, score: 6 });
    await addSpotCheck(db, { runId: 'r2', step: 1, prompt: 'p', response: 'y', reward: 0.1, score: 2 });
    expect(() => addSpotCheck(db, { runId: 'r1', step: 1, prompt: 'p', response: 'x', reward: 0, score: 8 })).toThrow(/1 to 7/);
    expect((await listSpotChecks(db, 'r1')).map((s) => s.score)).toEqual([6]);
    // rollouts: one record per step in step order, a step written again replaced, by run
    const sample = (response: string) => ({ prompt: 'p', response, score: 0.5, tokens: [response], kl: [0.1], value: [0.2], advantage: [-0.3] });
    await saveRollouts(db, { runId: 'r1', step: 10, samples: [sample('ten')] });
    await saveRollouts(db, { runId: 'r1', step: 2, samples: [sample('two'), sample('two b')] });
    await saveRollouts(db, { runId: 'r1', step: 2, samples: [sample('two again')] });
    await saveRollouts(db, { runId: 'r2', step: 1, samples: [sample('other run')] });
    expect((await listRollouts(db, 'r1')).map((r) => [r.step, r.samples.map((x) => x.response)])).toEqual([
      [2, ['two again']],
      [10, ['ten']],
    ]);
    await deleteRun(db, 'r1');
    expect(await listSpotChecks(db, 'r1')).toEqual([]);
    expect(await listRollouts(db, 'r1')).toEqual([]);
    expect((await listSpotChecks(db, 'r2')).length).toBe(1);
    expect((await listRollouts(db, 'r2')).length).toBe(1);
    db.close();
  });

  it('migrates a version-1 database and keeps its data', async () => {
    const name = fresh();
    const v1 = await openStore(name, 1);
    expect([...v1.objectStoreNames].sort()).toEqual(['datasets', 'generations', 'prompts', 'rankings']);
    await addPrompt(v1, { text: 'Say hi.' });
    // a v1 ranking: completions best first, no ranks, no time
    const tx = v1.transaction('rankings', 'readwrite');
    await Promise.all([tx.store.add({ prompt: 'p', completions: ['best', 'mid', 'worst'] } as never), tx.done]);
    v1.close();

    const db = await openStore(name);
    expect(db.version).toBe(SCHEMA_VERSION);
    expect((await listPrompts(db)).map((p) => p.text)).toEqual(['Say hi.']);
    const [r] = await listRankings(db);
    expect(r).toMatchObject({ prompt: 'p', completions: ['best', 'mid', 'worst'], ranks: [0, 1, 2], createdAt: 0 });
    await putRun(db, run('a'));
    expect(await getRun(db, 'a')).toMatchObject({ stage: 'sft' });
    db.close();
  });

  it('migrates a version-5 database: the unused generations store goes, rankings and every other store keep their data', async () => {
    const name = fresh();
    const v5 = await openStore(name, 5);
    expect([...v5.objectStoreNames]).toContain('generations');
    // a record in every store, rankings of each kind among them
    await addPrompts(v5, ['Say hi.', 'Name a colour.'], 'file.jsonl', 1);
    await saveRanking(v5, {
      prompt: 'Say hi.',
      completions: ['hi', 'hello', 'hey'],
      ranks: [1, 0, 1],
      scores: [3, 6, null],
      flags: [['hallucination'], [], []],
      rationale: 'warmer',
      createdAt: 2,
    });
    await saveRanking(v5, { prompt: 'Name a colour.', completions: ['red', 'car'], ranks: [0, 1], verdict: 'b', shown: [1, 0], createdAt: 3 });
    await saveRanking(v5, {
      prompt: 'Name a colour.',
      completions: ['blue', 'dog'],
      ranks: [0, 1],
      verdict: 'a',
      shown: [0, 1],
      recheck: { ranks: [0, 1], verdict: 'b', shown: [1, 0], createdAt: 5 },
      createdAt: 4,
    });
    await saveDataset(v5, { id: 'd1', name: 'prefs.jsonl', records: [{ kind: 'preference', prompt: 'p', chosen: 'a', rejected: 'b' }], createdAt: 6 });
    await putRun(v5, { ...run('r1', 7), datasetId: 'd1' });
    await appendMetrics(v5, [{ runId: 'r1', step: 1, time: 8, values: { loss: 0.5 } }]);
    await writeCheckpoint(v5, 'r1', { step: 1, state: { cursor: 3 }, tensors: [['w', new Float32Array([1, 2, 3])]], bytes: 12 });
    await saveRollouts(v5, { runId: 'r1', step: 1, samples: [{ prompt: 'p', response: 'r', score: 0.25 }] });
    await addVote(v5, {
      prompt: 'p',
      tuned: 't',
      reference: 'r',
      tunedModel: 'run:r1',
      referenceModel: 'base',
      tunedShownAs: 'B',
      winner: 'tuned',
      createdAt: 9,
    });
    await addSpotCheck(v5, { runId: 'r1', step: 1, prompt: 'p', response: 'r', reward: 0.25, score: 5, createdAt: 10 });
    const old = v5 as unknown as IDBPDatabase; // the v5 schema's generations store is not in today's types
    await old.add('generations', { prompt: 'p', texts: ['a', 'b'], config: {}, model: 'base', createdAt: 11 });
    const before = await contents(v5);
    expect(Object.values(before).every((s) => s.records.length > 0)).toBe(true);
    v5.close();

    const db = await openStore(name);
    expect(db.version).toBe(SCHEMA_VERSION);
    expect([...db.objectStoreNames].sort()).toEqual([...STORES]);
    expect(await contents(db)).toEqual(before);
    expect((await listRankings(db)).map((r) => r.createdAt)).toEqual([2, 3, 4]);
    expect((await readCheckpointAll(db, 'r1'))!.tensors.get('w')).toEqual(new Float32Array([1, 2, 3]));
    db.close();
  });

  it('migrates a version-6 database: the prompts a PPO, GRPO or RLOO run snapshotted as empty demonstrations become prompt records; nothing else changes', async () => {
    const name = fresh();
    const v6 = await openStore(name, 6);
    const old = [
      { kind: 'completion', prompt: 'Tell a joke.', completion: '' }, // a stored prompt, as the page wrote it before v7
      { kind: 'completion', prompt: 'Greet Ana.', completion: 'Hello, Ana!' }, // a demonstration (PPO-ptx)
      { kind: 'completion', prompt: 'Name a fruit.', completion: '' },
    ];
    for (const [id, stage] of [
      ['p1', 'ppo'],
      ['g1', 'grpo'],
      ['s1', 'sft'],
    ] as const) {
      await putRun(v6, { ...run(id), stage, datasetId: `run:${id}` });
      await v6.put('datasets', { id: `run:${id}`, name: `${stage} data`, records: old as DataRecord[], createdAt: 1 });
    }
    await v6.put('datasets', { id: USER_DATASET, name: 'My data', records: old as DataRecord[], createdAt: 2 });
    v6.close();

    const db = await openStore(name);
    expect(db.version).toBe(SCHEMA_VERSION);
    const prompts = [{ kind: 'prompt', prompt: 'Tell a joke.' }, old[1], { kind: 'prompt', prompt: 'Name a fruit.' }];
    for (const id of ['run:p1', 'run:g1']) expect((await getDataset(db, id))!.records, id).toEqual(prompts);
    // the same prompts in the same order for the stages, the demonstration still PPO-ptx's
    expect(toPrompts((await getDataset(db, 'run:p1'))!.records)).toEqual(toPrompts(old as DataRecord[]));
    // an SFT run trains on what it was given, and the user's own records are theirs: untouched
    expect((await getDataset(db, 'run:s1'))!.records).toEqual(old);
    expect((await getDataset(db, USER_DATASET))!.records).toEqual(old);
    db.close();
  });

  it("migrates a version-7 database: a run's saved config gets today's camelCase keys with the same values; a run without old keys is untouched", async () => {
    const name = fresh();
    const v7 = await openStore(name, 7);
    const saved = { lr: 1e-4, kl_coef: 0.05, ppo_epochs: 4, early_stopping: true, target_kl: 4, rewardRunId: 'rm' };
    await putRun(v7, { ...run('p1'), stage: 'ppo', config: saved });
    await putRun(v7, {
      ...run('g1'),
      stage: 'grpo',
      config: { reward_funcs: ['concise'], reward_module: 'export const concise = () => [];', loss_type: 'dapo', num_iterations: 2 },
    });
    await putRun(v7, run('s1'));
    await putRun(v7, { ...run('x1'), config: null as unknown as Record<string, unknown> }); // no config at all: left as it is, the upgrade goes on
    v7.close();

    const db = await openStore(name);
    expect(db.version).toBe(SCHEMA_VERSION);
    expect((await getRun(db, 'p1'))!.config).toEqual({ lr: 1e-4, klCoef: 0.05, ppoEpochs: 4, earlyStopping: true, targetKl: 4, rewardRunId: 'rm' });
    expect((await getRun(db, 'g1'))!.config).toEqual({
      rewardFuncs: ['concise'],
      rewardModule: 'export const concise = () => [];',
      lossType: 'dapo',
      numIterations: 2,
    });
    expect(await getRun(db, 's1')).toEqual(run('s1'));
    expect((await getRun(db, 'x1'))!.config).toBeNull();
    db.close();
  });

  it('checks records by the one rule set: a bad record is refused when saved and reported when read, naming the dataset, the record and the problem', async () => {
    const db = await openStore(fresh());
    const good: DataRecord[] = [
      { kind: 'completion', prompt: 'a', completion: 'b' },
      { kind: 'prompt', prompt: 'c' },
    ];
    await saveDataset(db, { id: USER_DATASET, name: 'My data', records: good, createdAt: 1 });
    expect((await getDataset(db, USER_DATASET))!.records).toEqual(good);
    // refused on save: nothing written
    const bad = { kind: 'completion', prompt: 'a', completion: 7 } as unknown as DataRecord;
    await expect(saveDataset(db, { id: USER_DATASET, name: 'My data', records: [good[0]!, bad], createdAt: 1 })).rejects.toThrow(
      new RecordError('dataset "user", record 2 of 2: "completion" must be a string, got a number'),
    );
    await expect(
      saveDataset(db, { id: 'd', name: 'x', records: [{ kind: 'demonstration', prompt: 'a' } as unknown as DataRecord], createdAt: 1 }),
    ).rejects.toThrow(/^dataset "d", record 1 of 1: "kind" must be one of "prompt", "completion", "messages", "preference", "ranking", got "demonstration"$/);
    await expect(
      saveDataset(db, { id: 'd', name: 'x', records: [{ kind: 'prompt', prompt: 'a', completion: '' } as unknown as DataRecord], createdAt: 1 }),
    ).rejects.toThrow(/^dataset "d", record 1 of 1: unknown key "completion" in a prompt-only record \(allowed: kind, prompt\)$/);
    await expect(
      saveDataset(db, { id: 'd', name: 'x', records: [{ kind: 'ranking', prompt: 'p', completions: ['x', 'y'], ranks: [1, 0] }], createdAt: 1 }),
    ).rejects.toThrow(/record 1 of 1: ranks\[0\] must be 0 \(completions are listed best first\)/);
    expect((await getDataset(db, USER_DATASET))!.records).toEqual(good);
    expect(await getDataset(db, 'd')).toBeUndefined();
    // a record that got past the rules (an older version, a hand-edited database) is reported when read, not handed on
    await db.put('datasets', { id: USER_DATASET, name: 'My data', records: [...good, bad], createdAt: 1 });
    await expect(getDataset(db, USER_DATASET)).rejects.toThrow('dataset "user", record 3 of 3: "completion" must be a string, got a number');
    await expect(userData(db)).rejects.toThrow(/^dataset "user", record 3 of 3/);
    await db.put('datasets', { id: USER_DATASET, name: 'My data', records: good, createdAt: 1 });
    // rankings and prompts too
    await saveRanking(db, { prompt: 'q', completions: ['x', 'y', 'z'], ranks: [2, 0, 1], createdAt: 5 });
    await addPrompts(db, ['Say hi.']);
    expect(await userData(db)).toEqual({ prompts: ['Say hi.'], rankings: [expect.objectContaining({ prompt: 'q', ranks: [2, 0, 1] })], records: good });
    await expect(addPrompts(db, ['fine', '   '])).rejects.toThrow('prompt "   ": "prompt" is empty');
    const id = await db.add('rankings', { prompt: 'q', completions: ['x', 'y'], ranks: [0, 3], createdAt: 6 });
    await expect(listRankings(db)).rejects.toThrow(`ranking ${id}: ranks must be 2 integers in 0..1`);
    await expect(userData(db)).rejects.toThrow(`ranking ${id}: ranks must be 2 integers in 0..1`);
    db.close();
  });

  it('a write resolves once its transaction completed: another connection sees it at once', async () => {
    const name = fresh();
    const a = await openStore(name),
      b = await openStore(name);
    const id = await saveRanking(a, { prompt: 'q', completions: ['x', 'y', 'z'], ranks: [1, 0, 1], scores: [3, 6, null], flags: [['hallucination'], [], []] });
    const seen = await b.get('rankings', id);
    expect(seen).toMatchObject({ prompt: 'q', ranks: [1, 0, 1], scores: [3, 6, null], flags: [['hallucination'], [], []] });
    expect(typeof seen!.createdAt).toBe('number');
    // the transaction's own completion: saveRanking's promise settles after the 'complete' event
    const order: string[] = [];
    const p = saveRanking(a, { prompt: 'q2', completions: ['x', 'y'], ranks: [0, 1] }).then(() => order.push('resolved'));
    const tx = a.transaction('rankings'); // queued behind the write's transaction
    await tx.store.count().then(() => order.push('later read'));
    await p;
    expect(order).toEqual(['resolved', 'later read']);
    // a write that cannot be stored rejects, and stores nothing
    const before = await a.count('rankings');
    await expect(saveRanking(a, { prompt: 'q', completions: ['x', 'y'], ranks: [0, 1], editedAt: (() => 0) as unknown as number })).rejects.toThrow(); // not cloneable
    expect(await a.count('rankings')).toBe(before);
    // a ranking that breaks the rules (src/io/datasets.ts's, the JSONL line's too) is refused before any write, saying why
    expect(() => saveRanking(a, { prompt: (() => 0) as unknown as string, completions: ['x', 'y'], ranks: [0, 1] })).toThrow(
      'a new ranking: "prompt" must be a string, got a function',
    );
    expect(() => saveRanking(a, { prompt: 'q', completions: ['only'], ranks: [0] })).toThrow(/2 to 9/);
    expect(() => saveRanking(a, { id: 4, prompt: 'q', completions: ['x', 'y'], ranks: [0, 1], scores: [0, 8] })).toThrow(
      'ranking 4: scores[0] must be an integer 1-7 or null, got 0',
    );
    expect(await a.count('rankings')).toBe(before);
    a.close();
    b.close();
  });

  it('keeps one metrics row per step, in step order, per run', async () => {
    const db = await openStore(fresh());
    await putRun(db, run('r1'));
    await putRun(db, run('r2', 2));
    const row = (runId: string, step: number, loss: number) => ({ runId, step, time: step, values: { loss } });
    await appendMetrics(db, [row('r1', 2, 2), row('r1', 1, 1), row('r2', 1, 9)]);
    await appendMetrics(db, [row('r1', 3, 3)]);
    await appendMetrics(db, [row('r1', 3, 3.5)]); // a resumed run redoes step 3: replaced, not duplicated
    expect((await getMetrics(db, 'r1')).map((m) => [m.step, m.values.loss])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3.5],
    ]);
    expect((await getMetrics(db, 'r2')).map((m) => m.step)).toEqual([1]);
    const updated = await updateRun(db, 'r1', { status: 'paused', step: 3 });
    expect(updated.updatedAt).toBeGreaterThan(1);
    expect((await listRuns(db)).map((r) => r.id)).toEqual(['r1', 'r2']); // most recently updated first
    await deleteRun(db, 'r1');
    expect(await getMetrics(db, 'r1')).toEqual([]);
    expect((await getMetrics(db, 'r2')).length).toBe(1);
    db.close();
  });

  it('writes a checkpoint in chunks under a manifest: the old one stays until the switch, and a failed write leaves it whole', async () => {
    const db = await openStore(fresh());
    const tensor = (n: number, seed: number) => {
      const t = new Float32Array(n);
      for (let i = 0; i < n; i++) t[i] = seed + i / 7;
      return t;
    };
    const same = (a: Float32Array | undefined, b: Float32Array) => a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
    const big = new Float32Array(64).map((_, i) => i);
    // a view into a larger buffer: only its own floats are stored; a tensor over CHUNK_BYTES spans chunks
    const long = CHUNK_BYTES / 4 + 3;
    await writeCheckpoint(db, 'r', {
      step: 2,
      state: { cursor: 5 },
      tensors: [
        ['a', big.subarray(8, 16)],
        ['b', tensor(long, 1)],
        ['empty', new Float32Array(0)],
      ],
      bytes: 32 + 4 * long,
    });
    const ck = await readCheckpointAll<{ cursor: number }>(db, 'r');
    expect(ck!.step).toBe(2);
    expect(ck!.state).toEqual({ cursor: 5 });
    expect([...ck!.tensors.get('a')!]).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    expect(same(ck!.tensors.get('b'), tensor(long, 1))).toBe(true);
    expect(ck!.tensors.get('empty')!.length).toBe(0);
    expect(await db.count('chunks')).toBe(1 + 2 + 1);
    const first = (await checkpointManifest(db, 'r'))!.gen;

    // a write that fails midway (the iterator throws after one tensor): the manifest still points at step 2,
    // and the half-written generation's chunks are gone
    async function* failing(): AsyncGenerator<[string, Float32Array]> {
      yield ['a', tensor(8, 9)];
      throw new Error('the GPU was lost');
    }
    await expect(writeCheckpoint(db, 'r', { step: 4, state: {}, tensors: failing(), bytes: 64 })).rejects.toThrow('the GPU was lost');
    expect((await checkpointManifest(db, 'r'))!).toMatchObject({ step: 2, gen: first });
    expect(await db.count('chunks')).toBe(4);

    // a full disk is refused before anything is written, with the numbers, and keeps step 2
    const full = async () => ({ usage: 990 * 2 ** 20, quota: 1000 * 2 ** 20 });
    await expect(writeCheckpoint(db, 'r', { step: 4, state: {}, tensors: [['a', tensor(8, 0)]], bytes: 20 * 2 ** 20 }, { estimate: full })).rejects.toThrow(
      new StorageFullError(
        'not enough storage for the checkpoint of step 4: it needs 22 MiB, 10 MiB is free; the checkpoint of step 2 is kept. Delete old runs on the Train tab (or free disk space) and resume.',
      ),
    );
    // and a quota error from the browser midway the same way
    const quota = async function* (): AsyncGenerator<[string, Float32Array]> {
      yield ['a', tensor(8, 0)];
      throw Object.assign(new Error('quota'), { name: 'QuotaExceededError' });
    };
    await expect(writeCheckpoint(db, 'r', { step: 4, state: {}, tensors: quota(), bytes: 32 })).rejects.toThrow(
      /^the disk filled up while writing the checkpoint of step 4; the checkpoint of step 2 is kept/,
    );
    expect(await db.count('chunks')).toBe(4);

    // the next write switches and drops the old generation's chunks
    await writeCheckpoint(db, 'r', { step: 6, state: { cursor: 9 }, tensors: [['a', tensor(3, 2)]], bytes: 12 });
    expect((await readCheckpointAll(db, 'r'))!.tensors.get('a')).toEqual(tensor(3, 2));
    expect(await db.count('chunks')).toBe(1);
    expect(await db.count('checkpoints')).toBe(1);
    db.close();
  });

  it('cleans chunks no manifest points at (a write cut short by a crash), and deleting a run deletes its chunks', async () => {
    const db = await openStore(fresh());
    await putRun(db, run('r'));
    await writeCheckpoint(db, 'r', { step: 1, state: {}, tensors: [['a', new Float32Array([1, 2])]], bytes: 8 });
    // what a crash between the chunks and the switch leaves: chunks of a generation nothing points at
    await db.put('chunks', { runId: 'r', gen: 'cut-short', index: 0, data: new Uint8Array(8) });
    await db.put('chunks', { runId: 'gone', gen: 'x', index: 0, data: new Uint8Array(8) });
    expect(await cleanOrphanChunks(db)).toBe(2);
    expect(await db.count('chunks')).toBe(1);
    expect([...(await readCheckpointAll(db, 'r'))!.tensors.get('a')!]).toEqual([1, 2]);
    await deleteRun(db, 'r');
    expect([await db.count('chunks'), await db.count('checkpoints')]).toEqual([0, 0]);
    db.close();
  });

  it('reads a checkpoint written before v5 (one safetensors file in the record)', async () => {
    const db = await openStore(fresh());
    const bytes = checkpointBytes({ state: { step: 3, cursor: 1 }, tensors: new Map([['w', new Float32Array([0.5, -1])]]) });
    await db.put('checkpoints', { runId: 'old', step: 3, bytes, savedAt: 0 });
    const ck = await readCheckpointAll(db, 'old');
    expect(ck).toEqual({ step: 3, state: { step: 3, cursor: 1 }, tensors: new Map([['w', new Float32Array([0.5, -1])]]) });
    db.close();
  });

  it('a checkpoint of 512 MiB round-trips, tensor by tensor', async () => {
    const db = await openStore(fresh());
    const n = 32,
      floats = 4 * 2 ** 20; // 32 tensors of 16 MiB
    const make = (k: number) => {
      const t = new Float32Array(floats);
      for (let i = 0; i < floats; i += 4099) t[i] = k + i;
      t[floats - 1] = -k;
      return t;
    };
    await writeCheckpoint(db, 'big', {
      step: 7,
      state: {},
      tensors: (function* () {
        for (let k = 0; k < n; k++) yield [`t${k}`, make(k)] as [string, Float32Array];
      })(),
      bytes: n * floats * 4,
    });
    const ck = (await readCheckpoint(db, 'big'))!;
    let k = 0;
    for await (const [name, t] of ck.tensors()) {
      expect(name).toBe(`t${k}`);
      expect(t.length).toBe(floats);
      expect(t[floats - 1]).toBe(-k);
      expect(t[4099 * 3]).toBe(k + 4099 * 3);
      k++;
    }
    expect(k).toBe(n);
    db.close();
  }, 120_000);

  it('reports storage where the platform can', async () => {
    const e = await storageEstimate(); // Node has no navigator.storage
    expect(e === undefined || e.quota >= 0).toBe(true);
  });
});
