// The page in a real browser: Debian's Chromium (WebGPU on SwiftShader) driven by playwright-core,
// against Vite's dev server on localhost (what `npm run dev` serves). The self-test must pass there.
import { mkdirSync } from 'node:fs';
import { useBrowserEnv } from './helpers/browser-env.ts';
import { describe, expect, it } from 'vitest';

const env = useBrowserEnv();

describe('playground page', () => {
  it('runs the engine self-test on the browser GPU and passes', async () => {
    const page = await env.browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // a fixed demo prompt and sampling seed: with a random one, a one-sentence greeting can be 'Hi.' twice in three
    await page.goto(env.url + 'selftest.html?seed=1');
    await page.waitForSelector('body[data-selftest]', { timeout: 180_000 });
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/selftest.png', fullPage: true });
    const state = await page.evaluate(() => document.body.dataset.selftest);
    const body = await page.evaluate(() => document.body.innerText);
    expect(errors).toEqual([]);
    expect(state, body).toBe('pass');
    expect(body).toMatch(/Adapter: /);
    expect(body).toMatch(/gpt2-tiny loss vs PyTorch\s+pass/);
    // SwiftShader has no 'shader-f16': a frozen model (the base under LoRA) keeps its weights in f32 here
    expect(body).toMatch(/frozen gpt2-tiny loss vs PyTorch\s+pass\s+f32 weights \(the adapter has no 'shader-f16'\)/);
    // the tokens decoding draws on the device (large vocabularies): the CPU's greedy tokens, under SwiftShader's compiler too
    expect(body).toMatch(/tokens drawn on the device\s+pass\s+8 greedy tokens on the device/);
    // the built-in model, served by this site: three streamed samples for a demo prompt
    await page.waitForSelector('body[data-demo="done"]', { timeout: 300_000 });
    await page.screenshot({ path: 'test-results/builtin-model.png', fullPage: true });
    const samples = await page.$$eval('section li', (els) => els.map((e) => e.textContent ?? ''));
    expect(samples.length).toBe(3);
    expect(samples.filter((t) => /[a-z]+ [a-z]+/i.test(t)).length).toBeGreaterThanOrEqual(2);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('says clearly when the browser has no WebGPU', async () => {
    const page = await env.browser.newPage();
    await page.addInitScript(() => Object.defineProperty(navigator, 'gpu', { value: undefined }));
    await page.goto(env.url + 'selftest.html');
    await page.waitForSelector('body[data-selftest]', { timeout: 60_000 });
    expect(await page.evaluate(() => document.body.dataset.selftest)).toBe('no-webgpu');
    expect(await page.evaluate(() => document.body.innerText)).toMatch(/WebGPU is not available here.*\n*.*Chrome or Edge 113/s);
    await page.close();
  });
});
