// A lost GPU in a real page (driven by tests/worker-browser.test.ts): SFT runs in the worker; after step 2 the
// worker's device is destroyed. The page is told, the run fails saying how to go on, reconnectGpu gets a
// new device and builds the model again, and the run resumed on it ends bit for bit as an uninterrupted
// one. Results go to document.body.dataset.
import * as Comlink from 'comlink';
import { getMetrics, openStore, saveDataset, USER_DATASET } from '../../src/store/db.ts';
import type { Engine, GpuProblem } from '../../src/worker/api.ts';
import { sameTensors } from './same-tensors.ts';

type TestEngine = Engine & { loseDevice(): void; deviceCount(): number };
const ds = document.body.dataset;
const put = (k: string, v: unknown) => (ds[k] = typeof v === 'string' ? v : JSON.stringify(v));

const data = ['the cat', 'a dog', 'on the mat', 'the dog ran', 'a cat sat', 'the mat'].map((p, i) => ({
  kind: 'completion' as const,
  prompt: p,
  completion: ['sat', 'ran', 'on a mat', 'the cat', 'a dog', 'sat on'][i]!,
}));
const CONFIG = { seed: 5, steps: 3, batchSize: 2, seqLen: 16, lr: 1e-3, checkpointEvery: 1 };

async function main(): Promise<void> {
  const engine = Comlink.wrap<TestEngine>(new Worker(new URL('./gpu-lost-worker.ts', import.meta.url), { type: 'module' }));
  const tokenizer = new Uint8Array(await (await fetch('/tests/fixtures/gpt2-tiny/tokenizer.json')).arrayBuffer());
  await engine.loadModel({ url: '/models/gpt2-tiny/', files: new Map([['tokenizer.json', tokenizer]]) });
  const problems: string[] = [];
  await engine.watchGpu(Comlink.proxy((p: GpuProblem) => void problems.push(p.kind)));
  // the user's demonstrations, where the page keeps them: the engine reads a run's data from the store
  const db = await openStore();
  await saveDataset(db, { id: USER_DATASET, name: 'My data', records: data, createdAt: 1 });
  let lost = false;
  const id = await engine.startStage(
    'sft',
    CONFIG,
    Comlink.proxy({
      onProgress: (p: { step: number }) => {
        if (p.step === 2 && !lost) {
          lost = true;
          void engine.loseDevice();
        }
      },
    }),
  );
  const status = await engine.wait(id);
  const error = (await engine.getRun(id)).error;
  const back = await engine.reconnectGpu();
  if (back.lostRun) await engine.resume(back.lostRun);
  const resumed = await engine.wait(id);
  const straight = await engine.startStage('sft', { ...CONFIG, checkpointEvery: 0 });
  await engine.wait(straight);
  put('result', {
    status,
    error,
    problems,
    lostRun: back.lostRun === id,
    model: back.model?.arch,
    devices: await engine.deviceCount(),
    resumed,
    steps: (await getMetrics(db, id)).map((m) => m.step),
    equal: await sameTensors(db, id, straight),
  });
}

main().catch((e: unknown) => put('error', e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e)));
