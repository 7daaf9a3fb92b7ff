// The reward model's stage: rankings and {"prompt","chosen","rejected"} records, 10% of them held out for
// pair accuracy (about ten times a run and at its end), and after the last step the normalisation
// (reward.ts); the stage also scores and evaluates on request (the Rank tab, the experiment).
import { toRankings, type Record as DataRecord } from '../../io/datasets.ts';
import { ScoreHead } from '../../model/head.ts';
import { rowLength } from '../layout.ts';
import { RewardTrainer, type Ranking } from '../reward.ts';
import type { StageRun } from '../stages.ts';
import { batchOf, DataError, rankingsOf, stepper, type Setup } from './common.ts';

export async function rmStage(x: Setup): Promise<StageRun> {
  const { c, B, pad, model, adapter } = x;
  const rankings = rankingsOf(x);
  if (!rankings.length) throw new DataError('the reward model needs rankings or {"prompt","chosen","rejected"} records');
  const head = new ScoreHead(model, { optimizer: true });
  head.init(c.seed);
  x.cleanup.push(() => head.destroy());
  const heldOut = rankings.length >= 10 ? rankings.filter((_, i) => i % 10 === 9) : []; // 10% for held-out accuracy
  const train = heldOut.length ? rankings.filter((_, i) => i % 10 !== 9) : rankings;
  const totalSteps = x.stepsFor(Math.ceil(train.length / B));
  const evalEvery = Math.max(1, Math.ceil(totalSteps / 10));
  const maxK = Math.max(...rankings.map((r) => r.completions.length));
  const demos = x.records.flatMap((r) => (r.kind === 'completion' ? [{ prompt: x.encPrompt(r.prompt), completion: x.encCompletion(r.completion) }] : []));
  // `evaluate` and `score` take rankings it has not seen: 32 positions of room, and longer ones are refused
  const T = x.fitT(
    Math.max(...rankings.flatMap((r) => r.completions.map((y) => r.prompt.length + y.length)), ...demos.map((d) => d.prompt.length + d.completion.length)),
    32,
  );
  const t = await RewardTrainer.create(
    model,
    head,
    { ...x.sched(totalSteps), promptsPerStep: B, maxK, seqLen: T, epochs: 1, padId: pad, headLrRatio: c.headLrRatio },
    adapter,
  );
  x.cleanup.unshift(() => t.destroy());
  const rankingTokens = (rs: Ranking[]) => rs.reduce((n, r) => n + r.completions.reduce((m, y) => m + rowLength({ prompt: r.prompt, completion: y }, T), 0), 0);
  const fits = (what: string, seqs: { prompt: number[]; completion: number[] }[]) => {
    const longest = Math.max(0, ...seqs.map((y) => y.prompt.length + y.completion.length));
    if (longest > T) throw new DataError(`${what} holds ${longest} tokens, more than the ${T} positions this reward model was built with`);
  };
  return x.run({
    totalSteps,
    trainables: { ...x.weights, head: head.params },
    planUse: () => t.planUse,
    step: stepper(t, {
      batch: (s) => batchOf(train.length, B, c.seed, s).map((k) => train[k]!),
      train: (batch) => t.trainStep(batch),
      async out(r, batch, s) {
        const metrics: Record<string, number> = { loss: r.loss, accuracy: r.accuracy, learning_rate: r.lr, grad_norm: r.gradNorm };
        // held-out pair accuracy about ten times a run and at its end (TRL's eval_strategy="steps"), for the live chart
        if (heldOut.length && ((s + 1) % evalEvery === 0 || s + 1 === totalSteps)) {
          const ev = await t.evaluate(heldOut);
          Object.assign(metrics, { eval_loss: ev.loss, eval_accuracy: ev.accuracy });
        }
        return { metrics, tokens: rankingTokens(batch), skipped: r.skipped };
      },
    }),
    async finish() {
      const ev = heldOut.length ? await t.evaluate(heldOut) : undefined;
      const samples = rankings.flatMap((r) => r.completions.map((completion) => ({ prompt: r.prompt, completion })));
      const { bias, gain } = await t.normalize(samples, demos);
      return { ...(ev ? { eval_loss: ev.loss, eval_accuracy: ev.accuracy, eval_pairs: ev.pairs } : {}), reward_bias: bias, reward_gain: gain };
    },
    async evaluate(recs: DataRecord[]) {
      const rs = toRankings(recs).map((r) => ({ prompt: x.encPrompt(r.prompt), completions: r.completions.map(x.encCompletion), ranks: r.ranks }));
      fits(
        'a ranking to evaluate',
        rs.flatMap((r) => r.completions.map((completion) => ({ prompt: r.prompt, completion }))),
      );
      return t.evaluate(rs);
    },
    async score(items) {
      const seqs = items.map((y) => ({ prompt: x.encPrompt(y.prompt), completion: x.encCompletion(y.completion) }));
      fits('a completion to score', seqs);
      return t.score(seqs);
    },
    state: () => ({ bias: t.bias }),
    setState: (st) => void (t.bias = typeof st.bias === 'number' ? st.bias : 0),
    exportFiles: (steps) => x.exportPolicy(steps, head, t.bias),
  });
}
