// One training stage built from a resolved config and the run's data (text): the trainer, the tables a
// checkpoint holds, one optimizer step, the end of the run, and the files an export writes (package.ts).
// The worker's run driver (src/worker/run-driver.ts) and the command line (src/cli/train.ts) both drive it step by step.
//
// Step s (0-based) always takes the same batch (a seeded shuffle per epoch) and runs with `t.step = s`,
// so the schedule, AdamW's bias correction and LoRA dropout continue exactly where a resumed run stopped.
import type { Gpu } from '../gpu/runtime.ts';
import type { StepPhase } from './rollouts.ts';
import { promptText, rewardRankings, toPrompts, toRankings, type Prompt, type Record as DataRecord } from '../io/datasets.ts';
import type { ModelFiles } from '../io/sources.ts';
import { StreamDecoder, type Tok } from '../io/tokenizer.ts';
import { ScoreHead } from '../model/head.ts';
import { loadModel } from '../model/index.ts';
import { LoraSet, LORA_DEFAULTS, type LoraConfig, copyWeights } from '../model/lora.ts';
import type { ParamTable } from '../model/params.ts';
import { totalUse, type PlanUse } from '../model/plan-set.ts';
import type { Transformer } from '../model/transformer.ts';
import type { Checkpoint } from './checkpoint.ts';
import { DpoTrainer, pairsFromRankings } from './dpo.ts';
import { PPO_DEFAULTS, PpoTrainer } from './ppo.ts';
import { GrpoTrainer, ModelReward, type RewardScorer } from './grpo.ts';
import { RewardTrainer, type Ranking } from './reward.ts';
import { callReward, type RewardFunction } from '../shared/rewards.ts';
import { Rng } from '../shared/sampling.ts';
import type { CompletionRow } from '../shared/types.ts';
export type { CompletionRow } from '../shared/types.ts';
import { SftTrainer, sftBatch, type Example } from './sft.ts';
import { epochsFor, isGroup, stepsFor as stepsOf, type Stage, type TrainConfig } from '../shared/config.ts';
import { exportMeta, packagePolicy, tokenizerFilesOf } from './package.ts';

export interface StepOut {
  metrics: Record<string, number>; // TRL's names
  tokens: number; // tokens the step processed (throughput)
  skipped: boolean; // a NaN/Inf gradient: the weights were left untouched
  /** Online rollouts with per-token diagnostics for the UI: each response token's text, KL contribution, value (PPO; [] without a value model) and advantage. */
  samples?: { prompt: string; response: string; score: number; tokens: string[]; kl: number[]; value: number[]; advantage: number[] }[];
  /** GRPO/RLOO: every rollout of the step with each reward function's score and its advantage (TRL's completions table). */
  completions?: CompletionRow[];
}

export interface StageRun {
  readonly totalSteps: number;
  /** The passes over the data the steps make, `epochs: 0` (auto) resolved; undefined when `steps` overrides the epochs. */
  readonly epochs?: number;
  /** What a checkpoint holds (weights and AdamW moments). */
  readonly trainables: Record<string, ParamTable>;
  /** Step s; an online stage tells `onPhase` where it is inside the step (a PPO step can take minutes). */
  step(s: number, onPhase?: (p: StepPhase) => void): Promise<StepOut>;
  /** After the last step (RM: held-out accuracy and the bias fit); goes into the run's result. */
  finish(): Promise<Record<string, number>>;
  /** Run state beyond the tensors, kept in the checkpoint (RM bias, PPO's adaptive KL coefficient). */
  state(): Record<string, number>;
  setState(s: Record<string, unknown>): void;
  /** What to sample from after this stage; undefined for a reward model. */
  readonly policy?: { model: Transformer; lora?: LoraSet };
  exportFiles(steps: number): Promise<Map<string, Uint8Array>>;
  /** Reward model: loss and pair accuracy on rankings it did not train on (the experiment's held-out set). */
  evaluate?(records: DataRecord[]): Promise<{ loss: number; accuracy: number; pairs: number }>;
  /** Positions the stage's plans computed and the tokens they held, so far (src/model/plan-set.ts). */
  planUse(): PlanUse;
  /** Reward model: the score of each (prompt, completion) (what to rank next: the pairs it is least sure of). */
  score?(items: { prompt: string; completion: string }[]): Promise<number[]>;
  destroy(): void;
}

