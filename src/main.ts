// The playground's entry: check that this browser has WebGPU (else explain, instead of a blank page),
// start the engine in a web worker (training never blocks the page), open the store, ask the browser
// to keep that storage, and mount the app.
import * as Comlink from 'comlink';
import { openStore, requestPersistence } from './store/db.ts';
import { AppContext } from './ui/context.ts';
import { showNoWebGPU } from './ui/no-webgpu.ts';
import type { Engine } from './worker/api.ts';
import type { RlhfApp } from './ui/app.ts';
import './ui/app.ts';

const boot = document.getElementById('boot')!;

async function hasWebGPU(): Promise<string | undefined> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return 'WebGPU is not available here (no navigator.gpu).';
  try {
    if (!(await gpu.requestAdapter())) return 'WebGPU is present but no GPU adapter was found.';
  } catch (e) {
    return `WebGPU is present but asking for a GPU adapter failed: ${e instanceof Error ? e.message : String(e)}`;
  }
  return undefined;
}

async function start(): Promise<void> {
  const missing = await hasWebGPU();
  if (missing) {
    showNoWebGPU(boot, missing);
    document.body.dataset.app = 'no-webgpu';
    return;
  }
  const worker = new Worker(new URL('./worker/worker.ts', import.meta.url), { type: 'module' });
  const engine = Comlink.wrap<Engine>(worker);
  const store = await openStore();
  const ctx = new AppContext(engine, store);
  const app = document.createElement('rlhf-app') as RlhfApp;
  app.ctx = ctx;
  boot.replaceWith(app);
  document.body.dataset.app = 'ready';
  void requestPersistence().then((kept) => (app.persisted = kept));
}

start().catch((e: unknown) => {
  const p = document.createElement('p');
  p.className = 'fail';
  p.textContent = `The playground could not start: ${e instanceof Error ? e.message : String(e)}`;
  boot.replaceChildren(p);
  document.body.dataset.app = 'failed';
});
