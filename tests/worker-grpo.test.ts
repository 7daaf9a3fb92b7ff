// GRPO and RLOO through the worker's API (the engine on Dawn in Node, over fake-indexeddb), as the page
// starts them: the reward functions are the JavaScript source in config.rewardModule (in Node, where
// there is no Worker, imported from a data: URL; the page's sandbox worker is tests/app-grpo-e2e.test.ts's).
// Every export is used when reward_funcs names none, and the saved config names them; the metrics are
// TRL's (rewards/<name>/mean); a paused run resumed by a fresh engine ends as an uninterrupted one; a
// reward model can score beside the functions; a module that does not load, exports nothing, or whose
// function returns the wrong number of scores is refused or fails the run, naming the function.
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importJsonl, type Record as DataRecord } from '../src/io/datasets.ts';
import { addPrompts, getMetrics, listRuns, openStore, saveDataset, USER_DATASET, type MetricRecord } from '../src/store/db.ts';
import { readCheckpointAll } from '../src/store/checkpoints.ts';
import { callReward } from '../src/shared/rewards.ts';
import type { Engine, TrainInput } from '../src/worker/api.ts';
import { createEngine } from '../src/worker/engine.ts';
import { loadRewardModule } from '../src/worker/reward-sandbox.ts';
import { testGpu } from './helpers/gpu.ts';

