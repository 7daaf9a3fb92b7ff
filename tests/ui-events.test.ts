// The page's own DOM events (src/ui/events.ts): one map of names to details, so that tsc checks every
// dispatch and every listener. Here: what `emit` sends; the lines tsc must refuse (a wrong detail, a
// missing one, a handler of another event's detail: `npx tsc --noEmit` fails if one is accepted); and
// that src/ui dispatches and binds these events only through the map (no `new CustomEvent`, no Lit
// `@name=` listener, no parent firing a child's event). Node, no browser: the views' own behaviour
// (keys, submit, skip) is driven in Chromium by tests/rank-view-browser.test.ts and the app's e2e files.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emit, on, type PairSubmit, type RankingSubmit, type UiEvents } from '../src/ui/events.ts';

const ROOT = resolve(import.meta.dirname, '..');
const record: RankingSubmit = { prompt: 'Say hi.', completions: ['Hi!', 'Go away.'], ranks: [0, 1] };

describe('UI events (src/ui/events.ts)', () => {
  it('emit sends a bubbling, composed CustomEvent carrying the detail (none for a skip)', () => {
    const target = new EventTarget();
    const got: Event[] = [];
    for (const type of ['ranking-submit', 'pair-submit', 'ranking-skip'] satisfies (keyof UiEvents)[]) target.addEventListener(type, (e) => got.push(e));
    emit(target, 'ranking-submit', record);
    emit(target, 'pair-submit', { record, demonstration: 'Hello!' });
    emit(target, 'ranking-skip');
    expect(got.map((e) => [e.type, e instanceof CustomEvent, e.bubbles, e.composed])).toEqual([
      ['ranking-submit', true, true, true],
      ['pair-submit', true, true, true],
      ['ranking-skip', true, true, true],
    ]);
    expect(got.map((e) => (e as CustomEvent<unknown>).detail)).toEqual([record, { record, demonstration: 'Hello!' }, null]); // a CustomEvent's absent detail reads null
  });

  it('tsc refuses a wrong detail, at the dispatch and at the listener (the lines below are type checks)', () => {
    // Never called: `npx tsc --noEmit -p .` (npm test's first step) checks that each marked line is an error.
    const checks = (el: HTMLElement): void => {
      // @ts-expect-error a ranking is not a pair's detail
      emit(el, 'pair-submit', record);
      // @ts-expect-error a submitted ranking carries its record
      emit(el, 'ranking-submit');
      // @ts-expect-error a skip carries nothing
      emit(el, 'ranking-skip', record);
      // @ts-expect-error no such event in the map
      emit(el, 'rank-submit', record);
      // @ts-expect-error a pair's listener gets a PairSubmit, not a ranking
      on('pair-submit', (d: RankingSubmit) => d.prompt);
      el.addEventListener('pair-submit', (e) => {
        const ok: PairSubmit = e.detail;
        // @ts-expect-error addEventListener reads the map too: the detail is a PairSubmit
        const wrong: RankingSubmit = e.detail;
        return [ok, wrong];
      });
    };
    expect(checks).toBeTypeOf('function');
  });

  it('src/ui sends and binds its events through the map only: no CustomEvent made elsewhere, no `@name=` listener of one', () => {
    const dir = join(ROOT, 'src/ui');
    const files = [
      ...readdirSync(dir)
        .filter((n) => n.endsWith('.ts'))
        .map((n) => `src/ui/${n}`),
      'src/main.ts',
    ];
    const found = files.flatMap((f) => {
      const text = readFileSync(join(ROOT, f), 'utf8');
      const lines = text.split('\n');
      return lines.flatMap((line, i) => {
        const at = `${f}:${i + 1}`;
        const out: string[] = [];
        if (/^\s*(\/\/|\*|\/\*)/.test(line)) return out; // a comment may name them
        // events.ts makes the CustomEvents; context.ts's topic bus is its own EventTarget, typed by its Events map
        if (f !== 'src/ui/events.ts' && f !== 'src/ui/context.ts' && /new CustomEvent\b|\.dispatchEvent\(/.test(line))
          out.push(`${at}: dispatches itself: ${line.trim()}`);
        // a custom event's name has a dash; Lit's @name= would take any listener, unchecked
        for (const m of line.matchAll(/@([a-z]+(?:-[a-z]+)+)=/g)) out.push(`${at}: @${m[1]}= (use on('${m[1]}', ...))`);
        return out;
      });
    });
    expect(found).toEqual([]);
  });
});
