// DPO's stage: every (better, worse) pair of the rankings and {"prompt","chosen","rejected"} records,
// batchSize pairs a step (dpo.ts). The reference is the base under the adapter (LoRA) or the untouched
// loaded model (full fine-tuning).
import { dpoLossTypes } from '../dpo-math.ts';
import { DpoTrainer, pairsFromRankings } from '../dpo.ts';
import { rowLength } from '../layout.ts';
import type { StageRun } from '../stages.ts';
import { batchOf, DataError, rankingsOf, stepper, type Setup } from './common.ts';

export async function dpoStage(x: Setup): Promise<StageRun> {
  const { c, B, pad, model, adapter } = x;
  const pairs = pairsFromRankings(rankingsOf(x));
  if (!pairs.length) throw new DataError('DPO needs rankings (without full ties) or {"prompt","chosen","rejected"} records');
  const T = x.fitT(Math.max(...pairs.map((p) => p.prompt.length + Math.max(p.chosen.length, p.rejected.length))));
  const totalSteps = x.stepsFor(Math.ceil(pairs.length / B));
  const t = await DpoTrainer.create(
    model,
    {
      ...x.sched(totalSteps),
      beta: c.beta,
      pairsPerStep: B,
      seqLen: T,
      padId: pad,
      lossTypes: dpoLossTypes(c.lossType),
      lossWeights: c.lossWeights,
      ldAlpha: c.ldAlpha,
      labelSmoothing: c.labelSmoothing,
    },
    { lora: adapter, reference: adapter ? undefined : x.ctx.base },
  );
  x.cleanup.unshift(() => t.destroy());
  return x.run({
    totalSteps,
    trainables: x.weights,
    policy: { model, lora: adapter },
    planUse: () => t.planUse,
    step: stepper(t, {
      batch: (s) => batchOf(pairs.length, B, c.seed, s).map((k) => pairs[k]!),
      train: (batch) => t.trainStep(batch),
      out({ step: _s, skipped, lr, gradNorm, ...rest }, batch) {
        const tokens = batch.reduce(
          (n, p) => n + rowLength({ prompt: p.prompt, completion: p.chosen }, T) + rowLength({ prompt: p.prompt, completion: p.rejected }, T),
          0,
        );
        return { metrics: { ...rest, learning_rate: lr, grad_norm: gradNorm }, tokens, skipped };
      },
    }),
  });
}
