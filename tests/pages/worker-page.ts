// The training worker in a real page (driven by tests/worker-browser.test.ts). First visit: load the tiny
// GPT-2 in the worker, run SFT, pause from the progress callback after step 2. After a reload: find the
// paused run in IndexedDB, load the model again, resume, finish. Results go to document.body.dataset.
import * as Comlink from 'comlink';
import { checkpointManifest, getMetrics, listRuns, openStore, saveDataset, USER_DATASET } from '../../src/store/db.ts';
import { sameTensors } from './same-tensors.ts';
import type { Engine, RunCallbacks } from '../../src/worker/api.ts';

const ds = document.body.dataset;
const put = (k: string, v: unknown) => (ds[k] = typeof v === 'string' ? v : JSON.stringify(v));
const log = (line: string) => (document.getElementById('log')!.textContent += line + '\n');

const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'dog', 'ran'];
const data = Array.from({ length: 6 }, (_, i) => ({
  kind: 'completion' as const,
  prompt: `${words[i]} ${words[(i + 3) % 8]}`,
  completion: `${words[(i + 1) % 8]} ${words[(i + 5) % 8]} ${words[(i + 2) % 8]}`,
}));
const CONFIG = { seed: 3, steps: 3, batchSize: 2, seqLen: 16, lr: 1e-3 };

async function main(): Promise<void> {
  if (!('gpu' in navigator) || !navigator.gpu) throw new Error('no WebGPU in this browser (navigator.gpu is missing)');
  const engine = Comlink.wrap<Engine>(new Worker(new URL('../../src/worker/worker.ts', import.meta.url), { type: 'module' }));
  const tokenizer = new Uint8Array(await (await fetch('/tests/fixtures/gpt2-tiny/tokenizer.json')).arrayBuffer());
  const loads: number[] = [];
  const t0 = performance.now();
  const info = await engine.loadModel(
    { url: '/models/gpt2-tiny/', files: new Map([['tokenizer.json', tokenizer]]) },
    Comlink.proxy((p: { overallLoaded: number }) => void loads.push(p.overallLoaded)),
  );
  put('model', { arch: info.arch, params: info.params, loadEvents: loads.length, ms: Math.round(performance.now() - t0) });
  log(`model: ${info.arch}, ${info.params} parameters`);

  const db = await openStore();
  // the user's demonstrations, where the page keeps them: the engine reads a run's data from the store
  await saveDataset(db, { id: USER_DATASET, name: 'My data', records: data, createdAt: 1 });
  const events: { kind: string; step: number; status?: string; mainThread: boolean }[] = [];
  const callbacks = (pauseAt?: number): RunCallbacks & Comlink.ProxyMarked =>
    Comlink.proxy({
      onProgress: (p) => {
        events.push({ kind: 'progress', step: p.step, mainThread: typeof document !== 'undefined' });
        log(`step ${p.step}/${p.total}, ${p.tokensPerSec.toFixed(0)} tokens/s`);
        if (p.step === pauseAt) void engine.pause(p.runId); // not awaited: the run pauses once this returns
      },
      onMetrics: (m) => void events.push({ kind: 'metrics', step: m.step, mainThread: typeof document !== 'undefined' }),
      onStatus: (s) => void events.push({ kind: 'status', step: s.step, status: s.status, mainThread: typeof document !== 'undefined' }),
    });

  const paused = (await listRuns(db)).find((r) => r.status === 'paused');
  const t1 = performance.now();
  if (!paused) {
    // first visit: two steps, then pause
    const runId = await engine.startStage('sft', CONFIG, callbacks(2));
    const status = await engine.wait(runId);
    const ck = await checkpointManifest(db, runId);
    put('first', {
      runId,
      status,
      events,
      checkpointStep: ck?.step,
      metricSteps: (await getMetrics(db, runId)).map((m) => m.step),
      ms: Math.round(performance.now() - t1),
    });
    ds.phase = 'paused';
  } else {
    // after the reload: resume from IndexedDB and finish
    await engine.resume(paused.id, callbacks());
    const status = await engine.wait(paused.id);
    const ck = await checkpointManifest(db, paused.id);
    const metrics = await getMetrics(db, paused.id);
    const ms = Math.round(performance.now() - t1);
    // the same run without the interruption, for comparison
    const straight = await engine.startStage('sft', CONFIG);
    await engine.wait(straight);
    const equal = await sameTensors(db, paused.id, straight);
    put('second', {
      runId: paused.id,
      status,
      events,
      checkpointStep: ck?.step,
      metricSteps: metrics.map((m) => m.step),
      losses: metrics.map((m) => m.values.loss),
      ms,
      equalToUninterrupted: equal,
    });
    ds.phase = 'done';
  }
}

main().catch((e: unknown) => {
  put('error', e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  log(String(e));
});
