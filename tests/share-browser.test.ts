// <share-view> in Chromium with the real worker and store, against the fake Hub of tests/helpers/fake-hub.ts:
// download the user's data and the trained adapter, sign in with Hugging Face through the OAuth redirect
// (PKCE; the page reloads), publish the adapter with its model card, check what the Hub received, then
// open it back from the Hub as the policy. A browser without WebGPU fails this test; nothing is skipped.
import { mkdirSync, readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importDataBundle } from '../src/ui/data-io.ts';
import { unzipFiles } from '../src/io/zip.ts';
import { parseSafetensors, readTensorF32 } from '../src/io/safetensors.ts';
import { useBrowserEnv } from './helpers/browser-env.ts';
import { startFakeHub, type FakeHub } from './helpers/fake-hub.ts';
import { readFrontMatter } from './helpers/front-matter.ts';

const env = useBrowserEnv();
let hub: FakeHub;
beforeAll(async () => {
  hub = await startFakeHub({ clientId: 'playground-test', user: 'alice' });
});
afterAll(() => hub.close());

async function ready(page: Page): Promise<void> {
  await page.waitForSelector('body[data-ready], body[data-error]', { timeout: 240_000 });
  expect(await page.evaluate(() => document.body.dataset.error)).toBeUndefined();
}

async function downloaded(page: Page, button: string): Promise<Uint8Array> {
  const [d] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
  return new Uint8Array(readFileSync((await d.path())!));
}

