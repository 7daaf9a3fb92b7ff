// GRPO's and RLOO's stage (grpo.ts): the policy, its reward functions (and a reward model, when
// rewardRunId names one), and the reference only when beta > 0: the base with the adapter off (LoRA) or
// the untouched loaded model (full fine-tuning).
import { callReward } from '../../shared/rewards.ts';
import type { LossType } from '../../shared/schema.ts';
import { GrpoTrainer, ModelReward, type RewardScorer } from '../grpo.ts';
import { totalUse } from '../../model/plan-set.ts';
import type { StageRun } from '../stages.ts';
import { DataError, rewardModelRole, stepper, type Setup } from './common.ts';
import { onlinePrompts } from './online.ts';

export async function groupStage(x: Setup): Promise<StageRun> {
  const { ctx, c, tok, B, pad, eos, model, adapter, cleanup } = x;
  const stage = x.stage as 'grpo' | 'rloo';
  const { prompts, perEpoch, batchAt, textOf, tokenTexts } = onlinePrompts(x);
  const T = x.fitT(Math.max(...prompts.map((p) => p.length + c.maxNewTokens)));
  const G = c.numSamples,
    given = ctx.rewardFunctions ?? [];
  const scorers: RewardScorer[] = c.rewardFuncs.map((name) => {
    const f = given.find((g) => g.name === name);
    if (!f) throw new DataError(`no reward function named "${name}" was given (${given.map((g) => g.name).join(', ') || 'none'})`);
    return {
      name,
      score: (rs) =>
        callReward(f, {
          prompts: rs.map((r) => textOf(r.prompt)),
          completions: rs.map((r) => tok.decode(r.response, { skipSpecialTokens: true })),
          completion_ids: rs.map((r) => r.response),
        }),
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
  const totalSteps = x.stepsFor(perEpoch);
  const t = await GrpoTrainer.create({ model, lora: adapter }, ctx.base, scorers, {
    method: stage,
    lr: c.lr,
    beta1: c.beta1,
    beta2: c.beta2,
    eps: c.eps,
    weightDecay: c.weightDecay,
    maxGradNorm: c.maxGradNorm,
    warmupSteps: Math.ceil(totalSteps * c.numIterations * c.warmupRatio),
    totalSteps: totalSteps * c.numIterations,
    minLrRatio: c.minLrRatio,
    numGenerations: G,
    promptsPerStep: B,
    maxCompletionLength: c.maxNewTokens,
    temperature: c.temperature,
    scaleRewards: c.scaleRewards,
    lossType: c.lossType as LossType, // resolveConfig checked it is one of GRPO's
    normalizeAdvantages: c.normalizeAdvantages,
    epsilon: c.epsilon,
    epsilonHigh: c.epsilonHigh || c.epsilon,
    beta: c.beta,
    numIterations: c.numIterations,
    earlyStopping: c.earlyStopping,
    targetKl: c.targetKl,
    maskTruncatedCompletions: c.maskTruncatedCompletions,
    rewardWeights: c.rewardWeights.length ? c.rewardWeights : undefined,
    seqLen: T,
    padId: pad,
    eosIds: eos,
    seed: c.seed,
  });
  cleanup.unshift(() => t.destroy());
  return x.run({
    totalSteps,
    trainables: x.weights,
    policy: { model, lora: adapter },
    planUse: () => totalUse([t, rewardModel]),
    step: stepper(t, {
      batch: batchAt,
      train: (batch, onPhase) => t.trainStep(batch, onPhase),
      out: (r, batch, s) => ({
        metrics: r.metrics,
        skipped: r.skipped,
        tokens: Math.round(B * G * r.metrics['completions/mean_length']!) + batch.reduce((n, p) => n + p.length * G, 0),
        // the first rollouts token by token for the Inspect tab: KL contribution (log pi - log ref; 0 without
        // a reference), no value model, the sequence's advantage on every token
        samples: r.rows.slice(0, 4).map((y) => ({
          prompt: textOf(y.prompt),
          response: tok.decode(y.completion, { skipSpecialTokens: true }),
          score: y.reward,
          tokens: tokenTexts(y.prompt, y.completion),
          kl: y.logp.map((l, i) => (y.ref ? l - y.ref[i]! : 0)),
          value: [],
          advantage: y.completion.map(() => y.advantage),
        })),
        completions: r.rows.map((y) => ({
          step: s + 1,
          prompt: textOf(y.prompt),
          completion: tok.decode(y.completion, { skipSpecialTokens: true }),
          rewards: Object.fromEntries(scorers.map((f, k) => [f.name, y.rewards[k]!])),
          reward: y.reward,
          advantage: y.advantage,
        })),
      }),
    }),
  });
}
