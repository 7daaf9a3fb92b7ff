// The Share view's reads, without the DOM (run in Node tests against fake-indexeddb): which runs can be
// exported, the user's data as records, the input of "export for a cluster", and the model card's input
// for what is being published. Kept apart from <share-view> so the rules are tested without a browser.
//
// The card describes what made the exported weights: the chosen run (a PPO run brings the reward-model
// run it optimised against, listed first), its resolved config, its last metrics row, what it reported
// at its end, and the counts of the data saved with that run (not the user's data today, which may
// have changed since). A run trained on a starting model that earlier runs were merged into (the
// engine's adoptRun: SFT merged, then RM and PPO on it) lists those runs first, as part of the weights;
// the engine exports such a policy as a whole model, since PEFT could not rebuild its base from a Hub id.
import { toPreferencePairs, toPrompts, type Record as DataRecord } from '../io/datasets.ts';
import { stageRecords } from '../io/stage-data.ts';
import { hubIdOf, type CardData, type CardStage, type ModelCardInput } from '../io/model-card.ts';
import { baseRefOf } from '../io/hub.ts';
import { TRL_STAGES, type ClusterExportInput, type RunHyper, type TrlStage } from '../io/trl.ts';
import { LORA_DEFAULTS } from '../shared/lora.ts';
import { dpoLossTypes } from '../shared/schema.ts';
import * as db from '../store/db.ts';
import { epochsFor, isGroup, isOnline, resolveConfig, STAGES, type Stage, type TrainConfig, type TrainInput } from '../shared/config.ts';
import type { ModelInfo, PolicyInfo } from '../worker/api.ts';

