// Reward model from K-way rankings, as InstructGPT trains it (Ouyang et al. 2022, section 3.5):
//  1. A ranking of K completions (K = 2..9, best first, ties allowed) gives all K(K-1)/2 pairs; tied
//     pairs are dropped.
//  2. All pairs of one prompt form ONE batch element: each completion is scored once (one forward per
//     completion), and the element's loss is the mean over its pairs of -log sigmoid(r_w - r_l).
//     (Shuffling pairs across the dataset instead makes the model overfit, the paper found.)
//  3. The scalar comes from the score head at each sequence's last token.
//  4. One epoch by default; held-out pair accuracy is reported.
//  5. After training, the scores are normalised (normalize): the head scaled so that the ranked samples
//     have standard deviation 1, and a bias so that the demonstrations score mean 0.
// One step = forward of every completion of a few prompts -> scores read back -> the pairwise loss and
// its gradient per score on the CPU (a few dozen numbers) -> backward from the score head -> AdamW.
import { rankingPairs } from '../io/datasets.ts';
import type { ScoreHead } from '../model/head.ts';
import type { LoraSet } from '../model/lora.ts';
import { PlanSet, totalUse, type PlanUse } from '../model/plan-set.ts';
import type { Plan, Transformer } from '../model/transformer.ts';
import { AdamW, type AdamWConfig } from './adamw.ts';
import { layoutRows, rowLength, type Sequence } from './layout.ts';
import { learningRate, type ScheduleConfig } from './schedule.ts';

export interface Ranking {
  prompt: number[];
  completions: number[][];
  /** rank of each completion, 0 = best; equal ranks are ties. Default: the order given (best first). */
  ranks?: number[];
}

export { rankingPairs }; // the data format's rule (src/io/datasets.ts), used by the trainers

const logSigmoid = (x: number) => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Mean over pairs of -log sigmoid(r_w - r_l), its gradient per score, and how many pairs are ordered right. */
export function pairwiseLoss(scores: number[], pairs: [number, number][]): { loss: number; dscores: number[]; correct: number } {
  const d = scores.map(() => 0);
  let loss = 0,
    correct = 0;
  for (const [w, l] of pairs) {
    const z = scores[w]! - scores[l]!;
    loss -= logSigmoid(z);
    const g = -sigmoid(-z) / pairs.length; // d(-log sigmoid z)/dz
    d[w]! += g;
    d[l]! -= g;
    if (z > 0) correct++;
  }
  return { loss: pairs.length ? loss / pairs.length : 0, dscores: d, correct };
}

export interface RewardConfig extends AdamWConfig, ScheduleConfig {
  promptsPerStep: number; // batch elements (rankings) per optimizer step
  maxK: number; // completions per ranking, at most 9
  seqLen: number; // prompt + completion tokens, truncated from the left of the completion's end
  epochs: number; // 1, as the paper (more overfits)
  padId: number;
  headLrRatio?: number; // the score head's learning rate over the trunk's (1)
}

export interface RewardStep {
  step: number;
  loss: number;
  accuracy: number;
  pairs: number;
  lr: number;
  gradNorm: number;
  skipped: boolean;
}

export class RewardTrainer {
  step = 0;
  bias = 0;
  private constructor(
    readonly model: Transformer,
    readonly head: ScoreHead,
    readonly lora: LoraSet | undefined,
    readonly cfg: RewardConfig,
    readonly plans: PlanSet,
    readonly opt: AdamW,
  ) {}

  static async create(model: Transformer, head: ScoreHead, cfg: RewardConfig, lora?: LoraSet): Promise<RewardTrainer> {
    if (cfg.maxK < 2 || cfg.maxK > 9) throw new Error(`rankings have 2 to 9 completions, maxK is ${cfg.maxK}`);
    const plans = await PlanSet.create(model, cfg.promptsPerStep * cfg.maxK, cfg.seqLen, { training: true, lora, score: head });
    const opt = await AdamW.create(model.gpu, [lora ? lora.params : model.params, { table: head.params, lrScale: cfg.headLrRatio ?? 1 }], cfg);
    return new RewardTrainer(model, head, lora, cfg, plans, opt);
  }

  /** Rows per batch: promptsPerStep x maxK completions. */
  get rows(): number {
    return this.plans.B;
  }

  /** Lays rankings out one completion per row, on the shortest plan that holds them; returns each row's last-token index (or -1 for padding rows). */
  private async layout(rankings: Ranking[]): Promise<{ plan: Plan; ids: Int32Array; last: number[] }> {
    const { maxK, seqLen, padId } = this.cfg;
    if (rankings.length > this.cfg.promptsPerStep) throw new Error(`${rankings.length} rankings for ${this.cfg.promptsPerStep} per step`);
    const last = new Array<number>(this.rows).fill(-1),
      seqs: Sequence[] = [],
      rows: number[] = [];
    rankings.forEach((r, p) => {
      const K = r.completions.length;
      if (K < 2 || K > maxK) throw new Error(`a ranking has ${K} completions; 2 to ${maxK} are allowed`);
      if (r.ranks && r.ranks.length !== K) throw new Error(`a ranking has ${K} completions but ${r.ranks.length} ranks`);
      r.completions.forEach((completion, k) => {
        seqs.push({ prompt: r.prompt, completion });
        rows.push(p * maxK + k);
      });
    });
    const plan = await this.plans.fit(seqs.map((q) => rowLength(q, seqLen)));
    const laid = layoutRows(seqs, this.rows, plan.T, padId, (i) => rows[i]!);
    laid.last.forEach((at, i) => (last[rows[i]!] = at));
    return { plan, ids: laid.ids, last };
  }

