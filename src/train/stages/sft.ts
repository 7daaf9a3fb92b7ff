// Supervised fine-tuning's stage: {"prompt","completion"} records (or chat "messages" ending in the
// assistant's turn), one optimizer step of batchSize examples (sft.ts).
import { rowLength } from '../layout.ts';
import { SftTrainer, sftBatch, type Example } from '../sft.ts';
import type { StageRun } from '../stages.ts';
import { batchOf, DataError, stepper, type Setup } from './common.ts';

export async function sftStage(x: Setup): Promise<StageRun> {
  const { c, tok, B, pad, model, adapter } = x;
  const examples: Example[] = x.records.flatMap((r): Example[] => {
    if (r.kind === 'completion') return [{ prompt: x.encPrompt(r.prompt), completion: x.encCompletion(r.completion) }];
    if (r.kind === 'messages' && r.messages.at(-1)?.role === 'assistant' && tok.hasChatTemplate) {
      // formatted as every prompt is (Qwen3's thinking off), so SFT trains on the prompts generation sees
      return [{ prompt: tok.encodePrompt(r.messages.slice(0, -1)), completion: x.encCompletion(r.messages.at(-1)!.content) }];
    }
    return [];
  });
  if (!examples.length) throw new DataError('SFT needs {"prompt","completion"} (or chat "messages") records');
  const T = x.fitT(Math.max(...examples.map((e) => e.prompt.length + e.completion.length)));
  const totalSteps = x.stepsFor(Math.ceil(examples.length / B));
  const t = await SftTrainer.create(model, { ...x.sched(totalSteps), batchSize: B, seqLen: T, accumulation: 1 }, adapter);
  x.cleanup.unshift(() => t.destroy());
  return x.run({
    totalSteps,
    trainables: x.weights,
    policy: { model, lora: adapter },
    planUse: () => t.planUse,
    step: stepper(t, {
      batch: (s) => batchOf(examples.length, B, c.seed, s).map((k) => examples[k]!),
      train: (batch) => t.trainStep([sftBatch(batch, B, T, pad)]),
      out: (r, batch) => ({
        metrics: { loss: r.loss, learning_rate: r.lr, grad_norm: r.gradNorm },
        tokens: batch.reduce((n, e) => n + rowLength(e, T), 0),
        skipped: r.skipped,
      }),
    }),
  });
}
