// The worker's API without a worker: the engine on Dawn (lavapipe) over fake-indexeddb. A paused run
// resumed by a NEW engine over the same store (what a page reload does) ends bit for bit where an
// uninterrupted run ends, with every step's metrics once; cancel keeps a usable checkpoint; the reward
// model reports accuracy; DPO and PPO run through the same loop; a NaN step can end a run.
import 'fake-indexeddb/auto';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { importJsonl, type Record as DataRecord } from '../src/io/datasets.ts';
import { unzipFiles, zipFiles } from '../src/io/zip.ts';
import { parseSafetensors, readTensorF32, writeSafetensors } from '../src/io/safetensors.ts';
import {
  addPrompts,
  deletePrompt,
  getDataset,
  getMetrics,
  listPrompts,
  listRollouts,
  listRuns,
  openStore,
  saveDataset,
  USER_DATASET,
  type MetricRecord,
} from '../src/store/db.ts';
import { readCheckpointAll } from '../src/store/checkpoints.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import type { StageRun } from '../src/train/stages.ts';
import type { Engine, GpuProblem, RunProgress, RunStatusEvent, TrainInput } from '../src/worker/api.ts';
import { createEngine } from '../src/worker/engine.ts';
import { testGpu, tightGpu } from './helpers/gpu.ts';
import { modelCard } from '../src/io/model-card.ts';
import { cardInput } from '../src/ui/share-data.ts';
import { startFakeHub } from './helpers/fake-hub.ts';
import { readFrontMatter } from './helpers/front-matter.ts';
import { parseConfig } from '../src/shared/model-config.ts';

