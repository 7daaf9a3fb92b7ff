// The recipe end to end, as a person does it in the built app (Chromium, WebGPU on SwiftShader, the
// real worker and IndexedDB): import prompts and demonstrations, SFT and make it the starting model,
// rank three prompts by keyboard, train a LoRA reward model (then let it pick a pair to judge: active selection), run PPO against it with tiny settings, look inside the run on the Inspect tab
// (rollouts coloured token by token, the quantity switch, the alarms, a spot check saved to the store),
// then compare the PPO policy with the loaded model in blind A/B and see the win rate. Screenshots:
// test-results/app/inspect-ppo.png and compare-vote.png. Without WebGPU this fails; nothing skips.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { GENERATION_DEFAULTS } from '../src/io/generation-config.ts';
import type { MetricRecord, RankingRecord, RolloutRecord, RunRecord, SpotCheckRecord, VoteRecord } from '../src/store/db.ts';
import { computeAlarms } from '../src/ui/alarms.ts';
import {
  importText,
  MODEL_WORK,
  modelLoaded,
  openApp,
  rankWithKeyboard,
  runDone,
  setFields,
  shot,
  startRanking,
  startRun,
  stored,
  tab,
} from './helpers/app.ts';
import { useBuiltEnv } from './helpers/browser-env.ts';

const env = useBuiltEnv();

const PROMPTS = [
  'Write a short greeting for Lena.',
  'Say hello to Tomas.',
  'Give me one tip for baking bread.',
  'Thank Rosa for the scarf.',
  'Write a thank-you note to Ivo for the book.',
  'Give me advice for a rainy day.',
];

/** Evaluates `f` on a view's shadow root inside the page (the app's views live in <rlhf-app>'s shadow root). */
const inView = <T>(page: Page, view: string, f: string): Promise<T> =>
  page.evaluate(
    ([v, body]) => {
      const root = document.querySelector('rlhf-app')!.shadowRoot!.querySelector(v)!.shadowRoot!;
      return new Function('root', body)(root) as T; // eslint-disable-line no-new-func
    },
    [view, f] as const,
  );

/** The background colours of the Inspect tab's tokens, in order. */
const tokenColours = (page: Page) => inView<string[]>(page, 'inspect-view', `return [...root.querySelectorAll('.tok[title]')].map((t) => t.style.background);`);

/** The spot checks of a run, from IndexedDB. */
const storedSpotChecks = async (page: Page, runId: string) => (await stored<SpotCheckRecord>(page, 'spotchecks')).filter((c) => c.runId === runId);

/** The alarms the Inspect view shows, and those computeAlarms gives for the run's stored metrics, spot checks, rollouts and config. */
async function alarmsShownAndExpected(page: Page, runId: string): Promise<{ shown: string[]; expected: string[] }> {
  const metrics = (await stored<MetricRecord>(page, 'metrics')).filter((m) => m.runId === runId).sort((a, b) => a.step - b.step);
  const rollouts = (await stored<RolloutRecord>(page, 'rollouts')).filter((r) => r.runId === runId).sort((a, b) => a.step - b.step);
  const run = (await stored<RunRecord>(page, 'runs')).find((r) => r.id === runId)!;
  const last = rollouts.at(-1);
  const expected = computeAlarms({
    metrics,
    spotChecks: await storedSpotChecks(page, runId),
    samples: (last?.samples ?? []).map((x) => ({ step: last!.step, response: x.response, tokens: x.tokens })),
    config: { klTarget: Number(run.config.klTarget ?? 0), cliprange: Number(run.config.cliprange ?? 0.2) },
  }).map((a) => a.id);
  const shown = await page.locator('#alarms > li.alarm').evaluateAll((li) => li.map((x) => x.getAttribute('data-alarm') ?? ''));
  if (!shown.length) expect(await page.locator('#alarms > li.none').count()).toBe(1);
  return { shown, expected };
}

const DEMOS = [
  { prompt: 'Write a short greeting for Mira.', completion: 'Hello Mira, I hope you have a lovely day!' },
  { prompt: 'Give me one tip for a calm morning.', completion: 'Drink a glass of water before you look at your phone.' },
];

