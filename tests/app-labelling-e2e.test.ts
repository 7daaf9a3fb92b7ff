// Labelling as a person does it in the built app (Chromium, WebGPU on SwiftShader, the real worker and
// IndexedDB), beyond what app-e2e and app-rlhf-e2e cover:
//  - self-consistency: with a repeat due as soon as one can come (1 in 1), an earlier K-way ranking comes
//    back in a new order and is ordered again by keyboard, an earlier pairwise verdict comes back with its
//    sides swapped and is judged again by mouse; the second judgements are kept on the first records, and
//    the Data tab shows the agreement with its interval beside InstructGPT's 72.6%. On the way, the Rank
//    tab's progress card: the goal set by keyboard, the time per ranking and to the goal, and what each
//    training stage gets (the same numbers the Train tab says each stage uses).
//  - K-way active selection: with a LoRA reward model trained on imported rankings, the switch (turned on
//    by keyboard) draws the next 3 prompts ahead and lists the reward model's mean margin of each; the one
//    with the smallest comes next, and its saved ranking records {method, margin, reward_model}, the margin
//    the reward model gives its answers when asked again.
// Screenshots: test-results/app/rank-progress.png, data-agreement.png, rank-ahead.png. Without WebGPU
// this fails; nothing skips.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { RankingRecord } from '../src/store/db.ts';
import { meanMargin } from '../src/shared/selection.ts';
import { agreementText } from '../src/ui/consistency.ts';
import { importText, MODEL_WORK, openApp, rankWithKeyboard, runDone, shot, startRanking, startRun, stored, tab } from './helpers/app.ts';
import { useBuiltEnv } from './helpers/browser-env.ts';

const env = useBuiltEnv();

/**
 * Waits until the rank panel's counter reads `n rankings · ...` and the view `judge` ('rank-view' or
 * 'pair-view') is up, with this prompt when one is given; resolves with the prompt it shows.
 */
const judging = async (page: Page, n: number, judge: 'rank-view' | 'pair-view', prompt?: string): Promise<string> =>
  String(
    await (
      await page.waitForFunction(
        ([n, judge, prompt]) => {
          const panel = document.querySelector('rlhf-app')?.shadowRoot?.querySelector('rank-panel')?.shadowRoot;
          const view = panel?.querySelector(judge)?.shadowRoot;
          const shown = view?.querySelector('.prompt')?.textContent;
          return (
            !!panel?.querySelector('#comparisons')?.textContent?.match(new RegExp(`^${n} rankings? ·`)) &&
            !!view?.querySelector(judge === 'rank-view' ? 'li' : 'button.verdict') &&
            (prompt === null || shown === prompt) &&
            shown
          );
        },
        [n, judge, prompt ?? null] as const,
        MODEL_WORK,
      )
    ).jsonValue(),
  );

/** The completions the Rank tab's K-way view shows, top to bottom. */
const shownCompletions = (page: Page) => page.locator('rank-panel rank-view li > div:first-child').allTextContents();

/** The two sides the Rank tab's pair view shows. */
const shownSides = async (page: Page) => ({
  A: await page.locator('rank-panel pair-view .side[data-side="A"] .text').textContent(),
  B: await page.locator('rank-panel pair-view .side[data-side="B"] .text').textContent(),
});

/** Orders the K-way view's completions as `target` by keyboard alone (Up/Down choose, Alt+Up moves up). */
async function orderByKeyboard(page: Page, target: string[]): Promise<void> {
  const list = await shownCompletions(page);
  let cursor = 0; // a new ranking has the first completion selected
  for (let p = 0; p < target.length; p++) {
    const i = list.indexOf(target[p]!);
    for (; cursor < i; cursor++) await page.keyboard.press('ArrowDown');
    for (; cursor > i; cursor--) await page.keyboard.press('ArrowUp');
    for (let j = i; j > p; j--) await page.keyboard.press('Alt+ArrowUp');
    list.splice(p, 0, ...list.splice(i, 1));
    cursor = p; // the selection moves with the completion
  }
  expect(await shownCompletions(page)).toEqual(target);
}

const rankings = async (page: Page) => (await stored<RankingRecord>(page, 'rankings')).sort((a, b) => a.createdAt - b.createdAt);