  private async forward(rankings: Ranking[]): Promise<{ plan: Plan; last: number[]; scores: Float32Array }> {
    const gpu = this.model.gpu;
    const { plan, ids, last } = await this.layout(rankings);
    plan.setBatch(ids);
    this.lora?.setStep(this.step);
    await gpu.check('reward forward', () => gpu.run([...plan.zeroGrads, ...plan.forward], 'rm'));
    return { plan, last, scores: await gpu.read(plan.scores!) };
  }

  /** One optimizer step over a few rankings (each one batch element of all its pairs). */
  async trainStep(rankings: Ranking[]): Promise<RewardStep> {
    const gpu = this.model.gpu;
    const { plan, last, scores } = await this.forward(rankings);
    const dscores = new Float32Array(plan.BT);
    let loss = 0,
      correct = 0,
      pairs = 0;
    rankings.forEach((r, p) => {
      const K = r.completions.length;
      const pr = rankingPairs(K, r.ranks);
      const rows = Array.from({ length: K }, (_, k) => last[p * this.cfg.maxK + k]!);
      const res = pairwiseLoss(
        rows.map((i) => scores[i]!),
        pr,
      );
      loss += res.loss / rankings.length;
      correct += res.correct;
      pairs += pr.length;
      res.dscores.forEach((g, k) => (dscores[rows[k]!] = g / rankings.length));
    });
    gpu.write(plan.dscores!, dscores);
    const lr = learningRate(this.step + 1, this.cfg);
    this.opt.prepare(this.step + 1, lr);
    await gpu.check('reward backward', () => gpu.run([...plan.backward, ...this.opt.calls], 'rm'));
    const st = await this.opt.status();
    if (!st.skipped) this.step++;
    return { step: this.step, loss, accuracy: pairs ? correct / pairs : 0, pairs, lr, gradNorm: st.gradNorm, skipped: st.skipped };
  }

  /** Reward of each (prompt + completion), bias included. */
  /** Scores with dropout off (eval mode), so held-out accuracy and the normalisation see the trained model, not a mask. */
  async score(seqs: { prompt: number[]; completion: number[] }[]): Promise<number[]> {
    this.lora?.setDropout(false);
    try {
      return await this.scoreRows(seqs);
    } finally {
      this.lora?.setDropout(true);
    }
  }

  private async scoreRows(seqs: { prompt: number[]; completion: number[] }[]): Promise<number[]> {
    const out: number[] = [];
    const per = this.rows;
    for (let i = 0; i < seqs.length; i += per) {
      const chunk = seqs.slice(i, i + per);
      // one row each, in order, on the shortest plan that holds the chunk
      const plan = await this.plans.fit(chunk.map((q) => rowLength(q, this.cfg.seqLen)));
      const { ids, last } = layoutRows(chunk, per, plan.T, this.cfg.padId);
      plan.setBatch(ids);
      await this.model.gpu.check('reward score', () => this.model.gpu.run(plan.forward, 'rm'));
      const scores = await this.model.gpu.read(plan.scores!);
      for (const i of last) out.push(scores[i]! + this.bias);
    }
    return out;
  }

  /** Held-out loss and pair accuracy (no weight update). All completions are scored in full batches. */
  async evaluate(rankings: Ranking[]): Promise<{ loss: number; accuracy: number; pairs: number }> {
    const all = await this.score(rankings.flatMap((r) => r.completions.map((completion) => ({ prompt: r.prompt, completion }))));
    let loss = 0,
      correct = 0,
      pairs = 0,
      o = 0;
    for (const r of rankings) {
      const s = all.slice(o, (o += r.completions.length));
      const pr = rankingPairs(r.completions.length, r.ranks);
      const res = pairwiseLoss(s, pr);
      loss += res.loss / rankings.length;
      correct += res.correct;
      pairs += pr.length;
    }
    return { loss, accuracy: pairs ? correct / pairs : 0, pairs };
  }

  /**
   * The normalisation before RL. The score head is scaled so that the scores of `samples` (the policy's
   * own samples: the completions the labeler ranked) have standard deviation 1, as Ziegler et al. (2019)
   * normalise theirs, so that a KL coefficient means the same whatever scale training left the scores on;
   * then a bias centres the demonstrations at 0, as InstructGPT does (the samples, when there are no
   * demonstrations). The head's scale is in its weight, so an exported model scores the same; running it
   * again changes nothing (gain 1).
   */
  async normalize(
    samples: { prompt: number[]; completion: number[] }[],
    demos: { prompt: number[]; completion: number[] }[],
  ): Promise<{ bias: number; gain: number }> {
    this.bias = 0;
    const s = await this.score(samples);
    const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
    const sd = Math.sqrt(s.reduce((a, x) => a + (x - mean) ** 2, 0) / Math.max(1, s.length - 1));
    const gain = s.length > 1 && sd > 1e-6 ? 1 / sd : 1;
    if (gain !== 1) {
      const w = await this.head.params.download('score.weight');
      this.head.params.upload(
        'score.weight',
        w.map((x) => x * gain),
      );
    }
    const ref = demos.length ? await this.score(demos) : s.map((x) => x * gain);
    this.bias = -ref.reduce((a, b) => a + b, 0) / Math.max(1, ref.length);
    return { bias: this.bias, gain };
  }

  /** Positions computed and tokens held so far. */
  get planUse(): PlanUse {
    return totalUse([this.plans]);
  }

  destroy(): void {
    this.plans.destroy();
    this.opt.destroy();
  }
}
