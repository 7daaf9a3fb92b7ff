// The self-test page (selftest.html): the engine's self-test on the visitor's GPU (the adapter, a matmul
// against the CPU, the tiny GPT-2's loss against PyTorch's) and streamed samples of the built-in model.
import { createBrowserGpu } from './gpu/browser.ts';
import { NoWebGPUError } from './gpu/device.ts';
import { demoSamples } from './demo.ts';
import { selfTest, type SelfTestRow } from './selftest.ts';
import { showNoWebGPU } from './ui/no-webgpu.ts';

const app = document.getElementById('app')!;

function text(tag: string, content: string, cls?: string): HTMLElement {
  const el = document.createElement(tag);
  el.textContent = content; // model and user text is never parsed as HTML
  if (cls) el.className = cls;
  return el;
}

function noWebGPU(message: string): void {
  showNoWebGPU(app, message);
  document.body.dataset.selftest = 'no-webgpu';
}

async function start(): Promise<void> {
  let gpu;
  try {
    gpu = await createBrowserGpu();
  } catch (e) {
    if (e instanceof NoWebGPUError) return noWebGPU(e.message);
    throw e;
  }
  const table = document.createElement('table');
  const head = table.insertRow();
  for (const h of ['check', 'result', 'detail']) head.append(text('th', h));
  app.replaceChildren(
    text('p', `Adapter: ${gpu.adapter.name}`),
    text(
      'p',
      `Features: ${gpu.adapter.features.filter((f) => ['shader-f16', 'subgroups', 'timestamp-query'].includes(f)).join(', ') || 'none of shader-f16, subgroups, timestamp-query'}`,
      'muted',
    ),
    text(
      'p',
      `Limits: ${(gpu.adapter.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB per storage binding, ${(gpu.adapter.limits.maxComputeWorkgroupStorageSize / 1024).toFixed(0)} KiB workgroup storage`,
      'muted',
    ),
    table,
  );
  const rows: SelfTestRow[] = await selfTest(
    gpu,
    async (path) => new Uint8Array(await (await fetch(path)).arrayBuffer()),
    (row) => {
      const tr = table.insertRow();
      tr.append(text('td', row.name), text('td', row.pass ? 'pass' : 'FAIL', row.pass ? 'pass' : 'fail'), text('td', row.detail));
    },
  );
  document.body.dataset.selftest = rows.every((r) => r.pass) ? 'pass' : 'fail';

  // The built-in model, from this site (works offline): three samples for a demo prompt, streamed.
  const section = document.createElement('section');
  const promptEl = text('p', 'Loading the built-in model…', 'muted');
  const list = document.createElement('ol');
  section.append(text('h2', 'Built-in model'), promptEl, list);
  app.append(section);
  const items = [0, 1, 2].map(() => list.appendChild(document.createElement('li')));
  await demoSamples(
    gpu,
    'models/default/',
    3,
    (p) => (promptEl.textContent = `Prompt: ${p}`),
    (k, t) => (items[k]!.textContent = t),
    seedParam(),
  );
  document.body.dataset.demo = 'done';
}

/** `selftest.html?seed=N`: the same demo prompt and samples every time (tests); without it, random ones. */
function seedParam(): number | undefined {
  const s = new URLSearchParams(location.search).get('seed');
  return s !== null && /^\d+$/.test(s) ? Number(s) : undefined;
}

start().catch((e: unknown) => {
  app.replaceChildren(text('p', `Self-test failed: ${e instanceof Error ? e.message : String(e)}`, 'fail'));
  document.body.dataset.selftest = 'fail';
});
