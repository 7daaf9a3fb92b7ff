// The built-in model's instruction corpus: deterministic, every task in every style, the intended style mix,
// short printable ASCII text, and demo prompts whose slot values never occur in training.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  FAMILIES,
  STYLES,
  STYLE_WEIGHTS,
  TASKS,
  demoJsonl,
  demoPrompts,
  generateCorpus,
  render,
  type SlotRecord,
  type Style,
} from '../scripts/default-model/corpus.ts';

const MAX_PROMPT = 90,
  MAX_COMPLETION = 220;
const PRINTABLE = /^[\x20-\x7e]+$/;

/** Every training text the families can produce: all templates over all combinations of training values. */
function allTrainingTexts(): { prompts: string[]; completions: string[] } {
  const prompts: string[] = [],
    completions: string[] = [];
  for (const fam of FAMILIES) {
    let combos: Record<string, SlotRecord>[] = [{}];
    for (const [k, slot] of Object.entries(fam.slots)) combos = combos.flatMap((c) => slot.train.map((v) => ({ ...c, [k]: v })));
    for (const values of combos) {
      for (const t of fam.prompts) prompts.push(render(t, values));
      for (const s of STYLES) for (const t of fam.responses[s]) completions.push(render(t, values));
    }
  }
  return { prompts: [...new Set(prompts)], completions: [...new Set(completions)] };
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('corpus generator', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = generateCorpus(500, 7),
      b = generateCorpus(500, 7),
      c = generateCorpus(500, 8);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).toHaveLength(500);
  });

  it('has at least 12 families, each with 2-4 phrasings, 2-4 variants per style and 8-20 values per slot', () => {
    expect(TASKS.length).toBeGreaterThanOrEqual(12);
    expect(new Set(TASKS).size).toBe(TASKS.length);
    for (const fam of FAMILIES) {
      expect(fam.prompts.length, fam.task).toBeGreaterThanOrEqual(2);
      expect(fam.prompts.length, fam.task).toBeLessThanOrEqual(4);
      for (const s of STYLES) {
        expect(fam.responses[s].length, `${fam.task}/${s}`).toBeGreaterThanOrEqual(2);
        expect(fam.responses[s].length, `${fam.task}/${s}`).toBeLessThanOrEqual(4);
      }
      for (const [k, slot] of Object.entries(fam.slots)) {
        expect(slot.train.length, `${fam.task}.${k}`).toBeGreaterThanOrEqual(8);
        expect(slot.train.length, `${fam.task}.${k}`).toBeLessThanOrEqual(20);
        const inPrompt = fam.prompts.some((p) => p.includes(`${k}}`) || p.includes(`${k}.`));
        if (inPrompt) expect(slot.demo.length, `${fam.task}.${k} demo`).toBeGreaterThanOrEqual(4);
      }
    }
  });

  it('covers every task in all six styles in 5000 examples', () => {
    const seen = new Map<string, Set<Style>>();
    for (const ex of generateCorpus(5000, 1)) {
      if (!seen.has(ex.task)) seen.set(ex.task, new Set());
      seen.get(ex.task)!.add(ex.style);
    }
    expect([...seen.keys()].sort()).toEqual([...TASKS].sort());
    for (const t of TASKS) expect([...seen.get(t)!].sort(), t).toEqual([...STYLES].sort());
  });

  it('mixes styles in the target proportions', () => {
    const n = 20000,
      counts = new Map<Style, number>();
    for (const ex of generateCorpus(n, 3)) counts.set(ex.style, (counts.get(ex.style) ?? 0) + 1);
    const total = Object.values(STYLE_WEIGHTS).reduce((a, b) => a + b, 0);
    expect(total).toBeCloseTo(1, 9);
    expect(STYLE_WEIGHTS).toEqual({ helpful: 0.25, detailed: 0.2, cheerful: 0.2, curt: 0.12, off_topic: 0.11, rambling: 0.12 });
    for (const s of STYLES) expect(Math.abs((counts.get(s) ?? 0) / n - STYLE_WEIGHTS[s]), s).toBeLessThan(0.02);
  });

  it('keeps every possible prompt and completion short, printable ASCII and fully filled', () => {
    const { prompts, completions } = allTrainingTexts();
    for (const p of prompts) {
      expect(p.length, p).toBeLessThanOrEqual(MAX_PROMPT);
      expect(p, p).toMatch(PRINTABLE);
    }
    for (const c of completions) {
      expect(c.length, c).toBeLessThanOrEqual(MAX_COMPLETION);
      expect(c, c).toMatch(PRINTABLE);
      expect(c, c).not.toMatch(/[{}]|\s\s|^\s|\s$|<\|/);
      expect(c, c).toMatch(/[.!?]$/);
      expect(c.charAt(0), c).toMatch(/[A-Z]/);
    }
    for (const ex of generateCorpus(20000, 11)) {
      expect(ex.prompt.length).toBeLessThanOrEqual(MAX_PROMPT);
      expect(ex.completion.length).toBeLessThanOrEqual(MAX_COMPLETION);
      expect(ex.prompt + ex.completion).toMatch(PRINTABLE);
    }
  });

  it('uses the right article before every noun', () => {
    const { prompts, completions } = allTrainingTexts();
    for (const t of [...prompts, ...completions]) {
      expect(t, t).not.toMatch(/\b[Aa] [aeiouAEIOU]/);
      expect(t, t).not.toMatch(/\b[Aa]n (?!hour)[^aeiouAEIOU\s]/);
    }
  });
});

