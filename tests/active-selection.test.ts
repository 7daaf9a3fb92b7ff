// The Rank tab's active selection without the page: which pair of samples a reward model is least sure
// of, which upcoming prompt comes next (smallest mean margin), which reward model chooses (and why none
// can), the switch kept across reloads, and the record's `selection` through the store's check, the
// export and the import (data.jsonl reads back what it writes; a malformed one is refused on its line).
import { describe, expect, it } from 'vitest';
import { checkRankingLabels, exportJsonl, importJsonl, rankingToRecord } from '../src/io/datasets.ts';
import type { RunRecord } from '../src/store/db.ts';
import {
  byUncertainty,
  leastSurePair,
  loadSelecting,
  meanMargin,
  noRewardModelReason,
  rewardModelsFor,
  saveSelecting,
  uncertainSelection,
} from '../src/ui/active-selection.ts';
import { exportData, importData, recordKey } from '../src/ui/data-io.ts';

describe('active selection: what the reward model is least sure of', () => {
  it('the pair with the smallest |score difference|, identical completions left out', () => {
    // scores 0.9, -1, 1.2, 0.1: |0.9 - 1.2| = 0.3 is the closest pair (0.9 vs 0.1 is 0.8, -1 vs 0.1 is 1.1)
    const p = leastSurePair(['a', 'b', 'c', 'd'], [0.9, -1, 1.2, 0.1])!;
    expect(p.pair).toEqual([0, 2]);
    expect(p.margin).toBeCloseTo(0.3, 12);
    // the same text twice is no comparison, however close its scores (they are equal)
    expect(leastSurePair(['a', 'a', 'b', 'c'], [1, 1, 3, -2])!.pair).toEqual([0, 2]);
    expect(leastSurePair(['a', 'a', 'b', 'c'], [1, 1, 3, -2])!.margin).toBe(2);
    // a tie between pairs: the first
    expect(leastSurePair(['a', 'b', 'c'], [0, 1, 2])!.pair).toEqual([0, 1]);
    expect(leastSurePair(['x', 'x'], [0, 5])).toBeUndefined();
  });

  it("a prompt's mean margin over its pairs, and the prompts drawn ahead ordered by it (unscored left out, all-alike last)", () => {
    expect(meanMargin(['a', 'b', 'c'], [0, 1, 3])).toBeCloseTo((1 + 3 + 2) / 3, 12);
    expect(meanMargin(['a', 'a', 'b'], [0, 0, 3])).toBeCloseTo(3, 12); // (a, b) twice; (a, a) is no pair
    expect(meanMargin(['a', 'a'], [0, 1])).toBeUndefined();
    const pool = [
      { prompt: 'p1', margin: 0.8 },
      { prompt: 'p2' }, // still being drawn or scored
      { prompt: 'p3', margin: 0.2 },
      { prompt: 'p4', margin: null }, // its samples are all the same
      { prompt: 'p5', margin: 0.2 },
    ];
    expect(byUncertainty(pool).map((x) => x.prompt)).toEqual(['p3', 'p5', 'p1', 'p4']);
    expect(byUncertainty([{ margin: undefined }])).toEqual([]);
  });

  it('the newest finished LoRA reward model of the loaded model chooses; otherwise the switch says why not', () => {
    const run = (id: string, patch: Partial<RunRecord>): RunRecord => ({
      id,
      stage: 'rm',
      status: 'done',
      config: { loraRank: 4 },
      createdAt: 1,
      updatedAt: 1,
      model: { fingerprint: 'f1' },
      ...patch,
    });
    const runs = [
      run('old', { createdAt: 10 }),
      run('new', { createdAt: 20 }),
      run('running', { createdAt: 30, status: 'running' }),
      run('full', { createdAt: 40, config: { loraRank: 0 } }),
      run('other', { createdAt: 50, model: { fingerprint: 'f2' } }),
      run('sft', { createdAt: 60, stage: 'sft' }),
    ];
    expect(rewardModelsFor(runs, 'f1').map((r) => r.id)).toEqual(['new', 'old']);
    expect(rewardModelsFor(runs, 'f2').map((r) => r.id)).toEqual(['other']);
    expect(rewardModelsFor(runs, undefined)).toEqual([]);
    expect(noRewardModelReason([], true)).toMatch(/^No reward model yet: train one on the Train tab/);
    expect(noRewardModelReason([runs[2]!, runs[5]!], true)).toMatch(/^No reward model yet/);
    expect(noRewardModelReason([runs[3]!], true)).toMatch(/fully fine-tuned.*LoRA reward model/);
    expect(noRewardModelReason([runs[4]!], true)).toMatch(/another starting model/);
    expect(noRewardModelReason(runs, false)).toBe('Load a model first.');
  });

  it('the switch is off until turned on, and kept', () => {
    const map = new Map<string, string>();
    const storage = { getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v) };
    expect(loadSelecting(storage)).toBe(false);
    expect(loadSelecting(undefined)).toBe(false);
    saveSelecting(storage, true);
    expect(loadSelecting(storage)).toBe(true);
    saveSelecting(storage, false);
    expect(loadSelecting(storage)).toBe(false);
  });
});

