// The training worker: the engine (engine.ts) on the browser's GPU and the page's IndexedDB, exposed through
// comlink. The page: Comlink.wrap<Engine>(new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })),
// Engine being api.ts's contract, callbacks wrapped in Comlink.proxy. A browser without WebGPU fails the first call with a clear message.
import * as Comlink from 'comlink';
import { createBrowserGpu } from '../gpu/browser.ts';
import { openStore } from '../store/db.ts';
import { createEngine } from './engine.ts';

// the GPU as a factory: after a device loss the engine asks for a new one (reconnectGpu)
Comlink.expose(createEngine({ gpu: createBrowserGpu, store: openStore() }));