const DIR = 'tests/fixtures/gpt2-tiny';
const files = () => new Map(['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => [f, new Uint8Array(readFileSync(`${DIR}/${f}`))]));
const jsonl = (rows: object[]) => importJsonl(rows.map((r) => JSON.stringify(r)).join('\n'), 'data.jsonl').records;
// the Data tab's prompts: what the engine gives GRPO and RLOO (src/io/stage-data.ts)
const PROMPTS = ['the cat sat', 'a dog ran', 'big red mat', 'the cat ran far'];

// two functions: one scores every answer, one applies to the prompts with a cat only (null elsewhere)
const MODULE = `
export function short({ completions }) { return completions.map((c) => (c.split(/\\s+/).filter(Boolean).length <= 3 ? 1 : 0)); }
export const about_the_cat = ({ prompts, completion_ids }) => prompts.map((p, i) => (p.includes('cat') ? completion_ids[i].length / 8 : null));
`;
const GRPO: TrainInput = { seed: 2, loraRank: 4, batchSize: 2, numSamples: 2, maxNewTokens: 6, seqLen: 24, steps: 2, numIterations: 1, rewardModule: MODULE };

async function inStore<T>(name: string, f: (db: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
  const db = await openStore(name);
  try {
    return await f(db);
  } finally {
    db.close();
  }
}
let stores = 0;
/** An engine with the tiny model, over a store that holds the prompts (and `records` as the user's own). */
async function engine(name = `worker-grpo-${stores++}`, records: DataRecord[] = []): Promise<{ e: Engine; name: string }> {
  await inStore(name, async (db) => {
    await saveDataset(db, { id: USER_DATASET, name: 'My data', records, createdAt: 1 });
    await addPrompts(db, PROMPTS);
  });
  const e = createEngine({ gpu: testGpu(), store: openStore(name) });
  await e.loadModel({ files: files(), name: 'gpt2-tiny' });
  return { e, name };
}
const metricsOf = (name: string, id: string): Promise<MetricRecord[]> => inStore(name, (db) => getMetrics(db, id));
const tensorsOf = (name: string, id: string) =>
  inStore(name, async (db) => {
    const ck = await readCheckpointAll(db, id);
    return { step: ck!.step, tensors: ck!.tensors };
  });

describe('GRPO and RLOO in the engine, with the reward functions of config.rewardModule', () => {
  it('grpo: every export scores, named in the saved config and the metrics; paused and resumed by a fresh engine it ends as an uninterrupted run', async () => {
    const t0 = performance.now();
    const a = await engine();
    expect(await a.e.checkRewardModule(MODULE)).toEqual(['about_the_cat', 'short']);
    const idA = await a.e.startStage('grpo', GRPO);
    expect(await a.e.wait(idA), (await a.e.getRun(idA)).error).toBe('done');
    const run = await a.e.getRun(idA);
    // the module's functions in its namespace's order (alphabetical), and its source, kept with the run
    expect(run.config).toMatchObject({ rewardFuncs: ['about_the_cat', 'short'], rewardModule: MODULE, numSamples: 2, maxNewTokens: 6 });
    const rows = await metricsOf(a.name, idA);
    expect(rows.map((r) => r.step)).toEqual([1, 2]);
    for (const k of ['reward', 'reward_std', 'completions/mean_length', 'loss', 'rewards/short/mean', 'rewards/short/std'])
      expect(typeof rows[1]!.values[k], k).toBe('number');
    expect(rows[1]!.values.kl).toBeUndefined(); // GRPO's beta is 0 by default: no reference pass, no KL (as TRL)
    // every batch of 2 of these 4 prompts has a cat in one of them at least once over the run
    expect(rows.some((r) => typeof r.values['rewards/about_the_cat/mean'] === 'number')).toBe(true);
    const ref = await tensorsOf(a.name, idA);
    // the trained policy is what generate samples
    expect((await a.e.generate('the dog', { maxNewTokens: 3 })).texts.length).toBe(1);
    await a.e.dispose();
    const tA = performance.now();

    const b = await engine();
    const idB = await b.e.startStage('grpo', GRPO, { onProgress: (p) => void (p.step === 1 && b.e.pause(p.runId)) });
    expect(await b.e.wait(idB)).toBe('paused');
    await b.e.dispose();
    // a reload: a fresh engine over the same store builds the reward functions again from the saved source
    const c = await engine(b.name);
    await c.e.resume(idB);
    expect(await c.e.wait(idB), (await c.e.getRun(idB)).error).toBe('done');
    const got = await tensorsOf(b.name, idB);
    expect(got.step).toBe(2);
    expect([...got.tensors.keys()]).toEqual([...ref.tensors.keys()]);
    for (const [n, data] of ref.tensors) expect(Buffer.from(got.tensors.get(n)!.buffer).equals(Buffer.from(data.buffer)), n).toBe(true);
    const history = await metricsOf(b.name, idB);
    expect(history.map((r) => r.step)).toEqual([1, 2]);
    expect(history.map((r) => r.values.reward)).toEqual(rows.map((r) => r.values.reward));
    await c.e.dispose();
    console.log(`grpo 2 steps: ${(tA - t0).toFixed(0)} ms; paused, resumed by a fresh engine: ${(performance.now() - tA).toFixed(0)} ms`);
  });

  it('rloo: a reward model from rewardRunId scores beside the functions, as reward_model', async () => {
    const rank = jsonl(Array.from({ length: 6 }, (_, i) => ({ prompt: `the cat ${i}`, completions: ['a big red dog ran far away', 'the cat', 'mat'] })));
    const { e, name } = await engine(undefined, rank); // the reward model trains on the rankings, RLOO samples the prompts
    const rm = await e.startStage('rm', { seed: 1, batchSize: 2, seqLen: 24, loraRank: 4, lr: 1e-3, steps: 2 });
    expect(await e.wait(rm)).toBe('done');
    const id = await e.startStage('rloo', { ...GRPO, steps: 1, rewardRunId: rm, rewardFuncs: ['short'], rewardWeights: [1, 0.5] });
    expect(await e.wait(id), (await e.getRun(id)).error).toBe('done');
    expect((await e.getRun(id)).config).toMatchObject({ rewardFuncs: ['short'], rewardRunId: rm, beta: 0.05 });
    const [row] = await metricsOf(name, id);
    for (const k of ['rewards/short/mean', 'rewards/reward_model/mean', 'reward', 'kl']) expect(typeof row!.values[k], k).toBe('number');
    expect(row!.values['rewards/about_the_cat/mean']).toBeUndefined(); // reward_funcs named one function: the other is not used
    await e.dispose();
  });

  it('a module that does not load or exports nothing is refused before a run starts; a function with the wrong number of scores fails the run, named', async () => {
    const { e, name } = await engine();
    await expect(
      e.startStage('grpo', { ...GRPO, rewardModule: 'export function broken({ completions }) { return completions.map((c) => ; }' }),
    ).rejects.toThrow(/^reward_module: cannot load the module: /);
    await expect(e.startStage('grpo', { ...GRPO, rewardModule: 'export const limit = 12;' })).rejects.toThrow(/^reward_module: exports no reward function/);
    await expect(e.startStage('grpo', { ...GRPO, rewardFuncs: ['nope'] })).rejects.toThrow(
      /no reward function named "nope" was given \(about_the_cat, short\)/,
    );
    await expect(e.checkRewardModule('export default 3;')).rejects.toThrow(/reward_module: the default export is not a function/);
    expect(await inStore(name, (db) => listRuns(db))).toEqual([]);
    // without a module or a reward model there is nothing to score with
    await expect(e.startStage('grpo', { ...GRPO, rewardModule: '' })).rejects.toThrow(/config\.rewardFuncs: .*need reward functions, a reward model/);

    const id = await e.startStage('grpo', { ...GRPO, rewardModule: 'export default function broken({ completions }) { return completions.slice(1); }' });
    expect(await e.wait(id)).toBe('failed');
    expect((await e.getRun(id)).error).toBe('reward function "broken" (reward_module) returned 3 scores for 4 completions');
    await e.dispose();
  });

  it('a reward function that does not answer in time fails with the time it had', async () => {
    const m = await loadRewardModule('export const slow = () => new Promise(() => {});\nexport const nothing = () => 1;', { timeoutMs: 200 });
    expect(m.where).toBe('inline'); // no Worker in Node
    const input = { prompts: ['a'], completions: ['b'], completion_ids: [[1]] };
    const [nothing, slow] = m.functions;
    await expect(callReward(slow!, input)).rejects.toThrow(
      'reward function "slow" (reward_module) failed: no answer within 0.2 s (an endless loop, or too slow?)',
    );
    await expect(callReward(nothing!, input)).rejects.toThrow('reward function "nothing" (reward_module) returned number, not an array of 1 scores');
    m.dispose();
  });

  it('estimates the GPU memory of a run before it starts: the reference only with beta > 0, the reward model only when named', async () => {
    const { e } = await engine();
    const at = (beta: number, rewardRunId?: string) =>
      e.stageMemory('grpo', { loraRank: 4, beta, rewardModule: MODULE, ...(rewardRunId ? { rewardRunId } : {}) });
    const plain = await at(0),
      kl = await at(0.04),
      rm = await at(0, 'some-run');
    expect(Object.keys(plain.parts)).toEqual(['base', 'policy', 'rollouts']);
    expect(Object.keys(kl.parts)).toEqual(['base', 'policy', 'reference', 'rollouts']);
    expect(Object.keys(rm.parts)).toEqual(['base', 'policy', 'reward', 'rollouts']);
    expect(kl.total).toBeGreaterThan(plain.total);
    const ppo = await e.stageMemory('ppo', { loraRank: 4 });
    expect(ppo.total).toBeGreaterThan(rm.total); // PPO's value model on top of the same roles
    await expect(e.stageMemory('grpo', { loraRank: 4, epsilon: 2 })).rejects.toThrow(/config.epsilon/);
  });
});