describe('demo prompts', () => {
  const demo = demoPrompts();

  it('has 40-60 distinct, short, printable prompts across all tasks', () => {
    expect(demo.length).toBeGreaterThanOrEqual(40);
    expect(demo.length).toBeLessThanOrEqual(60);
    expect(new Set(demo.map((d) => d.prompt)).size).toBe(demo.length);
    expect(new Set(demo.map((d) => d.task))).toEqual(new Set(TASKS));
    for (const d of demo) {
      expect(d.prompt.length, d.prompt).toBeLessThanOrEqual(MAX_PROMPT);
      expect(d.prompt, d.prompt).toMatch(PRINTABLE);
    }
  });

  it('draws from slot values disjoint from every training value', () => {
    const norm = (s: string) => s.toLowerCase();
    const train = new Set(FAMILIES.flatMap((f) => Object.values(f.slots).flatMap((s) => s.train.map((r) => norm(r.x)))));
    for (const fam of FAMILIES) {
      for (const [k, slot] of Object.entries(fam.slots)) {
        for (const v of slot.demo) expect(train.has(norm(v)), `${fam.task}.${k} demo value "${v}" is a training value`).toBe(false);
      }
    }
  });

  it('never appears in a 20000-example corpus, nor do its slot values anywhere in training text', () => {
    const corpus = generateCorpus(20000, 42);
    const trainPrompts = new Set(corpus.map((e) => e.prompt));
    for (const d of demo) expect(trainPrompts.has(d.prompt), d.prompt).toBe(false);

    const { prompts, completions } = allTrainingTexts();
    const everything = [...prompts, ...completions, ...corpus.map((e) => `${e.prompt}\n${e.completion}`)].join('\n');
    const demoValues = new Set(FAMILIES.flatMap((f) => Object.values(f.slots).flatMap((s) => s.demo)));
    for (const v of demoValues) {
      expect(new RegExp(`\\b${escapeRe(v)}\\b`, 'i').test(everything), `demo value "${v}" occurs in training text`).toBe(false);
    }
  });

  it('matches public/prompts/demo.jsonl', () => {
    const text = readFileSync('public/prompts/demo.jsonl', 'utf8');
    expect(text).toBe(demoJsonl());
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt: string; task: string });
    expect(lines).toEqual(demo);
  });
});
