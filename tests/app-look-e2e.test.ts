// The look, in the built app (Chromium): fields of a row are one height (the token fields too) and wide
// enough for their placeholder, every tab has a heading, every Delete button is one size, an empty state
// is not dressed as an error, and each tab keeps its own scroll position instead of inheriting another's.
// And the Model tab's suggested models as the page lists them on this browser's adapter.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { playgroundMemory } from '../src/shared/memory.ts';
import { fmtBytes } from '../src/ui/context.ts';
import { SUGGESTIONS, suggestionText } from '../src/ui/model-suggestions.ts';
import { importText, openApp, startRanking, rankWithKeyboard, tab } from './helpers/app.ts';
import { useBuiltEnv } from './helpers/browser-env.ts';

const env = useBuiltEnv();

/** Computed style properties and box of an element found through the shadow roots. */
const look = (page: Page, selector: string) =>
  page
    .locator(selector)
    .first()
    .evaluate((el: HTMLElement) => {
      const st = getComputedStyle(el);
      return { height: el.getBoundingClientRect().height, fontSize: st.fontSize, color: st.color, fits: el.scrollWidth <= el.clientWidth };
    });

describe('the playground looks consistent', () => {
  it('fields, headings, Delete buttons, empty states and scroll positions', async () => {
    const { page, errors } = await openApp(env.browser, env.url);
    // the built page carries its Content-Security-Policy, and it refuses an inline script (what an injected one would be)
    expect(await page.evaluate(() => document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content'))).toMatch(
      /script-src 'self' blob:/,
    );
    const ran = await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'document.body.dataset.inline = "ran"';
      document.head.append(s);
      return document.body.dataset.inline;
    });
    expect(ran).toBeUndefined();
    await expect.poll(() => errors.filter((e) => /Content Security Policy/.test(e)).length).toBe(1); // openApp records every refusal
    errors.length = 0;
    // Model: the token field is as tall as the Hub id beside it, and as wide, so its placeholder shows whole
    const id = await look(page, '#hub-id'),
      token = await look(page, '#hub-token-load');
    expect(token.height).toBe(id.height);
    expect(token.fontSize).toBe(id.fontSize);
    const widths = await Promise.all(['#hub-id', '#hub-token-load'].map((s) => page.locator(s).evaluate((el) => el.clientWidth)));
    expect(widths[1]).toBe(widths[0]);
    const placeholder = await page.locator('#hub-token-load').evaluate((el: HTMLInputElement) => {
      const c = document.createElement('canvas').getContext('2d')!;
      const st = getComputedStyle(el);
      c.font = `${st.fontSize} ${st.fontFamily}`;
      return { text: c.measureText(el.placeholder).width, room: el.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight) };
    });
    expect(placeholder.text).toBeLessThanOrEqual(placeholder.room);
    await tab(page, 'share');
    expect(await look(page, '#hub-token')).toMatchObject({
      fontSize: (await look(page, '#hub-repo')).fontSize,
      height: (await look(page, '#hub-repo')).height,
    });

    // every tab opens with a heading; Share's is "Share", its cards' titles under it
    for (const t of ['model', 'data', 'train', 'inspect', 'compare', 'share']) {
      await tab(page, t);
      expect(await page.locator(`${t}-view h2`).first().isVisible(), t).toBe(true);
    }
    expect(await page.locator('share-view h2').innerText()).toBe('Share');

    // Compare with nothing to compare against: a neutral empty state, not the error red
    await tab(page, 'compare');
    await page.waitForSelector('#cmp-why');
    const error = await page.locator('#cmp-why').evaluate((el) => {
      const probe = document.createElement('p');
      probe.className = 'error';
      el.parentElement!.append(probe);
      const c = getComputedStyle(probe).color;
      probe.remove();
      return c;
    });
    expect((await look(page, '#cmp-why')).color).not.toBe(error);
    expect(await page.locator('#cmp-why').getAttribute('class')).toBe('empty');

    // Data: a prompt's Delete and a stored ranking's Delete are one size
    await importText(page, ['"Say thanks."', '"Name a colour."'].map((p) => `{"prompt": ${p}}`).join('\n'), 2);
    await startRanking(page, 2, 4);
    await rankWithKeyboard(page, 1, []);
    await page.keyboard.press('Escape');
    await tab(page, 'data');
    await page.waitForSelector('.ranking-row');
    const a = await look(page, '.prompt-row button.delete'),
      b = await look(page, '.ranking-row button.delete');
    expect(b.height).toBe(a.height);
    expect(b.fontSize).toBe(a.fontSize);

    // scroll: a tab opens at its top (or where it was left), not at the position of the tab before it
    await page.setViewportSize({ width: 1200, height: 400 });
    await page.evaluate(() => window.scrollTo(0, 300));
    const dataAt = await page.evaluate(() => window.scrollY);
    expect(dataAt).toBeGreaterThan(100);
    await tab(page, 'train');
    expect(await page.evaluate(() => window.scrollY)).toBe(0);
    await tab(page, 'data');
    expect(await page.evaluate(() => window.scrollY)).toBe(dataAt);
    expect(errors).toEqual([]);
    await page.close();
  }, 600_000);

  it('the Model tab suggests SmolLM2, Qwen2.5 and Qwen3 with what each needs on this GPU, and refuses only what its limits cannot hold', async () => {
    const { page, errors } = await openApp(env.browser, env.url);
    await tab(page, 'model');
    await page.waitForSelector('#adapter');
    // this browser's adapter, asked the way the engine asks (src/gpu/device.ts): the real one, SwiftShader here
    const limits = await page.evaluate(async () => {
      const a = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
      return { maxBufferSize: a!.limits.maxBufferSize, maxStorageBufferBindingSize: a!.limits.maxStorageBufferBindingSize };
    });
    expect(await page.locator('#adapter').innerText()).toContain(
      `${fmtBytes(limits.maxBufferSize)} per buffer, ${fmtBytes(limits.maxStorageBufferBindingSize)} per storage binding`,
    );
    const rows = page.locator('#suggestions li');
    await expect
      .poll(() => rows.evaluateAll((li) => li.map((l) => l.getAttribute('data-id'))))
      .toEqual(['HuggingFaceTB/SmolLM2-135M-Instruct', 'HuggingFaceTB/SmolLM2-360M-Instruct', 'Qwen/Qwen2.5-0.5B-Instruct', 'Qwen/Qwen3-0.6B']);
    const shown = await rows.evaluateAll((li) =>
      li.map((l) => ({
        text: l.querySelector('div.small')?.textContent ?? '',
        load: { disabled: (l.querySelector('button') as HTMLButtonElement).disabled, title: l.querySelector('button')!.title },
      })),
    );
    // each with its parameters and the memory of sampling, LoRA and full fine-tuning, as the estimate gives them for this adapter
    expect(shown[2]!.text).toBe('494.0M parameters · sampling (4 × 256): 1.96 GiB · LoRA (8 × 256, r=8): 6.98 GiB · full fine-tuning (8 × 256): 12.39 GiB');
    const adapter = { name: '', features: [], limits };
    for (const [i, s] of SUGGESTIONS.entries()) {
      expect(shown[i]!.text, s.id).toBe(suggestionText(s, adapter));
      expect(shown[i]!.text, s.id).toMatch(
        /^[\d.]+M parameters · sampling \(4 × 256\): [\d.]+ [MG]iB · LoRA \(8 × 256, r=8\): [\d.]+ [MG]iB · full fine-tuning \(8 × 256\): [\d.]+ [MG]iB$/,
      );
      expect(shown[i]!.load, s.id).toEqual({ disabled: false, title: `Load ${s.id} from the Hub` });
    }
    // Nothing is refused, and no WebGPU adapter could refuse these: the embedding and LM head are stored and bound
    // in chunks, so the largest buffer any of them needs (76 MiB, Qwen2.5's LoRA and full training) is under
    // the 128 MiB binding and 256 MiB buffer every adapter must allow, and this one allows at least that. The
    // refusal with its numbers and no Load button is tested in Node on smaller limits (tests/model-suggestions.test.ts).
    expect(limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(limits.maxBufferSize).toBeGreaterThanOrEqual(256 * 2 ** 20);
    const largest = Math.max(
      ...SUGGESTIONS.flatMap((s) => {
        const m = playgroundMemory(s.cfg);
        return [m.inference, m.lora, m.full].flatMap((e) => [e.largestBuffer, e.largestBinding]);
      }),
    );
    expect(largest).toBeLessThan(128 * 2 ** 20);
    expect(await page.locator('#suggestions').innerText()).not.toContain('does not fit');
    expect(errors).toEqual([]);
    await page.close();
  }, 300_000);
});
