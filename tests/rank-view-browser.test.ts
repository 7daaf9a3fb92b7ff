// <rank-view> in Chromium: rank three completions with the keyboard alone (move, tie, score, flag),
// submit; the ranking is in IndexedDB before the next prompt shows, survives a reload, and model or
// prompt text containing HTML is shown as literal text.
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useBrowserEnv } from './browser-env.ts';

const env = useBrowserEnv();

describe('rank view', () => {
  it('ranks by keyboard and by drag-and-drop, saves to IndexedDB, keeps the ranking across a reload, and shows HTML as text', async () => {
    const page = await env.browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(env.url + 'tests/pages/rank.html');
    await page.waitForSelector('body[data-ready="0"]', { timeout: 60_000 });
    expect(await page.locator('rank-view .prompt').innerText()).toContain('<img src=x');
    // third completion to the top, then tie the (now) third with the second, score and flag the best
    for (const k of ['ArrowDown', 'ArrowDown']) await page.keyboard.press(k);
    await page.keyboard.press('Alt+ArrowUp');
    await page.keyboard.press('Alt+ArrowUp');
    await page.keyboard.press('7');
    await page.keyboard.press('c');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('=');
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/rank-view.png', fullPage: true });
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30_000 });
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
    const saved = JSON.parse((await page.evaluate(() => document.body.dataset.saved))!) as { completions: string[]; ranks: number[]; scores: (number | null)[]; flags: string[][] }[];
    expect(saved.length).toBe(1);
    expect(saved[0]!.completions).toEqual(['Hello Ana, lovely to see you today.', 'Hi Ana!', 'Go away.']);
    expect(saved[0]!.ranks).toEqual([0, 1, 1]);
    expect(saved[0]!.scores).toEqual([7, null, null]);
    expect(saved[0]!.flags).toEqual([['satisfies-constraint'], [], []]);
    expect(await page.locator('#count').innerText()).toBe('1 ranking saved');
    expect(await page.locator('rank-view .prompt').innerText()).toBe('Name a pet fish.');
    expect(await page.evaluate(() => document.body.dataset.xss)).toBeUndefined();

    // the mouse: drag the second completion above the first, then submit
    await page.locator('rank-view li').nth(1).dragTo(page.locator('rank-view li').nth(0));
    expect(await page.locator('rank-view li > div:first-child').allInnerTexts()).toEqual(['Fish', 'Bubbles']);
    // and the selected completion's score and flags by mouse, then Enter (the keyboard is back on the view)
    await page.locator('rank-view li').nth(1).click();
    await page.locator('rank-view .chip.score', { hasText: '3' }).click();
    await page.locator('rank-view .chip.flag[data-flag="opinion"]').click();
    expect(await page.locator('rank-view .chip.flag[data-flag="opinion"]').getAttribute('aria-pressed')).toBe('true');
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-ready="2"]', { timeout: 30_000 });
    const both = JSON.parse((await page.evaluate(() => document.body.dataset.saved))!) as { completions: string[]; ranks: number[] }[];
    expect(both[1]).toMatchObject({ completions: ['Fish', 'Bubbles'], ranks: [0, 1], scores: [null, 3], flags: [[], ['opinion']] });
    expect(errors).toEqual([]);
    await page.close();
  });
});
