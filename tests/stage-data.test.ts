// Which records a stage trains on (src/train/stage-data.ts), the one policy the worker applies when a run
// starts and the page's summaries ask for: per stage, from the store's prompts, the Rank tab's rankings and
// the user's own records. Pure: no store, no GPU.
import { describe, expect, it } from 'vitest';
import { checkRecords, toPreferencePairs, toPrompts, type Record as DataRecord } from '../src/io/datasets.ts';
import { STAGES, type Stage } from '../src/shared/config.ts';
import { stageRecords, type UserData } from '../src/train/stage-data.ts';

const demo: DataRecord = { kind: 'completion', prompt: 'Greet Ana.', completion: 'Hello, Ana!' };
const chat: DataRecord = { kind: 'messages', messages: [{ role: 'user', content: 'Hi?' }, { role: 'assistant', content: 'Hello.' }] };
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

  it('RM, DPO: the Rank tab\'s rankings as their records (best first; a decided pair a preference; a tie kept with its verdict), then the imported rankings and preferences', () => {
    for (const stage of ['rm', 'dpo'] as const) {
      expect(stageRecords(stage, data), stage).toEqual([
        { kind: 'ranking', prompt: 'Tell a joke.', completions: ['funny', 'ok', 'meh'], scores: [6, null, null] },
        { kind: 'preference', prompt: 'Name a colour.', chosen: 'blue', rejected: 'dog' },
        { kind: 'ranking', prompt: 'Say hi.', completions: ['hey', 'hi'], ranks: [0, 0], verdict: 'tie' },
        imported, pair,
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
