// What every stage's builder shares (src/train/stages.ts dispatches to them): the trained weights (an
// adapter on the frozen base, or a model of our own), the plans' length, the schedule and step count, the
// data order, the encoders, cleanup, the StageRun fields most stages leave as they are, and the stepper
// that runs step s. Also the reward-model pieces PPO, GRPO/RLOO and the engine's rewardScores load.
import { rewardRankings, type Prompt, type Record as DataRecord } from '../../io/datasets.ts';
import type { Tok } from '../../io/tokenizer.ts';
import { ScoreHead } from '../../model/head.ts';
import { loadModel } from '../../model/index.ts';
import { copyWeights, LoraSet, LORA_DEFAULTS, type LoraConfig } from '../../model/lora.ts';
import type { ParamTable } from '../../model/params.ts';
import type { Transformer } from '../../model/transformer.ts';
import { epochsFor, stepsFor as stepsOf, type Stage, type TrainConfig } from '../../shared/config.ts';
import { Rng } from '../../shared/sampling.ts';
import type { Checkpoint } from '../checkpoint.ts';
import { exportMeta, packagePolicy, tokenizerFilesOf } from '../package.ts';
import type { Ranking } from '../reward.ts';
import type { StepPhase } from '../rollouts.ts';
import type { StageContext, StageRun, StepOut } from '../stages.ts';

export class DataError extends Error {}

/** Seeded shuffle per epoch, so a resumed run sees the same order (as the CLI's `order`). */
export function epochOrder(count: number, seed: number, epoch: number): number[] {
  const idx = Array.from({ length: count }, (_, i) => i);
  const rng = Rng.forSample(seed, epoch);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx;
}

/** Indices of step s's batch over `count` items (the last batch of a pass may be short). */
export function batchOf(count: number, batch: number, seed: number, s: number): number[] {
  const perEpoch = Math.ceil(count / batch),
    i = s % perEpoch;
  return epochOrder(count, seed, Math.floor(s / perEpoch)).slice(i * batch, (i + 1) * batch);
}

/** An adapter as a run's config gives it: rank, alpha and dropout from the config (the schema's defaults), the adapted modules per architecture. */
export const loraConfig = (c: TrainConfig, arch: 'gpt2' | 'llama'): LoraConfig => ({
  r: c.loraRank,
  alpha: c.loraAlpha,
  dropout: c.loraDropout,
  targets: LORA_DEFAULTS[arch].targets,
});

/** Uploads the weights (not the moments) of checkpoint table `prefix` into `table`. */
export function uploadParams(table: ParamTable, ck: Checkpoint, prefix: string): void {
  for (const e of table.entries) {
    const data = ck.tensors.get(`${prefix}/param/${e.name}`);
    if (!data) throw new Error(`the reward model's checkpoint has no ${prefix} tensor "${e.name}"`);
    table.upload(e.name, data);
  }
}

/** The bias of a reward-model checkpoint: in its state (the CLI's import) or its run state (a run's checkpoint). */
function rewardBias(ck: Checkpoint): number {
  const st = ck.state as { bias?: unknown; state?: { bias?: unknown } } | null;
  const b = st?.bias ?? st?.state?.bias;
  return typeof b === 'number' ? b : 0;
}

/**
 * A finished reward-model run as a scorer's role, its weights and head from its checkpoint, and its bias:
 * GRPO/RLOO's reward_model, and the engine's rewardScores (the Rank tab's active selection). A LoRA
 * reward model's adapter sits on the frozen base (with a LoRA or a fully fine-tuned policy alike); a fully
 * fine-tuned one gets a model of its own. `destroy` frees what it made (never the base).
 */
export function rewardModelRole(ctx: Pick<StageContext, 'gpu' | 'files' | 'base'>, rw: { config: TrainConfig; checkpoint: Checkpoint }) {
  const { base } = ctx;
  const rmModel = rw.config.loraRank > 0 ? base : loadModel(ctx.gpu, ctx.files).model;
  const rmLora = rw.config.loraRank > 0 ? new LoraSet(base, loraConfig(rw.config, base.cfg.arch)) : undefined;
  const rmHead = new ScoreHead(rmModel);
  const destroy = () => {
    rmHead.destroy();
    rmLora?.destroy();
    if (rmModel !== base) rmModel.destroy();
  };
  try {
    uploadParams(rmLora ? rmLora.params : rmModel.params, rw.checkpoint, 'weights');
    uploadParams(rmHead.params, rw.checkpoint, 'head');
  } catch (e) {
    destroy();
    throw e;
  }
  return { role: { model: rmModel, lora: rmLora, head: rmHead }, bias: rewardBias(rw.checkpoint), destroy };
}

/**
 * Step s of a stage, the one place a stage's trainer learns which step it is on: the batch of step s, the
 * trainer set to step s (its schedule, AdamW's bias correction, LoRA dropout and an online stage's
 * sampling seeds read it), its step, and what the run records of it. Step s runs as step s whatever came
 * before (a skipped step, a resumed run). A trainer used alone counts its own steps; a stage's are set here.
 */
export function stepper<Batch, R>(
  trainer: { step: number },
  o: {
    batch: (s: number) => Batch;
    train: (batch: Batch, onPhase?: (p: StepPhase) => void) => Promise<R>;
    out: (r: R, batch: Batch, s: number) => StepOut | Promise<StepOut>;
  },
): StageRun['step'] {
  return async (s, onPhase) => {
    const batch = o.batch(s);
    trainer.step = s;
    return o.out(await o.train(batch, onPhase), batch, s);
  };
}

