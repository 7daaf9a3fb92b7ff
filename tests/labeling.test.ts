// The Rank tab's labelling rules beyond the K-way order: pairwise verdicts (keys, the sides shown, the
// stored record and its check), how they export (decided pairs as TRL preference lines, ties and both-bad
// as ranking lines with a "verdict") and import back, what the reward model keeps of them, the reason
// key, the guidelines (per project, in the data zip), the goal and the pace, and self-consistency
// (which comparison comes back, in what order, and the agreement with its interval).
import { describe, expect, it } from 'vitest';
import {
  checkRankingLabels,
  exportJsonl,
  importJsonl,
  rankingToRecord,
  rewardRankings,
  toPreferencePairs,
  type Record as DataRecord,
} from '../src/io/datasets.ts';
import { unzipFiles } from '../src/io/zip.ts';
import type { RankingRecord } from '../src/store/db.ts';
import {
  agreementOf,
  agreementText,
  DEFAULT_RECHECK_EVERY,
  loadRecheckEvery,
  newOrder,
  pickRecheck,
  ranksInRecordOrder,
  recheckReordered,
  recheckText,
  saveRecheckEvery,
  selfAgreement,
} from '../src/ui/consistency.ts';
import { dataBundle, dataCounts, exportData, importDataBundle, recordKey } from '../src/ui/data-io.ts';
import {
  aboutDuration,
  DEFAULT_GOAL,
  DEFAULT_GUIDELINES,
  goalProgress,
  HELD_OUT_FROM,
  loadGoal,
  loadGuidelines,
  paceText,
  saveGoal,
  saveGuidelines,
  secondsPerRanking,
  stageCounts,
  stageNeeds,
  timeToGoal,
} from '../src/ui/labeling.ts';
import { PAIR_KEYS, PairState } from '../src/ui/pair-state.ts';
import { FLAGS, RankingState } from '../src/ui/ranking-state.ts';

const g = { temperature: 0.9, top_p: 0.95, top_k: 0, max_new_tokens: 64 };

/** A Storage stand-in (Node has no localStorage). */
function memory(): Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v), removeItem: (k) => void map.delete(k) };
}