export interface StageContext {
  gpu: Gpu;
  files: ModelFiles;
  tok: Tok;
  base: Transformer; // loaded from `files`, never trained: the frozen base of adapters and DPO's reference
  /** The base's weights are no longer those of `files` (earlier runs were merged in): models of our own start from the base. */
  adopted?: boolean;
  /** PPO: the reward-model run it trains against; GRPO/RLOO: the one named by rewardRunId, if any. */
  reward?: { config: TrainConfig; checkpoint: Checkpoint };
  /** GRPO/RLOO: the reward functions that config.reward_funcs names. */
  rewardFunctions?: RewardFunction[];
}

/** The bias of a reward-model checkpoint: in its state (the CLI's import) or its run state (a run's checkpoint). */
function rewardBias(ck: Checkpoint): number {
  const st = ck.state as { bias?: unknown; state?: { bias?: unknown } } | null;
  const b = st?.bias ?? st?.state?.bias;
  return typeof b === 'number' ? b : 0;
}

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

/** Indices of step s's batch over `count` items. */
function batchOf(count: number, batch: number, seed: number, s: number): number[] {
  const perEpoch = Math.ceil(count / batch), i = s % perEpoch;
  return epochOrder(count, seed, Math.floor(s / perEpoch)).slice(i * batch, (i + 1) * batch);
}

const loraConfig = (c: TrainConfig, arch: 'gpt2' | 'llama'): LoraConfig => ({ ...LORA_DEFAULTS[arch], r: c.loraRank, alpha: c.loraAlpha, dropout: c.loraDropout });

