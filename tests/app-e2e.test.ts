// The playground end to end, as a person uses it: the built app (vite build, served by Vite's preview
// server on localhost) in Debian's Chromium with WebGPU (SwiftShader here), the real worker and the
// real IndexedDB. Load the built-in model, import data (one line holding HTML), generate K completions
// and rank them with the keyboard, reload and find the rankings kept, train a reward model for a few
// steps while the chart and the progress bar move, export the trained adapter and open it back.
// Screenshots of every view go to test-results/ as artifacts. Without WebGPU this fails; nothing skips.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { unzipFiles } from '../src/io/zip.ts';
import { GENERATION_DEFAULTS } from '../src/io/generation-config.ts';
import type { RankingRecord } from '../src/store/db.ts';
import { MODEL_WORK, modelLoaded, rankWithKeyboard, setFields, shot, SHOTS, stored, tab } from './helpers/app.ts';
import { launchChromiumProfile, useBuiltEnv } from './helpers/browser-env.ts';
import { startFakeHub } from './helpers/fake-hub.ts';

const env = useBuiltEnv();

const XSS = 'Greet <img src=x onerror="document.body.dataset.xss=1"> politely.';
const DATA = [
  { prompt: XSS },
  { prompt: 'Name a fruit you like.' },
  { prompt: 'Say hello to Ana.' },
  { prompt: 'Tell me about rain.' },
  { prompt: 'Give me a tip for tea.', completion: 'Warm the pot first, then let the leaves steep for three minutes.' },
]
  .map((o) => JSON.stringify(o))
  .join('\n');