const DIR = 'tests/fixtures/gpt2-tiny';
const files = () => new Map(['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => [f, new Uint8Array(readFileSync(`${DIR}/${f}`))]));
const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'dog', 'ran', 'far', 'away', 'big', 'red'];
let x = 7;
const say = (n: number) => Array.from({ length: n }, () => words[(x = (x * 1103515245 + 12345) % 2 ** 31) % words.length]).join(' ');
const jsonl = (rows: object[]) => importJsonl(rows.map((r) => JSON.stringify(r)).join('\n'), 'data.jsonl').records;
const sftData = jsonl(Array.from({ length: 12 }, () => ({ prompt: say(3), completion: say(5) })));
const rankData = jsonl([
  ...Array.from({ length: 20 }, () => ({ prompt: say(3), completions: [say(8), say(5), say(2)] })),
  ...Array.from({ length: 4 }, () => ({ prompt: say(3), chosen: say(6), rejected: say(1) })),
  ...Array.from({ length: 4 }, () => ({ prompt: say(3), completion: say(6) })), // demonstrations: the RM's bias fit
]);
const SFT: TrainInput = { seed: 3, steps: 5, epochs: 2, batchSize: 4, seqLen: 24, lr: 1e-3 };

/**
 * The user's data in a store, as the page keeps it: their own records (the Data tab's dataset) and the
 * prompts. The engine reads it when a run starts and takes the stage's records by src/io/stage-data.ts.
 */
async function setData(name: string, records: DataRecord[], prompts: string[] = []): Promise<void> {
  const db = await openStore(name);
  await saveDataset(db, { id: USER_DATASET, name: 'My data', records, createdAt: 1 });
  for (const p of await listPrompts(db)) await deletePrompt(db, p.id!);
  await addPrompts(db, prompts);
  db.close();
}

let stores = 0;
/** An engine with the tiny model loaded, over a store that holds `records` as the user's data (the demonstrations unless told). */
async function engine(name = `worker-test-${stores++}`, records = sftData): Promise<{ e: Engine; name: string }> {
  await setData(name, records);
  const e = createEngine({ gpu: testGpu(), store: openStore(name) });
  await e.loadModel({ files: files(), name: 'gpt2-tiny' });
  return { e, name };
}

/** The trained tensors (weights and AdamW moments) of a run's last checkpoint. */
async function finalTensors(store: string, runId: string) {
  const db = await openStore(store);
  const ck = await readCheckpointAll(db, runId);
  db.close();
  return { step: ck!.step, tensors: ck!.tensors };
}

const metricsOf = async (store: string, runId: string): Promise<MetricRecord[]> => {
  const db = await openStore(store);
  const m = await getMetrics(db, runId);
  db.close();
  return m;
};

describe('training engine (worker API in Node)', () => {
  it('loads a model from a Map of files and reports it', async () => {
    const e = createEngine({ gpu: testGpu(), store: openStore('worker-test-info') });
    const seen: number[] = [];
    const info = await e.loadModel({ files: files(), name: 'gpt2-tiny' }, (p) => seen.push(p.overallLoaded));
    expect(info).toMatchObject({ arch: 'gpt2', layers: 2, hidden: 48, heads: 4, vocabSize: 377, maxPositions: 64, hasTokenizer: true });
    expect(info.params).toBeGreaterThan(50_000);
    expect(info.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(seen.length).toBeGreaterThan(0);
    // generation streams each sample's text as it grows
    const streamed: string[][] = [[], []];
    const r = await e.generate('the cat', { numSamples: 2, maxNewTokens: 8, temperature: 1, seed: 5 }, (k, text) => streamed[k]!.push(text));
    expect(r.texts.length).toBe(2);
    for (const k of [0, 1]) {
      expect(streamed[k]!.length).toBeGreaterThan(0);
      expect(r.texts[k]!.startsWith(streamed[k]!.at(-1)!)).toBe(true);
    }
    await e.dispose();
  });

  it('background generation gives way to a call made meanwhile, then ends with the text it gives alone, streamed without going back', async () => {
    const { e } = await engine();
    const opts = { numSamples: 3, maxNewTokens: 40, temperature: 1, seed: 11 };
    const alone = await e.generate('the cat sat', opts);
    const streamed: string[][] = [[], [], []];
    let started!: () => void;
    const midway = new Promise<void>((r) => (started = r));
    const order: string[] = [];
    const bg = e
      .generate('the cat sat', { ...opts, background: true }, (k, text) => {
        streamed[k]!.push(text);
        if (streamed[0]!.length === 2) started();
      })
      .then((r) => (order.push('background'), r));
    await midway; // the background generation is drawing tokens now
    const fg = await e.generate('the dog', { maxNewTokens: 4, seed: 1 }).then((r) => (order.push('foreground'), r));
    const r = await bg;
    expect(order).toEqual(['foreground', 'background']);
    expect(fg.texts.length).toBe(1);
    expect(r.texts).toEqual(alone.texts);
    for (const [k, s] of streamed.entries()) {
      for (let i = 1; i < s.length; i++) expect(s[i]!.length > s[i - 1]!.length && s[i]!.startsWith(s[i - 1]!)).toBe(true);
      expect(alone.texts[k]!.startsWith(s.at(-1)!)).toBe(true);
    }
    // two background generations do not keep giving way to each other
    const both = await Promise.all([1, 2].map((seed) => e.generate('the dog', { maxNewTokens: 12, seed, background: true })));
    expect(both.map((x) => x.texts.length)).toEqual([1, 1]);
    await e.dispose();
  });

  it('stopGeneration ends a generation with its text so far, and one still queued with none', async () => {
    const { e } = await engine();
    const opts = { numSamples: 2, maxNewTokens: 40, temperature: 1, seed: 4 };
    const alone = await e.generate('the cat sat', opts);
    for (const background of [false, true]) {
      let midway!: () => void;
      const started = new Promise<void>((r) => (midway = r));
      let tokens = 0;
      const running = e.generate('the cat sat', { ...opts, background, id: `a${background}` }, () => ++tokens === 3 && midway());
      // behind a foreground generation a call waits its turn (a background one would give way to it)
      const queued = background ? undefined : e.generate('the dog', { maxNewTokens: 8, id: 'b' });
      await started;
      e.stopGeneration('b');
      e.stopGeneration(`a${background}`);
      const [r, q] = await Promise.all([running, queued]);
      expect(r.finish).toEqual(['interrupted', 'interrupted']);
      for (const [k, t] of r.texts.entries()) {
        expect(t.length).toBeGreaterThan(0);
        expect(t.length).toBeLessThan(alone.texts[k]!.length);
        expect(alone.texts[k]!.startsWith(t)).toBe(true);
      }
      if (queued) expect(q).toEqual({ texts: [''], finish: ['interrupted'] });
    }
    // stopped while it waits behind a call it gave way to: it keeps what it wrote before
    let wrote!: () => void, fgStarted!: () => void;
    const bgWrote = new Promise<void>((r) => (wrote = r)),
      fgWrites = new Promise<void>((r) => (fgStarted = r));
    let n = 0;
    const bg = e.generate('the cat sat', { ...opts, background: true, id: 'd' }, () => ++n === 3 && wrote());
    await bgWrote;
    const fg = e.generate('the dog', { maxNewTokens: 20, seed: 2 }, () => fgStarted());
    await fgWrites;
    e.stopGeneration('d');
    const [r] = await Promise.all([bg, fg]);
    expect(r.finish).toEqual(['interrupted', 'interrupted']);
    for (const [k, t] of r.texts.entries()) expect(t.length > 0 && alone.texts[k]!.startsWith(t)).toBe(true);
    // a name that is not generating now stops nothing later
    e.stopGeneration('c');
    expect((await e.generate('the cat sat', { ...opts, id: 'c' })).texts).toEqual(alone.texts);
    await e.dispose();
  });

  it('SFT paused after step 2 and resumed by a new engine equals an uninterrupted run, bit for bit, on the data it started with though the user changed theirs meanwhile', async () => {
    const t0 = performance.now();
    // the uninterrupted run
    const a = await engine();
    const idA = await a.e.startStage('sft', SFT);
    expect(await a.e.wait(idA)).toBe('done');
    const ref = await finalTensors(a.name, idA);
    const refMetrics = await metricsOf(a.name, idA);
    await a.e.dispose();
    expect(ref.step).toBe(5);
    const tA = performance.now();

    // the same run, paused from its progress callback after step 2
    const b = await engine();
    const progress: RunProgress[] = [],
      statuses: RunStatusEvent[] = [],
      rows: MetricRecord[] = [];
    const idB = await b.e.startStage('sft', SFT, {
      onProgress: (p) => {
        progress.push(p);
        if (p.step === 2) void b.e.pause(p.runId);
      },
      onStatus: (s) => statuses.push(s),
      onMetrics: (m) => rows.push(m),
    });
    expect(await b.e.wait(idB)).toBe('paused');
    expect(progress.map((p) => [p.step, p.total])).toEqual([
      [1, 5],
      [2, 5],
    ]);
    expect(progress.every((p) => p.tokensPerSec > 0 && p.secondsLeft >= 0)).toBe(true);
    expect(statuses.map((s) => s.status)).toEqual(['running', 'paused']);
    expect(rows.map((r) => r.step)).toEqual([1, 2]);
    expect(await b.e.getRun(idB)).toMatchObject({ status: 'paused', step: 2, totalSteps: 5, stage: 'sft' });
    expect((await finalTensors(b.name, idB)).step).toBe(2);
    await b.e.dispose();

    // meanwhile the user edits their data: other demonstrations, one of the old ones gone, and a chat one
    const edited: DataRecord[] = [
      ...sftData.slice(1, 5).map((r) => ({ ...r, completion: `${say(4)} instead` }) as DataRecord),
      ...sftData.slice(6),
      {
        kind: 'messages',
        messages: [
          { role: 'user', content: say(3) },
          { role: 'assistant', content: say(4) },
        ],
      },
    ];
    await setData(b.name, edited);

    // a reload: a new engine over the same store, the model loaded again, resume
    const c = createEngine({ gpu: testGpu(), store: openStore(b.name) });
    expect(await c.stageData('sft')).toEqual(edited); // what a new run would train on now (the page's summary)
    await expect(c.resume(idB)).rejects.toThrow(/load that model first/); // a Map source cannot be fetched again
    await c.loadModel({ files: files(), name: 'gpt2-tiny' });
    const later: number[] = [];
    await c.resume(idB, { onProgress: (p) => later.push(p.step) });
    expect(await c.wait(idB)).toBe('done');
    expect(later).toEqual([3, 4, 5]);
    const got = await finalTensors(b.name, idB);
    expect(got.step).toBe(5);
    expect([...got.tensors.keys()]).toEqual([...ref.tensors.keys()]);
    for (const [name, data] of ref.tensors) expect(Buffer.from(got.tensors.get(name)!.buffer).equals(Buffer.from(data.buffer)), name).toBe(true);
    const history = await metricsOf(b.name, idB);
    expect(history.map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    expect(history.map((m) => m.values.loss)).toEqual(refMetrics.map((m) => m.values.loss));
    expect(Object.keys(history[0]!.values).sort()).toEqual(['grad_norm', 'learning_rate', 'loss']);
    expect(history.at(-1)!.values.loss).toBeLessThan(history[0]!.values.loss!);
    // the run kept the records it started on (its snapshot in the store), which resume read
    const st = await openStore(b.name);
    expect((await getDataset(st, `run:${idB}`))!.records).toEqual(sftData);
    st.close();
    // the export is a Hugging Face folder (full fine-tuning) in a zip
    const { name, zip } = await c.exportModel();
    expect(name).toMatch(/^sft-.*\.zip$/);
    const out = unzipFiles(zip, name);
    expect([...out.keys()].map((k) => k.split('/').pop()).sort()).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json']));
    // the edit mattered: a new run takes the edited records, and its first step is not the old run's
    const idC = await c.startStage('sft', { ...SFT, steps: 1 });
    expect(await c.wait(idC)).toBe('done');
    expect((await metricsOf(b.name, idC))[0]!.values.loss).not.toBe(refMetrics[0]!.values.loss);
    const st2 = await openStore(b.name);
    expect((await getDataset(st2, `run:${idC}`))!.records).toEqual(edited);
    expect((await getDataset(st2, `run:${idB}`))!.records).toEqual(sftData);
    st2.close();
    await c.dispose();
    console.log(`uninterrupted SFT run (5 steps): ${(tA - t0).toFixed(0)} ms; paused + resumed: ${(performance.now() - tA).toFixed(0)} ms`);
  });

  it('a run on a URL loads its model again by itself when resumed by a fresh engine', async () => {
    const server = createServer((req, res) => {
      const f = files().get(req.url!.split('/').pop()!);
      res.writeHead(f ? 200 : 404).end(f);
    });
    await new Promise<void>((r) => server.listen(0, 'localhost', r));
    const url = `http://localhost:${(server.address() as AddressInfo).port}/gpt2-tiny/`;
    try {
      const name = `worker-test-${stores++}`;
      await setData(name, sftData);
      const a = createEngine({ gpu: testGpu(), store: openStore(name) });
      expect((await a.loadModel({ url })).source).toBe(url.slice(0, -1));
      const id = await a.startStage('sft', { ...SFT, steps: 3 }, { onProgress: (p) => void (p.step === 1 && a.pause(p.runId)) });
      expect(await a.wait(id)).toBe('paused');
      await a.dispose();
      const b = createEngine({ gpu: testGpu(), store: openStore(name) });
      await b.resume(id); // no loadModel: the run's URL is fetched again, and its fingerprint checked
      expect(await b.wait(id)).toBe('done');
      await expect(b.resume(id)).rejects.toThrow(/is done/);
      expect((await metricsOf(name, id)).map((m) => m.step)).toEqual([1, 2, 3]);
      await b.dispose();
    } finally {
      server.close();
    }
  });

  it('an adapter trained on a Hub model names its base as PEFT loads it: the bare repo id, the revision apart (null for main); the card too', async () => {
    const hub = await startFakeHub();
    try {
      hub.repos.set('test/gpt2-tiny', { id: 'test/gpt2-tiny', private: false, files: files() });
      for (const revision of [undefined, 'v1.0']) {
        const name = `worker-test-hub-${revision ?? 'main'}`;
        await setData(name, sftData);
        const e = createEngine({ gpu: testGpu(), store: openStore(name) });
        const info = await e.loadModel({ hub: 'test/gpt2-tiny', endpoint: hub.url, ...(revision ? { revision } : {}) });
        expect(info.source).toBe(`test/gpt2-tiny@${revision ?? 'main'}`); // what the page shows and the run records
        const id = await e.startStage('sft', { ...SFT, steps: 2, loraRank: 4 });
        expect(await e.wait(id)).toBe('done');
        const zip = unzipFiles((await e.exportModel(id)).zip, 'sft.zip');
        const cfgFile = [...zip].find(([k]) => k.endsWith('adapter_config.json'));
        expect(cfgFile![0]).not.toMatch(/^starting-model\/|\/adapter\//); // on the Hub: the adapter alone, at the top
        const cfg = JSON.parse(new TextDecoder().decode(cfgFile![1])) as { base_model_name_or_path: string; revision: string | null };
        // PEFT: AutoModel*.from_pretrained(base_model_name_or_path, revision=revision); null loads main
        expect(cfg.base_model_name_or_path).toBe('test/gpt2-tiny');
        expect(cfg.revision).toBe(revision ?? null);
        // the model card the Share tab writes for this run: base_model is the repo id, the code loads that revision
        const st = await openStore(name);
        const card = modelCard(await cardInput(st, { runId: id, model: info }));
        st.close();
        const { meta, body } = readFrontMatter(card);
        expect(meta.get('base_model')).toBe('test/gpt2-tiny');
        expect(body).toContain(
          revision ? 'AutoModelForCausalLM.from_pretrained("test/gpt2-tiny", revision="v1.0")' : 'AutoModelForCausalLM.from_pretrained("test/gpt2-tiny")\n',
        );
        await e.dispose();
      }
    } finally {
      await hub.close();
    }
  });

  it('a run whose buffers the GPU refuses (out of memory) fails to start, says so, and the engine trains the next run as before', async () => {
    const { e, name } = await engine();
    const gpu = await testGpu();
    // the run's logits come from the real device at a size lavapipe refuses (its whole maxBufferSize): a real
    // GPUOutOfMemoryError where the stage makes its first plan; no estimate can see it coming
    const buffer = gpu.buffer.bind(gpu),
      destroy = gpu.destroy.bind(gpu);
    gpu.buffer = (bytes, label, usage) =>
      label?.includes('logits')
        ? gpu.device.createBuffer({ label: 'refused logits', size: gpu.device.limits.maxBufferSize, usage: GPUBufferUsage.STORAGE })
        : buffer(bytes, label, usage);
    gpu.destroy = (b) => (b.label === 'refused logits' ? b.destroy() : destroy(b)); // never counted in allocatedBytes
    const statuses: RunStatusEvent[] = [];
    try {
      await expect(e.startStage('sft', SFT, { onStatus: (s) => statuses.push(s) })).rejects.toThrow(/out of GPU memory/);
    } finally {
      gpu.buffer = buffer;
      gpu.destroy = destroy;
    }
    expect(statuses).toEqual([]); // no run was made of it
    const db = await openStore(name);
    expect(await listRuns(db)).toEqual([]);
    db.close();
    const id = await e.startStage('sft', SFT);
    expect(await e.wait(id)).toBe('done');
    expect((await e.generate('the cat sat', { maxNewTokens: 3, temperature: 0 })).texts.length).toBeGreaterThan(0);
    await e.dispose();
  });

  it('cancel stops the run and leaves its last checkpoint usable', async () => {
    const cfg = { ...SFT, loraRank: 4, checkpointEvery: 2 };
    const a = await engine();
    const idA = await a.e.startStage('sft', cfg);
    await a.e.wait(idA);
    const ref = await finalTensors(a.name, idA);
    await a.e.dispose();

    const b = await engine();
    const id = await b.e.startStage('sft', cfg, { onProgress: (p) => void (p.step === 3 && b.e.cancel(p.runId)) });
    expect(await b.e.wait(id)).toBe('cancelled');
    expect((await b.e.getRun(id)).status).toBe('cancelled');
    const ck = await finalTensors(b.name, id);
    expect(ck.step).toBe(2); // the checkpoint of step 2, not a half-written one of step 3
    expect([...ck.tensors.keys()].every((k) => k.includes('lora_'))).toBe(true);
    // it exports (a PEFT adapter) from a fresh engine, and resumes to the uninterrupted result
    const c = await engine(b.name);
    const { zip, name } = await c.e.exportModel(id);
    expect([...unzipFiles(zip, name).keys()].map((k) => k.split('/').pop()).sort()).toEqual([
      'adapter_config.json',
      'adapter_model.safetensors',
      'tokenizer.json',
    ]);
    await c.e.resume(id);
    expect(await c.e.wait(id)).toBe('done');
    const got = await finalTensors(b.name, id);
    for (const [n, data] of ref.tensors) expect(got.tensors.get(n), n).toEqual(data);
    expect((await metricsOf(b.name, id)).map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    await c.e.dispose();
  });

  it('the reward model reports accuracy per step and held-out; PPO trains against it, for a step cap or for epochs over the prompts; DPO from the same rankings', async () => {
    const { e, name } = await engine(undefined, rankData);
    const rm = await e.startStage('rm', { seed: 1, batchSize: 4, seqLen: 24, loraRank: 4, lr: 1e-3, epochs: 2 });
    expect(await e.wait(rm)).toBe('done');
    const rows = await metricsOf(name, rm);
    expect(rows.length).toBe(12); // 20 rankings + 4 preferences, 2 held out: 22 -> 6 steps x 2 epochs
    for (const r of rows) {
      expect(Object.keys(r.values)).toEqual(expect.arrayContaining(['loss', 'accuracy', 'learning_rate', 'grad_norm']));
      expect(r.values.accuracy).toBeGreaterThanOrEqual(0);
      expect(r.values.accuracy).toBeLessThanOrEqual(1);
    }
    const result = (await e.getRun(rm)).result!;
    expect(result).toMatchObject({ eval_pairs: 6 });
    expect(result.eval_accuracy).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(result.reward_bias)).toBe(true);
    // held-out accuracy during the run too (every 2nd of 12 steps, for the live chart); the last equals the result's
    expect(rows.filter((r) => r.values.eval_accuracy !== undefined).map((r) => r.step)).toEqual([2, 4, 6, 8, 10, 12]);
    expect(rows.at(-1)!.values.eval_accuracy).toBe(result.eval_accuracy);
    const files = unzipFiles((await e.exportModel()).zip, 'rm.zip');
    const adapterCfg = JSON.parse(new TextDecoder().decode([...files].find(([k]) => k.endsWith('adapter_config.json'))![1])) as { modules_to_save: string[] };
    expect(adapterCfg.modules_to_save).toEqual(['score']);
    // opened back as a shared checkpoint, the adapter goes on the loaded model and is recognised as a reward model's
    expect((await e.openCheckpoint({ zip: (await e.exportModel()).zip, name: 'rm.zip' })).policy).toEqual({ kind: 'adapter', name: 'rm.zip', reward: true });

    const samples: string[] = [];
    await setData(name, sftData); // PPO samples the demonstrations' prompts
    const ppo = await e.startStage(
      'ppo',
      { rewardRunId: rm, loraRank: 4, batchSize: 2, seqLen: 24, numSamples: 2, maxNewTokens: 6, steps: 2, epochs: 3 },
      {
        onSamples: (_s, xs) => void samples.push(...xs.map((s) => s.response)),
      },
    );
    expect(await e.wait(ppo)).toBe('done');
    const pm = await metricsOf(name, ppo);
    expect(pm.map((m) => m.step)).toEqual([1, 2]);
    expect(Object.keys(pm[0]!.values)).toEqual(
      expect.arrayContaining(['objective/scores', 'objective/kl', 'objective/entropy', 'policy/clipfrac_avg', 'loss/value_avg']),
    );
    expect(samples.length).toBeGreaterThan(0);
    // the same rollouts are in the store, by step, for the Inspect view after a reload
    const st = await openStore(name);
    const stored = await listRollouts(st, ppo);
    st.close();
    expect(stored.map((r) => r.step)).toEqual([1, 2]);
    expect(stored.flatMap((r) => r.samples.map((x) => x.response))).toEqual(samples);
    for (const x of stored.flatMap((r) => r.samples))
      expect([x.kl!.length, x.value!.length, x.advantage!.length]).toEqual([x.tokens!.length, x.tokens!.length, x.tokens!.length]);
    // a step cap (max_steps) overrides the epochs given beside it: the run records none (0), and the card shows the cap alone
    const capped = await e.getRun(ppo);
    expect([capped.totalSteps, capped.config.steps, capped.config.epochs]).toEqual([2, 2, 0]);

    // PPO's epochs: 2 passes over 6 prompts, 2 a step, are 6 steps; each pass samples every prompt once
    const prompts = ['the cat', 'a dog', 'big red', 'far away', 'on a mat', 'dog ran'];
    await setData(name, [], prompts); // the Data tab's prompts alone
    const twice = await e.startStage('ppo', { rewardRunId: rm, loraRank: 4, batchSize: 2, seqLen: 24, numSamples: 2, maxNewTokens: 4, epochs: 2 });
    expect(await e.wait(twice)).toBe('done');
    const run2 = await e.getRun(twice);
    expect([run2.totalSteps, run2.step, run2.config.epochs]).toEqual([6, 6, 2]);
    expect((await metricsOf(name, twice)).map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const st2 = await openStore(name);
    const byStep = (await listRollouts(st2, twice)).map((r) => [...new Set(r.samples.map((x) => x.prompt))]);
    const cards = [capped, run2].map((r) => cardInput(st2, { runId: r.id }).then(modelCard));
    const [cappedCard, twiceCard] = await Promise.all(cards);
    st2.close();
    expect(byStep.map((ps) => ps.length)).toEqual([2, 2, 2, 2, 2, 2]);
    for (const pass of [byStep.slice(0, 3), byStep.slice(3)]) expect(pass.flat().sort()).toEqual([...prompts].sort());
    // the card records the setting each PPO run used: the epochs of the second, never the first's unused ones
    const ppoPart = (card: string) => card.split(/^\d+\. \*\*/m).find((part) => part.startsWith('PPO '))!;
    expect(ppoPart(twiceCard)).toMatch(/\| epochs \| 2 \|/);
    expect(ppoPart(cappedCard)).not.toMatch(/\| epochs \|/);
    expect(ppoPart(cappedCard)).toMatch(/\| step cap \| 2 \|/);

    await setData(name, rankData);
    const dpo = await e.startStage('dpo', { loraRank: 4, batchSize: 4, seqLen: 24, steps: 2 });
    expect(await e.wait(dpo)).toBe('done');
    const dm = await metricsOf(name, dpo);
    expect(Object.keys(dm[0]!.values)).toEqual(expect.arrayContaining(['loss', 'rewards/margins', 'rewards/accuracies']));
    // the DPO policy is what generation samples now
    expect((await e.generate('the dog', { maxNewTokens: 4 })).texts.length).toBe(1);
    await e.dispose();
  });

  it("rewardScores (the Rank tab's active selection): a finished reward model scores (prompt, completion) as its own stage does, here and in a fresh engine over the same store", async () => {
    const { e, name } = await engine(undefined, rankData);
    // LoRA dropout at its default: the stage scores with its training plan, dropout turned off for it
    const rm = await e.startStage('rm', { seed: 1, batchSize: 4, seqLen: 24, loraRank: 4, lr: 1e-3, steps: 4 });
    expect(await e.wait(rm)).toBe('done');
    const items = rankData.flatMap((r) => (r.kind === 'ranking' ? r.completions.map((completion) => ({ prompt: r.prompt, completion })) : [])).slice(0, 7);
    const stage = (e as unknown as { current: { stage: StageRun } }).current.stage;
    const own = await stage.score!(items);
    expect(new Set(own.map((s) => s.toFixed(3))).size).toBeGreaterThan(1); // trained: it tells them apart
    const got = await e.rewardScores(rm, items);
    expect(got.length).toBe(items.length);
    got.forEach((s, i) => expect(s).toBeCloseTo(own[i]!, 4));
    // kept between calls; a smaller call on the same plan gives each item's own score
    expect(await e.rewardScores(rm, items)).toEqual(got);
    (await e.rewardScores(rm, items.slice(2, 4))).forEach((s, i) => expect(s).toBeCloseTo(got[2 + i]!, 5));
    // after a reload: loaded from its checkpoint in the store, weights, score head and bias
    const f = createEngine({ gpu: testGpu(), store: openStore(name) });
    await f.loadModel({ files: files(), name: 'gpt2-tiny' });
    (await f.rewardScores(rm, items)).forEach((s, i) => expect(s).toBeCloseTo(own[i]!, 4));
    await expect(f.rewardScores('no-such-run', items)).rejects.toThrow(/no run no-such-run/);
    await f.dispose();
    // a size the GPU refuses is not kept: the next, smaller call plans its own size (it asked the refused one again before)
    const g = createEngine({ gpu: testGpu(), store: openStore(name) });
    await g.loadModel({ files: files(), name: 'gpt2-tiny' });
    const gpu = await testGpu();
    const buffer = gpu.buffer.bind(gpu),
      destroy = gpu.destroy.bind(gpu);
    let largest = 0,
      refuseOver = Infinity;
    gpu.buffer = (bytes, label, usage) => {
      // over the bound: a real GPUOutOfMemoryError (lavapipe refuses a buffer of its whole maxBufferSize)
      if (bytes > refuseOver) return gpu.device.createBuffer({ label: 'refused', size: gpu.device.limits.maxBufferSize, usage: GPUBufferUsage.STORAGE });
      largest = Math.max(largest, bytes);
      return buffer(bytes, label, usage);
    };
    gpu.destroy = (b) => (b.label === 'refused' ? b.destroy() : destroy(b));
    try {
      const two = await g.rewardScores(rm, items.slice(0, 2)); // the scorer at 2 rows: its largest buffer
      refuseOver = largest;
      await expect(g.rewardScores(rm, items)).rejects.toThrow(/out of GPU memory/); // 7 rows need more
      expect(await g.rewardScores(rm, items.slice(0, 2))).toEqual(two);
    } finally {
      gpu.buffer = buffer;
      gpu.destroy = destroy;
    }
    await g.dispose();
    await e.dispose();
  });

  it('a fully fine-tuned reward model (*ForSequenceClassification, or an older folder with score.json) opened in the page is refused, the loaded model kept', async () => {
    const { e } = await engine();
    const before = e.modelInfo()!;
    const seqCls: Map<string, Uint8Array> = files();
    const cfg = JSON.parse(new TextDecoder().decode(seqCls.get('config.json'))) as Record<string, unknown>;
    seqCls.set(
      'config.json',
      new TextEncoder().encode(JSON.stringify({ ...cfg, architectures: ['GPT2ForSequenceClassification'], num_labels: 1, pad_token_id: 376 })),
    );
    const st = parseSafetensors(seqCls.get('model.safetensors')!, 'm');
    seqCls.set(
      'model.safetensors',
      writeSafetensors([
        ...[...st.tensors.keys()].map((n) => ({ name: n, shape: st.tensors.get(n)!.shape, data: readTensorF32(st, n) })),
        { name: 'score.weight', shape: [1, 48], data: new Float32Array(48) },
      ]),
    );
    await expect(e.openCheckpoint({ files: seqCls, name: 'rm-full' })).rejects.toThrow(
      /^rm-full is a fully fine-tuned reward model \(a \*ForSequenceClassification model/,
    );
    await expect(e.openCheckpoint({ zip: zipFiles(seqCls, 'rm-full'), name: 'rm-full.zip' })).rejects.toThrow(
      /^rm-full\.zip is a fully fine-tuned reward model/,
    );
    const old = new Map([...files(), ['score.json', new TextEncoder().encode(JSON.stringify({ 'score.weight': new Array(48).fill(0), bias: 0 }))]]);
    await expect(e.openCheckpoint({ zip: zipFiles(old, 'rm-old'), name: 'rm-old.zip' })).rejects.toThrow(
      /^rm-old\.zip is a fully fine-tuned reward model \(a model folder with score\.json\)/,
    );
    expect(e.modelInfo()).toEqual(before);
    expect((await e.generate('the dog', { maxNewTokens: 2 })).texts.length).toBe(1);
    await e.dispose();
  });

  it('the recipe chains: SFT becomes the starting model of the RM and PPO; a fresh engine rebuilds it; export and reset', async () => {
    const { e, name } = await engine();
    const greedy = { maxNewTokens: 8, temperature: 0 };
    const prompts = ['the cat', 'a dog ran', 'big red'];
    const sample = async (model: 'policy' | 'base') => Promise.all(prompts.map(async (p) => (await e.generate(p, { ...greedy, model })).texts[0]));
    const root = (await e.adapterInfo()) && e.modelInfo()!;
    const sft = await e.startStage('sft', { ...SFT, loraRank: 4, lr: 3e-3, steps: 8 });
    expect(await e.wait(sft)).toBe('done');
    const tuned = await sample('policy');
    expect(tuned).not.toEqual(await sample('base')); // the SFT adapter changed what the model says

    await expect(e.adoptRun('nope')).rejects.toThrow(/no run nope/);
    const info = await e.adoptRun(sft);
    expect(info.merged).toEqual([{ runId: sft, stage: 'sft', step: (await e.getRun(sft)).step }]);
    expect(info.fingerprint).not.toBe(root.fingerprint);
    expect(e.policyInfo()!.kind).toBe('base');
    expect(await sample('base')).toEqual(tuned); // the merged model says what model + adapter said

    // the reward model and PPO train on the merged model; PPO is leashed to it
    await setData(name, rankData);
    const rm = await e.startStage('rm', { seed: 1, batchSize: 4, seqLen: 24, loraRank: 4, lr: 1e-3, steps: 2 });
    expect(await e.wait(rm)).toBe('done');
    await expect(e.adoptRun(rm)).rejects.toThrow(/reward model/);
    // its adapter's base is the merged model, which is not on the Hub: the zip carries it beside the adapter
    const rmZip = unzipFiles((await e.exportModel(rm)).zip, 'rm.zip');
    expect([...rmZip.keys()].filter((k) => k.startsWith('starting-model/')).sort()).toEqual([
      'starting-model/config.json',
      'starting-model/generation_config.json',
      'starting-model/model.safetensors',
      'starting-model/tokenizer.json',
    ]);
    expect(JSON.parse(new TextDecoder().decode(rmZip.get('adapter/adapter_config.json')))).toMatchObject({
      base_model_name_or_path: 'starting-model',
      modules_to_save: ['score'],
    });
    // and opens back as that model with the adapter on it (in a fresh engine: another person's browser)
    const other = createEngine({ gpu: testGpu(), store: openStore(`${name}-other`) });
    const opened = await other.openCheckpoint({ zip: (await e.exportModel(rm)).zip, name: 'rm.zip' });
    expect(opened.model.source).toBe('rm.zip/starting-model');
    expect(opened.policy).toMatchObject({ kind: 'adapter', name: 'rm.zip/adapter' });
    await other.dispose();
    await setData(name, sftData);
    const ppo = await e.startStage('ppo', { rewardRunId: rm, loraRank: 4, batchSize: 2, seqLen: 24, numSamples: 2, maxNewTokens: 6, steps: 2 });
    expect(await e.wait(ppo)).toBe('done');
    const ppoSays = await sample('policy');
    const zip = unzipFiles((await e.exportModel(ppo)).zip, 'ppo.zip');
    expect([...zip.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']); // a whole model: PEFT could not rebuild the merged base
    await e.dispose();

    // a fresh engine (a reload) with the files loaded again rebuilds the merged base to open the PPO run
    const f = createEngine({ gpu: testGpu(), store: openStore(name) });
    await f.loadModel({ files: files(), name: 'gpt2-tiny' });
    await f.selectRun(ppo);
    expect(f.modelInfo()!.fingerprint).toBe(info.fingerprint);
    expect(await Promise.all(prompts.map(async (p) => (await f.generate(p, greedy)).texts[0]))).toEqual(ppoSays);
    // and back to the model as loaded
    await expect(f.deleteRun(sft)).rejects.toThrow(/merged into the starting model/);
    const back = await f.resetModel();
    expect(back.fingerprint).toBe(root.fingerprint);
    expect(back.merged).toEqual([]);
    // deleting the SFT run takes its checkpoint: the runs that started from it cannot be rebuilt, and say why
    await f.deleteRun(sft);
    await expect(f.getRun(sft)).rejects.toThrow(/no run/);
    await expect(f.selectRun(ppo)).rejects.toThrow(new RegExp(`no run ${sft}`));
    await f.dispose();
  });

  it('without a GPU the first call fails with the reason; the worker code compiles without the DOM', async () => {
    const e = createEngine({ gpu: Promise.reject(new Error('WebGPU is not available here (no navigator.gpu).')), store: openStore('worker-test-nogpu') });
    await expect(e.loadModel({ files: files() })).rejects.toThrow(/WebGPU is not available/);
    // src/worker/tsconfig.json: lib WebWorker, no DOM
    const r = await promisify(execFile)(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'src/worker'], { timeout: 120_000 }).then(
      (ok) => ({ code: 0, out: ok.stdout }),
      (x: { code: number; stdout: string }) => ({ code: x.code, out: x.stdout }),
    );
    expect(r.code, r.out).toBe(0);
  });

  it('a lost GPU is reported and fails the running run; the engine gets a new device, and the run resumed on it ends as an uninterrupted one', async () => {
    const devices: Awaited<ReturnType<typeof createNodeGpu>>[] = [];
    const name = `worker-test-${stores++}`;
    await setData(name, sftData);
    // the GPU as a factory, as the worker gives it: each call a device of its own (destroying one must not touch the other tests')
    const e = createEngine({
      gpu: async () => {
        const g = await createNodeGpu();
        devices.push(g);
        return g;
      },
      store: openStore(name),
    });
    await e.loadModel({ files: files(), name: 'gpt2-tiny' });
    const problems: GpuProblem[] = [];
    await e.watchGpu((p) => problems.push(p));
    expect(await e.reconnectGpu()).toMatchObject({ model: { source: 'gpt2-tiny' } }); // the GPU works: nothing to do
    expect(devices.length).toBe(1);
    let destroyed = false;
    const cfg = { ...SFT, steps: 6, checkpointEvery: 2 };
    const id = await e.startStage('sft', cfg, {
      onProgress: (p) => {
        if (p.step === 3 && !destroyed) {
          destroyed = true;
          devices[0]!.device.destroy();
        }
      },
    });
    expect(await e.wait(id)).toBe('failed');
    const run = await e.getRun(id);
    expect(run.error).toMatch(
      /^the GPU device was lost \(destroyed\).*Reconnect the GPU \(or reload the page\), then resume the run: it goes on from its checkpoint of step 2\.$/,
    );
    await expect.poll(() => problems.map((p) => p.kind)).toEqual(['lost']);
    expect(problems[0]!.message).toMatch(/GPU device was lost/);
    // every later call says the same instead of hanging or returning nothing
    await expect(e.generate('the cat', { numSamples: 1, maxNewTokens: 2 })).rejects.toThrow(/GPU device was lost/);

    // one call: a new device, the model built on it again; the run the loss stopped is named, and goes on from step 2
    const back = await e.reconnectGpu();
    expect(devices.length).toBe(2);
    expect(back).toMatchObject({ model: { source: 'gpt2-tiny' }, lostRun: id });
    await e.resume(back.lostRun!);
    expect(await e.wait(id)).toBe('done');
    expect((await metricsOf(name, id)).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]); // step 3 again, kept once
    expect((await e.generate('the cat', { numSamples: 1, maxNewTokens: 2 })).texts.length).toBe(1); // the page goes on
    // bit for bit the run without the loss
    const straight = await e.startStage('sft', cfg);
    expect(await e.wait(straight)).toBe('done');
    const [x, y] = await Promise.all([finalTensors(name, id), finalTensors(name, straight)]);
    expect(x.step).toBe(6);
    for (const [k, t] of y.tensors) expect(x.tensors.get(k), k).toEqual(t);
    // a later loss, of the new device, reaches the same watcher
    devices[1]!.device.destroy();
    await expect.poll(() => problems.map((p) => p.kind)).toEqual(['lost', 'lost']);
    await e.dispose();
  });

  it('a run whose buffers cannot exist on the adapter is refused before anything is allocated, with needed vs the limit; the engine goes on', async () => {
    const cfg = parseConfig(JSON.parse(new TextDecoder().decode(files().get('config.json'))));
    // a device whose buffer and binding limits are what a 4 x 24 full fine-tuning step needs
    const name = `worker-test-${stores++}`;
    await setData(name, sftData);
    const e = createEngine({ gpu: tightGpu(cfg, 4, 24), store: openStore(name) });
    const runsNow = async () => {
      const db = await openStore(name);
      const n = (await listRuns(db)).length;
      db.close();
      return n;
    };
    await e.loadModel({ files: files(), name: 'gpt2-tiny' });
    const limit = (await tightGpu(cfg, 4, 24)).maxBuffer;
    const runs = await runsNow();
    const err = await e.startStage('sft', { ...SFT, batchSize: 16 }).then(
      () => undefined,
      (x: Error) => x,
    );
    expect(err?.message).toMatch(/^SFT run: needs a \d+ KiB buffer, over this adapter's maxBufferSize of \d+ KiB$/);
    const [needed, allowed] = [...err!.message.matchAll(/(\d+) KiB/g)].map((m) => Number(m[1]));
    expect(allowed).toBe(Math.round(limit / 1024));
    expect(needed).toBeGreaterThan(allowed!);
    expect(await runsNow()).toBe(runs); // no run was made
    // the same engine, the same model: a run that fits trains
    const ok = await e.startStage('sft', { ...SFT, steps: 2 });
    expect(await e.wait(ok)).toBe('done');
    await e.dispose();
  });

  it("a NaN step is skipped, or with onNonFinite: 'stop' ends the run as failed with a clear message", async () => {
    const { e, name } = await engine();
    // a learning rate that blows the weights up: the second step's gradient is not finite
    const boom: TrainInput = { ...SFT, steps: 4, lr: 1e30, warmupRatio: 0, maxGradNorm: 0 };
    const skip = await e.startStage('sft', boom);
    expect(await e.wait(skip)).toBe('done');
    const rows = await metricsOf(name, skip);
    expect(rows.map((r) => r.step)).toEqual([1, 2, 3, 4]);
    expect(rows.some((r) => r.values.skipped === 1)).toBe(true);

    const stop = await e.startStage('sft', { ...boom, onNonFinite: 'stop', checkpointEvery: 1 });
    expect(await e.wait(stop)).toBe('failed');
    const run = await e.getRun(stop);
    expect(run.error).toMatch(/step \d: the gradient is NaN or infinite .*onNonFinite: 'stop'.*checkpoint of step \d is intact/);
    await e.dispose();
  });
});