describe('pairwise verdicts', () => {
  it('draws the sides at random, takes a key per verdict, and records the verdict with the sides shown', () => {
    const swapped = PairState.drawn('p', ['first', 'second'], () => 0.9);
    expect(swapped.shown).toEqual([1, 0]);
    expect([swapped.side(0), swapped.side(1)]).toEqual(['second', 'first']);
    expect(PairState.drawn('p', ['x', 'y'], () => 0.1).shown).toEqual([0, 1]);
    expect(['ArrowLeft', 'ArrowRight', 't', 'T', 'n', 'r', 'Escape', 'q', 'Enter'].map((k) => swapped.handleKey(k))).toEqual([
      'a',
      'b',
      'tie',
      'tie',
      'both-bad',
      'rationale',
      'skip',
      'none',
      'none',
    ]);
    expect(swapped.handleKey('t', { ctrl: true })).toBe('none'); // the browser's shortcuts stay the browser's
    // A ("second") is better: the stored completions keep their drawn order, ranks say which won
    swapped.rationale = '  names the fish  ';
    const rec = swapped.toRecord('a');
    expect(rec).toEqual({ prompt: 'p', completions: ['first', 'second'], ranks: [1, 0], verdict: 'a', shown: [1, 0], rationale: 'names the fish' });
    expect(swapped.toRecord('b').ranks).toEqual([0, 1]);
    expect(swapped.toRecord('tie').ranks).toEqual([0, 0]);
    expect(swapped.toRecord('both-bad').ranks).toEqual([0, 0]);
    for (const v of ['a', 'b', 'tie', 'both-bad'] as const) expect(() => checkRankingLabels(swapped.toRecord(v))).not.toThrow();
    // opened again (the Data tab's edit): same sides, verdict and reason
    const back = PairState.fromRecord(rec);
    expect([back.shown, back.verdict, back.rationale]).toEqual([[1, 0], 'a', 'names the fish']);
    expect(() => new PairState('p', ['a', 'b', 'c'], [0, 1])).toThrow(/2 completions/);
  });

  it("uses keys that mean nothing else in the K-way view, and 'r' opens the reason in both", () => {
    const kway = new Set(['j', 'k', 'J', 'K', '=', 'Enter', ...'01234567', ...FLAGS.map((f) => f.key)]);
    for (const p of PAIR_KEYS) expect(kway.has(p.key)).toBe(false);
    expect(kway.has('r')).toBe(false);
    const s = new RankingState('p', ['x', 'y']);
    expect(s.handleKey('r')).toBe('rationale');
    s.rationale = 'x is shorter';
    expect(s.toRecord().rationale).toBe('x is shorter');
    s.rationale = '   ';
    expect(s.toRecord()).not.toHaveProperty('rationale'); // blank: none
    expect(RankingState.fromRecord({ prompt: 'p', completions: ['x', 'y'], ranks: [0, 1], rationale: 'why' }).rationale).toBe('why');
  });

  it('refuses a verdict that its ranks or sides contradict', () => {
    const base = { prompt: 'p', completions: ['x', 'y'], ranks: [0, 1], verdict: 'a' as const, shown: [0, 1] as [number, number] };
    expect(() => checkRankingLabels(base)).not.toThrow();
    expect(() => checkRankingLabels({ ...base, shown: [1, 0] })).toThrow(/do not say what the verdict "a" says/);
    expect(() => checkRankingLabels({ ...base, verdict: 'tie' })).toThrow(/do not say/);
    expect(() => checkRankingLabels({ ...base, shown: [0, 0] })).toThrow(/order they were shown/);
    expect(() => checkRankingLabels({ ...base, shown: undefined })).toThrow(/order they were shown/);
    expect(() => checkRankingLabels({ ...base, verdict: 'maybe' as 'a' })).toThrow(/one of a, b, tie, both-bad/);
    expect(() => checkRankingLabels({ ...base, completions: ['x', 'y', 'z'], ranks: [0, 1, 2] })).toThrow(/2 completions/);
  });

  it('exports a decided pair as a TRL preference line and a tie or both-bad as a ranking line with its verdict; all import back', () => {
    const won = {
      prompt: 'Name a fish.',
      completions: ['Fish', 'Bubbles'],
      ranks: [1, 0],
      verdict: 'a' as const,
      shown: [1, 0] as [number, number],
      rationale: 'a name',
      generation_config: g,
    };
    const tie = { prompt: 'Say hi.', completions: ['Hi', 'Hello'], ranks: [0, 0], verdict: 'tie' as const, shown: [0, 1] as [number, number] };
    const bad = {
      prompt: 'Greet Ana.',
      completions: ['Go away.', 'No.'],
      ranks: [0, 0],
      verdict: 'both-bad' as const,
      shown: [1, 0] as [number, number],
      rationale: 'both rude',
    };
    const recs = [won, tie, bad].map(rankingToRecord);
    expect(recs).toEqual([
      { kind: 'preference', prompt: 'Name a fish.', chosen: 'Bubbles', rejected: 'Fish', rationale: 'a name', generation_config: g },
      { kind: 'ranking', prompt: 'Say hi.', completions: ['Hi', 'Hello'], ranks: [0, 0], verdict: 'tie' },
      { kind: 'ranking', prompt: 'Greet Ana.', completions: ['Go away.', 'No.'], ranks: [0, 0], rationale: 'both rude', verdict: 'both-bad' },
    ]);
    const { data } = exportData([], [won, tie, bad], []);
    expect(data.split('\n').slice(0, 3)).toEqual([
      '{"prompt":"Name a fish.","chosen":"Bubbles","rejected":"Fish","rationale":"a name","generation_config":{"temperature":0.9,"top_p":0.95,"top_k":0,"max_new_tokens":64}}',
      '{"prompt":"Say hi.","completions":["Hi","Hello"],"ranks":[0,0],"verdict":"tie"}',
      '{"prompt":"Greet Ana.","completions":["Go away.","No."],"ranks":[0,0],"rationale":"both rude","verdict":"both-bad"}',
    ]);
    expect(importJsonl(data, 'data.jsonl')).toEqual({ records: recs, errors: [] });
    // a tie and both-bad of the same two completions are different records (an import keeps both)
    expect(recordKey(recs[1]!)).not.toBe(recordKey({ ...recs[1]!, verdict: 'both-bad' } as DataRecord));
    // a "verdict" only where it fits: two tied completions, and never a decided one (that is a preference line)
    const errs = importJsonl(
      [
        '{"prompt":"p","completions":["a","b"],"ranks":[0,0],"verdict":"a"}',
        '{"prompt":"p","completions":["a","b"],"verdict":"tie"}',
        '{"prompt":"p","completions":["a","b","c"],"ranks":[0,0,0],"verdict":"tie"}',
        '{"prompt":"p","chosen":"a","rejected":"b","rationale":7}',
        '{"prompt":"p","chosen":"a","rejected":"b","verdict":"a"}',
      ].join('\n'),
      'f.jsonl',
    ).errors.map((e) => e.message);
    expect(errs).toEqual([
      'f.jsonl:1: "verdict" must be "tie" or "both-bad" (a decided pair is a {"prompt","chosen","rejected"} line), got "a"',
      'f.jsonl:2: a "verdict" belongs to a pair whose two completions tie: 2 completions with "ranks": [0, 0]',
      'f.jsonl:3: a "verdict" belongs to a pair whose two completions tie: 2 completions with "ranks": [0, 0]',
      'f.jsonl:4: "rationale" must be a string, got a number',
      'f.jsonl:5: unknown key "verdict" in a preference record (allowed: prompt, chosen, rejected, rationale, generation_config, selection)',
    ]);
    expect(exportJsonl(recs)).toBe(data);
  });

  it('gives the reward model and DPO the decided pair only: ties and both-bad are dropped, as InstructGPT drops ties', () => {
    const recs = [
      { prompt: 'p', completions: ['x', 'y'], ranks: [0, 1], verdict: 'b' as const, shown: [1, 0] as [number, number] },
      { prompt: 'q', completions: ['x', 'y'], ranks: [0, 0], verdict: 'tie' as const, shown: [0, 1] as [number, number] },
      { prompt: 'r', completions: ['x', 'y'], ranks: [0, 0], verdict: 'both-bad' as const, shown: [0, 1] as [number, number] },
    ].map(rankingToRecord);
    expect(toPreferencePairs(recs)).toEqual([{ prompt: 'p', chosen: 'x', rejected: 'y' }]); // what the cluster export and DPO train on
    expect(rewardRankings(recs)).toEqual([]); // the preference goes to the RM as a pair; the tied rankings give it nothing
    expect(rewardRankings([...recs, { kind: 'ranking', prompt: 's', completions: ['a', 'b', 'c'], ranks: [0, 0, 1] }]).map((r) => r.prompt)).toEqual(['s']);
    expect(
      dataCounts({
        prompts: [],
        records: [],
        rankings: [
          { prompt: 'p', completions: ['x', 'y'], ranks: [0, 1], verdict: 'b' },
          { prompt: 'q', completions: ['x', 'y'], ranks: [0, 0], verdict: 'tie' },
        ],
      }),
    ).toEqual({ prompts: 0, demonstrations: 0, rankings: 2, comparisons: 1 });
  });
});

