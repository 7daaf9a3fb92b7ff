// GRPO end to end in the built app (Chromium, WebGPU on SwiftShader, the real worker and IndexedDB):
// import prompts, choose GRPO on the Train tab by keyboard, see the example reward module, type a
// broken one (the Train tab names the problem and will not start), then a module of two reward
// functions, set tiny settings (reward weights among them), start, and see the run finish with the
// reward charts drawn. One of the functions scores 1 only where fetch and indexedDB do not exist: the
// engine worker has both, so its score proves the functions ran in their own sandbox worker. The RLOO
// fields are checked on the way; at the end a function that throws fails a run, named, with its message. Screenshot: test-results/app/train-grpo.png. Without WebGPU this
// fails; nothing skips.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { MetricRecord, RunRecord } from '../src/store/db.ts';
import { importText, MODEL_WORK, openApp, setFields, shot, stored, tab } from './helpers/app.ts';
import { useBuiltEnv } from './helpers/browser-env.ts';

const env = useBuiltEnv();

const PROMPTS = ['Thank Rosa for the scarf.', 'Say hello to Tomas.', 'Give me one tip for baking bread.'];

const MODULE = `// where these run: the sandbox worker has no fetch and no indexedDB (the engine's worker has both)
export function sandboxed({ completions }) {
  return completions.map(() => (typeof fetch === 'undefined' && typeof indexedDB === 'undefined' && typeof XMLHttpRequest === 'undefined' ? 1 : 0));
}

export function concise({ prompts, completions, completion_ids }) {
  return completions.map((c, i) => (prompts[i].length > 0 && completion_ids[i].length <= 8 ? 1 : 0));
}
`;

/** Reads a value inside the train view's shadow root, in the page. */
const trainView = <T>(page: Page, f: string): Promise<T> =>
  page.evaluate((body) => {
    const root = document.querySelector('rlhf-app')!.shadowRoot!.querySelector('train-view')!.shadowRoot!;
    return new Function('root', body)(root) as T; // eslint-disable-line no-new-func
  }, f);

/** Replaces the reward module's text as a person does: focus, select all, type, Tab out (the change event checks it). */
async function typeModule(page: Page, text: string): Promise<void> {
  await page.focus('#reward-module');
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.insertText(text);
  await page.keyboard.press('Tab');
}

