// The Share view's reads (fake-indexeddb): which runs can be exported, the card's input for a run (a PPO
// run brings its reward model first; counts from the data saved with the runs; the last metrics row),
// the user's data as JSONL records, and an "export for a cluster" input that clusterExport accepts.
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { toPreferencePairs, type Record as DataRecord } from '../src/io/datasets.ts';
import { modelCard } from '../src/io/model-card.ts';
import { clusterExport } from '../src/io/trl.ts';
import * as db from '../src/store/db.ts';
import { cardInput, clusterInput, dataCounts, defaultRepoName, exportableRuns, exportKind, mergedChain } from '../src/ui/share-data.ts';
import type { ModelInfo } from '../src/worker/api.ts';
import { dataCounts as dataIoCounts } from '../src/ui/data-io.ts';
import { readFrontMatter } from './helpers/front-matter.ts';

let n = 0;
const model = { source: 'HuggingFaceTB/SmolLM2-135M@main', arch: 'llama', maxPositions: 2048, hidden: 576 } as ModelInfo;
const run = (id: string, stage: string, patch: Partial<db.RunRecord> = {}): db.RunRecord => ({
  id,
  stage,
  config: { lr: 1e-4, loraRank: 8, loraAlpha: 16, epochs: 1, batchSize: 4 },
  status: 'done',
  createdAt: 1,
  updatedAt: 1,
  step: 3,
  totalSteps: 3,
  datasetId: `run:${id}`,
  model: { source: model.source, fingerprint: 'f' },
  ...patch,
});
const demo = (i: number): DataRecord => ({ kind: 'completion', prompt: `p${i}`, completion: `c${i}` });
const ranking: DataRecord = { kind: 'ranking', prompt: 'q', completions: ['a', 'b', 'c'], ranks: [0, 1, 1] };

async function seeded(): Promise<db.Store> {
  const store = await db.openStore(`share-data-${n++}`);
  await db.putRun(store, run('rm1', 'rm', { result: { eval_accuracy: 0.75, reward_bias: -0.5 }, updatedAt: 2 }));
  await db.putRun(
    store,
    run('ppo1', 'ppo', {
      config: { lr: 1e-4, loraRank: 8, loraAlpha: 16, rewardRunId: 'rm1', klCoef: 0.05, numSamples: 4 },
      step: 4,
      checkpointStep: 4,
      totalSteps: 8,
      status: 'paused',
      updatedAt: 3,
    }),
  );
  await db.putRun(store, run('sft0', 'sft', { status: 'cancelled', step: 0, updatedAt: 4 }));
  await db.putRun(store, run('sft1', 'sft', { status: 'running', step: 2, updatedAt: 5 }));
  await db.saveDataset(store, {
    id: 'run:rm1',
    name: 'rm data',
    records: [ranking, ranking, { kind: 'preference', prompt: 'x', chosen: 'y', rejected: 'z' }],
    createdAt: 1,
  });
  await db.saveDataset(store, {
    id: 'run:ppo1',
    name: 'ppo data',
    records: [{ kind: 'prompt', prompt: 'a' }, { kind: 'prompt', prompt: 'b' }, demo(1)],
    createdAt: 1,
  });
  await db.appendMetrics(
    store,
    [1, 2, 3, 4].map((step) => ({ runId: 'ppo1', step, time: step, values: { 'objective/kl': step / 100 } })),
  );
  await db.saveRanking(store, { prompt: 'q', completions: ['a', 'b'], ranks: [0, 1] });
  await db.addPrompt(store, { text: 'Write a haiku.' });
  return store;
}

