// Which records a stage trains on (src/io/stage-data.ts), the one policy the worker applies when a run
// starts and the page's summaries ask for: per stage, from the store's prompts, the Rank tab's rankings and
// the user's own records. Pure: no store, no GPU.
//
// The page's counts (the Rank tab's stageCounts, the Data tab's and the model card's dataCounts) are
// counted from this policy's records, so they follow it: checked on random data, under this policy and
// under another one handed to them in its place (each takes the policy as an argument, stageRecords by
// default: a module mock of stage-data.ts did this before, and under load one import once missed the mock).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkRecords,
  rankingToRecord,
  rewardRankings,
  toPreferencePairs,
  toPrompts,
  type RankingLabels,
  type Record as DataRecord,
} from '../src/io/datasets.ts';
import { isOnline, STAGES, type Stage } from '../src/shared/config.ts';
import { stageRecords, type UserData } from '../src/io/stage-data.ts';
import { dataCounts } from '../src/ui/data-io.ts';
import { stageCounts } from '../src/ui/labeling.ts';
import { dataCounts as cardCounts } from '../src/ui/share-data.ts';

const demo: DataRecord = { kind: 'completion', prompt: 'Greet Ana.', completion: 'Hello, Ana!' };
const chat: DataRecord = {
  kind: 'messages',
  messages: [
    { role: 'user', content: 'Hi?' },
    { role: 'assistant', content: 'Hello.' },
  ],
};
const imported: DataRecord = { kind: 'ranking', prompt: 'Name a fruit.', completions: ['pear', 'car'] };
const pair: DataRecord = { kind: 'preference', prompt: 'Say hi.', chosen: 'Hi!', rejected: 'Go away.' };
const ownPrompt: DataRecord = { kind: 'prompt', prompt: [{ role: 'user', content: 'Thank Bo.' }] };
const data: UserData = {
  prompts: ['Tell a joke.', 'Name a colour.'],
  rankings: [
    { prompt: 'Tell a joke.', completions: ['meh', 'funny', 'ok'], ranks: [2, 0, 1], scores: [null, 6, null] }, // K-way, drawn order
    { prompt: 'Name a colour.', completions: ['blue', 'dog'], ranks: [0, 1], verdict: 'a', shown: [0, 1] }, // a decided pair
    { prompt: 'Say hi.', completions: ['hey', 'hi'], ranks: [0, 0], verdict: 'tie', shown: [1, 0] }, // a tie
  ],
  records: [demo, chat, imported, pair, ownPrompt],
};

describe('stageRecords: which records a stage trains on', () => {
  it('SFT: the demonstrations, completion and chat messages, nothing else', () => {
    expect(stageRecords('sft', data)).toEqual([demo, chat]);
  });

  it('PPO, GRPO, RLOO: the stored prompts as prompt records, then the own prompt records and demonstrations (PPO-ptx); no ranking or chat', () => {
    for (const stage of ['ppo', 'grpo', 'rloo'] as const) {
      const got = stageRecords(stage, data);
      expect(got, stage).toEqual([{ kind: 'prompt', prompt: 'Tell a joke.' }, { kind: 'prompt', prompt: 'Name a colour.' }, demo, ownPrompt]);
      // never a prompt disguised as a demonstration with no completion
      expect(got.some((r) => r.kind === 'completion' && r.completion === '')).toBe(false);
      // what the online stages sample: every prompt, the demonstration's too
      expect(toPrompts(got)).toEqual(['Tell a joke.', 'Name a colour.', 'Greet Ana.', [{ role: 'user', content: 'Thank Bo.' }]]);
    }
  });

  it("RM, DPO: the Rank tab's rankings as their records (best first; a decided pair a preference; a tie kept with its verdict), then the imported rankings and preferences", () => {
    for (const stage of ['rm', 'dpo'] as const) {
      expect(stageRecords(stage, data), stage).toEqual([
        { kind: 'ranking', prompt: 'Tell a joke.', completions: ['funny', 'ok', 'meh'], scores: [6, null, null] },
        { kind: 'preference', prompt: 'Name a colour.', chosen: 'blue', rejected: 'dog' },
        { kind: 'ranking', prompt: 'Say hi.', completions: ['hey', 'hi'], ranks: [0, 0], verdict: 'tie' },
        imported,
        pair,
      ]);
    }
    expect(toPreferencePairs(stageRecords('dpo', data)).length).toBe(3 + 1 + 0 + 1 + 1);
  });

  it('every stage gives records the one rule set accepts, and nothing from an empty store; the policy is a fixed point on its own output (what resume re-reads)', () => {
    for (const stage of STAGES as readonly Stage[]) {
      const got = stageRecords(stage, data);
      expect(checkRecords(got, stage)).toEqual(got);
      expect(stageRecords(stage, { prompts: [], rankings: [], records: [] })).toEqual([]);
      expect(stageRecords(stage, { prompts: [], rankings: [], records: got })).toEqual(got);
    }
  });
});

// ---- the page's counts, from the policy ----