describe('guidelines, goal and pace', () => {
  it('keeps guidelines per project, the default unless edited, and puts them in the data zip', () => {
    const kv = memory();
    expect(loadGuidelines(kv, 'a')).toBe(DEFAULT_GUIDELINES);
    expect(DEFAULT_GUIDELINES).toMatch(/## Helpful[\s\S]*## Truthful[\s\S]*## Harmless[\s\S]*truthful and harmless matter more than helpful/);
    saveGuidelines(kv, 'a', '# Ours\nBe kind.\n');
    expect([loadGuidelines(kv, 'a'), loadGuidelines(kv, 'b')]).toEqual(['# Ours\nBe kind.\n', DEFAULT_GUIDELINES]);
    saveGuidelines(kv, 'a', '  ');
    expect(loadGuidelines(kv, 'a')).toBe(DEFAULT_GUIDELINES);
    expect(kv.map.size).toBe(0); // the default is not stored
    expect(loadGuidelines(undefined, 'a')).toBe(DEFAULT_GUIDELINES);

    const rankings = [{ prompt: 'p', completions: ['x', 'y'], ranks: [0, 1] }];
    const zip = dataBundle({ records: [], rankings, prompts: [], votes: [], spotChecks: [], guidelines: '# Ours\nBe kind.' })!;
    const files = unzipFiles(zip, 'd.zip');
    expect([...files.keys()].sort()).toEqual(['data.jsonl', 'guidelines.md']);
    expect(new TextDecoder().decode(files.get('guidelines.md'))).toBe('# Ours\nBe kind.\n');
    expect(importDataBundle(zip, 'd.zip').kept).toEqual(['guidelines.md']); // not imported over the user's own
    expect(dataBundle({ records: [], rankings: [], prompts: [], votes: [], spotChecks: [], guidelines: DEFAULT_GUIDELINES })).toBeUndefined();
  });

  it('shows the way to the goal and the median time per ranking', () => {
    const kv = memory();
    expect(loadGoal(kv)).toBe(DEFAULT_GOAL);
    saveGoal(kv, 80);
    expect(loadGoal(kv)).toBe(80);
    kv.setItem('rlhf-playground:rank-goal', 'lots');
    expect(loadGoal(kv)).toBe(DEFAULT_GOAL);
    expect(goalProgress(12, 50)).toEqual({ fraction: 0.24, text: '12 of 50 comparisons for a first reward model: 38 to go.' });
    expect(goalProgress(60, 50)).toEqual({ fraction: 1, text: '60 comparisons: enough for a first reward model (Train tab).' });
    expect(secondsPerRanking([])).toBeUndefined();
    expect(secondsPerRanking([4000, 2000, 600_000])).toBe(4); // one left open does not swamp it
    const times = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((s) => s * 1000);
    expect(secondsPerRanking(times)).toBe(7.5); // the last ten: 3..12 s
    expect(times[0]).toBe(1000); // the caller's list is not sorted in place
  });

  it('says how long the rest of the way to the goal takes at this pace', () => {
    // 12 comparisons from 4 rankings (3 each): 38 to go is 13 rankings, at 6 s each
    expect(timeToGoal(12, 4, 50, 6)).toBe(78);
    expect(timeToGoal(3, 4, 10, 5)).toBe(50); // pairs with ties: 0.75 a ranking, 7 to go is 10 rankings
    expect(timeToGoal(12, 4, 50, undefined)).toBeUndefined(); // nothing timed yet
    expect(timeToGoal(50, 10, 50, 6)).toBeUndefined(); // there already
    expect(timeToGoal(0, 2, 50, 6)).toBeUndefined(); // only ties so far: no rate to go by
    expect([3, 42, 78, 3599, 7199, 9000].map(aboutDuration)).toEqual([
      'about 5 s',
      'about 40 s',
      'about 1 min',
      'about 60 min',
      'about 120 min',
      'about 2.5 h',
    ]);
    expect(paceText(undefined, 0, undefined)).toBe('Time per ranking: shown after the first one.');
    expect(paceText(4.25, 3, 78)).toBe('Time per ranking: 4.3 s (median of the last 3); about 1 min to the goal at this pace.');
    expect(paceText(12.4, 14, undefined)).toBe('Time per ranking: 12 s (median of the last 10).');
  });

  it('counts what each training stage gets: pairs for the reward model and DPO, demonstrations for SFT with the better answers, prompts for PPO', () => {
    const saved = [
      { prompt: 'k', completions: ['x', 'y', 'z'], ranks: [0, 1, 2] }, // 3 pairs
      { prompt: 'k2', completions: ['x', 'y', 'z'], ranks: [0, 0, 1] }, // 2 pairs (one tied)
      { prompt: 'a', completions: ['x', 'y'], ranks: [1, 0], verdict: 'a' as const, shown: [1, 0] as [number, number] }, // 1
      { prompt: 't', completions: ['x', 'y'], ranks: [0, 0], verdict: 'tie' as const, shown: [0, 1] as [number, number] }, // none, dropped
      { prompt: 'bad', completions: ['x', 'y'], ranks: [0, 0], verdict: 'both-bad' as const, shown: [0, 1] as [number, number] }, // none, dropped
    ];
    const records: DataRecord[] = [
      { kind: 'completion', prompt: 'bad', completion: 'the better answer' }, // written for the both-bad pair
      { kind: 'completion', prompt: 'other', completion: 'typed on the Data tab' },
      {
        kind: 'messages',
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
        ],
      },
      { kind: 'preference', prompt: 'p', chosen: 'c', rejected: 'r' }, // imported: 1 pair
      { kind: 'ranking', prompt: 'q', completions: ['c', 'd'] }, // imported: 1 pair
    ];
    const prompts = ['k', 'k2', 'a', 't', 'bad', 'new'];
    const c = stageCounts({ prompts, records, rankings: saved });
    expect(c).toEqual({ pairs: 8, importedPairs: 2, dpoPairs: 8, rmRankings: 5, demonstrations: 3, betterAnswers: 1, prompts: 8 });
    // the reward model's and DPO's numbers are what those stages read: every pair of the Train tab's data
    const trainData = [...saved.map(rankingToRecord), ...records.filter((r) => r.kind === 'ranking' || r.kind === 'preference')];
    expect(c.pairs).toBe(toPreferencePairs(trainData).length);
    expect(c.rmRankings).toBe(rewardRankings(trainData).length + trainData.filter((r) => r.kind === 'preference').length);
    expect(stageNeeds(c)).toEqual([
      { stage: 'rm', name: 'Reward model', text: `8 comparisons (2 imported) from 5 rankings; a held-out accuracy from ${HELD_OUT_FROM} rankings: 5 to go.` },
      { stage: 'dpo', name: 'DPO', text: 'the same 8 pairs, the better answer as chosen.' },
      { stage: 'sft', name: 'SFT', text: '3 demonstrations (1 written when both answers were bad).' },
      { stage: 'online', name: 'PPO, GRPO, RLOO', text: '8 prompts to sample on; PPO also needs the reward model.' },
    ]);
    expect(stageNeeds({ ...c, rmRankings: 10, importedPairs: 0 })[0]!.text).toBe('8 comparisons from 10 rankings; 1 in 10 held out to measure its accuracy.');
    expect(stageNeeds(stageCounts({ prompts: [], records: [], rankings: [] })).map((n) => n.text)).toEqual([
      'no comparisons yet: a decided pair or an ordered ranking gives them (a tie or both bad gives none).',
      'no pairs yet.',
      'no demonstrations yet: write one on the Data tab, or a better answer when both are bad (n).',
      '0 prompts to sample on: add prompts on the Data tab; PPO also needs the reward model.',
    ]);
    // only the ties and both-bad so far: nothing for the reward model, and the both-bad prompt's answer still counts for SFT
    expect(stageCounts({ prompts: ['bad'], records: records.slice(0, 1), rankings: saved.slice(3) })).toMatchObject({
      pairs: 0,
      rmRankings: 0,
      demonstrations: 1,
      betterAnswers: 1,
    });
  });
});