describe('the playground, end to end', () => {
  it('loads, imports, ranks by keyboard, keeps rankings over a reload, trains a reward model, exports and imports', async () => {
    mkdirSync(SHOTS, { recursive: true });
    const page = await env.browser.newPage({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
    const errors: string[] = [],
      consoleErrors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => void (m.type() === 'error' && consoleErrors.push(`${m.text()} (${m.location().url})`)));
    await page.goto(env.url);
    await modelLoaded(page);
    // a clean load logs no error: a favicon, and no probe for the optional files the built-in model lacks
    expect(consoleErrors).toEqual([]);
    expect(await page.locator('#model-params').innerText()).toMatch(/1\.0M/);
    const size = '\\d+(\\.\\d+)? [KMG]iB';
    expect(await page.locator('#model-info').innerText()).toMatch(
      new RegExp(`GPU memory\\s+sampling 4 × \\d+ tokens: ${size} · LoRA r=8 training \\(8 × \\d+\\): ${size} · full fine-tuning: ${size}`),
    );
    // the adapter as the browser names it (in a worker the page asks the same navigator.gpu)
    const own = await page.evaluate(async () => {
      const i = (await navigator.gpu.requestAdapter())!.info;
      return [i.vendor, i.architecture, i.device, i.description].filter((x) => x).join(' ');
    });
    expect(own.length).toBeGreaterThan(0);
    await page.waitForFunction(() => !!document.querySelector('rlhf-app')?.shadowRoot?.querySelector('model-view')?.shadowRoot?.querySelector('#adapter'));
    expect(await page.locator('#adapter dd').first().innerText()).toBe(own);
    expect(await page.locator('#adapter').innerText()).toMatch(/Limits\s+\d+(\.\d+)? [KMG]iB per buffer, \d+(\.\d+)? [KMG]iB per storage binding/);
    await shot(page, 'model');

    // Data: paste JSONL; the HTML in a prompt is shown as text and never runs. (First a notice: shown on
    // the tab where it was raised, not on the others, and dismissed by its button.)
    await tab(page, 'data');
    await page.click('#import-go');
    const pasteFirst = page.locator('.notice', { hasText: 'Paste JSONL lines first.' });
    await pasteFirst.waitFor({ timeout: 30_000 });
    await tab(page, 'rank');
    expect(await pasteFirst.count()).toBe(0);
    await tab(page, 'data');
    if (await pasteFirst.count()) await pasteFirst.locator('button[aria-label="Dismiss"]').click(); // (unless it expired meanwhile)
    expect(await pasteFirst.count()).toBe(0);
    await page.fill('#import-text', DATA);
    await page.click('#import-go');
    await page.waitForFunction(
      () => document.querySelector('rlhf-app')?.shadowRoot?.querySelector('data-view')?.shadowRoot?.querySelectorAll('.prompt-row').length === 4,
      undefined,
      { timeout: 30_000 },
    );
    const rows = await page.locator('.prompt-row').allInnerTexts();
    expect(rows.some((t) => t.includes('<img src=x onerror="document.body.dataset.xss=1">'))).toBe(true);
    expect(await page.locator('.record-row').count()).toBe(1);
    await shot(page, 'data');
    // write, edit and delete a prompt and a demonstration in place
    await page.fill('#prompt-new', 'A prompt to edit.');
    await page.click('#prompt-add');
    const promptRow = (text: string) => page.locator('.prompt-row', { hasText: text });
    await promptRow('A prompt to edit.').locator('button.edit').click();
    await page.fill('.edit-prompt-text', 'A prompt, edited.');
    await page.click('.prompt-row.editing button.save');
    await promptRow('A prompt, edited.').waitFor({ timeout: 30_000 });
    expect(await promptRow('A prompt to edit.').count()).toBe(0);
    await promptRow('A prompt, edited.').locator('button.delete').click();
    await page.waitForFunction(
      () => document.querySelector('rlhf-app')?.shadowRoot?.querySelector('data-view')?.shadowRoot?.querySelectorAll('.prompt-row').length === 4,
      undefined,
      { timeout: 30_000 },
    );
    await page.fill('#demo-prompt', 'Say thanks to Leo.');
    await page.fill('#demo-completion', 'Thanks, Leo!');
    await page.click('#demo-add');
    const demoRow = page.locator('.record-row', { hasText: 'Say thanks to Leo.' });
    await demoRow.waitFor({ timeout: 30_000 });
    await demoRow.locator('button.edit').click();
    await page.fill('.record-row.editing .edit-completion', 'Thank you so much, Leo!');
    await page.click('.record-row.editing button.save');
    await page.locator('.record-row', { hasText: 'Thank you so much, Leo!' }).waitFor({ timeout: 30_000 });
    expect(await page.locator('#count-demos').innerText()).toMatch(/^2\s*demonstrations$/);
    await page.locator('.record-row', { hasText: 'Say thanks to Leo.' }).locator('button.delete').click();
    await page.waitForFunction(
      () => document.querySelector('rlhf-app')?.shadowRoot?.querySelector('data-view')?.shadowRoot?.querySelectorAll('.record-row').length === 1,
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.locator('#count-demos').innerText()).toMatch(/^1\s*demonstration$/);

    // Rank: K = 3 streamed completions, ranked with the keyboard; the next prompt is generated meanwhile
    await tab(page, 'rank');
    await page.fill('#rank-k', '3');
    await page.locator('#rank-k').dispatchEvent('change');
    await page.click('#rank-start');
    await page.waitForSelector('rank-view li', MODEL_WORK);
    expect(await page.locator('rank-view li').count()).toBe(3);
    // second completion to the top, quality 6 and "hallucination" on it, then tie the last two
    for (const k of ['ArrowDown', 'Alt+ArrowUp', '6', 'h', 'ArrowDown', 'ArrowDown', '=']) await page.keyboard.press(k);
    await shot(page, 'rank-html-prompt');
    await page.keyboard.press('Enter');
    await page.waitForFunction(
      () =>
        document
          .querySelector('rlhf-app')
          ?.shadowRoot?.querySelector('rank-panel')
          ?.shadowRoot?.querySelector('#comparisons')
          ?.textContent?.startsWith('1 ranking ·'),
      undefined,
      { timeout: 30_000 },
    );
    await rankWithKeyboard(page, 2, ['ArrowDown', 'ArrowDown', 'Alt+ArrowUp', '5', 'ArrowDown', 'f'], 'rank');
    // K changed while the next prompt is written in the background with K = 3: it is written anew with 2
    await page.waitForSelector('rank-panel rank-view li', MODEL_WORK);
    await page.fill('#rank-k', '2');
    await page.locator('#rank-k').dispatchEvent('change');
    expect(await page.locator('rank-panel rank-view li').count()).toBe(3); // the prompt on screen keeps its three
    await page.locator('rank-panel rank-view').focus(); // the keyboard back from the field
    await rankWithKeyboard(page, 3, ['Alt+ArrowDown']);
    expect(await page.locator('#comparisons').innerText()).toBe('3 rankings · 8 comparisons');
    // Escape skips the last prompt (written with K = 2) without saving anything: no prompt is left to rank
    await page.waitForSelector('rank-panel rank-view li', MODEL_WORK);
    expect(await page.locator('rank-panel rank-view li').count()).toBe(2);
    await page.keyboard.press('Escape');
    await page.waitForSelector('#add-examples', { timeout: 30_000 });
    expect(await page.locator('#comparisons').innerText()).toBe('3 rankings · 8 comparisons');

    // Reload: the rankings are in IndexedDB
    await page.reload();
    await modelLoaded(page);
    await tab(page, 'rank');
    await page.waitForFunction(
      () =>
        document
          .querySelector('rlhf-app')
          ?.shadowRoot?.querySelector('rank-panel')
          ?.shadowRoot?.querySelector('#comparisons')
          ?.textContent?.startsWith('3 rankings'),
      undefined,
      { timeout: 30_000 },
    );
    // the prompt skipped before the reload is offered again: Escape skips it while it is being written.
    // A prompt typed here, stopped once the first words are there, is ranked as it stands (and skipped
    // again: nothing is saved). High temperature: rambling answers, no early end of text.
    for (const [id, v] of [
      ['#rank-max-tokens', '200'],
      ['#rank-temperature', '2'],
    ]) {
      await page.fill(id, v);
      await page.locator(id).dispatchEvent('change');
    }
    const written = () =>
      page.waitForFunction(
        () =>
          [...(document.querySelector('rlhf-app')?.shadowRoot?.querySelector('rank-panel')?.shadowRoot?.querySelectorAll('.samples li') ?? [])].some(
            (li) => (li.textContent ?? '').length > 3,
          ),
        undefined,
        MODEL_WORK,
      );
    await page.click('#rank-start');
    await written();
    await page.keyboard.press('Escape');
    await page.waitForSelector('#add-examples', { timeout: 30_000 });
    // (a prompt already in the list, typed here: ranked again, not stored twice, the Data tab's rule)
    await page.fill('#own-prompt', 'Tell me about rain.');
    await page.press('#own-prompt', 'Enter');
    await written();
    await shot(page, 'rank-streaming');
    await page.click('#rank-stop');
    await page.waitForSelector('rank-panel rank-view li', MODEL_WORK);
    const stopped = await page.locator('rank-panel rank-view li').allInnerTexts();
    expect(stopped.length).toBe(4); // K's default
    expect(stopped.some((t) => t.trim().length > 0)).toBe(true);
    await page.keyboard.press('Escape');
    await page.waitForSelector('#add-examples', { timeout: 30_000 });
    expect(await page.locator('#comparisons').innerText()).toBe('3 rankings · 8 comparisons');
    await tab(page, 'data');
    await page.waitForSelector('.ranking-row', { timeout: 30_000 });
    expect(await page.locator('.ranking-row').count()).toBe(3);
    expect(await page.locator('.prompt-row', { hasText: 'Tell me about rain.' }).count()).toBe(1);
    expect(await page.locator('.prompt-row').count()).toBe(4);
    // the export keeps every label: ranks with the tie, the quality scores and the flags, best first
    const [bundle] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('#export-data')]);
    expect(bundle.suggestedFilename()).toBe('rlhf-playground-data.zip');
    const bundlePath = join(SHOTS, 'rlhf-playground-data.zip');
    writeFileSync(bundlePath, readFileSync((await bundle.path())!));
    const got = unzipFiles(new Uint8Array(readFileSync(bundlePath)), 'rlhf-playground-data.zip');
    expect([...got.keys()].sort()).toEqual(['data.jsonl', 'guidelines.md', 'prompts.jsonl']); // no votes or spot checks yet
    const text = (f: string) => new TextDecoder().decode(got.get(f));
    expect(text('guidelines.md')).toMatch(/^# Labeling guidelines\n/); // the Rank tab's, unedited
    const lines = text('data.jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.find((l) => l.prompt === XSS)).toMatchObject({ ranks: [0, 1, 1], scores: [6, null, null], flags: [['hallucination'], [], []] });
    expect(lines.find((l) => l.prompt === 'Name a fruit you like.')).toMatchObject({ scores: [null, 5, null], flags: [[], [], ['fails-instruction']] });
    // and how the completions were sampled: the Rank tab's settings, untouched here (transformers' names)
    expect(lines.filter((l) => l.completions).map((l) => l.generation_config)).toEqual([GENERATION_DEFAULTS, GENERATION_DEFAULTS, GENERATION_DEFAULTS]);
    expect(lines.filter((l) => l.completions).length).toBe(3);
    expect(
      text('prompts.jsonl')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).prompt),
    ).toContain(XSS);
    // the zip imports back on the same tab: everything in it is here already
    await page.setInputFiles('#import-file', bundlePath);
    await page.waitForFunction(
      () =>
        /^rlhf-playground-data\.zip: added 0 records and 0 prompts; \d+ already here \(skipped\); guidelines\.md kept as a record, not imported\.$/.test(
          document.querySelector('rlhf-app')?.shadowRoot?.querySelector('data-view')?.shadowRoot?.querySelector('#import-summary')?.textContent ?? '',
        ),
      undefined,
      { timeout: 30_000 },
    );
    // a saved ranking shown whole: order, the tie, the score and the flag (by mouse)
    // (by its prompt cell: the row also shows the best completion, which the model may write with "Greet" in it)
    const rowOf = (prompt: string) => page.locator('.ranking-row', { has: page.locator('td:first-child', { hasText: prompt }) });
    const xssRow = rowOf('Greet <img');
    await xssRow.locator('button.show').click();
    const whole = page.locator('.ranking-detail');
    await whole.waitFor({ timeout: 30_000 });
    const items = await whole.locator('.ranked-item').allInnerTexts();
    expect(items.length).toBe(3);
    expect(items[0]).toMatch(/^#1\b[\s\S]*quality 6\/7[\s\S]*Hallucination/);
    expect(items[1]).toMatch(/^#2\b/);
    expect(items[2]).toMatch(/^#2 \(tie\)/);
    expect(await whole.locator('.sampled').innerText()).toBe('Sampled at temperature 0.9, top-p 0.95, top-k off, up to 64 new tokens.');
    // edited in a rank view by keyboard: the last completion carried to the top, a reason typed ('r'), saved (Enter)
    await xssRow.locator('button.edit').click();
    await page.waitForSelector('.edit-ranking rank-view li', { timeout: 30_000 });
    for (const k of ['ArrowDown', 'ArrowDown', 'Alt+ArrowUp', 'Alt+ArrowUp', 'r']) await page.keyboard.press(k);
    await page.keyboard.type('the shortest greeting');
    await page.keyboard.press('Enter');
    await page.waitForFunction(
      () =>
        document
          .querySelector('rlhf-app')
          ?.shadowRoot?.querySelector('data-view')
          ?.shadowRoot?.querySelector('.ranking-detail .rationale')
          ?.textContent?.includes('the shortest greeting'),
      undefined,
      { timeout: 30_000 },
    );
    expect(await xssRow.innerText()).toContain('(edited)');
    const edited = ((await stored(page, 'rankings')) as RankingRecord[]).find((r) => r.prompt === XSS)!;
    const before = lines.find((l) => l.prompt === XSS);
    expect(edited.completions).toEqual([before.completions[2], before.completions[0], before.completions[1]]);
    expect(edited).toMatchObject({
      rationale: 'the shortest greeting',
      scores: [null, 6, null],
      flags: [[], ['hallucination'], []],
      generation_config: GENERATION_DEFAULTS,
    });
    expect(edited.editedAt).toBeGreaterThanOrEqual(edited.createdAt);
    await xssRow.locator('button.show').click(); // hidden again
    await whole.waitFor({ state: 'detached', timeout: 30_000 });

    // a saved ranking deleted (by mouse): gone from the list at once, and after a reload from the list and
    // the exported data; its prompt stays (only the ranking was deleted)
    const fruit = 'Name a fruit you like.';
    const fruitRow = rowOf(fruit);
    await fruitRow.locator('button.delete').click();
    await fruitRow.waitFor({ state: 'detached', timeout: 30_000 });
    expect(await page.locator('.ranking-row').count()).toBe(2);
    await page.reload();
    await modelLoaded(page);
    await tab(page, 'data');
    await page.waitForSelector('.ranking-row', { timeout: 30_000 });
    expect(await page.locator('.ranking-row').count()).toBe(2);
    expect(await fruitRow.count()).toBe(0);
    const [afterDelete] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('#export-data')]);
    const left = unzipFiles(new Uint8Array(readFileSync((await afterDelete.path())!)), 'rlhf-playground-data.zip');
    const leftText = (f: string) => new TextDecoder().decode(left.get(f));
    const leftLines = leftText('data.jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(
      leftLines
        .filter((l) => l.completions)
        .map((l) => l.prompt)
        .sort(),
    ).toEqual(
      lines
        .filter((l) => l.completions && l.prompt !== fruit)
        .map((l) => l.prompt)
        .sort(),
    );
    expect(leftLines.some((l) => l.prompt === fruit)).toBe(false);
    expect(
      leftText('prompts.jsonl')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).prompt),
    ).toContain(fruit);

    // a binary file, an empty one and one in Latin-1 are each refused in one message, not line by line
    const importErrors = () => page.locator('data-view #import-errors li').allInnerTexts();
    for (const [name, buffer, problem] of [
      [
        'model.jsonl',
        Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x0a, 0x7d]),
        'model.jsonl: a binary file, not text (a NUL byte at line 1, byte offset 7)',
      ],
      ['empty.jsonl', Buffer.alloc(0), 'empty.jsonl: the file is empty'],
      [
        'latin1.jsonl',
        Buffer.concat([Buffer.from('{"prompt": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]),
        'latin1.jsonl: not UTF-8 text (line 1, byte offset 15: 0xe9); save it as UTF-8',
      ],
    ] as const) {
      await page.setInputFiles('#import-file', { name, mimeType: 'application/octet-stream', buffer });
      await page.waitForFunction(
        (n) =>
          document
            .querySelector('rlhf-app')
            ?.shadowRoot?.querySelector('data-view')
            ?.shadowRoot?.querySelector('#import-errors li')
            ?.textContent?.startsWith(n),
        name,
        { timeout: 30_000 },
      );
      expect(await importErrors()).toEqual([problem]);
    }

    // eleven imported rankings besides the two kept here: enough for the reward model to hold one out
    await page.fill(
      '#import-text',
      Array.from({ length: 11 }, (_, i) =>
        JSON.stringify({ prompt: `Count to ${i + 2}.`, completions: [Array.from({ length: i + 2 }, (_, k) => k + 1).join(', '), 'No.'] }),
      ).join('\n'),
    );
    await page.click('#import-go');
    await page.waitForFunction(
      () =>
        document.querySelector('rlhf-app')?.shadowRoot?.querySelector('data-view')?.shadowRoot?.querySelector('#count-rankings')?.textContent?.startsWith('13'),
      undefined,
      { timeout: 30_000 },
    );

    // Train: a LoRA reward model for a few steps; the chart and the progress bar move
    await tab(page, 'train');
    await page.check('#stage input[value="rm"]');
    await setFields(page, [
      ['epochs', '2'],
      ['steps', '6'],
      ['batchSize', '1'],
      ['seqLen', '48'],
      ['loraRank', '4'],
    ]);
    await page.click('#start');
    await page.waitForSelector('#run[data-status="running"]', MODEL_WORK);
    // the page keeps working while the worker trains: add a prompt on the Data tab and see it listed
    await tab(page, 'data');
    await page.fill('#prompt-new', 'Written while the reward model trains.');
    await page.click('#prompt-add');
    await page.waitForFunction(
      () =>
        [...(document.querySelector('rlhf-app')?.shadowRoot?.querySelector('data-view')?.shadowRoot?.querySelectorAll('.prompt-row') ?? [])].some((r) =>
          r.textContent?.includes('Written while the reward model trains.'),
        ),
      undefined,
      { timeout: 30_000 },
    );
    await tab(page, 'train');
    const points = (n: number) =>
      page.waitForFunction(
        (k) =>
          Number(
            document
              .querySelector('rlhf-app')
              ?.shadowRoot?.querySelector('train-view')
              ?.shadowRoot?.querySelector('line-chart.loss')
              ?.getAttribute('data-points'),
          ) >= k,
        n,
        MODEL_WORK,
      );
    // pause after step 2 (a checkpoint), then resume: it goes on from where it stopped
    await points(2);
    await page.click('#pause');
    await page.waitForSelector('#run[data-status="paused"]', MODEL_WORK);
    const pausedAt = Number(/^step (\d) \/ 6/.exec(await page.locator('#progress-text').innerText())?.[1]);
    expect(pausedAt).toBeGreaterThanOrEqual(2);
    expect(pausedAt).toBeLessThan(6);
    expect(await page.locator('#pause').isDisabled()).toBe(true);
    await page.click('#resume');
    await page.waitForSelector('#run[data-status="running"]', MODEL_WORK);
    // the progress line after the first step since: steps, tokens/s and time left
    await page.waitForFunction(
      () =>
        /^step [3-6] \/ 6 · \d+ tokens\/s · .+ left$/.test(
          document.querySelector('rlhf-app')?.shadowRoot?.querySelector('train-view')?.shadowRoot?.querySelector('#progress-text')?.textContent ?? '',
        ),
      undefined,
      MODEL_WORK,
    );
    await points(pausedAt + 1);
    expect(Number(await page.locator('progress#progress').evaluate((p) => (p as HTMLProgressElement).value))).toBeGreaterThan(pausedAt);
    await shot(page, 'train');
    await page.waitForSelector('#run[data-status="done"]', MODEL_WORK);
    // the held-out accuracy: on the chart beside the training batch's, and in the run's result
    const heldOutPoints = await page
      .locator('line-chart.accuracy')
      .evaluate((c) => (c as HTMLElement & { seriesPoints(s: string): number }).seriesPoints('eval_accuracy'));
    expect(heldOutPoints).toBeGreaterThanOrEqual(2);
    expect(await page.locator('#heldout').innerText()).toMatch(/^Held-out pair accuracy \d+% on 1 pair/);
    expect(Number(await page.locator('line-chart.loss').getAttribute('data-points'))).toBe(6); // each step once
    const runId = (await page.locator('#run').getAttribute('data-run'))!;

    await tab(page, 'inspect');
    await shot(page, 'inspect');
    await tab(page, 'compare');
    await shot(page, 'compare');

    // Share: export the trained adapter, then open the zip as a shared checkpoint
    await tab(page, 'share');
    await page.waitForSelector(`#share-model option[value="${runId}"]`, { state: 'attached', timeout: 30_000 });
    await page.selectOption('#share-model', runId);
    const [download] = await Promise.all([page.waitForEvent('download', MODEL_WORK), page.click('#download-model')]);
    const zipPath = join(SHOTS, 'exported-adapter.zip');
    writeFileSync(zipPath, readFileSync((await download.path())!));
    const files = unzipFiles(new Uint8Array(readFileSync(zipPath)), 'exported-adapter.zip');
    // the built-in base is not on the Hub: it travels beside the adapter, with the tokenizer and the model card
    expect([...files.keys()].sort()).toEqual([
      'README.md',
      'adapter/adapter_config.json',
      'adapter/adapter_model.safetensors',
      'adapter/tokenizer.json',
      'adapter/tokenizer_config.json',
      'starting-model/config.json',
      'starting-model/generation_config.json',
      'starting-model/model.safetensors',
      'starting-model/tokenizer.json',
      'starting-model/tokenizer_config.json',
    ]);
    expect(JSON.parse(new TextDecoder().decode(files.get('adapter/adapter_config.json')))).toMatchObject({ base_model_name_or_path: 'starting-model' });
    const readme = new TextDecoder().decode(files.get('README.md'));
    expect(readme).toMatch(/^---\n/);
    expect(readme).toContain('from_pretrained("starting-model"');
    expect(readme).toContain('PeftModel.from_pretrained(base, "adapter")');
    await shot(page, 'share');
    // this build has no OAuth app: the sign-in button says so instead of failing when pressed; a token works
    expect(await page.locator('#hub-signin').isDisabled()).toBe(true);
    expect(await page.locator('#hub-no-oauth').innerText()).toMatch(/needs an OAuth app .*access token/s);
    expect(await page.locator('#hub-token-use').isDisabled()).toBe(false);
    await page.setInputFiles('#open-file', zipPath);
    await page.click('#open-go');
    await page.waitForFunction(
      () =>
        /adapter/.test(document.querySelector('rlhf-app')?.shadowRoot?.querySelector('model-view')?.shadowRoot?.querySelector('#policy')?.textContent ?? ''),
      undefined,
      MODEL_WORK,
    );
    expect(await page.locator('#status').innerText()).toMatch(/sampling exported-adapter\.zip/);

    // delete the run (after a confirmation): it leaves the runs table and the store
    await tab(page, 'train');
    page.once('dialog', (d) => void d.accept());
    await page.click(`#runs tr.run[data-run="${runId}"] button.delete`);
    await page.waitForSelector(`#runs tr.run[data-run="${runId}"]`, { state: 'detached', timeout: 30_000 });

    // a model from this computer: the picked files of a GPT-2 folder replace the built-in Llama
    await tab(page, 'model');
    await page.setInputFiles(
      '#pick-files',
      ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => `tests/fixtures/gpt2-tiny/${f}`),
    );
    await page.waitForFunction(
      () =>
        /GPT-2: 2 layers/.test(
          document.querySelector('rlhf-app')?.shadowRoot?.querySelector('model-view')?.shadowRoot?.querySelector('#model-info')?.textContent ?? '',
        ),
      undefined,
      MODEL_WORK,
    );
    expect(await page.locator('#status').innerText()).toMatch(/^3 picked files · GPT-2/);

    expect(await page.evaluate(() => document.body.dataset.xss)).toBeUndefined();
    expect(errors).toEqual([]);
    await page.close();
  }, 900_000);

  it('keeps what the user made across a browser restart, and shows the storage used and whether it is persistent', async () => {
    const profile = mkdtempSync(join(tmpdir(), 'rlhf-playground-profile-'));
    try {
      const first = await launchChromiumProfile(profile);
      const page = await first.newPage();
      await page.goto(env.url);
      await modelLoaded(page);
      await tab(page, 'data');
      await page.fill('#prompt-new', 'Kept across a browser restart.');
      await page.click('#prompt-add');
      await page.locator('.prompt-row', { hasText: 'Kept across a browser restart.' }).waitFor({ timeout: 30_000 });
      const persisted = await page.evaluate(() => navigator.storage.persisted());
      await page.waitForFunction(() =>
        /\(IndexedDB\): [\d.]+ [KMG]iB used of [\d.]+ [KMG]iB · /.test(
          document.querySelector('rlhf-app')?.shadowRoot?.querySelector('#storage')?.textContent ?? '',
        ),
      );
      expect(await page.locator('#storage').innerText()).toContain(persisted ? 'storage is persistent' : 'persistence was not granted');
      await first.close(); // the browser process ends

      const second = await launchChromiumProfile(profile);
      const again = await second.newPage();
      await again.goto(env.url);
      await modelLoaded(again);
      await tab(again, 'data');
      await again.locator('.prompt-row', { hasText: 'Kept across a browser restart.' }).waitFor({ timeout: 30_000 });
      await second.close();
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  });

  it('falls back to the built-in model when the last one cannot be loaded, and says why', async () => {
    const page = await env.browser.newPage();
    await page.addInitScript(() => localStorage.setItem('rlhf-playground:last-model', JSON.stringify({ url: '/no-such-model/' })));
    await page.goto(env.url);
    await modelLoaded(page);
    expect(await page.locator('#model-params').innerText()).toMatch(/1\.0M/);
    expect(await page.locator('#load-error').innerText()).toMatch(/^your last model: .*no-such-model/);
    await page.close();
  });

  it('loads from a Hub set on the Model tab (a mirror): a private model with a token, a public one again after a reload', async () => {
    const hub = await startFakeHub({ tokens: { hf_reader: { user: 'alice', role: 'read' } } });
    try {
      const dir = 'public/models/default';
      const files = new Map(
        ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map((f) => [
          f,
          new Uint8Array(readFileSync(join(dir, f))),
        ]),
      );
      hub.repos.set('alice/tiny-private', { id: 'alice/tiny-private', private: true, files });
      hub.repos.set('alice/tiny-chat', { id: 'alice/tiny-chat', private: false, files });
      const page = await env.browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(env.url);
      await modelLoaded(page);
      const host = hub.url.replace(/^http:\/\//, '');
      expect(await page.locator('#hub-shown').innerText()).toBe('huggingface.co');
      await page.click('#hub-where summary');
      await page.fill('#hub-address', 'ftp://example.org');
      await page.click('#use-hub');
      expect(await page.locator('#load-error').innerText()).toMatch(/^Hub address: .*ftp:\/\/example\.org/);
      await page.fill('#hub-address', hub.url);
      await page.click('#use-hub');
      expect(await page.locator('#hub-shown').innerText()).toBe(host);
      expect(await page.locator('#load-error').count()).toBe(0);

      // private: refused without a token, with the reason; loaded with one, sent as a bearer token
      await page.fill('#hub-id', 'alice/tiny-private');
      await page.click('#load-hub');
      await page.waitForSelector('#load-error', MODEL_WORK);
      expect(await page.locator('#load-error').innerText()).toMatch(
        /^alice\/tiny-private: no such model on the Hub, or it is private or gated \(sign in: pass an access token\)$/,
      );
      // over a slow network: the download shows its progress, the bytes so far of the whole
      hub.throttle(/^\/alice\/tiny-private\/resolve\/main\/model\.safetensors$/, 256 * 1024, 100);
      await page.fill('#hub-token-load', 'hf_reader');
      await page.click('#load-hub');
      const during = await page.waitForFunction(
        () => {
          const root = document.querySelector('rlhf-app')?.shadowRoot?.querySelector('model-view')?.shadowRoot;
          const p = root?.querySelector('#load-progress') as HTMLProgressElement | null;
          return !!p && p.max > 1 && p.value > 0 && p.value < p.max && root!.querySelector('#loading')!.textContent!.replace(/\s+/g, ' ');
        },
        undefined,
        { timeout: 60_000, polling: 20 },
      );
      expect(await during.jsonValue()).toMatch(/model\.safetensors: [\d.]+ [KM]iB of [\d.]+ MiB/);
      await page.waitForFunction(
        () =>
          document.querySelector('rlhf-app')?.shadowRoot?.querySelector('model-view')?.shadowRoot?.querySelector('#model-info dd')?.textContent ===
          'alice/tiny-private@main',
        undefined,
        MODEL_WORK,
      );
      const got = hub.requests
        .filter((r) => r.path.startsWith('/alice/tiny-private/resolve/main/') && r.auth === 'Bearer hf_reader')
        .map((r) => r.path.split('/').at(-1));
      expect(got).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json']));
      // the token was sent, not kept: no storage of the page holds it (the model remembered for next time is named without it)
      expect(
        await page.evaluate(() => [localStorage, sessionStorage].flatMap((st) => Object.keys(st).filter((k) => st.getItem(k)!.includes('hf_reader')))),
      ).toEqual([]);

      // public, given as a model page URL with a revision: remembered, mirror included, over a reload
      await page.fill('#hub-token-load', '');
      await page.fill('#hub-id', `${hub.url}/alice/tiny-chat/tree/main`);
      await page.click('#load-hub');
      await page.waitForFunction(
        () =>
          document.querySelector('rlhf-app')?.shadowRoot?.querySelector('model-view')?.shadowRoot?.querySelector('#model-info dd')?.textContent ===
          'alice/tiny-chat@main',
        undefined,
        MODEL_WORK,
      );
      await page.reload();
      await modelLoaded(page);
      await page.waitForFunction(
        () =>
          document.querySelector('rlhf-app')?.shadowRoot?.querySelector('model-view')?.shadowRoot?.querySelector('#model-info dd')?.textContent ===
          'alice/tiny-chat@main',
        undefined,
        MODEL_WORK,
      );
      expect(await page.locator('#load-error').count()).toBe(0);
      expect(await page.locator('#hub-shown').innerText()).toBe(host);
      await shot(page, 'model-hub');
      // the Share tab publishes to the same Hub
      await tab(page, 'share');
      expect(await page.locator('#hub-host').innerText()).toBe(host);
      expect(errors).toEqual([]);
      await page.evaluate(() => localStorage.clear()); // the next test's page starts with the defaults
      await page.close();
    } finally {
      await hub.close();
    }
  }, 600_000);

  it('explains, instead of a blank page, when the browser has no WebGPU', async () => {
    const page = await env.browser.newPage();
    await page.addInitScript(() => Object.defineProperty(navigator, 'gpu', { value: undefined }));
    await page.goto(env.url);
    await page.waitForSelector('body[data-app="no-webgpu"]', { timeout: 60_000 });
    const text = await page.evaluate(() => document.body.innerText);
    expect(text).toMatch(/cannot run the playground/);
    expect(text).toMatch(/Chrome or Edge 113/);
    await page.screenshot({ path: `${SHOTS}/no-webgpu.png` });
    await page.close();
  });
});
