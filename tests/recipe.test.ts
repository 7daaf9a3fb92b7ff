// The whole recipe's pure parts (src/ui/recipe.ts): the runs it starts, the work of each stage from the
// data in tokens, the time estimate, and the runner's sequencing (reward model then PPO with its id,
// pause and resume, cancel, failure) against a fake page.
import { describe, expect, it } from 'vitest';
import type { Record as DataRecord } from '../src/io/datasets.ts';
import {
  correction,
  dataLens,
  estimateStage,
  measuredStepSeconds,
  recipeConfigs,
  recipeInputs,
  RecipeRunner,
  roughDuration,
  speedFrom,
  stageWork,
  stepSeconds,
  textsOf,
  type RecipeHost,
} from '../src/ui/recipe.ts';
import type { RunStatus, RunStatusEvent, Stage, TrainInput } from '../src/worker/api.ts';
import { resolveConfig } from '../src/shared/config.ts';

const SHAPE = { maxPositions: 256, hidden: 128 }; // the built-in model's

const rankings: DataRecord[] = [
  { kind: 'ranking', prompt: 'Say hi.', completions: ['Hi!', 'Hello there, friend.', 'Hey.'] },
  { kind: 'ranking', prompt: 'Name a fruit.', completions: ['Apple.', 'Apple.'], ranks: [0, 0] }, // all tied: no pair
  { kind: 'preference', prompt: 'Thank Ana.', chosen: 'Thanks, Ana!', rejected: 'No.' },
];
// an online stage's records (src/io/stage-data.ts): the prompts, then a demonstration, whose prompt is sampled too
const prompts: DataRecord[] = [
  ...['Say hi.', 'Name a fruit.', 'Thank Ana.', 'Tell a joke.'].map((prompt): DataRecord => ({ kind: 'prompt', prompt })),
  { kind: 'completion', prompt: 'Greet Bo.', completion: 'Hi Bo!' },
];
// one token per character stands in for a tokenizer
const count = (t: { prompts: string[]; completions: string[] }) => ({
  prompts: t.prompts.map((p) => p.length),
  completions: t.completions.map((c) => c.length + 1),
});

