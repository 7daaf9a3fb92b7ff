// What the end-to-end tests of the built app share: screenshots, tab switching, waiting for the model,
// ranking a prompt by keyboard, and reading a view's shadow DOM. Playwright's CSS locators pierce open
// shadow roots; page.waitForFunction runs in the page and does not, so it walks the roots itself.
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';

export const SHOTS = 'test-results/app';
/** How long a step that runs the model (sampling, training, export) may take: SwiftShader on two
 *  shared CPU cores, beside the rest of the suite, is slow and uneven; the test's own limit bounds the sum. */
export const MODEL_WORK = { timeout: 300_000 };

const t0 = Date.now();
/** A full-page screenshot to test-results/app/<name>.png, logging when it was taken. From the top: a page
 *  scrolled down would draw its sticky header in the middle of the picture. */
export async function shot(page: Page, name: string): Promise<Buffer> {
  console.log(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await page.evaluate(() => window.scrollTo(0, 0));
  return page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

export async function tab(page: Page, id: string): Promise<void> {
  await page.click(`#tab-${id}`);
  await page.waitForSelector(`#tab-${id}[aria-selected="true"]`);
}

export async function modelLoaded(page: Page): Promise<void> {
  await page.waitForSelector('body[data-app="ready"]', { timeout: 60_000 });
  await page.waitForSelector('#model-params', { state: 'attached', ...MODEL_WORK });
}

/**
 * A page of the app with the built-in model loaded, and the page errors it throws from then on (a test ends
 * expecting none). The Rank tab's repeats of earlier comparisons are off unless `recheckEvery` (1 in N) is
 * given: the tests rank their prompts in order, and a repeat comes at random (tests/labeling.test.ts
 * covers the rule; tests/app-labelling-e2e.test.ts sets 1, so a repeat comes as soon as one can).
 */
export async function openApp(
  browser: Browser,
  url: string,
  opts: { randomSeed?: number; recheckEvery?: number } = {},
): Promise<{ page: Page; errors: string[] }> {
  mkdirSync(SHOTS, { recursive: true });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.addInitScript((every) => localStorage.setItem('rlhf-playground:recheck-every', String(every)), opts.recheckEvery ?? 0);
  // the page's Math.random from a seed (mulberry32): what the Rank tab samples, which prompt Compare
  // picks and which side is tuned are then the same on every run, so a test's outcome is too
  if (opts.randomSeed !== undefined) {
    await page.addInitScript((seed) => {
      let a = seed >>> 0;
      Math.random = () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = Math.imul(a ^ (a >>> 15), 1 | a);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    }, opts.randomSeed);
  }
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // the built app's Content-Security-Policy (vite.config.ts): anything it refuses fails the test
  page.on('console', (m) => void (m.type() === 'error' && /Content Security Policy/.test(m.text()) && errors.push(m.text())));
  await page.goto(url);
  await modelLoaded(page);
  return { page, errors };
}

/** Fills the Train tab's hyperparameter fields (#cfg-<key>) as a person types them. */
export async function setFields(page: Page, fields: [string, string][]): Promise<void> {
  for (const [k, v] of fields) {
    await page.fill(`#cfg-${k}`, v);
    await page.locator(`#cfg-${k}`).dispatchEvent('change');
  }
}

/** Pastes JSONL into the Data tab's import box and waits until `prompts` prompt rows are listed. */
export async function importText(page: Page, jsonl: string, prompts: number): Promise<void> {
  await tab(page, 'data');
  await page.fill('#import-text', jsonl);
  await page.click('#import-go');
  await page.waitForFunction(
    (n) => document.querySelector('rlhf-app')?.shadowRoot?.querySelector('data-view')?.shadowRoot?.querySelectorAll('.prompt-row').length === n,
    prompts,
    { timeout: 30_000 },
  );
}

/** Sets K (and the answers' length, when given) on the Rank tab and starts ranking. */
export async function startRanking(page: Page, k: number, maxNewTokens?: number): Promise<void> {
  await tab(page, 'rank');
  await page.fill('#rank-k', String(k));
  await page.locator('#rank-k').dispatchEvent('change');
  if (maxNewTokens !== undefined) {
    const box = page.locator('#rank-max-tokens');
    await box.fill(String(maxNewTokens));
    await box.dispatchEvent('change');
  }
  await page.click('#rank-start');
}

/** Waits for the rank view of a new prompt, ranks it with the keyboard alone and submits. */
export async function rankWithKeyboard(page: Page, expectRankings: number, keys: string[], screenshot?: string): Promise<void> {
  await page.waitForFunction(
    (n) => {
      const panel = document.querySelector('rlhf-app')?.shadowRoot?.querySelector('rank-panel')?.shadowRoot;
      // the counter shows the rankings before this one, and the rank view of the next prompt is up
      return (
        panel?.querySelector('#comparisons')?.textContent?.match(new RegExp(`^${n - 1} rankings? ·`)) &&
        panel.querySelector('rank-view')?.shadowRoot?.querySelector('li')
      );
    },
    expectRankings,
    MODEL_WORK,
  );
  for (const k of keys) await page.keyboard.press(k);
  if (screenshot) await shot(page, screenshot);
  await page.keyboard.press('Enter');
  await page.waitForFunction(
    (n) =>
      document
        .querySelector('rlhf-app')
        ?.shadowRoot?.querySelector('rank-panel')
        ?.shadowRoot?.querySelector('#comparisons')
        ?.textContent?.match(new RegExp(`^${n} rankings? ·`)),
    expectRankings,
    { timeout: 30_000 },
  );
}

/** Picks a stage on the Train tab, fills its fields, starts it; resolves with the run id once it trains. */
export async function startRun(page: Page, stage: string, fields: [string, string][]): Promise<string> {
  await tab(page, 'train');
  await page.check(`#stage input[value="${stage}"]`);
  await setFields(page, fields);
  await page.click('#start');
  await page.waitForSelector('#run[data-status="running"]', MODEL_WORK);
  return (await page.locator('#run').getAttribute('data-run'))!;
}

/** Waits until the Train tab shows the run as done. */
export async function runDone(page: Page, runId: string): Promise<void> {
  await page.waitForSelector(`#run[data-run="${runId}"][data-status="done"]`, MODEL_WORK);
}

/** Every record of one of the page's IndexedDB stores, read straight from it. */
export const stored = <T>(page: Page, store: string) =>
  page.evaluate(
    (name) =>
      new Promise<unknown[]>((resolve, reject) => {
        const open = indexedDB.open('rlhf-playground');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const req = open.result.transaction(name).objectStore(name).getAll();
          req.onsuccess = () => {
            open.result.close();
            resolve(req.result);
          };
          req.onerror = () => reject(req.error);
        };
      }),
    store,
  ) as Promise<T[]>;