describe('a ranking chosen by active selection: stored, exported and imported with its "selection"', () => {
  const sel = uncertainSelection(0.125, 'run-1234');

  it('the store keeps a valid one and refuses a malformed one', () => {
    const pair = { prompt: 'p', completions: ['x', 'y'], ranks: [1, 0], verdict: 'b' as const, shown: [0, 1] as [number, number] };
    expect(() => checkRankingLabels({ ...pair, selection: sel })).not.toThrow();
    expect(() => checkRankingLabels({ ...pair, selection: { ...sel, margin: -1 } })).toThrow(/"margin" must be a number >= 0/);
    expect(() => checkRankingLabels({ ...pair, selection: { ...sel, method: 'random' as 'uncertain' } })).toThrow(/"method" must be "uncertain"/);
  });

  it('a decided pair exports as a preference line and a K-way ranking as a ranking line, each with it, and both read back the same', () => {
    const pair = { prompt: 'p', completions: ['x', 'y'], ranks: [1, 0], verdict: 'b' as const, shown: [0, 1] as [number, number], selection: sel };
    const ranking = {
      prompt: 'q',
      completions: ['a', 'b', 'c'],
      ranks: [2, 0, 1],
      selection: { method: 'uncertain' as const, margin: 0.5, reward_model: 'run-1234' },
    };
    expect(rankingToRecord(pair)).toEqual({ kind: 'preference', prompt: 'p', chosen: 'y', rejected: 'x', selection: sel });
    const { data } = exportData([], [pair, ranking], []);
    const lines = data
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toEqual({ prompt: 'p', chosen: 'y', rejected: 'x', selection: { method: 'uncertain', margin: 0.125, reward_model: 'run-1234' } });
    expect(lines[1]).toEqual({ prompt: 'q', completions: ['b', 'c', 'a'], selection: { method: 'uncertain', margin: 0.5, reward_model: 'run-1234' } });
    const back = importData(data, 'data.jsonl');
    expect(back.errors).toEqual([]);
    expect(back.records).toEqual([rankingToRecord(pair), rankingToRecord(ranking)]);
    expect(exportJsonl(back.records)).toBe(data);
    // importing the export again adds nothing: it is the same record, chosen or not
    expect(recordKey(back.records[1]!)).toBe(recordKey(rankingToRecord({ ...ranking, selection: undefined })));
    // reward_model is optional
    expect(importJsonl('{"prompt":"p","completions":["a","b"],"selection":{"method":"uncertain","margin":0}}', 'f').records[0]).toMatchObject({
      selection: { method: 'uncertain', margin: 0 },
    });
  });

  it('a malformed "selection" is its line\'s error, and the good lines are kept', () => {
    const text = [
      '{"prompt":"p","completions":["a","b"],"selection":{"method":"uncertain","margin":0.1}}',
      '{"prompt":"p","completions":["a","b"],"selection":{"method":"uncertain"}}',
      '{"prompt":"p","chosen":"a","rejected":"b","selection":{"method":"uncertain","margin":0.1,"seed":3}}',
      '{"prompt":"p","chosen":"a","rejected":"b","selection":"uncertain"}',
    ].join('\n');
    const r = importJsonl(text, 'f.jsonl');
    expect(r.records.length).toBe(1);
    expect(r.errors.map((e) => e.message)).toEqual([
      'f.jsonl:2: "selection"."margin" must be a number >= 0, got undefined',
      'f.jsonl:3: "selection" has an unknown key "seed" (allowed: method, margin, reward_model)',
      'f.jsonl:4: "selection" must be an object {"method": "uncertain", "margin": number, "reward_model"?: string}',
    ]);
  });
});