describe('labelling: self-consistency, progress and what to rank next', () => {
  it("repeats an earlier ranking in a new order and a verdict with its sides swapped; the Data tab shows the agreement beside InstructGPT's; the progress card counts each stage's data", async () => {
    const { page, errors } = await openApp(env.browser, env.url, { randomSeed: 7, recheckEvery: 1 });
    const PROMPTS = [
      'Write a short greeting for Lena.',
      'Say hello to Tomas.',
      'Give me one tip for baking bread.',
      'Thank Rosa for the scarf.',
      'Write a thank-you note to Ivo for the book.',
      'Give me advice for a rainy day.',
      'Name a good book for a train ride.',
      'Wish Leo a happy birthday.',
      'Suggest a name for a cat.',
      'Tell me a fact about the moon.',
    ];
    await importText(page, PROMPTS.map((prompt) => JSON.stringify({ prompt })).join('\n'), PROMPTS.length);

    // before any label: the progress card says what each stage has, and a goal set by keyboard
    await tab(page, 'rank');
    expect(await page.locator('#stage-needs dd[data-stage="rm"]').innerText()).toMatch(/^no comparisons yet/);
    expect(await page.locator('#stage-needs dd[data-stage="online"]').innerText()).toBe('10 prompts to sample on; PPO also needs the reward model.');
    expect(await page.locator('#pace').innerText()).toBe('Time per ranking: shown after the first one.');
    await page.focus('#goal-input');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('20');
    await page.keyboard.press('Tab');
    expect(await page.locator('#goal-text').innerText()).toBe('0 of 20 comparisons for a first reward model: 20 to go.');

    // four K-way rankings of three answers, by keyboard; none is a repeat yet (the last three are never repeated)
    await startRanking(page, 3, 8);
    await rankWithKeyboard(page, 1, ['ArrowDown', 'Alt+ArrowUp']);
    await rankWithKeyboard(page, 2, []);
    await rankWithKeyboard(page, 3, ['ArrowDown', 'ArrowDown', 'Alt+ArrowUp']);
    await rankWithKeyboard(page, 4, ['Alt+ArrowDown']);
    expect((await rankings(page)).map((r) => r.prompt)).toEqual(PROMPTS.slice(0, 4));
    expect(await page.locator('#pace').innerText()).toMatch(
      /^Time per ranking: \d+(\.\d)? s \(median of the last 4\); about \d+(\.\d)? (s|min|h) to the goal at this pace\.$/,
    );

    // the fifth comes as the first again, unannounced, its completions in a new order
    await judging(page, 4, 'rank-view', PROMPTS[0]);
    const first = (await rankings(page))[0]!;
    expect(new Set(first.completions).size).toBe(3); // three different answers, so the order is the labeller's
    const again = await shownCompletions(page);
    expect(again).not.toEqual(first.completions);
    expect([...again].sort()).toEqual([...first.completions].sort());
    expect(await page.locator('#chosen-note').count()).toBe(0);
    // pairwise from here on: the repeat on screen is still judged as the first time was, a ranking
    await page.check('#mode-pair');
    expect(await page.locator('rank-panel rank-view li').count()).toBe(3);
    await page.locator('rank-panel rank-view').focus();
    await orderByKeyboard(page, first.completions); // the same order as the first time
    await page.keyboard.press('Enter');

    // four verdicts: A by key, a tie, both bad with a better answer written, B by mouse
    await judging(page, 4, 'pair-view', PROMPTS[4]);
    let all = await rankings(page);
    expect(all.length).toBe(4); // the repeat made no record of its own
    expect(all[0]!.recheck).toMatchObject({ ranks: first.ranks }); // kept on the first, in its completions' order: agreed
    const pair1 = await shownSides(page);
    await page.keyboard.press('ArrowLeft');
    await judging(page, 5, 'pair-view', PROMPTS[5]);
    await page.keyboard.press('t');
    await judging(page, 6, 'pair-view', PROMPTS[6]);
    await page.keyboard.press('n');
    await page.waitForSelector('rank-panel pair-view textarea.better-text:focus');
    await page.keyboard.type('Try "The Little Prince": short, and kind.');
    await page.keyboard.press('Control+Enter');
    await judging(page, 7, 'pair-view', PROMPTS[7]);
    await page.click('rank-panel pair-view button.verdict[data-verdict="b"]');

    // the first verdict again, sides swapped; by mouse, the other answer this time
    await judging(page, 8, 'pair-view', PROMPTS[4]);
    expect(await shownSides(page)).toEqual({ A: pair1.B, B: pair1.A });
    await page.click('rank-panel pair-view button.verdict[data-verdict="a"]');
    await judging(page, 8, 'pair-view', PROMPTS[8]);
    all = await rankings(page);
    expect(all.length).toBe(8);
    const verdict1 = all[4]!;
    expect(verdict1).toMatchObject({ prompt: PROMPTS[4], verdict: 'a', recheck: { verdict: 'a', shown: [verdict1.shown![1], verdict1.shown![0]] } });
    expect(verdict1.recheck!.ranks).toEqual([verdict1.ranks[1], verdict1.ranks[0]]); // the other one won
    expect(all.map((r) => r.verdict ?? null)).toEqual([null, null, null, null, 'a', 'tie', 'both-bad', 'b']);

    // the progress card: 4 x 3 comparisons and the two decided pairs; the tie and both-bad give none
    expect(await page.locator('#comparisons').innerText()).toBe('8 rankings · 14 comparisons');
    expect(await page.locator('#goal-text').innerText()).toBe('14 of 20 comparisons for a first reward model: 6 to go.');
    expect(await page.locator('#goal-bar').evaluate((b: HTMLProgressElement) => b.value)).toBeCloseTo(0.7, 6);
    expect(await page.locator('#pace').innerText()).toMatch(
      /^Time per ranking: \d+(\.\d)? s \(median of the last 10\); about \d+(\.\d)? (s|min|h) to the goal at this pace\.$/,
    );
    const needs = Object.fromEntries(await page.locator('#stage-needs dd').evaluateAll((dds) => dds.map((d) => [d.getAttribute('data-stage'), d.textContent])));
    expect(needs).toEqual({
      rm: '14 comparisons from 6 rankings; a held-out accuracy from 10 rankings: 4 to go.',
      dpo: 'the same 14 pairs, the better answer as chosen.',
      sft: '1 demonstration (1 written when both answers were bad).',
      online: '11 prompts to sample on; PPO also needs the reward model.',
    });
    await shot(page, 'rank-progress');
    // the Train tab says the same of what each stage uses
    await tab(page, 'train');
    const uses = (stage: string) => page.locator(`#stage label:has(input[value="${stage}"]) .uses`).first().innerText();
    await page.waitForFunction(
      () => !/…/.test(document.querySelector('rlhf-app')?.shadowRoot?.querySelector('train-view')?.shadowRoot?.querySelector('#stage')?.textContent ?? '…'),
    );
    expect(await uses('rm')).toBe('Uses 8 rankings, 14 pairs.');
    expect(await uses('dpo')).toBe('Uses 8 rankings, 14 pairs.');
    expect(await uses('sft')).toBe('Uses 1 demonstration.');
    expect(await uses('ppo')).toMatch(/^Uses 11 prompts /);

    // the Data tab: the agreement with itself over the two repeats, its interval, InstructGPT's figure beside it
    await tab(page, 'data');
    const line = await page.locator('#self-agreement').innerText();
    expect(line).toMatch(
      /^Agreement with yourself: 50% over 2 repeats \(95% interval \d+% to \d+%\), comparisons judged again in a new order\. For context, InstructGPT's labelers agreed with each other 72\.6% of the time \(±1\.5%\)\.$/,
    );
    expect(line).toBe(agreementText(all, 1));
    for (const [r, text] of [
      [all[0]!, 'Judged again later in a new order: 100% of its pairs alike.'],
      [verdict1, 'Judged again later, sides swapped: a different call.'],
    ] as const) {
      await page.click(`.ranking-row[data-id="${r.id}"] button.show`);
      await page.locator('data-view .recheck', { hasText: text }).waitFor({ timeout: 10_000 });
    }
    await shot(page, 'data-agreement');

    expect(await page.locator('.notice.error').allInnerTexts()).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 600_000);

  it('K-way: of the prompts drawn ahead, the one the reward model is least sure of comes next, and its ranking records how it was chosen', async () => {
    const { page, errors } = await openApp(env.browser, env.url, { randomSeed: 11 });
    const PROMPTS = [
      'Write a short greeting for Lena.',
      'Say hello to Tomas.',
      'Give me one tip for baking bread.',
      'Thank Rosa for the scarf.',
      'Give me advice for a rainy day.',
    ];
    // rankings to train a reward model on, imported (the other tests rank theirs by hand)
    const RANKED = [
      { prompt: 'Greet Ana.', completions: ['Hello Ana, lovely to see you!', 'Go away.'] },
      { prompt: 'Thank Omar for the tea.', completions: ['Thank you, Omar, the tea was lovely.', 'Tea.', 'No.'] },
      { prompt: 'Say hi to Bea.', completions: ['Hi Bea, how are you?', 'Whatever.'] },
      { prompt: 'Wish Leo a good trip.', completions: ['Have a wonderful trip, Leo!', 'Bye.'] },
    ];
    await importText(page, [...PROMPTS.map((prompt) => ({ prompt })), ...RANKED].map((o) => JSON.stringify(o)).join('\n'), PROMPTS.length);
    const rmId = await startRun(page, 'rm', [
      ['steps', '2'],
      ['batchSize', '1'],
      ['seqLen', '48'],
      ['loraRank', '4'],
    ]);
    await runDone(page, rmId);

    // the first prompt is drawn as it comes; then the switch, by keyboard, has the reward model choose
    await tab(page, 'rank');
    await page.waitForSelector('#rank-uncertain:not([disabled])', { timeout: 30_000 });
    expect(await page.locator('#rank-uncertain').isChecked()).toBe(false);
    await startRanking(page, 3, 8);
    await judging(page, 0, 'rank-view', PROMPTS[0]);
    await page.focus('#rank-uncertain');
    await page.keyboard.press('Space');
    expect(await page.locator('#rank-uncertain').isChecked()).toBe(true);
    expect(await page.locator('#uncertain-why').innerText()).toMatch(
      /of the next 3 prompts drawn ahead, it brings the one whose answers it scores closest\. Reward model: run /,
    );
    // the next three are drawn ahead and scored, each listed with its mean margin; the smallest is marked next.
    // A prompt whose answers all came out alike has no margin and says so (the built-in model sometimes writes
    // one answer three times: which prompt depends on the seeds the page drew, and so on the order of its work)
    await page.waitForFunction(
      () => {
        const li = [...(document.querySelector('rlhf-app')?.shadowRoot?.querySelector('rank-panel')?.shadowRoot?.querySelectorAll('#ahead li') ?? [])];
        return li.length === 3 && li.every((x) => x.getAttribute('data-margin') || x.textContent!.includes('answers all alike'));
      },
      undefined,
      MODEL_WORK,
    );
    const ahead = await page.locator('#ahead li').evaluateAll((li) =>
      li.map((x) => ({
        prompt: x.getAttribute('data-prompt')!,
        margin: x.getAttribute('data-margin') ? Number(x.getAttribute('data-margin')) : null,
        next: x.hasAttribute('data-next'),
      })),
    );
    expect(ahead.map((x) => x.prompt)).toEqual(PROMPTS.slice(1, 4));
    const scored = ahead.filter((x): x is { prompt: string; margin: number; next: boolean } => x.margin !== null);
    expect(scored.length).toBeGreaterThan(0); // three prompts' answers all alike: nothing to choose by
    const least = scored.reduce((a, b) => (b.margin < a.margin ? b : a));
    expect(ahead.filter((x) => x.next)).toEqual([least]);
    expect(await page.locator('#ahead li[data-next]').innerText()).toBe(`${least.prompt} — ${least.margin.toFixed(3)} apart on average (next)`);
    await shot(page, 'rank-ahead');

    // the first submitted by mouse: the reward model's choice comes next, and says so
    await page.click('#rank-submit');
    expect(await judging(page, 1, 'rank-view')).toBe(least.prompt); // the old view goes at the click: this is the next
    expect(await page.locator('#chosen-note').innerText()).toBe(
      `Chosen by the reward model: it scores these answers ${least.margin.toFixed(3)} apart on average, the closest of the prompts drawn ahead.`,
    );
    await rankWithKeyboard(page, 2, ['ArrowDown', 'Alt+ArrowUp']);

    const [drawn, chosen] = await rankings(page);
    expect(drawn!.prompt).toBe(PROMPTS[0]);
    expect(drawn!.selection).toBeUndefined();
    expect(chosen).toMatchObject({ prompt: least.prompt, selection: { method: 'uncertain', margin: least.margin, reward_model: rmId } });
    // the margin is the reward model's: its scores of the saved answers, asked for again, give the same mean margin
    const scores = await page.evaluate(
      ([id, prompt, completions]) =>
        (
          document.querySelector('rlhf-app') as unknown as {
            ctx: { engine: { rewardScores(id: string, items: { prompt: string; completion: string }[]): Promise<number[]> } };
          }
        ).ctx.engine.rewardScores(
          id,
          completions.map((completion) => ({ prompt, completion })),
        ),
      [rmId, chosen!.prompt, chosen!.completions] as const,
    );
    expect(meanMargin(chosen!.completions, scores)).toBeCloseTo(least.margin, 4);
    // and the Data tab says how it was chosen
    await tab(page, 'data');
    await page.click(`.ranking-row[data-id="${chosen!.id}"] button.show`);
    expect(await page.locator('data-view .selected').innerText()).toBe(
      `Chosen by active selection: the reward model (run ${rmId.slice(0, 8)}) scored them ${least.margin.toFixed(3)} apart on average.`,
    );

    expect(await page.locator('.notice.error').allInnerTexts()).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 600_000);
});