describe('the playground, GRPO with reward functions written in the page', () => {
  it('chooses GRPO by keyboard, edits the reward module, trains two steps, and charts the reward of functions that ran in their sandbox worker', async () => {
    const t0 = Date.now();
    const { page, errors } = await openApp(env.browser, env.url);
    await importText(page, PROMPTS.map((prompt) => JSON.stringify({ prompt })).join('\n'), PROMPTS.length);

    // Train: the stage list by keyboard, from SFT (the first, checked) down to GRPO
    await tab(page, 'train');
    expect(await page.locator('#stage input[value="sft"]').isChecked()).toBe(true);
    await page.focus('#stage input[value="sft"]');
    const order = await page.locator('#stage input[name="stage"]').evaluateAll((xs) => xs.map((x) => (x as HTMLInputElement).value));
    for (let i = 0; i < order.indexOf('grpo'); i++) await page.keyboard.press('ArrowDown');
    expect(await page.locator('#stage input[value="grpo"]').isChecked()).toBe(true);
    const grpoLine = await page.locator('#stage label', { has: page.locator('input[value="grpo"]') }).innerText();
    expect(grpoLine).toMatch(/GRPO .*reward functions.*no value model/);
    expect(grpoLine).toContain('Uses 3 prompts.');

    // its fields: the reward model is optional, G and the completion length are there, PPO's are not
    for (const id of ['cfg-rewardRunId', 'cfg-numSamples', 'cfg-maxNewTokens', 'cfg-beta', 'cfg-temperature'])
      expect(await page.locator(`#${id}`).count(), id).toBe(1);
    expect(await page.locator('#cfg-klCoef').count()).toBe(0);
    expect(await page.locator('#cfg-rewardRunId option').allInnerTexts()).toEqual(['none: the reward functions alone']);
    expect(await page.locator('#cfg-numSamples').inputValue()).toBe('4');
    await page.click('#advanced summary');
    expect(await page.locator('#cfg-scaleRewards option').allInnerTexts()).toEqual(['group', 'batch', 'none']);
    expect(await page.locator('#cfg-lossType').inputValue()).toBe('dapo');

    // RLOO on the way: the same editor and its own fields (normalize_advantages; no scale_rewards)
    await page.check('#stage input[value="rloo"]');
    expect(await page.locator('#reward-module').inputValue()).toMatch(/^\/\/ Reward functions for GRPO and RLOO\./);
    expect(await page.locator('#cfg-normalizeAdvantages option').allInnerTexts()).toEqual(['false', 'true']);
    expect(await page.locator('#cfg-scaleRewards').count()).toBe(0);
    expect(await page.locator('#cfg-numSamples').inputValue()).toBe('2');
    await page.check('#stage input[value="grpo"]');

    // tiny settings (SwiftShader is slow): 2 steps of 1 prompt x 2 completions of up to 6 tokens, one update each
    await setFields(page, [
      ['steps', '2'],
      ['batchSize', '1'],
      ['numSamples', '2'],
      ['maxNewTokens', '6'],
      ['seqLen', '48'],
      ['loraRank', '4'],
      ['numIterations', '1'],
      ['rewardWeights', '1, 0.5'],
    ]);
    expect(await page.locator('#blocked').count()).toBe(0);

    // the editor starts with the example, which the engine has read
    expect(await page.locator('#reward-module').inputValue()).toMatch(/^\/\/ Reward functions for GRPO and RLOO\./);
    await page.waitForFunction(
      () =>
        /^Exports concise, thanks:/.test(
          document
            .querySelector('rlhf-app')
            ?.shadowRoot?.querySelector('train-view')
            ?.shadowRoot?.querySelector('#reward-module-status')
            ?.textContent?.trim() ?? '',
        ),
      undefined,
      { timeout: 30_000 },
    );
    // a module that does not load: its problem is shown, and the run cannot start
    await typeModule(page, 'export function broken({ completions }) { return completions.map((c) => ; }');
    await page.waitForFunction(
      () =>
        /^reward_module: cannot load the module: /.test(
          document
            .querySelector('rlhf-app')
            ?.shadowRoot?.querySelector('train-view')
            ?.shadowRoot?.querySelector('#reward-module-status')
            ?.textContent?.trim() ?? '',
        ),
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.locator('#start').isDisabled()).toBe(true);
    expect(await page.locator('#blocked').innerText()).toMatch(/^Cannot start: reward_module: cannot load the module/);
    // the module of this test
    await typeModule(page, MODULE);
    await page.waitForFunction(
      () =>
        /^Exports concise, sandboxed:/.test(
          document
            .querySelector('rlhf-app')
            ?.shadowRoot?.querySelector('train-view')
            ?.shadowRoot?.querySelector('#reward-module-status')
            ?.textContent?.trim() ?? '',
        ),
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.locator('#reward-module').inputValue()).toBe(MODULE);
    expect(await page.locator('#blocked').count()).toBe(0);
    // the GPU memory the run will hold, before it starts: no reference (beta 0), no reward model, the KV cache
    await page.waitForSelector('#memory-estimate', { timeout: 30_000 });
    expect(await page.locator('#memory-estimate').innerText()).toMatch(
      /^GPU memory: at most about [\d.]+ (KiB|MiB) at 48 positions \(the model [\d.]+ (KiB|MiB), the trained weights and their step [\d.]+ (KiB|MiB), the rollouts' KV cache [\d.]+ (KiB|MiB)\)\.$/,
    );
    await page.click('#start');
    await page.waitForSelector('#run[data-status="running"]', MODEL_WORK);
    const runId = (await page.locator('#run').getAttribute('data-run'))!;
    await page.waitForSelector(`#run[data-run="${runId}"][data-status="done"]`, MODEL_WORK);
    expect(await page.locator('#run-error').count()).toBe(0);
    // the reward chart has both steps, and one curve per function beside it
    await page.waitForFunction(
      () =>
        Number(
          document
            .querySelector('rlhf-app')
            ?.shadowRoot?.querySelector('train-view')
            ?.shadowRoot?.querySelector('line-chart.reward')
            ?.getAttribute('data-points'),
        ) === 2,
      undefined,
      { timeout: 30_000 },
    );
    expect(await trainView<string[]>(page, "return root.querySelector('line-chart.rewards').series")).toEqual([
      'rewards/concise/mean',
      'rewards/sandboxed/mean',
    ]);
    expect(await trainView<number>(page, "return root.querySelector('line-chart.rewards').seriesPoints('rewards/sandboxed/mean')")).toBe(2);
    await shot(page, 'train-grpo');

    // the run keeps the module and names its functions; the functions ran where fetch and indexedDB are gone
    const run = (await stored<RunRecord>(page, 'runs')).find((r) => r.id === runId)!;
    expect(run.stage).toBe('grpo');
    expect(run.config).toMatchObject({
      rewardModule: MODULE,
      rewardFuncs: ['concise', 'sandboxed'],
      rewardWeights: [1, 0.5],
      numSamples: 2,
      maxNewTokens: 6,
      numIterations: 1,
    });
    const metrics = (await stored<MetricRecord>(page, 'metrics')).filter((m) => m.runId === runId).sort((a, b) => a.step - b.step);
    expect(metrics.map((m) => m.step)).toEqual([1, 2]);
    expect(metrics.map((m) => m.values['rewards/sandboxed/mean'])).toEqual([1, 1]);
    for (const m of metrics) expect(m.values.reward).toBeCloseTo(m.values['rewards/concise/mean']! + 0.5, 5);
    // the page has both (and so has the engine's worker, which loads models with fetch): the 1 above is the sandbox's
    expect(await page.evaluate(() => typeof fetch === 'function' && typeof indexedDB === 'object')).toBe(true);

    expect(await page.locator('.notice.error').allInnerTexts()).toEqual([]);

    // Inspect: the GRPO run, its rollouts token by token (no value model), and step 2's completions table
    // (every completion with each reward and its advantage), from the store and this session alike
    await tab(page, 'inspect');
    const inspect = (f: string) =>
      page.evaluate((body) => new Function('root', body)(document.querySelector('rlhf-app')!.shadowRoot!.querySelector('inspect-view')!.shadowRoot!), f);
    await page.waitForFunction(
      () => !!document.querySelector('rlhf-app')?.shadowRoot?.querySelector('inspect-view')?.shadowRoot?.querySelector('#completions tbody tr'),
      undefined,
      { timeout: 30_000 },
    );
    expect(await inspect("return [...root.querySelectorAll('#quantity option')].map((o) => o.value)")).toEqual(['kl', 'advantage']);
    expect(await inspect("return root.querySelector('#completions h3').textContent.trim()")).toBe('Completions of step 2');
    expect(await inspect("return [...root.querySelectorAll('#completions th')].map((t) => t.textContent.trim())")).toEqual([
      'prompt',
      'completion',
      'concise',
      'sandboxed',
      'reward',
      'advantage',
    ]);
    expect(await inspect("return root.querySelectorAll('#completions tbody tr').length")).toBe(2); // 1 prompt x 2 completions
    await tab(page, 'train');

    // a function that throws in its worker fails the run with its name and its message, shown on the tab;
    // two weights for one function are refused before that
    await typeModule(page, "export function boom() { throw new Error('no score for you'); }\n");
    await page.waitForFunction(
      () =>
        /^Exports boom:/.test(
          document
            .querySelector('rlhf-app')
            ?.shadowRoot?.querySelector('train-view')
            ?.shadowRoot?.querySelector('#reward-module-status')
            ?.textContent?.trim() ?? '',
        ),
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.locator('#blocked').innerText()).toMatch(/config\.rewardWeights: \[1,0\.5\] is not one weight per reward function \(1\)/);
    await setFields(page, [
      ['rewardWeights', ''],
      ['steps', '1'],
    ]);
    expect(await page.locator('#blocked').count()).toBe(0);
    await page.click('#start');
    await page.waitForSelector(`#run:not([data-run="${runId}"])[data-status="failed"]`, MODEL_WORK);
    expect(await page.locator('#run-error').innerText()).toBe('Failed: reward function "boom" (reward_module) failed: no score for you');

    expect(errors).toEqual([]);
    await page.close();
    console.log(`GRPO end to end: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, 170_000);
});
