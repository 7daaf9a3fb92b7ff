// The malformed corpus (tests/helpers/malformed.ts) in the page (Chromium, the built app): every model folder and
// zip picked on the Model tab, every dataset imported on the Data tab and every reward adapter opened on
// the Share tab is refused with one line that names the file and says what is wrong, and what was loaded
// before stays loaded. Without WebGPU this fails; nothing skips.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { zipFiles } from '../src/io/zip.ts';
import { MODEL_WORK, openApp, tab } from './helpers/app.ts';
import { useBuiltEnv } from './helpers/browser-env.ts';
import { ADAPTER_CASES, DATA_CASES, MODEL_CASES, modelBase, rewardAdapterBase, ZIP_CASES, type Case, type Files } from './helpers/malformed.ts';

const env = useBuiltEnv();
const tmp = mkdtempSync(join(tmpdir(), 'malformed-page-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const picked = (files: Files) => [...files].map(([name, bytes]) => ({ name, mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) }));

/** The text of `selector` in the page once it is there and differs from `before` (the previous case's message). */
async function newText(page: Page, selector: string, before: string): Promise<string> {
  const el = page.locator(selector).first();
  await page.waitForFunction(
    ({ sel, old }) => {
      const find = (root: Document | ShadowRoot): Element | null => {
        const hit = root.querySelector(sel);
        if (hit) return hit;
        for (const host of root.querySelectorAll('*'))
          if (host.shadowRoot) {
            const x = find(host.shadowRoot);
            if (x) return x;
          }
        return null;
      };
      const t = find(document)?.textContent?.trim();
      return t !== undefined && t !== '' && t !== old;
    },
    { sel: selector, old: before },
    MODEL_WORK,
  );
  return (await el.innerText()).trim();
}

function check(c: Case, text: string): void {
  const said = `${c.id} (${c.rule}): ${JSON.stringify(text)}`;
  expect(text.includes('\n'), `more than one line: ${said}`).toBe(false);
  expect(text, said).toContain(c.file);
  expect(text, said).toMatch(c.match);
}

describe('the malformed corpus, in the page', () => {
  it('refuses each case where it was picked, with one line naming the file; what was loaded stays', async () => {
    const { files: adapter } = await rewardAdapterBase(tmp); // before the page: the CLI's GPU start, not beside the browser's
    const { page, errors } = await openApp(env.browser, env.url);
    const info = () => page.locator('#model-info').innerText();
    const loaded = await info();

    // Model tab: folders as picked files, and zips of them
    const base = modelBase();
    let last = '';
    for (const c of MODEL_CASES) {
      await page.setInputFiles('#pick-files', picked(c.make(base)));
      last = await newText(page, '#load-error', last);
      check(c, last);
    }
    for (const c of ZIP_CASES) {
      await page.setInputFiles('#pick-files', [{ name: c.file, mimeType: 'application/zip', buffer: Buffer.from(c.make(base)) }]);
      last = await newText(page, '#load-error', last);
      check(c, last);
    }
    expect(await info()).toBe(loaded); // the built-in model is still the one loaded

    // Data tab: each file refused in one message (a whole-file problem, or its one bad line)
    await tab(page, 'data');
    last = '';
    for (const c of DATA_CASES) {
      await page.setInputFiles('#import-file', { name: c.file, mimeType: 'application/octet-stream', buffer: Buffer.from(c.bytes) });
      last = await newText(page, '#import-errors li', last);
      check(c, last);
      expect(await page.locator('data-view #import-errors li').count(), c.id).toBe(1);
    }

    // Share tab: the valid reward adapter opens on its base model (the GPT-2 fixture, picked first), each broken one is refused
    await tab(page, 'model');
    await page.setInputFiles('#pick-files', picked(base));
    await page.waitForFunction(
      () =>
        /GPT-2: 2 layers/.test(
          document.querySelector('rlhf-app')?.shadowRoot?.querySelector('model-view')?.shadowRoot?.querySelector('#model-info')?.textContent ?? '',
        ),
      undefined,
      MODEL_WORK,
    );
    await tab(page, 'share');
    const open = async (files: Files, name: string) => {
      await page.setInputFiles('#open-file', { name, mimeType: 'application/zip', buffer: Buffer.from(zipFiles(files)) });
      await page.click('#open-go');
    };
    await open(adapter, 'reward-adapter.zip');
    await newText(page, '#open-status', '');
    last = '';
    for (const c of ADAPTER_CASES) {
      await open(c.make(adapter), `${c.id}.zip`);
      last = await newText(page, '#open-error', last);
      check(c, last);
    }
    expect(errors).toEqual([]);
    await page.close();
  }, 600_000);
});
