// The training worker as src/worker/worker.ts makes it, plus one test hook: loseDevice() destroys the
// device the engine uses now (what a driver reset or a GPU timeout does to a page), from inside the worker.
import * as Comlink from 'comlink';
import { createBrowserGpu } from '../../src/gpu/browser.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';
import { openStore } from '../../src/store/db.ts';
import { createEngine } from '../../src/worker/engine.ts';

const devices: Gpu[] = [];
const engine = createEngine({
  gpu: async () => {
    const g = await createBrowserGpu();
    devices.push(g);
    return g;
  },
  store: openStore(),
});
Comlink.expose(
  Object.assign(engine, {
    loseDevice: () => devices.at(-1)!.device.destroy(),
    deviceCount: () => devices.length,
  }),
);