/** What a stage's builder starts from (setup): the run's inputs, the trained weights, and the helpers the stages share. */
export interface Setup {
  ctx: StageContext;
  stage: Stage;
  c: TrainConfig;
  records: DataRecord[];
  tok: Tok;
  eos: number[];
  pad: number;
  /** batchSize: examples, rankings, pairs or prompts per step */
  B: number;
  /** What trains: the model (the base under an adapter, or our own copy) and the adapter, if any. */
  model: Transformer;
  adapter?: LoraSet;
  /** The trained table, as a checkpoint names it. */
  weights: { weights: ParamTable };
  /** Run at destroy, first to last: trainers go first (unshift), what is made beside them last (push). */
  cleanup: (() => void)[];
  encPrompt(p: Prompt): number[];
  /** A completion's tokens, then EOS. */
  encCompletion(s: string): number[];
  /**
   * The plans' positions T for sequences of at most `longest` tokens (+ `room`): that rounded up to 8,
   * capped by seqLen. A stage knows every sequence it trains on, so T is the memory its run needs; each
   * batch then runs on the shortest plan that holds its own longest row (src/model/plan-set.ts).
   */
  fitT(longest: number, room?: number): number;
  /** AdamW and the schedule over `steps` optimizer steps. */
  sched(steps: number): ReturnType<typeof schedOf>;
  /** The run's steps for `perEpoch` steps a pass (Hugging Face's max_steps overrides the epochs); records the epochs. */
  stepsFor(perEpoch: number): number;
  /** The files an export writes (package.ts): the adapter or the whole model; a reward model's with its head and bias. */
  exportPolicy(steps: number, head?: ScoreHead, bias?: number): Promise<Map<string, Uint8Array>>;
  /** The StageRun of these fields, with the defaults for the rest (no state, nothing to finish, the policy's export, cleanup). */
  run(fields: Omit<StageRun, 'epochs' | 'state' | 'setState' | 'finish' | 'exportFiles' | 'destroy'> & Partial<StageRun>): StageRun;
}

const schedOf = (c: TrainConfig, steps: number) => ({
  lr: c.lr,
  beta1: c.beta1,
  beta2: c.beta2,
  eps: c.eps,
  weightDecay: c.weightDecay,
  maxGradNorm: c.maxGradNorm,
  minLrRatio: c.minLrRatio,
  warmupSteps: Math.ceil(steps * c.warmupRatio),
  totalSteps: steps,
});

/** The trained weights and the shared helpers; `cleanup` frees the weights (and, once a builder adds them, its trainer and the rest). */
export async function setup(ctx: StageContext, stage: Stage, c: TrainConfig, records: DataRecord[]): Promise<Setup> {
  const { tok, base, files } = ctx;
  const eos = tok.eosTokenIds,
    pad = eos[0] ?? 0;
  const lora = c.loraRank > 0;
  // an adapter on the shared frozen base, or a model of our own
  const owned = lora ? undefined : loadModel(ctx.gpu, { ...files, configFile: `${files.source}/config.json` }, { optimizer: true }).model;
  if (owned && ctx.adopted) await copyWeights(base, owned);
  const model = owned ?? base;
  const adapter = lora ? new LoraSet(base, loraConfig(c, base.cfg.arch), { optimizer: true }) : undefined;
  adapter?.init(c.seed);
  const cleanup: (() => void)[] = [() => adapter?.destroy(), () => owned?.destroy()];
  let epochs: number | undefined;
  const exportPolicy = (steps: number, head?: ScoreHead, bias?: number) =>
    packagePolicy(
      { model, lora: adapter },
      {
        meta: exportMeta(stage, steps, files.source),
        source: files.source,
        tokenizerFiles: tokenizerFilesOf(files),
        score: head ? { head: head.params, bias: bias ?? 0, padTokenId: tok.padTokenId ?? pad } : undefined,
      },
    );
  return {
    ctx,
    stage,
    c,
    records,
    tok,
    eos,
    pad,
    B: c.batchSize,
    model,
    adapter,
    cleanup,
    weights: { weights: adapter ? adapter.params : model.params },
    encPrompt: (p) => tok.encodePrompt(p),
    encCompletion: (s) => [...tok.encode(s, { addSpecialTokens: false }), ...eos.slice(0, 1)],
    fitT: (longest, room = 0) => Math.max(4, Math.min(c.seqLen, Math.ceil((longest + room) / 8) * 8)),
    sched: (steps) => schedOf(c, steps),
    stepsFor(perEpoch) {
      epochs = c.steps ? undefined : epochsFor(c, perEpoch);
      return stepsOf(c, perEpoch);
    },
    exportPolicy,
    run: (fields) => ({
      epochs,
      state: () => ({}),
      setState: () => {},
      finish: async () => ({}),
      exportFiles: (steps: number) => exportPolicy(steps),
      destroy: () => cleanup.forEach((f) => f()),
      ...fields,
    }),
  };
}

/** The rankings and {"prompt","chosen","rejected"} records of the data, encoded (the reward model's and DPO's); full ties (a pairwise tie, both bad) teach nothing: dropped. */
export function rankingsOf(x: Setup): Ranking[] {
  return [
    ...rewardRankings(x.records).map((r) => ({ prompt: x.encPrompt(r.prompt), completions: r.completions.map(x.encCompletion), ranks: r.ranks })),
    ...x.records.flatMap((r) =>
      r.kind === 'preference' ? [{ prompt: x.encPrompt(r.prompt), completions: [x.encCompletion(r.chosen), x.encCompletion(r.rejected)] }] : [],
    ),
  ];
}
