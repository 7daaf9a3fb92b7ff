// The training worker in Chromium (WebGPU on SwiftShader), the page served by Vite's dev server as
// `npm run dev` serves it: SFT in a module worker, progress callbacks on the main thread through
// comlink, a pause, a page reload, and a resume from IndexedDB to the end. A browser without WebGPU
// fails this test (the page reports an error); nothing is skipped.
import { mkdirSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { useBrowserEnv } from './helpers/browser-env.ts';
import { describe, expect, it } from 'vitest';

const env = useBrowserEnv();

type Event = { kind: string; step: number; status?: string; mainThread: boolean };
type Phase = {
  runId: string;
  status: string;
  events: Event[];
  checkpointStep: number;
  metricSteps: number[];
  losses?: number[];
  ms: number;
  equalToUninterrupted?: boolean;
};

async function phase(page: Page, name: 'paused' | 'done', key: 'first' | 'second'): Promise<Phase> {
  await page.waitForSelector(`body[data-phase="${name}"], body[data-error]`, { timeout: 400_000 });
  const ds = await page.evaluate(() => ({ ...document.body.dataset }));
  expect(ds.error, await page.evaluate(() => document.body.innerText)).toBeUndefined();
  return JSON.parse(ds[key]!) as Phase;
}

describe('training worker in the browser', () => {
  it('runs SFT in a worker, pauses, survives a reload and resumes from IndexedDB to the uninterrupted result', async () => {
    const page = await env.browser.newPage(); // a fresh context: an empty IndexedDB
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // console errors too, except the 404s of the optional model files the loader probes (tokenizer_config.json, ...)
    page.on('console', (m) => void (m.type() === 'error' && !/status of 404/.test(m.text()) && errors.push(m.text())));
    await page.goto(`${env.url}tests/pages/worker.html`);

    const first = await phase(page, 'paused', 'first');
    const model = JSON.parse((await page.evaluate(() => document.body.dataset.model))!) as { arch: string; params: number; loadEvents: number; ms: number };
    expect(model.arch).toBe('gpt2');
    expect(model.loadEvents).toBeGreaterThan(0); // load progress reached the page
    expect(first.status).toBe('paused');
    const progress = first.events.filter((e) => e.kind === 'progress');
    expect(progress.map((e) => e.step)).toEqual([1, 2]);
    expect(first.events.every((e) => e.mainThread)).toBe(true);
    expect(first.events.filter((e) => e.kind === 'status').map((e) => e.status)).toEqual(['running', 'paused']);
    expect(first.checkpointStep).toBe(2);
    expect(first.metricSteps).toEqual([1, 2]);

    await page.reload(); // the worker dies with the page; IndexedDB keeps the run
    const second = await phase(page, 'done', 'second');
    expect(second.runId).toBe(first.runId);
    expect(second.status).toBe('done');
    expect(second.events.filter((e) => e.kind === 'progress').map((e) => e.step)).toEqual([3]);
    expect(second.checkpointStep).toBe(3);
    expect(second.metricSteps).toEqual([1, 2, 3]);
    expect(second.losses!.every((l) => Number.isFinite(l))).toBe(true);
    expect(second.equalToUninterrupted).toBe(true); // weights and AdamW moments equal an uninterrupted run's, bit for bit
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/worker.png', fullPage: true });
    expect(errors).toEqual([]);
    console.log(`browser worker: model load ${model.ms} ms, 2 steps + pause ${first.ms} ms, resume + 1 step ${second.ms} ms`);
    await page.close();
  });

  it('a device lost in the worker during a run: the page is told, the engine gets a new one, and the run resumed on it ends as an uninterrupted one', async () => {
    const page = await env.browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${env.url}tests/pages/gpu-lost.html`);
    await page.waitForSelector('body[data-result], body[data-error]', { timeout: 400_000 });
    const ds = await page.evaluate(() => ({ ...document.body.dataset }));
    expect(ds.error).toBeUndefined();
    const r = JSON.parse(ds.result!) as {
      status: string;
      error: string;
      problems: string[];
      lostRun: boolean;
      model: string;
      devices: number;
      resumed: string;
      steps: number[];
      equal: boolean;
    };
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(
      /GPU device was lost .*Reconnect the GPU \(or reload the page\), then resume the run: it goes on from its checkpoint of step [12]\.$/,
    );
    expect(r.problems).toEqual(['lost']);
    expect([r.lostRun, r.model, r.devices, r.resumed]).toEqual([true, 'gpt2', 2, 'done']);
    expect(r.steps).toEqual([1, 2, 3]);
    expect(r.equal).toBe(true); // weights and AdamW moments as the run without the loss, bit for bit
    expect(errors).toEqual([]);
    await page.close();
  }, 400_000);
});