/** Uploads the weights (not the moments) of checkpoint table `prefix` into `table`. */
function uploadParams(table: ParamTable, ck: Checkpoint, prefix: string): void {
  for (const e of table.entries) {
    const data = ck.tensors.get(`${prefix}/param/${e.name}`);
    if (!data) throw new Error(`the reward model's checkpoint has no ${prefix} tensor "${e.name}"`);
    table.upload(e.name, data);
  }
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
    if (rmModel !== base) rmModel.params.destroy();
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

export async function buildStage(ctx: StageContext, stage: Stage, c: TrainConfig, records: DataRecord[]): Promise<StageRun> {
  const { tok, base, files } = ctx;
  const eos = tok.eosTokenIds, pad = eos[0] ?? 0, B = c.batchSize;
  // Plans are allocated for T positions. A stage knows every sequence it trains on, so T is the longest
  // of them (rounded up to 8), capped by seqLen: the memory a run needs. Each batch then runs on the
  // shortest plan that holds its own longest row (src/model/plan-set.ts): the same results (padding after
  // a sequence changes nothing before it) for less work. The reward model scores rankings it has not seen
  // in `evaluate`: it keeps 32 positions of room, and refuses longer.
  let T = c.seqLen;
  const fitT = (longest: number, room = 0) => (T = Math.max(4, Math.min(c.seqLen, Math.ceil((longest + room) / 8) * 8)));
  const arch = base.cfg.arch, lora = c.loraRank > 0;
  const encPrompt = (p: Prompt) => tok.encodePrompt(p);
  const encCompletion = (s: string) => [...tok.encode(s, { addSpecialTokens: false }), ...eos.slice(0, 1)];
  const len = (p: number[], x: number[]) => Math.min(T, p.length + x.length);
  const sched = (steps: number, warm = c.warmupRatio) => ({
    lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm,
    minLrRatio: c.minLrRatio, warmupSteps: Math.ceil(steps * warm), totalSteps: steps,
  });
  // Hugging Face's max_steps: set, it overrides the epochs (batchOf cycles through the data as often as needed)
  let epochs: number | undefined;
  const stepsFor = (perEpoch: number) => {
    epochs = c.steps ? undefined : epochsFor(c, perEpoch);
    return stepsOf(c, perEpoch);
  };

  // ---- the trained weights: an adapter on the shared frozen base, or a model of our own ----
  const owned = lora ? undefined : loadModel(ctx.gpu, { ...files, configFile: `${files.source}/config.json` }, { optimizer: true }).model;
  if (owned && ctx.adopted) await copyWeights(base, owned);
  const model = owned ?? base;
  const adapter = lora ? new LoraSet(base, loraConfig(c, arch), { optimizer: true }) : undefined;
  adapter?.init(c.seed);
  const cleanup: (() => void)[] = [() => adapter?.destroy(), () => owned?.params.destroy()];
  const weights = { weights: adapter ? adapter.params : model.params };
  // the files an export writes (package.ts): the adapter, or the whole model; a reward model's with its head and bias
  const exportPolicy = (steps: number, head?: ScoreHead, bias?: number) => packagePolicy({ model, lora: adapter }, {
    meta: exportMeta(stage, steps, files.source), source: files.source, tokenizerFiles: tokenizerFilesOf(files),
    score: head ? { head: head.params, bias: bias ?? 0, padTokenId: tok.padTokenId ?? pad } : undefined,
  });
  const common = {
    get epochs() { return epochs; },
    state: () => ({}), setState: () => {},
    finish: async () => ({}),
    exportFiles: (steps: number) => exportPolicy(steps),
    destroy: () => cleanup.forEach((f) => f()),
  };

  // ---- the online stages' prompts: encoded, as shown, and step s's batch (whole batches per pass) ----
  const promptsOf = () => {
    const given = toPrompts(records);
    if (!tok.hasChatTemplate && given.some((p) => promptText(p) === undefined)) throw new DataError('a system or multi-turn conversational prompt needs the model\'s chat template, and it has none');
    const prompts = given.map(encPrompt);
    // the prompt as the user wrote it (a conversation: its last user turn), for the rollouts shown during training and the reward functions (the ids carry the chat template)
    const shownPrompt = new Map(given.map((p, i) => [prompts[i]!.join(','), typeof p === 'string' ? p : p.at(-1)!.content] as const));
    const perEpoch = Math.floor(prompts.length / B);
    if (perEpoch < 1) throw new DataError(`${stage.toUpperCase()}: ${prompts.length} prompts, fewer than batchSize ${B}`);
    const batchAt = (s: number) => {
      const i = s % perEpoch;
      return epochOrder(prompts.length, c.seed, Math.floor(s / perEpoch)).slice(i * B, (i + 1) * B).map((k) => prompts[k]!);
    };
    return { prompts, shownPrompt, perEpoch, batchAt };
  };
  const textOf = (shownPrompt: Map<string, string>, ids: number[]) => shownPrompt.get(ids.join(',')) ?? tok.decode(ids);
  /** One piece of text per token of `ids` after `prompt`; a character split over tokens shows whole on the token that ends it. */
  const tokenTexts = (prompt: number[], ids: number[]) => {
    const sd = new StreamDecoder(tok, prompt);
    const tokens = ids.map((id) => sd.push(id));
    if (tokens.length) tokens[tokens.length - 1] += sd.flush();
    return tokens;
  };

  try {
    if (stage === 'sft') {
      const examples: Example[] = records.flatMap((r): Example[] => {
        if (r.kind === 'completion') return [{ prompt: encPrompt(r.prompt), completion: encCompletion(r.completion) }];
        if (r.kind === 'messages' && r.messages.at(-1)?.role === 'assistant' && tok.hasChatTemplate) {
          // formatted as every prompt is (Qwen3's thinking off), so SFT trains on the prompts generation sees
          return [{ prompt: tok.encodePrompt(r.messages.slice(0, -1)), completion: encCompletion(r.messages.at(-1)!.content) }];
        }
        return [];
      });
      if (!examples.length) throw new DataError('SFT needs {"prompt","completion"} (or chat "messages") records');
      fitT(Math.max(...examples.map((e) => e.prompt.length + e.completion.length)));
      const totalSteps = stepsFor(Math.ceil(examples.length / B));
      const t = await SftTrainer.create(model, { ...sched(totalSteps), batchSize: B, seqLen: T, accumulation: 1 }, adapter);
      cleanup.unshift(() => t.destroy());
      return {
        ...common, totalSteps, trainables: weights, policy: { model, lora: adapter },
        planUse: () => t.planUse,
        async step(s) {
          const batch = batchOf(examples.length, B, c.seed, s).map((k) => examples[k]!);
          t.step = s;
          const r = await t.trainStep([sftBatch(batch, B, T, pad)]);
          t.step = s + 1;
          return { metrics: { loss: r.loss, learning_rate: r.lr, grad_norm: r.gradNorm }, tokens: batch.reduce((n, e) => n + len(e.prompt, e.completion), 0), skipped: r.skipped };
        },
      };
    }

    const rankings: Ranking[] = [ // full ties (a pairwise tie, both bad) teach nothing: dropped
      ...rewardRankings(records).map((r) => ({ prompt: encPrompt(r.prompt), completions: r.completions.map(encCompletion), ranks: r.ranks })),
      ...records.flatMap((r) => (r.kind === 'preference' ? [{ prompt: encPrompt(r.prompt), completions: [encCompletion(r.chosen), encCompletion(r.rejected)] }] : [])),
    ];
    const rankingTokens = (rs: Ranking[]) => rs.reduce((n, r) => n + r.completions.reduce((m, x) => m + len(r.prompt, x), 0), 0);

    if (stage === 'rm') {
      if (!rankings.length) throw new DataError('the reward model needs rankings or {"prompt","chosen","rejected"} records');
      const head = new ScoreHead(model, { optimizer: true });
      head.init(c.seed);
      cleanup.push(() => head.destroy());
      const heldOut = rankings.length >= 10 ? rankings.filter((_, i) => i % 10 === 9) : []; // 10% for held-out accuracy
      const train = heldOut.length ? rankings.filter((_, i) => i % 10 !== 9) : rankings;
      const totalSteps = stepsFor(Math.ceil(train.length / B));
      const evalEvery = Math.max(1, Math.ceil(totalSteps / 10));
      const maxK = Math.max(...rankings.map((r) => r.completions.length));
      const demos = records.flatMap((r) => (r.kind === 'completion' ? [{ prompt: encPrompt(r.prompt), completion: encCompletion(r.completion) }] : []));
      fitT(Math.max(...rankings.flatMap((r) => r.completions.map((x) => r.prompt.length + x.length)), ...demos.map((d) => d.prompt.length + d.completion.length)), 32);
      const t = await RewardTrainer.create(model, head, { ...sched(totalSteps), promptsPerStep: B, maxK, seqLen: T, epochs: 1, padId: pad, headLrRatio: c.headLrRatio }, adapter);
      cleanup.unshift(() => t.destroy());
      return {
        ...common, totalSteps, trainables: { ...weights, head: head.params },
        planUse: () => t.planUse,
        async step(s) {
          const batch = batchOf(train.length, B, c.seed, s).map((k) => train[k]!);
          t.step = s;
          const r = await t.trainStep(batch);
          t.step = s + 1;
          const metrics: Record<string, number> = { loss: r.loss, accuracy: r.accuracy, learning_rate: r.lr, grad_norm: r.gradNorm };
          // held-out pair accuracy about ten times a run and at its end (TRL's eval_strategy="steps"), for the live chart
          if (heldOut.length && ((s + 1) % evalEvery === 0 || s + 1 === totalSteps)) {
            const ev = await t.evaluate(heldOut);
            Object.assign(metrics, { eval_loss: ev.loss, eval_accuracy: ev.accuracy });
          }
          return { metrics, tokens: rankingTokens(batch), skipped: r.skipped };
        },
        async finish() {
          const ev = heldOut.length ? await t.evaluate(heldOut) : undefined;
          const samples = rankings.flatMap((r) => r.completions.map((completion) => ({ prompt: r.prompt, completion })));
          const { bias, gain } = await t.normalize(samples, demos);
          return { ...(ev ? { eval_loss: ev.loss, eval_accuracy: ev.accuracy, eval_pairs: ev.pairs } : {}), reward_bias: bias, reward_gain: gain };
        },
        async evaluate(recs) {
          const rs = toRankings(recs).map((r) => ({ prompt: encPrompt(r.prompt), completions: r.completions.map(encCompletion), ranks: r.ranks }));
          const longest = Math.max(0, ...rs.flatMap((r) => r.completions.map((x) => r.prompt.length + x.length)));
          if (longest > T) throw new DataError(`a ranking to evaluate holds ${longest} tokens, more than the ${T} positions this reward model was built with`);
          return t.evaluate(rs);
        },
        async score(items) {
          const seqs = items.map((x) => ({ prompt: encPrompt(x.prompt), completion: encCompletion(x.completion) }));
          const longest = Math.max(0, ...seqs.map((x) => x.prompt.length + x.completion.length));
          if (longest > T) throw new DataError(`a completion to score holds ${longest} tokens, more than the ${T} positions this reward model was built with`);
          return t.score(seqs);
        },
        state: () => ({ bias: t.bias }),
        setState: (st) => void (t.bias = typeof st.bias === 'number' ? st.bias : 0),
        exportFiles: (steps) => exportPolicy(steps, head, t.bias),
      };
    }

    if (stage === 'dpo') {
      const pairs = pairsFromRankings(rankings);
      if (!pairs.length) throw new DataError('DPO needs rankings (without full ties) or {"prompt","chosen","rejected"} records');
      fitT(Math.max(...pairs.map((p) => p.prompt.length + Math.max(p.chosen.length, p.rejected.length))));
      const totalSteps = stepsFor(Math.ceil(pairs.length / B));
      // reference: the base (LoRA) or the untouched loaded model (full fine-tuning)
      const t = await DpoTrainer.create(model, { ...sched(totalSteps), beta: c.beta, pairsPerStep: B, seqLen: T, padId: pad }, { lora: adapter, reference: adapter ? undefined : base });
      cleanup.unshift(() => t.destroy());
      return {
        ...common, totalSteps, trainables: weights, policy: { model, lora: adapter },
        planUse: () => t.planUse,
        async step(s) {
          const batch = batchOf(pairs.length, B, c.seed, s).map((k) => pairs[k]!);
          t.step = s;
          const r = await t.trainStep(batch);
          t.step = s + 1;
          const { step: _s, skipped, lr, gradNorm, ...rest } = r;
          return { metrics: { ...rest, learning_rate: lr, grad_norm: gradNorm }, tokens: batch.reduce((n, p) => n + len(p.prompt, p.chosen) + len(p.prompt, p.rejected), 0), skipped };
        },
      };
    }

    // ---- GRPO / RLOO: the policy, its reward functions (and a reward model), and the reference only when
    // beta > 0: the base with the adapter off (LoRA) or the untouched loaded model (full fine-tuning)
    if (isGroup(stage)) {
      const { prompts, shownPrompt, perEpoch, batchAt } = promptsOf();
      fitT(Math.max(...prompts.map((p) => p.length + c.maxNewTokens)));
      const G = c.numSamples, given = ctx.rewardFunctions ?? [];
      const scorers: RewardScorer[] = c.reward_funcs.map((name) => {
        const f = given.find((g) => g.name === name);
        if (!f) throw new DataError(`no reward function named "${name}" was given (${given.map((g) => g.name).join(', ') || 'none'})`);
        return {
          name,
          score: (rs) => callReward(f, { prompts: rs.map((r) => textOf(shownPrompt, r.prompt)), completions: rs.map((r) => tok.decode(r.response, { skipSpecialTokens: true })), completion_ids: rs.map((r) => r.response) }),
        };
      });
      let rewardModel: ModelReward | undefined;
      if (c.rewardRunId) {
        const rw = ctx.reward;
        if (!rw) throw new Error(`${stage.toUpperCase()}: rewardRunId is set, and the reward-model run was not given`);
        const rm = rewardModelRole(ctx, rw);
        cleanup.push(() => rm.destroy());
        const m = await ModelReward.create('reward_model', rm.role, B * G, T, rm.bias, pad);
        cleanup.unshift(() => m.destroy());
        scorers.push(m);
        rewardModel = m;
      }
      const totalSteps = stepsFor(perEpoch);
      const t = await GrpoTrainer.create({ model, lora: adapter }, adapter ? base : ctx.base, scorers, {
        method: stage, lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm,
        warmupSteps: Math.ceil(totalSteps * c.num_iterations * c.warmupRatio), totalSteps: totalSteps * c.num_iterations, minLrRatio: c.minLrRatio,
        num_generations: G, promptsPerStep: B, max_completion_length: c.maxNewTokens, temperature: c.temperature,
        scale_rewards: c.scale_rewards, loss_type: c.loss_type, normalize_advantages: c.normalize_advantages,
        epsilon: c.epsilon, epsilon_high: c.epsilon_high || c.epsilon, beta: c.beta, num_iterations: c.num_iterations, early_stopping: c.early_stopping, target_kl: c.target_kl,
        mask_truncated_completions: c.mask_truncated_completions, reward_weights: c.reward_weights.length ? c.reward_weights : undefined,
        seqLen: T, padId: pad, eosIds: eos, seed: c.seed,
      });
      cleanup.unshift(() => t.destroy());
      return {
        ...common, totalSteps, trainables: weights, policy: { model, lora: adapter },
        planUse: () => totalUse([t, rewardModel]),
        async step(s, onPhase) {
          const batch = batchAt(s);
          t.step = s;
          const r = await t.trainStep(batch, onPhase);
          t.step = s + 1;
          return {
            metrics: r.metrics, skipped: r.skipped,
            tokens: Math.round(B * G * r.metrics['completions/mean_length']!) + batch.reduce((n, p) => n + p.length * G, 0),
            // the first rollouts token by token for the Inspect tab: KL contribution (log pi - log ref; 0 without
            // a reference), no value model, the sequence's advantage on every token
            samples: r.rows.slice(0, 4).map((x) => ({
              prompt: textOf(shownPrompt, x.prompt), response: tok.decode(x.completion, { skipSpecialTokens: true }), score: x.reward,
              tokens: tokenTexts(x.prompt, x.completion), kl: x.logp.map((l, i) => (x.ref ? l - x.ref[i]! : 0)), value: [], advantage: x.completion.map(() => x.advantage),
            })),
            completions: r.rows.map((x) => ({
              step: s + 1, prompt: textOf(shownPrompt, x.prompt), completion: tok.decode(x.completion, { skipSpecialTokens: true }),
              rewards: Object.fromEntries(scorers.map((f, k) => [f.name, x.rewards[k]!])), reward: x.reward, advantage: x.advantage,
            })),
          };
        },
      };
    }

    // ---- PPO: reference = the base; reward and value (initialised from the RM, as the paper does) from
    // the reward-model run. With LoRA the four roles share the base; full fine-tuning uses four models.
    const rw = ctx.reward;
    if (!rw) throw new Error('PPO needs a reward-model run');
    if ((rw.config.loraRank > 0) !== lora) throw new DataError(lora ? 'a LoRA policy needs a LoRA reward model (one shared base)' : 'a LoRA reward model needs a LoRA policy: give loraRank >= 1');
    const { prompts, shownPrompt, perEpoch, batchAt } = promptsOf();
    let rmRole, valueRole, valueTables: Record<string, ParamTable>;
    if (adapter) {
      const rmLora = new LoraSet(base, loraConfig(rw.config, arch)), rmHead = new ScoreHead(base);
      const value = new LoraSet(base, loraConfig(rw.config, arch), { optimizer: true }), valueHead = new ScoreHead(base, { optimizer: true });
      cleanup.push(() => rmLora.destroy(), () => rmHead.destroy(), () => value.destroy(), () => valueHead.destroy());
      uploadParams(rmLora.params, rw.checkpoint, 'weights');
      uploadParams(value.params, rw.checkpoint, 'weights');
      rmRole = { model: base, lora: rmLora, head: rmHead };
      valueRole = { model: base, lora: value, head: valueHead };
      valueTables = { value: value.params, valueHead: valueHead.params };
    } else {
      const rmModel = loadModel(ctx.gpu, files).model, valueModel = loadModel(ctx.gpu, files, { optimizer: true }).model;
      const rmHead = new ScoreHead(rmModel), valueHead = new ScoreHead(valueModel, { optimizer: true });
      cleanup.push(() => rmHead.destroy(), () => valueHead.destroy(), () => rmModel.params.destroy(), () => valueModel.params.destroy());
      uploadParams(rmModel.params, rw.checkpoint, 'weights');
      uploadParams(valueModel.params, rw.checkpoint, 'weights');
      rmRole = { model: rmModel, head: rmHead };
      valueRole = { model: valueModel, head: valueHead };
      valueTables = { value: valueModel.params, valueHead: valueHead.params };
    }
    uploadParams(rmRole.head.params, rw.checkpoint, 'head');
    uploadParams(valueRole.head.params, rw.checkpoint, 'head');
    // PPO-ptx: the demonstrations given with the prompts ({"prompt","completion"} lines with a completion)
    const ptx = records.flatMap((r): Example[] => (r.kind === 'completion' && r.completion ? [{ prompt: encPrompt(r.prompt), completion: encCompletion(r.completion) }] : []));
    fitT(Math.max(...prompts.map((p) => p.length + c.maxNewTokens), ...(c.ptx_coef > 0 ? ptx.map((e) => e.prompt.length + e.completion.length) : [])));
    const totalSteps = stepsFor(perEpoch);
    const t = await PpoTrainer.create(
      { policy: { model, lora: adapter }, reference: { model: base }, reward: rmRole, value: valueRole },
      {
        ...PPO_DEFAULTS, lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm,
        kl_coef: c.kl_coef, kl_target: c.kl_target, cliprange: c.cliprange, cliprange_value: c.cliprange_value, vf_coef: c.vf_coef,
        gamma: c.gamma, lam: c.lam, ppo_epochs: c.ppo_epochs, minibatches: c.minibatches, early_stopping: c.early_stopping, target_kl: c.target_kl, promptsPerStep: B, numSamples: c.numSamples,
        maxNewTokens: c.maxNewTokens, temperature: c.temperature, seqLen: T, padId: pad, eosIds: eos, seed: c.seed,
        ptx_coef: c.ptx_coef, ema_decay: c.ema_decay,
      },
    );
    cleanup.unshift(() => t.destroy());
    const rows = (B * c.numSamples) / c.minibatches;
    if (c.ptx_coef > 0) {
      if (!ptx.length) throw new DataError('ptx_coef > 0 needs {"prompt","completion"} records with completions beside the prompts');
      t.setPtxData(Array.from({ length: Math.ceil(ptx.length / rows) }, (_, i) => sftBatch(ptx.slice(i * rows, (i + 1) * rows), rows, T, pad)));
    }
    return {
      ...common, totalSteps, trainables: { ...weights, ...valueTables }, policy: { model, lora: adapter },
      planUse: () => t.planUse,
      async step(s, onPhase) {
        const batch = batchAt(s);
        t.step = s;
        const r = await t.trainStep(batch, onPhase);
        t.step = s + 1;
        const { step: _s, samples, skipped, ...metrics } = r;
        const rollouts = batch.length * c.numSamples;
        return {
          metrics, skipped, tokens: Math.round(rollouts * metrics['objective/response_length']) + batch.reduce((n, p) => n + p.length * c.numSamples, 0),
          samples: samples.map((x) => ({
            prompt: textOf(shownPrompt, x.prompt), response: tok.decode(x.response, { skipSpecialTokens: true }), score: x.score,
            tokens: tokenTexts(x.prompt, x.response), kl: x.kl, value: x.value, advantage: x.advantage,
          })),
        };
      },
      state: () => ({ kl_coef: t.kl.value }),
      setState: (st) => void (typeof st.kl_coef === 'number' && (t.kl.value = st.kl_coef)),
      // with an EMA, the final policy is the average (as the paper's), not the last iterate
      async finish(): Promise<Record<string, number>> {
        if (!t.emaWeights) return {};
        for (const [name, w] of t.emaWeights) weights.weights.upload(name, w);
        return { ema_decay: c.ema_decay };
      },
    };
  } catch (e) {
    cleanup.forEach((f) => f());
    throw e;
  }
}