/** The runs merged into a run's starting model, oldest first (none for runs on the model as loaded). */
export function mergedChain(run: Pick<db.RunRecord, 'model'>): string[] {
  const chain = (run.model as { chain?: unknown } | undefined)?.chain;
  return Array.isArray(chain) ? chain.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * What exporting a run gives: its LoRA adapter, or a whole model (full fine-tuning; or a policy over
 * merged runs, which the engine merges into the weights; a reward model keeps its adapter and score head).
 */
export function exportKind(run: Pick<db.RunRecord, 'stage' | 'config' | 'model'>): 'adapter' | 'model' {
  const lora = Number((run.config as Partial<TrainConfig>).loraRank) > 0;
  return lora && (run.stage === 'rm' || !mergedChain(run).length) ? 'adapter' : 'model';
}

/** Runs with weights to export: done, or stopped with a checkpoint past step 0. Newest first (as listRuns). */
export function exportableRuns(runs: db.RunRecord[]): db.RunRecord[] {
  return runs.filter((r) => r.status === 'done' || (r.status !== 'running' && (r.checkpointStep ?? 0) > 0));
}

// ---------------------------------------------------------------------------------------------
// Export for a cluster

/** Which of our stages each TRL config continues. TRL has no PPO trainer, so its RLOO continues our RLOO
 *  run when there is one (the same algorithm, field for field), else our PPO run (the online stage of the
 *  InstructGPT recipe, as before GRPO and RLOO came here), else our RLOO stage's defaults. */
function sourceOf(trl: TrlStage, runs: db.RunRecord[]): { stage: Stage; last?: db.RunRecord } {
  const latest = (stage: Stage) => runs.find((r) => r.stage === stage); // newest first
  if (trl === 'rloo') {
    const last = latest('rloo') ?? latest('ppo');
    return { stage: (last?.stage as Stage | undefined) ?? 'rloo', last };
  }
  const stage: Stage = trl === 'reward' ? 'rm' : trl;
  return { stage, last: latest(stage) };
}

/** A TRL stage's settings from the playground's config of `stage`; `perEpoch`: the steps of one pass over its data here (what auto epochs follow). */
function hyperOf(trl: TrlStage, stage: Stage, c: TrainConfig, model: string, arch: ModelInfo['arch'] | undefined, perEpoch: number): RunHyper {
  const h: RunHyper = {
    model,
    outputDir: `runs/${trl}`,
    lr: c.lr,
    epochs: epochsFor(c, perEpoch),
    batchSize: c.batchSize,
    gradAccum: 1,
    maxLength: c.seqLen,
    warmupRatio: c.warmupRatio,
    weightDecay: c.weightDecay,
    maxGradNorm: c.maxGradNorm > 0 ? c.maxGradNorm : 1e6, // 0 turns clipping off here; TRL wants a norm, and this one never clips
    seed: c.seed,
    loraRank: c.loraRank,
    loraAlpha: c.loraAlpha,
    loraDropout: c.loraDropout,
    loraTargets: arch ? [...LORA_DEFAULTS[arch].targets] : [], // the modules our adapters use; [] = PEFT's default
  };
  if (stage === 'dpo')
    Object.assign(h, {
      beta: c.beta,
      dpoLossTypes: dpoLossTypes(c.lossType),
      ...(c.lossWeights.length ? { lossWeights: [...c.lossWeights] } : {}),
      ldAlpha: c.ldAlpha,
      labelSmoothing: c.labelSmoothing,
    });
  if (isOnline(stage)) {
    const k = Math.max(2, c.numSamples); // TRL wants 2 or more (PPO takes 1 here)
    // Our batch counts prompts, each sampled K times; TRL's per_device_train_batch_size counts completions
    // (a step takes that x gradient_accumulation_steps x GPUs / K prompts): K x ours keeps a step's prompts
    // on one GPU, and divisible by num_generations.
    Object.assign(h, { batchSize: c.batchSize * k, numGenerations: k, maxNewTokens: c.maxNewTokens, temperature: c.temperature });
  }
  if (stage === 'ppo') Object.assign(h, { klCoef: c.klCoef, rewardModel: 'runs/reward' });
  if (isGroup(stage)) {
    Object.assign(h, {
      klCoef: c.beta, // GRPO's and RLOO's KL coefficient is beta, in TRL as here
      ...(c.rewardRunId ? { rewardModel: 'runs/reward' } : {}), // the reward stage's output on the cluster
      rewardFuncs: [...c.rewardFuncs],
      ...(c.rewardWeights.length ? { rewardWeights: [...c.rewardWeights] } : {}),
      epsilon: c.epsilon,
      epsilonHigh: c.epsilonHigh,
      numIterations: c.numIterations,
      maskTruncatedCompletions: c.maskTruncatedCompletions,
    });
    if (stage === 'grpo') Object.assign(h, { scaleRewards: c.scaleRewards, lossType: c.lossType });
    else h.normalizeAdvantages = c.normalizeAdvantages;
  }
  return h;
}

/** The JavaScript of a GRPO/RLOO run's reward functions: the module the page keeps in its config
 *  (rewardModule), under each name it gives ('' for the CLI's --reward-fn files, which stay on its disk). */
function rewardSources(c: TrainConfig): { name: string; source: string }[] {
  return c.rewardModule.trim() ? c.rewardFuncs.map((name) => ({ name, source: c.rewardModule })) : [];
}

/**
 * The input of clusterExport: the user's demonstrations, preferences (rankings and pairs) and prompts,
 * and per stage the config of the user's latest run of it (else the playground's LoRA defaults), with
 * the JavaScript of the reward functions the GRPO and RLOO configs name. Every stage starts from the
 * loaded model, as in the playground.
 */
export async function clusterInput(store: db.Store, own: DataRecord[], model: ModelInfo | undefined, runs: db.RunRecord[]): Promise<ClusterExportInput> {
  const shape = model ?? { maxPositions: 1024, hidden: 768 }; // no model loaded: GPT-2's
  const base = model ? (hubIdOf(model.source) ?? model.source) : 'BASE_MODEL';
  const revision = model && hubIdOf(model.source) ? baseRefOf(model.source).revision : null; // "id@v1.0": model_revision v1.0
  const user = { prompts: (await db.listPrompts(store)).map((p) => p.text), rankings: await db.listRankings(store), records: own };
  // every stage's records by the policy a run here applies (stageRecords): the online stages' prompts are the
  // store's, the user's prompt records and their demonstrations' prompts, as PPO, GRPO and RLOO sample here
  const datasets = { sft: stageRecords('sft', user), preferences: stageRecords('rm', user), prompts: toPrompts(stageRecords('ppo', user)) };
  // about one pass over each stage's data, in the units its batches count: what auto epochs (0) follow
  const items = (stage: Stage): number =>
    stage === 'sft'
      ? datasets.sft.length
      : stage === 'rm'
        ? datasets.preferences.length
        : stage === 'dpo'
          ? toPreferencePairs(datasets.preferences).length
          : datasets.prompts.length;
  const hyper = {} as Record<TrlStage, RunHyper>;
  const rewardFunctions: { name: string; source: string }[] = [];
  for (const trl of TRL_STAGES) {
    const { stage, last } = sourceOf(trl, runs);
    // PPO needs a reward model, GRPO and RLOO a reward model or reward functions: without a run of
    // theirs, the reward stage's output stands in (as 'runs/reward' in the export)
    const input: TrainInput = { loraRank: 8, ...(last?.config as TrainInput | undefined) };
    if (stage === 'ppo' || (isGroup(stage) && !input.rewardRunId && !input.rewardFuncs?.length)) input.rewardRunId = 'reward';
    const c = resolveConfig(stage, input, shape);
    hyper[trl] = hyperOf(trl, stage, c, base, model?.arch, Math.max(1, Math.ceil(items(stage) / c.batchSize)));
    if (revision !== null) hyper[trl].modelRevision = revision;
    // one file per name: when the RLOO and GRPO runs' modules both define a name, RLOO's (first) is written
    if (isGroup(stage)) for (const f of rewardSources(c)) if (!rewardFunctions.some((g) => g.name === f.name)) rewardFunctions.push(f);
  }
  return { hyper, datasets, ...(rewardFunctions.length ? { rewardFunctions } : {}) };
}

// ---------------------------------------------------------------------------------------------
// The model card's input

/**
 * The counts a card shows for the data a run trained on: its snapshot, which the policy (stageRecords) chose
 * when it started, counted as the stage reads it; a record the policy would not give the stage counts for nothing.
 */
export function dataCounts(stage: string, records: DataRecord[], policy: typeof stageRecords = stageRecords): CardData {
  const as: Stage = (STAGES as readonly string[]).includes(stage) ? (stage as Stage) : 'rm'; // (a run of ours always has one)
  const taken = policy(as, { prompts: [], rankings: [], records }); // the policy gives a stage's own records back as they are
  if (as === 'sft') return { demonstrations: taken.length };
  if (isOnline(as)) {
    const ptx = taken.filter((r) => r.kind === 'completion' && r.completion !== '').length; // PPO-ptx's demonstrations, whose prompts are sampled too
    return { prompts: toPrompts(taken).length - ptx, ...(ptx ? { demonstrations: ptx } : {}) };
  }
  // a preference record is a ranking of two, as the Data tab counts it (dataCounts in data-io.ts)
  return { rankings: taken.length, comparisons: toPreferencePairs(taken).length };
}

async function stageOf(store: db.Store, run: db.RunRecord, role?: string): Promise<{ stage: CardStage; data: CardData }> {
  const metrics = await db.getMetrics(store, run.id);
  const records = run.datasetId ? (((await db.getDataset(store, run.datasetId))?.records ?? []) as DataRecord[]) : [];
  return {
    stage: { stage: run.stage, role, steps: run.step, totalSteps: run.totalSteps, config: run.config, metrics: metrics.at(-1)?.values, result: run.result },
    data: dataCounts(run.stage, records),
  };
}

export interface CardChoice {
  /** the run to publish; undefined = the current policy */
  runId?: string;
  policy?: PolicyInfo;
  model?: ModelInfo;
  repo?: string;
  title?: string;
  description?: string;
  license?: string;
  /** the download carries the adapter's base beside it (the engine's exportLayout) */
  bundledBase?: boolean;
}

/** The model card's input for the chosen run, or for the current policy (a run, an opened adapter, the loaded model). */
export async function cardInput(store: db.Store, c: CardChoice): Promise<ModelCardInput> {
  const common = {
    repo: c.repo,
    title: c.title,
    description: c.description,
    license: c.license,
    date: new Date().toISOString().slice(0, 10),
    ...(c.bundledBase ? { bundledBase: true } : {}),
  };
  const runId = c.runId ?? (c.policy?.kind === 'run' ? c.policy.runId : undefined);
  const run = runId ? await db.getRun(store, runId) : undefined;
  const merged = async (ids: string[]) => {
    const out: { stage: CardStage; data: CardData }[] = [];
    for (const id of ids) {
      const r = await db.getRun(store, id);
      if (r) out.push(await stageOf(store, r, 'merged into the starting model: part of these weights'));
    }
    return out;
  };
  if (!run) {
    // an adapter opened from elsewhere (its history is not ours to tell), or the loaded model as it is,
    // with the runs merged into it, if any
    if (c.policy?.kind === 'adapter')
      return { ...common, kind: 'adapter', baseModel: c.model?.source ?? '', stages: [], ...(c.policy.reward ? { rewardHead: true } : {}) };
    const parts = await merged(c.model?.merged?.map((m) => m.runId) ?? []);
    return { ...common, kind: 'model', baseModel: c.model?.source ?? '', stages: parts.map((p) => p.stage), ...(parts.length ? { data: sumData(parts) } : {}) };
  }
  const parts = await merged(mergedChain(run));
  const rewardId = run.stage === 'ppo' ? (run.config as Partial<TrainConfig>).rewardRunId : undefined;
  const reward = rewardId ? await db.getRun(store, rewardId) : undefined;
  if (reward) parts.push(await stageOf(store, reward, 'the reward model PPO optimised against (not part of these weights)'));
  parts.push(await stageOf(store, run));
  const source = (run.model as { source?: unknown } | undefined)?.source;
  return {
    ...common,
    kind: exportKind(run),
    baseModel: typeof source === 'string' ? source : (c.model?.source ?? ''),
    stages: parts.map((p) => p.stage),
    data: sumData(parts),
    rewardHead: run.stage === 'rm',
  };
}

function sumData(parts: { data: CardData }[]): CardData {
  const data: CardData = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.data) as [keyof CardData, number][]) data[k] = (data[k] ?? 0) + v;
  return data;
}

/** A repo name for the export, e.g. "gpt2-tiny-ppo": the base's last name part and the stage, as the Hub allows names. */
export function defaultRepoName(model: ModelInfo | undefined, run: db.RunRecord | undefined): string {
  const source = (model?.source ?? 'model').replace(/@.*$/, '').replace(/\/+$/, '');
  const base = source.split('/').at(-1) || 'model';
  const name = `${base}-${run ? run.stage : 'rlhf'}`
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/([-.])[-.]+/g, '$1')
    .replace(/^[-.]+|[-.]+$/g, '');
  return name.slice(0, 96).replace(/[-.]+$/, '') || 'rlhf-model';
}