describe('self-consistency', () => {
  /** random() answering these values in turn */
  const seq =
    (...xs: number[]) =>
    () =>
      xs.shift() ?? 0;
  const kway = (id: number): RankingRecord => ({ id, prompt: `p${id}`, completions: ['x', 'y', 'z'], ranks: [0, 1, 2], createdAt: id });
  const pair = (id: number): RankingRecord => ({ id, prompt: `q${id}`, completions: ['x', 'y'], ranks: [0, 1], verdict: 'a', shown: [0, 1], createdAt: id });

  it('repeats 1 in N, an earlier comparison of the mode, not one of the last few nor one repeated already', () => {
    const rs = [kway(1), pair(2), { ...kway(3), recheck: { ranks: [0, 1, 2], createdAt: 9 } }, kway(4), pair(5), kway(6), kway(7), kway(8)];
    expect(pickRecheck(rs, false, 10, seq(0.05, 0.99))?.id).toBe(4); // the roll (< 1/10), then the last of [1, 4]
    expect(pickRecheck(rs, false, 10, seq(0.05, 0))?.id).toBe(1);
    expect(pickRecheck(rs, false, 10, seq(0.2))).toBeUndefined(); // the roll failed
    expect(pickRecheck(rs, true, 10, seq(0.05, 0.99))?.id).toBe(5); // pairs: 2 and 5
    expect(pickRecheck([...rs.slice(0, 5), kway(6), kway(7)], true, 10, seq(0.05, 0.99))?.id).toBe(2); // 5 is among the last three
    expect(pickRecheck(rs, false, 0, seq(0))).toBeUndefined(); // off
    expect(pickRecheck(rs.slice(0, 3), false, 1, seq(0))).toBeUndefined(); // all recent
    const kv = memory();
    expect(loadRecheckEvery(kv)).toBe(DEFAULT_RECHECK_EVERY);
    saveRecheckEvery(kv, 0);
    expect(loadRecheckEvery(kv)).toBe(0);
    for (let k = 2; k <= 9; k++) {
      const o = newOrder(k);
      expect([...o].sort()).toEqual(Array.from({ length: k }, (_, i) => i));
      expect(o).not.toEqual(Array.from({ length: k }, (_, i) => i)); // always a new order
    }
  });

  it('measures agreement per pair of completions, one trial per repeat, with a Wilson interval, beside InstructGPT', () => {
    // a pair judged A then, with the sides swapped, B: the same completion won
    const same = { ...pair(1), recheck: { ranks: [0, 1], verdict: 'b' as const, shown: [1, 0] as [number, number], createdAt: 2 } };
    expect(() => checkRankingLabels(same)).not.toThrow();
    expect(agreementOf(same)).toBe(1);
    expect(recheckText(same)).toBe('Judged again later, sides swapped: the same call.');
    // the other won: disagree; a tie then both-bad: neither preferred both times, agree
    const flip = { ...same, recheck: { ...same.recheck, ranks: [1, 0], verdict: 'a' as const } };
    expect(agreementOf(flip)).toBe(0);
    expect(agreementOf({ ranks: [0, 0], recheck: { ranks: [0, 0], verdict: 'both-bad', shown: [0, 1], createdAt: 0 } })).toBe(1);
    // K = 3, shown again as z, x, y and ranked x, z, y (the view's order, best first): z moved above y, 2 of 3 pairs alike
    const again = new RankingState('p3', ['z', 'x', 'y']);
    again.moveTo(1, 0);
    expect(again.toRecord().completions).toEqual(['x', 'z', 'y']);
    const three = { ...kway(3), recheck: { ranks: ranksInRecordOrder([2, 0, 1], again.order, again.ranksByPosition()), createdAt: 4 } };
    expect(three.recheck.ranks).toEqual([0, 2, 1]);
    expect(agreementOf(three)).toBeCloseTo(2 / 3);
    expect(recheckText(three)).toBe('Judged again later in a new order: 67% of its pairs alike.');
    expect(agreementOf(kway(5))).toBeUndefined();
    // edited on the Data tab (y to the top): the record's completions are saved as y, x, z and the repeat's ranks follow
    const edit = RankingState.fromRecord(three);
    edit.focus = 1;
    edit.handleKey('ArrowUp', { alt: true });
    const moved = { ...three, ...edit.toRecord(), recheck: recheckReordered(three.recheck, edit.order) };
    expect([moved.completions, moved.recheck.ranks]).toEqual([
      ['y', 'x', 'z'],
      [2, 0, 1],
    ]);
    expect(agreementOf(moved)).toBeCloseTo(1 / 3); // now y > x > z against the repeat's x > z > y: only x over z alike
    // a repeat is checked like the record: its ranks and verdict must fit
    expect(() => checkRankingLabels({ ...same, recheck: { ...same.recheck, verdict: 'a' } })).toThrow(/^the repeat: ranks \[0,1\] do not say/);
    expect(() => checkRankingLabels({ ...three, recheck: { ranks: [0, 1], createdAt: 1 } })).toThrow(/^the repeat: ranks must be 3 integers/);

    const a = selfAgreement([same, flip, three, kway(5)])!;
    expect(a.repeats).toBe(3);
    expect(a.rate).toBeCloseTo((1 + 0 + 2 / 3) / 3);
    expect(a.interval.low).toBeLessThan(a.rate);
    expect(a.interval.high).toBeGreaterThan(a.rate);
    expect(selfAgreement([kway(1)])).toBeUndefined();
    expect(agreementText([same], 10)).toBe(
      "Agreement with yourself: 100% over 1 repeat (95% interval 21% to 100%), comparisons judged again in a new order. For context, InstructGPT's labelers agreed with each other 72.6% of the time (±1.5%).",
    );
    expect(agreementText([], 10)).toMatch(
      /^Agreement with yourself: not measured yet \(the Rank tab shows about 1 in 10 comparisons again, in a new order\)\. For context, InstructGPT's labelers agreed with each other 72\.6%/,
    );
    // a repeat is not a second record: the export and the counts are the first judgement's
    expect(exportData([], [same], []).data).toBe('{"prompt":"q1","chosen":"x","rejected":"y"}\n');
    expect(dataCounts({ prompts: [], records: [], rankings: [same, three] })).toMatchObject({ rankings: 2, comparisons: 4 });
  });
});