describe('the playground, SFT to reward model to PPO to a blind comparison', () => {
  it('SFT becomes the starting model; ranks, trains a reward model and PPO, inspects the rollouts with a spot check, and votes blind', async () => {
    const { page, errors } = await openApp(env.browser, env.url);

    // Data: six prompts and two demonstrations
    await importText(page, [...PROMPTS.map((prompt) => ({ prompt })), ...DEMOS].map((o) => JSON.stringify(o)).join('\n'), PROMPTS.length);

    // SFT on the demonstrations, then make it the starting model: what is ranked next is its output, and
    // the reward model and PPO start from it (PPO's KL leash holds the policy to it)
    const sftId = await startRun(page, 'sft', [
      ['steps', '2'],
      ['batchSize', '1'],
      ['seqLen', '48'],
      ['loraRank', '4'],
    ]);
    await runDone(page, sftId);
    await tab(page, 'model');
    await page.click('#adopt-run');
    await page.waitForFunction(
      (id) =>
        (document.querySelector('rlhf-app')?.shadowRoot?.querySelector('model-view')?.shadowRoot?.querySelector('#merged')?.textContent ?? '').includes(
          `SFT run ${id.slice(0, 8)}`,
        ),
      sftId,
      MODEL_WORK,
    );
    expect(await page.locator('#status').innerText()).toMatch(/\+ SFT · Llama/);

    // Rank: three prompts, K = 3, by keyboard (short answers keep SwiftShader quick)
    await startRanking(page, 3, 16);
    await rankWithKeyboard(page, 1, ['ArrowDown', 'Alt+ArrowUp']);
    await rankWithKeyboard(page, 2, ['Alt+ArrowDown', '5']);
    await rankWithKeyboard(page, 3, ['ArrowDown', 'ArrowDown', 'Alt+ArrowUp', 'Alt+ArrowUp']);
    expect(await page.locator('#comparisons').innerText()).toBe('3 rankings · 9 comparisons');
    // the fourth prompt is being generated now: starting a run meanwhile must not break that generation

    // Train: a LoRA reward model on the three rankings
    const rmId = await startRun(page, 'rm', [
      ['steps', '3'],
      ['batchSize', '1'],
      ['seqLen', '48'],
      ['loraRank', '4'],
    ]);
    await runDone(page, rmId);
    expect(await page.locator('#heldout').innerText()).toMatch(/fewer than 10 rankings/);

    // What to rank next: with the reward model done, the Rank tab's switch lets it choose. Pairwise, it draws
    // 4 answers and shows the two it scores closest, sides at random; the verdict records that it chose them
    await tab(page, 'rank');
    await page.waitForSelector('#rank-uncertain:not([disabled])', { timeout: 30_000 });
    expect(await page.locator('#uncertain-why').innerText()).toMatch(
      new RegExp(`^Comparisons whose scores the reward model puts close teach it the most: .*Reward model: run ${rmId.slice(0, 8)}`),
    );
    await page.check('#mode-pair');
    await page.check('#rank-uncertain');
    await page.fill('#own-prompt', PROMPTS[5]!);
    await page.press('#own-prompt', 'Enter');
    await page.waitForSelector('pair-view button.verdict[data-verdict="a"]', MODEL_WORK);
    expect(await page.locator('#chosen-note').innerText()).toMatch(
      /^Chosen by the reward model: it scores these two \d+\.\d{3} apart, the closest pair of the 4 answers drawn\.$/,
    );
    await page.click('pair-view button.verdict[data-verdict="a"]');
    await page.waitForFunction(
      () =>
        document
          .querySelector('rlhf-app')
          ?.shadowRoot?.querySelector('rank-panel')
          ?.shadowRoot?.querySelector('#comparisons')
          ?.textContent?.startsWith('4 rankings'),
      undefined,
      { timeout: 30_000 },
    );
    const chosen = (await stored<RankingRecord>(page, 'rankings')).find((r) => r.verdict)!;
    expect(chosen).toMatchObject({ prompt: PROMPTS[5], verdict: 'a', selection: { method: 'uncertain', reward_model: rmId } });
    expect(chosen.selection!.margin).toBeGreaterThanOrEqual(0);
    expect([
      [0, 1],
      [1, 0],
    ]).toContainEqual(chosen.shown);
    // back to ranking K as drawn: the rollouts ranked below are a ranking
    await page.uncheck('#rank-uncertain');
    await page.check('#mode-rank');

    // a reward model writes no answers: Compare says so instead of comparing the loaded model with itself
    await tab(page, 'compare');
    await page.waitForFunction(
      () =>
        /reward model/.test(
          document.querySelector('rlhf-app')?.shadowRoot?.querySelector('compare-view')?.shadowRoot?.querySelector('#cmp-why')?.textContent ?? '',
        ),
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.locator('#cmp-go').isDisabled()).toBe(true);

    // PPO against it: the reward model is offered by the form once it is done
    await tab(page, 'train');
    await page.check('#stage input[value="ppo"]');
    await page.waitForSelector(`#cfg-rewardRunId option[value="${rmId}"]`, { state: 'attached' });
    await page.selectOption('#cfg-rewardRunId', rmId);
    await setFields(page, [
      ['steps', '2'],
      ['batchSize', '2'],
      ['numSamples', '2'],
      ['maxNewTokens', '12'],
      ['seqLen', '48'],
      ['loraRank', '4'],
    ]);
    expect(await page.locator('#blocked').count()).toBe(0);
    // shown as starting at once (building PPO's four roles takes a moment), then a sign of life inside its long
    // step. The statuses the run card shows are recorded as they render: on a quiet machine "starting" can last
    // less than a poll of waitForSelector, and it must still have been shown.
    await page.evaluate(() => {
      const root = document.querySelector('rlhf-app')!.shadowRoot!.querySelector('train-view')!.shadowRoot!;
      const seen: string[] = ((window as unknown as { runStatuses: string[] }).runStatuses = []);
      new MutationObserver(() => {
        const s = root.querySelector('#run')?.getAttribute('data-status');
        if (s && seen.at(-1) !== s) seen.push(s);
      }).observe(root, { subtree: true, childList: true, attributes: true });
    });
    await page.click('#start');
    await page.waitForSelector('#run[data-status="running"]', MODEL_WORK);
    const shown = await page.evaluate(() => (window as unknown as { runStatuses: string[] }).runStatuses);
    expect(shown, shown.join(' > ')).toContain('starting');
    expect(shown.slice(shown.indexOf('starting'))).toContain('running');
    const ppoId = (await page.locator('#run').getAttribute('data-run'))!;
    expect(ppoId).not.toBe(rmId);
    await page.waitForSelector('#phase[data-phase]', MODEL_WORK);
    expect(await page.locator('#phase').innerText()).toMatch(
      /^step [12]: (sampling the rollouts: \d+ of at most 48 tokens|scoring the rollouts|updating: minibatch update \d of 4)/,
    );
    expect(await page.locator('#start').getAttribute('title')).toMatch(/a run is training/);
    // an ETA from the first measured phase, then, once step 1 is done, for the step and the run
    await page.locator('#phase-eta', { hasText: /^(at most )?about \d+ (s|min) left in this phase$/ }).waitFor(MODEL_WORK);
    await page.locator('#phase-eta', { hasText: /^about \d+ (s|min) left in this step, about \d+ (s|min) in the run$/ }).waitFor(MODEL_WORK);
    expect(await page.locator('#phase').innerText()).toMatch(/^step 2: /);

    // Inspect, while it trains: step 1's rollouts, coloured token by token. At step 1 the policy is still
    // the starting model (the adapter starts at zero), so the KL is 0 on every token and the legend says
    // why; the value and the advantage are not 0.
    await tab(page, 'inspect');
    await page.waitForSelector('#sample-step option[value="1"]', { state: 'attached', ...MODEL_WORK });
    await page.selectOption('#sample-step', '1');
    expect(await page.locator('#inspect-run').inputValue()).toBe(ppoId);
    expect(await page.locator('inspect-view .tok[title]').first().getAttribute('title')).toMatch(/ · kl /);
    expect(await page.locator('#legend').innerText()).toMatch(/Every token is 0 at step 1: the policy has not moved/);
    const kl = await tokenColours(page);
    expect(kl.length).toBeGreaterThan(0);
    // the prompt is shown as the user wrote it, not with the chat template around it
    expect(PROMPTS).toContain(await page.locator('#rollouts .group .prompt').first().innerText());
    await page.selectOption('#quantity', 'value');
    await page.waitForFunction(() =>
      document
        .querySelector('rlhf-app')
        ?.shadowRoot?.querySelector('inspect-view')
        ?.shadowRoot?.querySelector('.tok[title]')
        ?.getAttribute('title')
        ?.includes(' · value '),
    );
    const value = await tokenColours(page);
    expect(value.every((c) => /^rgba\(/.test(c))).toBe(true);
    expect(value.some((c) => !/, 0\)$/.test(c))).toBe(true); // some token is not white
    expect(value).not.toEqual(kl);
    await page.selectOption('#quantity', 'advantage');
    await page.waitForFunction(() =>
      document
        .querySelector('rlhf-app')
        ?.shadowRoot?.querySelector('inspect-view')
        ?.shadowRoot?.querySelector('.tok[title]')
        ?.getAttribute('title')
        ?.includes(' · advantage '),
    );
    const adv = await tokenColours(page);
    expect(adv.some((c) => !/, 0\)$/.test(c))).toBe(true);
    expect(adv).not.toEqual(value);

    // a spot check: score the rollout offered; it is saved (with the user's prompt) and the next is offered
    const offered = await page.locator('#spot .sample .pre').innerText();
    await page.click('#spot button.score[data-score="6"]');
    await page.waitForFunction(() =>
      /\b1 scored, mean 6\.0\b/.test(
        document.querySelector('rlhf-app')?.shadowRoot?.querySelector('inspect-view')?.shadowRoot?.querySelector('#spot')?.textContent ?? '',
      ),
    );
    const checks = await storedSpotChecks(page, ppoId);
    expect(checks.map((c) => [c.score, c.response])).toEqual([[6, offered]]);
    expect(PROMPTS).toContain(checks[0]!.prompt);

    // the run ends; step 2's KL is no longer 0 (one update moved the policy), and the alarms are there
    await page.waitForSelector(`#run[data-run="${ppoId}"][data-status="done"]`, { state: 'attached', ...MODEL_WORK });
    await page.waitForSelector('#sample-step option[value="2"]', { state: 'attached' });
    await page.selectOption('#sample-step', '2');
    await page.selectOption('#quantity', 'kl');
    await page.waitForFunction(() =>
      document
        .querySelector('rlhf-app')
        ?.shadowRoot?.querySelector('inspect-view')
        ?.shadowRoot?.querySelector('.tok[title]')
        ?.getAttribute('title')
        ?.includes(' · kl '),
    );
    const klStep2 = await tokenColours(page);
    expect(klStep2.some((c) => !/, 0\)$/.test(c))).toBe(true);
    // alarms: one entry per alarm the run's stored evidence gives, or the one line that says none fired
    const alarms = await alarmsShownAndExpected(page, ppoId);
    expect(alarms.shown).toEqual(alarms.expected);
    await shot(page, 'inspect-ppo');
    await tab(page, 'train');
    await page.waitForFunction(
      () =>
        Number(
          document.querySelector('rlhf-app')?.shadowRoot?.querySelector('train-view')?.shadowRoot?.querySelector('line-chart.kl')?.getAttribute('data-points'),
        ) === 2,
    );
    await shot(page, 'train-ppo');
    await tab(page, 'inspect');

    // rank two of the rollouts: they go to the Rank tab as a ranking to order
    const group = page.locator('#rollouts .group').first();
    const groupPrompt = await group.locator('.prompt').innerText();
    await group.locator('button.rank-these').click();
    await page.waitForSelector('#tab-rank[aria-selected="true"]');
    await page.waitForSelector('rank-panel rank-view li');
    expect(await page.locator('rank-panel .prompt').first().innerText()).toBe(groupPrompt);
    expect(await page.locator('rank-panel rank-view li').count()).toBe(2);
    await page.keyboard.press('Enter'); // the rank view has the keyboard at once
    await page.waitForFunction(
      () =>
        document
          .querySelector('rlhf-app')
          ?.shadowRoot?.querySelector('rank-panel')
          ?.shadowRoot?.querySelector('#comparisons')
          ?.textContent?.startsWith('5 rankings'),
      undefined,
      { timeout: 30_000 },
    );

    // Compare: the PPO run is the tuned model; first side by side, then blind with a vote
    await tab(page, 'compare');
    await page.waitForSelector(`#cmp-run option[value="${ppoId}"]`, { state: 'attached', timeout: 30_000 });
    if ((await page.locator('#cmp-run').inputValue()) !== ppoId) await page.selectOption('#cmp-run', ppoId);
    await page.waitForFunction(
      (id) =>
        document.querySelector('rlhf-app')?.shadowRoot?.querySelector('compare-view')?.shadowRoot?.querySelector('#cmp-tuned')?.textContent ===
        `PPO run ${id.slice(0, 8)}`,
      ppoId,
      MODEL_WORK,
    );
    expect(await page.locator('#win-rate').innerText()).toMatch(/No blind votes/);
    await page.fill('#cmp-max-tokens', '12');
    await page.locator('#cmp-max-tokens').dispatchEvent('change');
    await page.selectOption('#cmp-pick', { label: PROMPTS[0]! });
    expect(await page.locator('#cmp-prompt').inputValue()).toBe(PROMPTS[0]);

    // blind first: a fresh seed, sides the coin chose, a vote, and only then the sides revealed
    expect(await page.locator('#cmp-blind').isChecked()).toBe(true);
    expect(await page.locator('#cmp-seed').isDisabled()).toBe(true);
    await page.click('#cmp-go');
    await page.waitForSelector('#vote-a:not([disabled])', MODEL_WORK);
    expect(await page.locator('#cmp-left h3').innerText()).toBe('A');
    expect(await page.locator('#cmp-right h3').innerText()).toBe('B');
    expect(await page.locator('#cmp-left').getAttribute('data-model')).toBe(''); // nothing in the page tells
    const blind = { A: await page.locator('#cmp-left .text').innerText(), B: await page.locator('#cmp-right .text').innerText() };
    await page.click('#vote-a');
    await page.waitForSelector('#vote-result', { timeout: 30_000 });
    const tunedSide = (await page.locator('#cmp-left').getAttribute('data-model')) === 'tuned' ? 'A' : 'B';
    expect(await page.locator('#vote-result').innerText()).toContain(`the tuned answer was ${tunedSide}`);
    const seed = Number(await page.locator('#vote-result').getAttribute('data-seed'));
    // the vote records how both answers were sampled: the page's one set of settings, max new tokens as set here
    const [vote] = (await stored(page, 'votes')) as VoteRecord[];
    expect(vote).toMatchObject({ seed, generation_config: { ...GENERATION_DEFAULTS, max_new_tokens: 12 } });
    expect(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 31).toBe(true);
    const rate = tunedSide === 'A' ? '100%' : '0%';
    await page.waitForFunction(
      (r) =>
        document
          .querySelector('rlhf-app')
          ?.shadowRoot?.querySelector('compare-view')
          ?.shadowRoot?.querySelector('#win-rate')
          ?.textContent?.includes(`wins ${r} of 1 blind vote`),
      rate,
      { timeout: 30_000 },
    );
    expect(await page.locator('#win-rate').innerText()).toMatch(/95% interval \d+%–\d+%/);
    await shot(page, 'compare-vote');

    // side by side with the blind comparison's seed: the same two answers, now named
    await page.uncheck('#cmp-blind');
    await page.fill('#cmp-seed', String(seed));
    await page.locator('#cmp-seed').dispatchEvent('change');
    await page.click('#cmp-go');
    await page.waitForSelector('#cmp-go:not([disabled])', MODEL_WORK);
    expect(await page.locator('#cmp-left h3').innerText()).toMatch(/^Reference: the starting model \(SFT run [0-9a-f]{8} merged\)/);
    expect(await page.locator('#cmp-right h3').innerText()).toBe(`Tuned: PPO run ${ppoId.slice(0, 8)}`);
    const open = { ref: await page.locator('#cmp-left .text').innerText(), tuned: await page.locator('#cmp-right .text').innerText() };
    expect(open.ref.length).toBeGreaterThan(0);
    expect(open.tuned.length).toBeGreaterThan(0);
    expect(open.tuned).toBe(blind[tunedSide]);
    expect(open.ref).toBe(blind[tunedSide === 'A' ? 'B' : 'A']);
    expect(await page.locator('#cmp-same').count()).toBe(open.ref === open.tuned ? 1 : 0);
    expect(await page.locator('#vote-a').count()).toBe(0); // only blind comparisons are voted on
    await shot(page, 'compare-open');

    // a long comparison stopped midway: the answers stay as they were cut, and it is not voted on
    for (const [id, v] of [
      ['#cmp-max-tokens', '200'],
      ['#cmp-temperature', '2'],
    ]) {
      // rambling: no early end of text
      await page.fill(id, v);
      await page.locator(id).dispatchEvent('change');
    }
    await page.click('#cmp-go');
    await page.waitForFunction(
      () =>
        (document.querySelector('rlhf-app')?.shadowRoot?.querySelector('compare-view')?.shadowRoot?.querySelector('#cmp-left .text')?.textContent ?? '')
          .length > 3,
      undefined,
      MODEL_WORK,
    );
    await page.click('#cmp-stop');
    await page.waitForSelector('#cmp-stopped', MODEL_WORK);
    await shot(page, 'compare-stopped');
    expect(await page.locator('#cmp-go').isDisabled()).toBe(false);
    expect(await page.locator('#vote-a').count()).toBe(0);
    expect(await page.locator('#win-rate').innerText()).toContain(`wins ${rate} of 1 blind vote`);

    // after a reload the PPO run can still be inspected: its rollouts, spot check and alarms are stored
    await page.reload();
    await modelLoaded(page);
    // the sampling settings set on Compare are kept, and they are the Rank tab's too
    await tab(page, 'compare');
    expect([await page.locator('#cmp-max-tokens').inputValue(), await page.locator('#cmp-temperature').inputValue()]).toEqual(['200', '2']);
    await tab(page, 'rank');
    expect([
      await page.locator('#rank-max-tokens').inputValue(),
      await page.locator('#rank-temperature').inputValue(),
      await page.locator('#rank-top-p').inputValue(),
    ]).toEqual(['200', '2', '0.95']);
    await tab(page, 'inspect');
    await page.waitForSelector('#sample-step option[value="2"]', { state: 'attached', ...MODEL_WORK });
    expect(await page.locator('#inspect-run').inputValue()).toBe(ppoId);
    await page.selectOption('#sample-step', '2');
    await page.selectOption('#quantity', 'kl');
    await page.waitForFunction(() =>
      document
        .querySelector('rlhf-app')
        ?.shadowRoot?.querySelector('inspect-view')
        ?.shadowRoot?.querySelector('.tok[title]')
        ?.getAttribute('title')
        ?.includes(' · kl '),
    );
    expect(await tokenColours(page)).toEqual(klStep2);
    expect(await page.locator('#spot').innerText()).toMatch(/\b1 scored, mean 6\.0\b/);
    const again = await alarmsShownAndExpected(page, ppoId);
    expect(again.shown).toEqual(alarms.shown);

    const notices = await page.locator('.notice.error').allInnerTexts();
    expect(notices).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 900_000); // about 2-3.5 min on 2 CPU cores with SwiftShader; generous for slower machines
});
