// <rank-view> in Chromium: rank three completions with the keyboard alone (move, tie, score, flag),
// submit; the ranking is in IndexedDB before the next prompt shows, survives a reload, and model or
// prompt text containing HTML is shown as literal text. <pair-view> the same way, keyboard and mouse:
// every verdict, the reason, a better answer for "both bad", a skip; and the guidelines edited and kept.
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useBrowserEnv } from './helpers/browser-env.ts';

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
    const saved = JSON.parse((await page.evaluate(() => document.body.dataset.saved))!) as {
      completions: string[];
      ranks: number[];
      scores: (number | null)[];
      flags: string[][];
    }[];
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
    // a reason, by mouse ('r' by keyboard): typed letters stay in it (no flag), Enter in it submits the ranking
    await page.locator('rank-view .chip.why').click();
    await page.keyboard.type('a name, not a word');
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-ready="2"]', { timeout: 30_000 });
    const both = JSON.parse((await page.evaluate(() => document.body.dataset.saved))!) as { completions: string[]; ranks: number[] }[];
    expect(both[1]).toEqual(
      expect.objectContaining({
        completions: ['Fish', 'Bubbles'],
        ranks: [0, 1],
        scores: [null, 3],
        flags: [[], ['opinion']],
        rationale: 'a name, not a word',
      }),
    );
    expect(errors).toEqual([]);
    await page.close();
  });

  it('judges pairs by keyboard and by mouse: sides shown, every verdict, the reason, a better answer when both are bad, a skip; edits the guidelines', async () => {
    const page = await env.browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(env.url + 'tests/pages/pair.html');
    const ready = (n: string) => page.waitForSelector(`body[data-ready="${n}"]`, { timeout: 60_000 });
    const saved = async () => JSON.parse((await page.evaluate(() => document.body.dataset.saved))!) as Record<string, unknown>[];
    const sides = () => page.locator('pair-view .side .text').allInnerTexts();
    await ready('0/0');
    expect(await page.locator('pair-view .prompt').innerText()).toContain('<img src=x');
    expect(await sides()).toEqual(['Go away.', 'Hi Ana!']); // drawn the other way round
    // keyboard: a reason ('r', typed, Enter gives the keys back), then B is better
    await page.keyboard.press('r');
    await page.keyboard.type('only B greets her');
    await page.keyboard.press('Enter');
    await page.keyboard.press('ArrowRight');
    await ready('1/0');
    expect((await saved())[0]).toMatchObject({
      completions: ['Hi Ana!', 'Go away.'],
      ranks: [0, 1],
      verdict: 'b',
      shown: [1, 0],
      rationale: 'only B greets her',
    });
    // both bad ('n'), Escape back to the verdict, 'n' again: the better answer is written and saved with Ctrl+Enter
    expect(await sides()).toEqual(['Fish', 'Rock']);
    await page.keyboard.press('n');
    await page.keyboard.press('Escape');
    expect(await page.locator('pair-view textarea.better-text').count()).toBe(0);
    await page.keyboard.press('n');
    await page.keyboard.type('Bubbles');
    await page.keyboard.press('Control+Enter');
    await ready('2/0');
    expect((await saved())[1]).toMatchObject({ prompt: 'Name a pet fish.', ranks: [0, 0], verdict: 'both-bad', shown: [0, 1] });
    expect(await page.evaluate(() => document.body.dataset.demos)).toBe('["Bubbles"]');
    // the mouse: a tie
    await page.locator('pair-view button.verdict[data-verdict="tie"]').click();
    await ready('3/0');
    expect((await saved())[2]).toMatchObject({ prompt: 'Say hi.', ranks: [0, 0], verdict: 'tie' });
    // both bad, back to the verdict, both bad again, saved without an answer
    await page.locator('pair-view button.verdict[data-verdict="both-bad"]').click();
    await page.locator('pair-view button.back').click();
    await page.locator('pair-view button.verdict[data-verdict="both-bad"]').click();
    await page.locator('pair-view button.save-both-bad').click();
    await ready('4/0');
    expect((await saved())[3]).toMatchObject({ prompt: 'Thank Omar.', verdict: 'both-bad' });
    expect(await page.evaluate(() => document.body.dataset.demos)).toBe('["Bubbles"]');
    // Escape skips; then by mouse, a reason and A is better
    await page.keyboard.press('Escape');
    await ready('4/1');
    await page.locator('pair-view button.why').click();
    await page.locator('pair-view input.rationale').fill('A is kind');
    await page.locator('pair-view button.verdict[data-verdict="a"]').click();
    await ready('5/1');
    expect((await saved())[4]).toMatchObject({ completions: ['Hi Ana!', 'Go away.'], ranks: [0, 1], verdict: 'a', shown: [0, 1], rationale: 'A is kind' });
    expect(await page.evaluate(() => document.body.dataset.xss)).toBeUndefined();

    // the guidelines: the default, edited, kept over a reload
    expect(await page.locator('guidelines-panel #guidelines-text').innerText()).toContain('Truthful');
    await page.locator('guidelines-panel button.edit-guidelines').click();
    await page.locator('guidelines-panel textarea.guidelines-text').fill('# Ours\nShort answers win.');
    await page.locator('guidelines-panel button.save-guidelines').click();
    await page.reload();
    await ready('5/0');
    expect(await page.locator('guidelines-panel #guidelines-text').innerText()).toBe('# Ours\nShort answers win.');
    await page.locator('guidelines-panel button.reset-guidelines').click();
    expect(await page.locator('guidelines-panel #guidelines-text').innerText()).toContain('Truthful');
    expect(errors).toEqual([]);
    await page.close();
  });
});