describe('share data', () => {
  it('lists runs with weights: done, or stopped after a step; never a running one', async () => {
    const store = await seeded();
    expect(exportableRuns(await db.listRuns(store)).map((r) => r.id)).toEqual(['ppo1', 'rm1']);
  });

  it("a PPO run's card: the reward model first, counts of the data saved with the runs, the last metrics", async () => {
    const store = await seeded();
    const input = await cardInput(store, { runId: 'ppo1', model, repo: 'alice/smol-ppo', license: 'apache-2.0' });
    expect(input).toMatchObject({
      kind: 'adapter',
      baseModel: model.source,
      rewardHead: false,
      data: { rankings: 3, comparisons: 5, prompts: 2, demonstrations: 1 }, // two rankings and a preference pair (a ranking of two)
    });
    expect(input.stages.map((s) => s.stage)).toEqual(['rm', 'ppo']);
    expect(input.stages[0]!.result).toEqual({ eval_accuracy: 0.75, reward_bias: -0.5 });
    expect(input.stages[1]).toMatchObject({ steps: 4, totalSteps: 8, metrics: { 'objective/kl': 0.04 } });
    const { meta } = readFrontMatter(modelCard(input));
    expect(meta.get('base_model')).toBe('HuggingFaceTB/SmolLM2-135M');
    expect(meta.get('tags')).toEqual(['rlhf-playground', 'rlhf', 'reward-model', 'ppo', 'lora']);

    // the current policy when it is a run; an opened adapter; the loaded model
    expect((await cardInput(store, { policy: { kind: 'run', name: 'r', runId: 'rm1' }, model })).rewardHead).toBe(true);
    expect(await cardInput(store, { policy: { kind: 'adapter', name: 'a.zip' }, model })).toMatchObject({
      kind: 'adapter',
      stages: [],
      baseModel: model.source,
    });
    // an opened reward model's adapter keeps its card a reward model's
    expect((await cardInput(store, { policy: { kind: 'adapter', name: 'rm.zip', reward: true }, model })).rewardHead).toBe(true);
    expect(await cardInput(store, { policy: { kind: 'base', name: 'm' }, model })).toMatchObject({ kind: 'model', stages: [] });
    expect(dataCounts('sft', [demo(1), demo(2), ranking])).toEqual({ demonstrations: 2 });
    // the reward model's and DPO's: rankings and preference pairs, counted as the Data tab counts them (a pair is a ranking of two)
    const pair: DataRecord = { kind: 'preference', prompt: 'q', chosen: 'a', rejected: 'b' };
    for (const stage of ['rm', 'dpo']) {
      expect(dataCounts(stage, [ranking, pair]), stage).toEqual({ rankings: 2, comparisons: toPreferencePairs([ranking, pair]).length });
      expect(dataCounts(stage, [ranking, pair]).rankings, stage).toBe(dataIoCounts({ prompts: [], rankings: [], records: [ranking, pair] }).rankings);
    }
    // the online stages' data are prompts (the page's prompt lines, or prompt-only records), as PPO's
    const prompt = (i: number): DataRecord => ({ kind: 'completion', prompt: `p${i}`, completion: '' });
    for (const stage of ['ppo', 'grpo', 'rloo'])
      expect(dataCounts(stage, [prompt(1), prompt(2), { kind: 'prompt', prompt: 'p3' }]), stage).toEqual({ prompts: 3 });
  });

  it('a run on a starting model with merged runs: those runs first, and a whole model unless it is a reward model', async () => {
    const store = await seeded();
    const chain = { source: model.source, fingerprint: 'g', root: 'f', chain: ['sft9'] };
    await db.putRun(store, run('sft9', 'sft', { updatedAt: 6 }));
    await db.saveDataset(store, { id: 'run:sft9', name: 'sft data', records: [demo(1), demo(2), demo(3)], createdAt: 1 });
    await db.putRun(store, run('rm9', 'rm', { model: chain, updatedAt: 7 }));
    await db.saveDataset(store, { id: 'run:rm9', name: 'rm data', records: [ranking], createdAt: 1 });
    await db.putRun(store, run('ppo9', 'ppo', { config: { loraRank: 8, rewardRunId: 'rm9' }, model: chain, updatedAt: 8 }));
    await db.saveDataset(store, { id: 'run:ppo9', name: 'ppo data', records: [{ kind: 'prompt', prompt: 'a' }], createdAt: 1 });

    const ppo = await cardInput(store, { runId: 'ppo9', model });
    expect(ppo).toMatchObject({ kind: 'model', data: { demonstrations: 3, rankings: 1, prompts: 1 } });
    expect(ppo.stages.map((s) => [s.stage, s.role])).toEqual([
      ['sft', 'merged into the starting model: part of these weights'],
      ['rm', 'the reward model PPO optimised against (not part of these weights)'],
      ['ppo', undefined],
    ]);
    expect(readFrontMatter(modelCard(ppo)).meta.get('library_name')).toBe('transformers');
    // the engine exports a reward model's adapter and head as they are; a policy on its own base as an adapter
    expect(exportKind((await db.getRun(store, 'rm9'))!)).toBe('adapter');
    expect(exportKind((await db.getRun(store, 'ppo9'))!)).toBe('model');
    expect(exportKind((await db.getRun(store, 'ppo1'))!)).toBe('adapter');
    expect(exportKind(run('full', 'sft', { config: { loraRank: 0 } }))).toBe('model');
    expect(mergedChain((await db.getRun(store, 'ppo1'))!)).toEqual([]);

    // the loaded model with a run merged in, exported as the current policy: that run is its history
    const merged = { ...model, merged: [{ runId: 'sft9', stage: 'sft', step: 3 }] };
    expect(await cardInput(store, { policy: { kind: 'base', name: 'm' }, model: merged })).toMatchObject({
      kind: 'model',
      stages: [{ stage: 'sft', steps: 3 }],
      data: { demonstrations: 3 },
    });
  });

  it("export for a cluster: the latest run's settings per stage, our LoRA targets, data that clusterExport takes", async () => {
    const store = await seeded();
    const chat: DataRecord = { kind: 'prompt', prompt: [{ role: 'user', content: 'Say hi.' }] };
    const input = await clusterInput(store, [demo(1), demo(2), chat], model, await db.listRuns(store));
    // no RLOO run: TRL's RLOO continues the PPO run; its batch counts completions (4 prompts x 4 samples)
    expect(input.hyper.rloo).toMatchObject({
      model: 'HuggingFaceTB/SmolLM2-135M',
      klCoef: 0.05,
      numGenerations: 4,
      batchSize: 16,
      rewardModel: 'runs/reward',
      loraRank: 8,
    });
    // no GRPO run: GRPO's defaults, scored by the reward stage's output
    expect(input.hyper.grpo).toMatchObject({
      outputDir: 'runs/grpo',
      rewardModel: 'runs/reward',
      rewardFuncs: [],
      numGenerations: 4,
      klCoef: 0,
      scaleRewards: 'group',
      lossType: 'dapo',
    });
    expect(input.rewardFunctions).toBeUndefined();
    expect(input.hyper.sft.loraTargets).toContain('q_proj');
    expect(input.hyper.dpo.beta).toBe(0.1);
    expect(input.datasets).toEqual({
      sft: [demo(1), demo(2)],
      preferences: [{ kind: 'ranking', prompt: 'q', completions: ['a', 'b'] }],
      // what PPO, GRPO and RLOO sample on here (stageRecords): the store's prompts, the user's prompt records
      // (a conversation stays one) and the demonstrations' prompts
      prompts: ['Write a haiku.', 'p1', 'p2', [{ role: 'user', content: 'Say hi.' }]],
    });
    const files = clusterExport(input);
    // TRL's prompt-only lines, a conversation as {"prompt": [messages]}
    expect(
      new TextDecoder()
        .decode(files.get('data/prompts.jsonl'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([{ prompt: 'Write a haiku.' }, { prompt: 'p1' }, { prompt: 'p2' }, { prompt: [{ role: 'user', content: 'Say hi.' }] }]);
    expect([...files.keys()].sort()).toEqual([
      'README.md',
      'data/preference.jsonl',
      'data/prompts.jsonl',
      'data/sft.jsonl',
      'dpo.yaml',
      'grpo.yaml',
      'reward.yaml',
      'rloo.yaml',
      'sft.yaml',
    ]);
    expect(input.hyper.sft.modelRevision).toBeUndefined(); // main: TRL's default, no model_revision
    expect(files.get('sft.yaml')).not.toContain('model_revision');
    // a pinned revision of the base: the bare id in model_name_or_path, the revision in model_revision
    const pinned = clusterExport(await clusterInput(store, [demo(1)], { ...model, source: 'HuggingFaceTB/SmolLM2-135M@v1.0' }, await db.listRuns(store)));
    const yaml = new TextDecoder().decode(pinned.get('sft.yaml'));
    expect(yaml).toMatch(/^model_name_or_path: "?HuggingFaceTB\/SmolLM2-135M"?$/m);
    expect(yaml).toMatch(/^model_revision: "?v1\.0"?$/m);
    // no model loaded: a placeholder the user replaces, still a valid export
    expect(clusterExport(await clusterInput(store, [], undefined, [])).get('sft.yaml')).toBeDefined();
  });

  it("export for a cluster: GRPO and RLOO runs with their settings and reward functions' JavaScript", async () => {
    const store = await seeded();
    const module =
      'export const concise = ({ completions }) => completions.map((c) => (c.length < 40 ? 1 : 0));\nexport function polite({ completions }) { return completions.map((c) => (/please/i.test(c) ? 1 : 0)); }\n';
    await db.putRun(
      store,
      run('rloo1', 'rloo', {
        config: {
          loraRank: 8,
          rewardRunId: 'rm1',
          rewardFuncs: ['concise', 'polite'],
          rewardModule: module,
          rewardWeights: [1, 0.5, 2],
          numSamples: 3,
          batchSize: 8,
          beta: 0.02,
          normalizeAdvantages: true,
        },
        updatedAt: 9,
      }),
    );
    await db.putRun(
      store,
      run('grpo1', 'grpo', {
        config: {
          loraRank: 8,
          rewardFuncs: ['concise'],
          rewardModule: module,
          lossType: 'bnpo',
          scaleRewards: 'none',
          epsilonHigh: 0.28,
          numIterations: 2,
          maskTruncatedCompletions: true,
        },
        updatedAt: 10,
      }),
    );
    await db.putRun(
      store,
      run('dpo1', 'dpo', { config: { loraRank: 8, lossType: 'sigmoid,sft', lossWeights: [1, 0.5], ldAlpha: 0.3, beta: 0.2 }, updatedAt: 11 }),
    );
    const input = await clusterInput(store, [demo(1)], model, await db.listRuns(store));
    // DPO's loss settings go to dpo.yaml as TRL names them
    expect(input.hyper.dpo).toMatchObject({ beta: 0.2, dpoLossTypes: ['sigmoid', 'sft'], lossWeights: [1, 0.5], ldAlpha: 0.3, labelSmoothing: 0 });
    const dpoYaml = new TextDecoder().decode(clusterExport(input).get('dpo.yaml'));
    expect(dpoYaml).toContain('loss_type:\n  - "sigmoid"\n  - "sft"\n');
    expect(dpoYaml).toContain('ld_alpha: 0.3');
    // TRL's RLOO now continues the RLOO run, not the PPO one
    expect(input.hyper.rloo).toMatchObject({
      klCoef: 0.02,
      numGenerations: 3,
      batchSize: 24,
      rewardModel: 'runs/reward',
      rewardFuncs: ['concise', 'polite'],
      rewardWeights: [1, 0.5, 2],
      normalizeAdvantages: true,
      epsilon: 0.2,
      numIterations: 4,
    });
    expect(input.hyper.rloo.scaleRewards).toBeUndefined();
    // GRPO with reward functions only: no reward model
    expect(input.hyper.grpo).toMatchObject({
      rewardFuncs: ['concise'],
      lossType: 'bnpo',
      scaleRewards: 'none',
      epsilonHigh: 0.28,
      numIterations: 2,
      maskTruncatedCompletions: true,
      klCoef: 0,
    });
    expect(input.hyper.grpo.rewardModel).toBeUndefined();
    expect(input.hyper.grpo.normalizeAdvantages).toBeUndefined();
    expect(input.rewardFunctions).toEqual([
      { name: 'concise', source: module },
      { name: 'polite', source: module },
    ]);

    const files = clusterExport(input);
    expect([...files.keys()].filter((k) => k.startsWith('rewards/')).sort()).toEqual(['rewards/__init__.py', 'rewards/concise.js', 'rewards/polite.js']);
    expect(new TextDecoder().decode(files.get('rewards/polite.js'))).toContain('rloo.yaml names it in reward_funcs as "rewards.polite.polite"');
    const grpo = new TextDecoder().decode(files.get('grpo.yaml'));
    expect(grpo).toContain('reward_funcs:\n  - "rewards.concise.concise"\n');
    expect(grpo).not.toContain('reward_model_name_or_path');
    // TRL's order: the reward model's weight first
    expect(new TextDecoder().decode(files.get('rloo.yaml'))).toContain('reward_weights:\n  - 2\n  - 1\n  - 0.5\n');
  });

  it('names a repo after the base model and the stage', () => {
    expect(defaultRepoName(model, run('x', 'ppo'))).toBe('SmolLM2-135M-ppo');
    expect(defaultRepoName({ ...model, source: 'http://localhost:5173/models/gpt2-tiny/' }, undefined)).toBe('gpt2-tiny-rlhf');
    expect(defaultRepoName(undefined, undefined)).toBe('model-rlhf');
    expect(defaultRepoName({ ...model, source: 'my files (3)' }, undefined)).toBe('my-files-3-rlhf');
  });
});