describe('the recipe', () => {
  it('starts a reward model then PPO, or DPO, with the options given to every stage', () => {
    expect(recipeInputs('dpo', {}).map((s) => s.stage)).toEqual(['dpo']);
    const both = recipeInputs('rm-ppo', { steps: 2, batchSize: 2, maxNewTokens: 12, seqLen: 48, loraRank: 4 });
    expect(both.map((s) => s.stage)).toEqual(['rm', 'ppo']);
    expect(both[0]!.input).toEqual({ loraRank: 4, steps: 2, batchSize: 2, seqLen: 48 }); // no PPO-only fields
    expect(both[1]!.input).toMatchObject({ loraRank: 4, steps: 2, batchSize: 2, seqLen: 48, maxNewTokens: 12 });
    expect(() => recipeConfigs('rm-ppo', { loraRank: 0 }, SHAPE)).toThrow(/PPO needs LoRA/);
    expect(() => recipeConfigs('dpo', { seqLen: 999 }, SHAPE)).toThrow(/config.seqLen/);
    expect(recipeConfigs('dpo', {}, SHAPE)[0]!.config.loraRank).toBe(8);
  });

  it('measures the data in tokens and sizes each stage as the stages build it', () => {
    const texts = textsOf(rankings, prompts);
    const lens = dataLens(rankings, prompts, texts, count(texts));
    expect(lens.rankings.map((r) => r.completions)).toEqual([
      [4, 21, 5],
      [7, 7],
      [13, 4],
    ]);
    expect(lens.prompts).toEqual([7, 13, 10, 12, 9]);
    const dpo = stageWork('dpo', resolveConfig('dpo', { batchSize: 2, loraRank: 8 }, SHAPE), lens)!;
    // 3 + 0 + 1 = 4 pairs, 2 per step; auto epochs: 8 passes (the most; 32 steps would need 16); the
    // longest pair is 7 + 21 -> 32 positions; chosen and rejected rows
    expect(dpo.steps).toBe(2 * 8);
    expect(stageWork('dpo', resolveConfig('dpo', { batchSize: 2, loraRank: 8, epochs: 1 }, SHAPE), lens)!.steps).toBe(2);
    expect(dpo.passes).toEqual([{ n: 4, tokens: 2 * 2 * 32 }]);
    const rm = stageWork('rm', resolveConfig('rm', { batchSize: 2, loraRank: 8, steps: 5 }, SHAPE), lens)!;
    expect(rm.steps).toBe(5);
    expect(rm.passes).toEqual([{ n: 3, tokens: 2 * 3 * 64 }]); // the largest K; the longest 7 + 21 with 32 of room -> 64 positions
    expect(stageWork('rm', resolveConfig('rm', { batchSize: 2, seqLen: 48, loraRank: 8 }, SHAPE), lens)!.passes[0]!.tokens).toBe(2 * 3 * 48); // at most seqLen
    expect(rm.extra).toEqual([]); // fewer than 10 rankings: none held out
    const ppo = stageWork('ppo', resolveConfig('ppo', { batchSize: 2, numSamples: 2, maxNewTokens: 12, loraRank: 8, rewardRunId: 'x' }, SHAPE), lens)!;
    expect(ppo.steps).toBe(Math.floor(5 / 2) * 8); // auto epochs: 8 passes of 2 steps
    expect(ppo.passes[1]).toEqual({ n: 11, tokens: 4 }); // a pass per new token over the four rollouts
    expect(ppo.sampled).toBe(4 * 12);
    expect(stageWork('ppo', resolveConfig('ppo', { batchSize: 8, rewardRunId: 'x' }, SHAPE), lens)).toBeUndefined(); // fewer prompts than a batch
    // GRPO: no value model; the reference only with beta > 0, the reward model only when named; 3 passes per update
    const grpo = stageWork('grpo', resolveConfig('grpo', { batchSize: 2, numSamples: 2, maxNewTokens: 12, loraRank: 8, rewardFuncs: ['f'] }, SHAPE), lens)!;
    expect(grpo.passes.slice(2)).toEqual([
      { n: 0, tokens: 4 * 32 },
      { n: 3 * 4, tokens: 4 * 32 },
    ]); // the longest prompt 13 + 12 -> 32 positions; 4 updates
    const rloo = stageWork('rloo', resolveConfig('rloo', { batchSize: 2, loraRank: 8, maxNewTokens: 12, rewardRunId: 'x' }, SHAPE), lens)!;
    expect(rloo.passes[2]).toEqual({ n: 2, tokens: 4 * 32 }); // the reward model and the reference (beta 0.05)
    expect(rloo.sampled).toBe(2 * 2 * 12);
    expect(stageWork('dpo', resolveConfig('dpo', {}, SHAPE), { rankings: [{ prompt: 3, completions: [2, 2], ranks: [0, 0] }], prompts: [] })).toBeUndefined();
  });

  it('estimates the time from two timed passes, corrected by an earlier run', () => {
    const sp = speedFrom({ tokens: 16, seconds: 0.011 }, { tokens: 256, seconds: 0.035 }, 2048);
    expect(sp.perToken).toBeCloseTo(1e-4, 9);
    expect(sp.overhead).toBeCloseTo(0.0094, 9);
    const w = { stage: 'dpo' as Stage, steps: 10, passes: [{ n: 4, tokens: 100 }], extra: [] };
    const per = stepSeconds(w, sp);
    expect(per).toBeCloseTo(4 * (0.0094 + 0.01) + 0.02, 9);
    const e = estimateStage(w, sp);
    expect(e.seconds).toBeCloseTo(1 + 12 * per, 9);
    expect(e.calibrated).toBe(false);
    expect(estimateStage(w, sp, 2).seconds).toBeCloseTo(1 + 24 * per, 9);
    expect(correction(3, 1)).toBe(3);
    expect(correction(100, 1)).toBe(10);
    expect(correction(0, 1)).toBeUndefined();
    expect(measuredStepSeconds([0, 5000, 6000, 7000, 8500])).toBe(1.5); // the first step's compile is an outlier
    expect(measuredStepSeconds([0, 1000])).toBeUndefined();
    expect([roughDuration(3), roughDuration(42), roughDuration(61), roughDuration(3 * 3600 + 1)]).toEqual(['5 s', '45 s', '2 min', '3 h 10 min']);
  });
});

