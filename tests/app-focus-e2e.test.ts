// Keyboard only, in the built app (Chromium): Tab through every tab's view and check that each focus
// stop shows a clear ring (an outline of at least 2px, or a box shadow): none is invisible, the view
// hosts that take keys (the rank panel, the blind vote, the spot check) included. Without WebGPU this
// fails; nothing skips.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { openApp, tab } from './helpers/app.ts';
import { useBuiltEnv } from './helpers/browser-env.ts';

const env = useBuiltEnv();

/** The deepest focused element (through shadow roots), how it is named, and whether its focus shows. */
const focused = (page: Page) =>
  page.evaluate(() => {
    let el: Element | null = document.activeElement;
    while (el?.shadowRoot?.activeElement) el = el.shadowRoot.activeElement;
    if (!el || el === document.body) return undefined;
    const st = getComputedStyle(el);
    const ring = (st.outlineStyle !== 'none' && parseFloat(st.outlineWidth) >= 2) || (st.boxShadow !== 'none' && st.boxShadow !== '');
    const name = `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.getAttribute('aria-label') ? `[${el.getAttribute('aria-label')}]` : ''}`;
    return { name, ring };
  });

describe('the playground by keyboard', () => {
  it('every focus stop on every tab shows a clear focus ring', async () => {
    const { page, errors } = await openApp(env.browser, env.url);
    const invisible = new Set<string>(),
      seen = new Set<string>();
    for (const id of ['model', 'data', 'rank', 'train', 'inspect', 'compare', 'share']) {
      await tab(page, id);
      await page.focus(`#tab-${id}`);
      for (let i = 0; i < 45; i++) {
        await page.keyboard.press('Tab');
        const f = await focused(page);
        if (!f) continue;
        seen.add(`${id}: ${f.name}`);
        if (!f.ring) invisible.add(`${id}: ${f.name}`);
      }
    }
    expect(seen.size).toBeGreaterThan(40); // it did walk the page
    expect([...seen].some((s) => s.startsWith('rank: rank-panel'))).toBe(true); // the host that takes the rank keys is a stop
    expect([...invisible]).toEqual([]);
    expect(errors).toEqual([]);
  });
});