/** Small user data of every kind: stored prompts, K-way rankings (ties included) and pairwise verdicts, and own records. */
const userData: fc.Arbitrary<UserData> = (() => {
  const text = fc.constantFrom('a', 'b', 'c', 'd');
  const kWay = fc.integer({ min: 2, max: 4 }).chain((K) =>
    fc.record({
      prompt: text,
      completions: fc.constant(['w', 'x', 'y', 'z'].slice(0, K)),
      ranks: fc.array(fc.integer({ min: 0, max: K - 1 }), { minLength: K, maxLength: K }),
    }),
  );
  const verdict = fc.constantFrom('a', 'b', 'tie', 'both-bad').chain((v) =>
    fc.record({
      prompt: text,
      completions: fc.constant(['w', 'x']),
      ranks: fc.constant(v === 'a' ? [0, 1] : v === 'b' ? [1, 0] : [0, 0]),
      verdict: fc.constant(v),
      shown: fc.constant<[number, number]>([0, 1]),
    }),
  );
  const record: fc.Arbitrary<DataRecord> = fc.oneof(
    fc.record({ kind: fc.constant('completion' as const), prompt: text, completion: fc.constantFrom('ok', 'fine') }),
    fc.constant<DataRecord>(chat),
    fc.record({ kind: fc.constant('prompt' as const), prompt: text }),
    fc.record({ kind: fc.constant('preference' as const), prompt: text, chosen: fc.constant('c'), rejected: fc.constant('r') }),
    kWay.map((r): DataRecord => ({ kind: 'ranking', ...r })),
  );
  return fc.record({
    prompts: fc.array(text, { maxLength: 5 }),
    rankings: fc.array(fc.oneof(kWay, verdict) as fc.Arbitrary<RankingLabels>, { maxLength: 5 }),
    records: fc.array(record, { maxLength: 8 }),
  });
})();

type Policy = typeof stageRecords;
/** The UI's counting functions, each counting by `policy` (stageRecords unless a test gives another). */
function counters(policy: Policy = stageRecords) {
  return {
    stageCounts: (d: UserData) => stageCounts(d, policy),
    dataCounts: (d: UserData) => dataCounts(d, policy),
    cardCounts: (stage: string, records: DataRecord[]) => cardCounts(stage, records, policy),
  };
}

/** Every count the page shows against the records `policy` gives each stage of `d`. */
function expectCountsOf(policy: Policy, c: ReturnType<typeof counters>, d: UserData): void {
  const of = (s: Stage) => policy(s, d),
    pairs = (rs: DataRecord[]) => toPreferencePairs(rs).length;
  const rm = of('rm');
  expect(c.stageCounts(d)).toEqual({
    pairs: pairs(rm),
    importedPairs: pairs(policy('rm', { prompts: [], rankings: [], records: d.records })),
    dpoPairs: pairs(of('dpo')),
    rmRankings: rewardRankings(rm).length + rm.filter((r) => r.kind === 'preference').length,
    demonstrations: of('sft').length,
    betterAnswers: expect.any(Number),
    prompts: toPrompts(of('ppo')).length,
  });
  expect(c.dataCounts(d)).toEqual({ prompts: d.prompts.length, demonstrations: of('sft').length, rankings: rm.length, comparisons: pairs(rm) });
  // a run's card counts the snapshot the policy gave it
  for (const stage of STAGES) {
    const taken = of(stage),
      card = c.cardCounts(stage, taken);
    if (stage === 'sft') expect(card, stage).toEqual({ demonstrations: taken.length });
    else if (isOnline(stage)) expect((card.prompts ?? 0) + (card.demonstrations ?? 0), stage).toBe(toPrompts(taken).length);
    else expect(card.comparisons, stage).toBe(pairs(taken));
  }
}

describe("the page's counts follow the policy", () => {
  it("each count is what the stage's records give (random data)", () => {
    const c = counters();
    fc.assert(fc.property(userData, (d) => expectCountsOf(stageRecords, c, d)));
  });

  it('another policy in its place moves every count with it (counting by kind on the side would not)', () => {
    // SFT without chat records, the online stages on prompt records alone, DPO on pairs alone: each still a
    // fixed point on its own output, as a run's snapshot needs (the card counts it again)
    const other: Policy = (stage, d) => {
      if (stage === 'sft') return d.records.filter((r) => r.kind === 'completion');
      if (isOnline(stage)) return [...d.prompts.map((prompt): DataRecord => ({ kind: 'prompt', prompt })), ...d.records.filter((r) => r.kind === 'prompt')];
      const ranked = [...d.rankings.map(rankingToRecord), ...d.records.filter((r) => r.kind === 'ranking' || r.kind === 'preference')];
      return stage === 'dpo' ? ranked.filter((r) => r.kind === 'preference') : ranked;
    };
    const c = counters(other);
    fc.assert(fc.property(userData, (d) => expectCountsOf(other, c, d)));
    // and on the fixed data above, the counts differ from this policy's where the two policies do
    const mine = c.stageCounts(data);
    expect(mine).toMatchObject({ demonstrations: 1, prompts: 3, pairs: 6, dpoPairs: 2 }); // this policy: 2 demonstrations, 4 prompts, 6 and 6 pairs
  });
});
