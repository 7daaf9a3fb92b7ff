// The rank view's rules: ordering by keyboard and by drag-and-drop, ties, scores and Table 3 flags, and
// the record that the store saves and the JSONL export writes.
import { describe, expect, it } from 'vitest';
import { importJsonl } from '../src/io/datasets.ts';
import { FLAGS, RankingState } from '../src/ui/ranking-state.ts';

describe('ranking state', () => {
  it('orders completions from the keyboard alone, with ties, scores and flags', () => {
    const s = new RankingState('Say hi.', ['a', 'b', 'c', 'd']);
    // focus the third completion and carry it to the top
    expect(s.handleKey('ArrowDown')).toBe('focus');
    s.handleKey('j');
    expect(s.handleKey('ArrowUp', { alt: true })).toBe('move');
    s.handleKey('K', { shift: true });
    expect(s.order).toEqual([2, 0, 1, 3]);
    expect(s.focus).toBe(0);
    expect(s.handleKey('6')).toBe('score');
    s.handleKey('h');
    s.handleKey('ArrowDown');
    s.handleKey('ArrowDown');
    expect(s.handleKey('=')).toBe('tie'); // 'b' ties with 'a'
    expect(s.handleKey('Enter')).toBe('submit');
    expect(s.handleKey('Escape')).toBe('skip');
    expect(s.handleKey('q')).toBe('none');
    const r = s.toRecord();
    expect(r.completions).toEqual(['c', 'a', 'b', 'd']);
    expect(r.ranks).toEqual([0, 1, 1, 2]);
    expect(r.scores).toEqual([6, null, null, null]);
    expect(r.flags).toEqual([['hallucination'], [], [], []]);
    expect(s.comparisons()).toBe(5); // 6 pairs minus the tie
  });

  it('drag-and-drop moves keep the focus on the moved completion; the top cannot tie upward', () => {
    const s = new RankingState('p', ['a', 'b', 'c']);
    s.moveTo(0, 2);
    expect(s.order).toEqual([1, 2, 0]);
    expect(s.focus).toBe(2);
    // dragging another completion past the focused one: the focus stays on the same completion
    const on = () => s.order[s.focus];
    s.focus = 1; // 'c'
    s.moveTo(2, 0); // 'a' to the top: 'c' goes down a place
    expect(s.order).toEqual([0, 1, 2]);
    expect(on()).toBe(2);
    s.moveTo(0, 2); // 'a' to the bottom: 'c' comes up a place
    expect(on()).toBe(2);
    s.moveTo(0, 1); // 'b' below it: 'c' comes up to the top
    expect(on()).toBe(2);
    s.order = [0, 1, 2];
    s.focus = 0;
    s.toggleTie();
    expect(s.ranksByPosition()).toEqual([0, 1, 2]);
    expect(() => s.setScore(0, 8)).toThrow(/1 to 7/);
    expect(() => new RankingState('p', ['only'])).toThrow(/2 to 9/);
  });

  it('covers every metadata field of InstructGPT Table 3 with its own key, and the record exports as a K-way ranking line', () => {
    expect(FLAGS.length).toBe(11);
    expect(new Set(FLAGS.map((f) => f.key)).size).toBe(11);
    for (const f of FLAGS) expect('jk0123456789=').not.toContain(f.key);
    const s = new RankingState('<img src=x onerror=alert(1)>', ['x', 'y', 'z']);
    s.focus = 2;
    s.handleKey('=');
    const r = s.toRecord();
    const line = JSON.stringify({ prompt: r.prompt, completions: r.completions, ranks: r.ranks });
    const back = importJsonl(line, 'rankings.jsonl');
    expect(back.errors).toEqual([]);
    expect(back.records[0]).toEqual({ kind: 'ranking', prompt: '<img src=x onerror=alert(1)>', completions: ['x', 'y', 'z'], ranks: [0, 1, 1] });
  });

  it('opens a saved ranking again as it was saved, and saves it back unchanged', () => {
    const saved = {
      prompt: 'p',
      completions: ['c', 'a', 'b', 'd'],
      ranks: [0, 1, 1, 2],
      scores: [6, null, null, 3],
      flags: [['hallucination'], [], ['a-flag-from-elsewhere'], []],
    };
    const s = RankingState.fromRecord(saved);
    expect(s.order).toEqual([0, 1, 2, 3]);
    expect(s.tied).toEqual([false, false, true, false]);
    expect(s.comparisons()).toBe(5);
    expect(s.toRecord()).toEqual(saved); // an unknown flag is kept
    // saved in another order (ranks not sorted): shown best first, ties kept
    const t = RankingState.fromRecord({ prompt: 'p', completions: ['x', 'y', 'z'], ranks: [2, 0, 0] });
    expect(t.order).toEqual([1, 2, 0]);
    expect(t.tied).toEqual([false, true, false]);
    expect(t.toRecord()).toMatchObject({ completions: ['y', 'z', 'x'], ranks: [0, 0, 1], scores: [null, null, null] });
    // and edited: the worst to the top
    t.focus = 2;
    t.handleKey('ArrowUp', { alt: true });
    t.handleKey('ArrowUp', { alt: true });
    expect(t.toRecord().completions).toEqual(['x', 'y', 'z']);
  });
});