describe('share view', () => {
  it('downloads, signs in with OAuth, publishes to the Hub and opens the published adapter back', async () => {
    const page = await env.browser.newPage(); // a fresh context: empty IndexedDB and storage
    const errors: string[] = [],
      logs: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => void logs.push(m.text()));
    await page.goto(`${env.url}tests/pages/share.html?hub=${encodeURIComponent(hub.url)}&client=playground-test#share`);
    await ready(page);
    const runId = (await page.evaluate(() => document.body.dataset.runId))!;

    // Download: the data as the zip the Data tab imports back; the run's adapter as a zip
    const data = importDataBundle(await downloaded(page, '#download-data'), 'rlhf-playground-data.zip');
    expect(data.errors).toEqual([]);
    expect(data.records.map((r) => r.kind)).toEqual(['completion', 'completion', 'completion', 'completion', 'ranking']);
    await page.selectOption('#share-model', runId);
    const zip = unzipFiles(await downloaded(page, '#download-model'), 'download');
    // a small base from a URL (not on the Hub) travels beside the adapter, with the tokenizer and the model card
    expect([...zip.keys()].sort()).toEqual([
      'README.md',
      'adapter/adapter_config.json',
      'adapter/adapter_model.safetensors',
      'adapter/tokenizer.json',
      'starting-model/config.json',
      'starting-model/generation_config.json',
      'starting-model/model.safetensors',
      'starting-model/tokenizer.json',
    ]);
    expect(new TextDecoder().decode(zip.get('README.md'))).toContain('in `starting-model/` beside the adapter in `adapter/`');
    expect(unzipFiles(await downloaded(page, '#download-cluster'), 'cluster').has('sft.yaml')).toBe(true);

    // Sign in: to the Hub's authorize page and back with a code; the page reloads and finishes the sign-in
    expect(await page.locator('#hub-publish').isDisabled()).toBe(true);
    await Promise.all([page.waitForURL(/[?&]code=/, { timeout: 60_000 }), page.click('#hub-signin')]);
    await ready(page);
    await page.waitForSelector('#hub-user', { timeout: 30_000 });
    expect(await page.locator('#hub-user').innerText()).toBe('alice');
    await page.waitForURL(/#share$/); // back where the user signed in from: the fragment came back through the OAuth state
    expect(page.url()).not.toMatch(/[?&](code|state)=/); // the code left the address bar
    const session = JSON.parse((await page.evaluate(() => sessionStorage.getItem('rlhf-playground:hub-session')))!) as {
      accessToken: string;
      expiresAt: number;
    };
    expect(session.accessToken).toMatch(/^hf_oauth_/);
    expect(session.expiresAt).toBeGreaterThan(Date.now());

    // Publish the run's adapter under the user's account
    await page.selectOption('#share-model', runId);
    await page.fill('#hub-repo', 'tiny-sft');
    await page.fill('#hub-license', 'mit');
    await page.fill('#hub-description', 'A "tiny" test\n---\n<b>not bold</b>');
    await page.waitForFunction(() => document.querySelector('share-view')?.shadowRoot?.querySelector('#hub-card')?.textContent?.includes('not bold'));
    await page.click('#hub-publish');
    await page.waitForSelector('#hub-result, #hub-error', { timeout: 120_000 });
    expect(await page.locator('#hub-error').count(), await page.locator('share-view').innerText()).toBe(0);
    expect(await page.locator('#hub-result').getAttribute('href')).toBe(`${hub.url}/alice/tiny-sft`);
    expect(await page.locator('#hub-result').innerText()).toBe('alice/tiny-sft');

    const repo = hub.repos.get('alice/tiny-sft')!;
    expect([...repo.files.keys()].sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json']); // the tokenizer too, as PEFT repos carry it
    // the same adapter as the download, which names its bundled base instead of the URL the base came from
    const json = (b: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;
    const [pubCfg, dlCfg] = [json(repo.files.get('adapter_config.json')), json(zip.get('adapter/adapter_config.json'))];
    expect(dlCfg.base_model_name_or_path).toBe('starting-model');
    expect({ ...pubCfg, base_model_name_or_path: 'starting-model' }).toEqual(dlCfg);
    // the same tensors as the download (the provenance metadata carries the export's time)
    const [pub, dl] = [repo.files.get('adapter_model.safetensors')!, zip.get('adapter/adapter_model.safetensors')!].map((b, i) =>
      parseSafetensors(b, String(i)),
    );
    expect([...pub!.tensors.keys()].sort()).toEqual([...dl!.tensors.keys()].sort());
    for (const name of dl!.tensors.keys()) expect(readTensorF32(pub!, name)).toEqual(readTensorF32(dl!, name));
    const card = new TextDecoder().decode(repo.files.get('README.md'));
    expect(card).toBe(await page.locator('#hub-card').innerText());
    const { meta, body } = readFrontMatter(card);
    expect(meta.get('library_name')).toBe('peft');
    expect(meta.get('license')).toBe('mit');
    expect(meta.get('tags')).toEqual(['rlhf-playground', 'rlhf', 'sft', 'lora']);
    expect(meta.has('base_model')).toBe(false); // the tiny model came from a URL, not the Hub
    expect(body).toContain('&lt;b>not bold&lt;/b>'); // the HTML shown as text
    expect(hub.commits).toHaveLength(1);
    expect(hub.commits[0]!.auth).toBe(`Bearer ${session.accessToken}`);
    expect(hub.tokens.get(session.accessToken)?.scopes).toEqual(['openid', 'profile', 'write-repos', 'manage-repos']);

    // Open it back from the Hub: the adapter goes on the loaded model and becomes the policy
    await page.fill('#open-hub', 'alice/tiny-sft');
    await page.click('#open-go');
    await page.waitForSelector('#open-status, #open-error', { timeout: 120_000 });
    expect(await page.locator('#open-error').count(), await page.locator('share-view').innerText()).toBe(0);
    expect(await page.locator('#open-status').innerText()).toContain('the adapter alice/tiny-sft');
    expect(hub.requests.some((r) => r.path === '/alice/tiny-sft/resolve/main/adapter_model.safetensors')).toBe(true);

    // the token went where it was needed (the Hub's Authorization header) and nowhere else: not into a
    // published or downloaded file, the model card, a log line, or storage that outlives the tab (the user
    // did not ask to keep it: it is in sessionStorage only)
    const token = session.accessToken,
      has = (b: Uint8Array) => new TextDecoder().decode(b).includes(token);
    expect(
      [...repo.files].filter(([, b]) => has(b)).map(([k]) => k),
      'published files holding the token',
    ).toEqual([]);
    expect(
      [...zip].filter(([, b]) => has(b)).map(([k]) => k),
      'downloaded files holding the token',
    ).toEqual([]);
    expect(
      logs.filter((l) => l.includes(token)),
      'log lines holding the token',
    ).toEqual([]);
    expect(
      await page.evaluate((t) => Object.keys(localStorage).filter((k) => localStorage.getItem(k)!.includes(t)), token),
      'localStorage keys holding the token',
    ).toEqual([]);

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/share-view.png', fullPage: true });
    expect(await page.evaluate(() => document.body.dataset.notices)).toBeUndefined();
    expect(errors).toEqual([]);
    await page.close();
  }, 600_000);
});
