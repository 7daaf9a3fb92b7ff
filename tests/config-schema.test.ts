// The training options' one schema (src/train/schema.ts) and what derives from it. The resolved configs
// are pinned: tests/fixtures/resolved-configs.json holds what resolveConfig gave for every stage, model
// shape and LoRA rank before the defaults moved into the schema (a stage's first case in full, the others
// as their differences from it), so moving or restating a default cannot change a run's config.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveConfig, STAGES, type Stage, type TrainInput } from '../src/train/config.ts';

const pinned = JSON.parse(readFileSync(new URL('./fixtures/resolved-configs.json', import.meta.url), 'utf8')) as {
  base: Record<Stage, Record<string, unknown>>; cases: Record<string, Record<string, unknown>>;
};
const SHAPES = [{ maxPositions: 64, hidden: 128 }, { maxPositions: 256, hidden: 128 }, { maxPositions: 1024, hidden: 768 }, { maxPositions: 2048, hidden: 4096 }, { maxPositions: 8192, hidden: 8192 }, { maxPositions: 128, hidden: 16 }];
/** What a stage needs beside the defaults: PPO a reward model, GRPO and RLOO a reward function. */
const needs = (stage: Stage): TrainInput => (stage === 'ppo' ? { rewardRunId: 'rm' } : stage === 'grpo' || stage === 'rloo' ? { reward_funcs: ['f'] } : {});

describe('resolveConfig', () => {
  it('gives every stage, model shape and LoRA rank the config it gave before the schema', () => {
    let n = 0;
    for (const stage of STAGES) for (const shape of SHAPES) for (const loraRank of [undefined, 0, 4, 8]) {
      const name = `${stage} ${shape.maxPositions}x${shape.hidden} r${loraRank ?? '-'}`;
      const want = { ...pinned.base[stage], ...(pinned.cases[name] ?? {}) };
      if (!name.endsWith(' 64x128 r-')) expect(pinned.cases[name], name).toBeDefined(); // the base case is its stage's entry in base
      expect(resolveConfig(stage, { ...(loraRank === undefined ? {} : { loraRank }), ...needs(stage) }, shape), name).toEqual(want);
      n++;
    }
    expect(n).toBe(STAGES.length * SHAPES.length * 4);
  });
});