/** A fake page: runs finish when the test says so; status events as the engine sends them. */
function fakeHost() {
  const runs = new Map<string, { stage: Stage; input: TrainInput; status: RunStatus; settle?: (s: RunStatus) => void }>();
  const listeners = new Set<(s: RunStatusEvent) => void>();
  let n = 0;
  const host: RecipeHost & { live?: string; end(id: string, s: RunStatus): void; runs: typeof runs } = {
    runs,
    live: undefined,
    get liveRun() {
      return this.live;
    },
    async startRun(stage, input) {
      const id = `run${++n}`;
      runs.set(id, { stage, input, status: 'running' });
      host.live = id;
      for (const f of listeners) f({ runId: id, status: 'running', step: 0, total: 3 });
      return id;
    },
    wait(id) {
      const r = runs.get(id)!;
      return r.status !== 'running' ? Promise.resolve(r.status) : new Promise((resolve) => (r.settle = resolve));
    },
    async resumeRun(id) {
      runs.get(id)!.status = 'running';
      host.live = id;
      for (const f of listeners) f({ runId: id, status: 'running', step: 1, total: 3 });
    },
    async pauseRun(id) {
      host.end(id, 'paused');
      return 'paused';
    },
    async cancelRun(id) {
      host.end(id, 'cancelled');
      return 'cancelled';
    },
    onStatus(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    end(id, s) {
      const r = runs.get(id)!;
      r.status = s;
      if (host.live === id) host.live = undefined;
      for (const f of listeners) f({ runId: id, status: s, step: 3, total: 3 });
      r.settle?.(s);
    },
  };
  return host;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('the recipe runner', () => {
  it('runs the reward model, then PPO against it; a pause waits for a resume', async () => {
    const host = fakeHost();
    const r = new RecipeRunner(host, 'rm-ppo', { steps: 3 });
    await tick();
    expect([...host.runs.values()].map((x) => x.stage)).toEqual(['rm']);
    await r.pause();
    await tick();
    expect(r.state).toBe('paused');
    expect(host.runs.size).toBe(1); // PPO waits for the reward model
    await r.resume();
    await tick();
    expect(r.state).toBe('running');
    host.end('run1', 'done');
    await tick();
    const ppo = host.runs.get('run2')!;
    expect(ppo.stage).toBe('ppo');
    expect(ppo.input.rewardRunId).toBe('run1');
    expect(ppo.input.steps).toBe(3);
    host.end('run2', 'done');
    expect(await r.done).toBe('run2');
    expect(r.state).toBe('done');
    expect(r.stages.map((s) => s.status)).toEqual(['done', 'done']);
  });

  it("goes on when the paused run is resumed from elsewhere (the Train tab's Resume)", async () => {
    const host = fakeHost();
    const r = new RecipeRunner(host, 'dpo', {});
    await tick();
    host.end('run1', 'paused');
    await tick();
    expect(r.state).toBe('paused');
    await host.resumeRun('run1');
    await tick();
    expect(r.state).toBe('running');
    host.end('run1', 'done');
    expect(await r.done).toBe('run1');
  });

  it('ends on a cancel (running or paused) and on a failed run, without starting the next stage', async () => {
    const a = fakeHost();
    const r1 = new RecipeRunner(a, 'rm-ppo', {});
    await tick();
    await r1.cancel();
    expect(await r1.done).toBeUndefined();
    expect(r1.state).toBe('cancelled');
    expect(a.runs.size).toBe(1);

    const b = fakeHost();
    const r2 = new RecipeRunner(b, 'rm-ppo', {});
    await tick();
    await r2.pause();
    await tick();
    await r2.cancel();
    expect(await r2.done).toBeUndefined();
    expect(b.runs.get('run1')!.status).toBe('cancelled');
    expect(b.runs.size).toBe(1);

    const c = fakeHost();
    const r3 = new RecipeRunner(c, 'rm-ppo', {});
    await tick();
    c.end('run1', 'failed');
    expect(await r3.done).toBeUndefined();
    expect(r3.state).toBe('failed');
    expect(r3.error).toMatch(/Reward model run run1 failed/);
    expect(c.runs.size).toBe(1);
  });

  it('fails with the reason when a run cannot start', async () => {
    const host = fakeHost();
    host.startRun = async () => {
      throw new Error('run x is training: pause or cancel it first');
    };
    const r = new RecipeRunner(host, 'dpo', {});
    expect(await r.done).toBeUndefined();
    expect(r.state).toBe('failed');
    expect(r.error).toMatch(/is training/);
  });
});
