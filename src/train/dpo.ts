// Direct Preference Optimization (Rafailov et al. 2023) straight from the user's rankings: every ranking
// gives its (better, worse) pairs, and by default (TRL's loss_type 'sigmoid')
//   loss = -log sigmoid(beta * ((log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))))
// with log pi(y) the summed log-probability of the completion tokens given the prompt; TRL's other pairwise
// losses (IPO, hinge, robust, ...), their weighted sums and LD-DPO's weighting of the longer completion's
// extra tokens are in dpo-math.ts. The reference is the SFT model: the base without the adapter when
// training LoRA, else a frozen copy.
// A step runs the policy forward once for chosen and rejected rows, reads the per-token log-probs back,
// and turns dloss/dlog pi(token) into per-token cross-entropy weights (CE = -log p, so weight = -dloss/dlog p),
// so the fused cross-entropy kernel and the usual backward produce the gradient.
import type { LoraSet } from '../model/lora.ts';
import { PlanSet, totalUse, type PlanUse } from '../model/plan-set.ts';
import type { Plan, Transformer } from '../model/transformer.ts';
import { AdamW, type AdamWConfig } from './adamw.ts';
import { ldWeighted, pairLoss, type DpoLossType } from './dpo-math.ts';
import { layoutRows, rowLength, targetWeights } from './layout.ts';
import { rankingPairs, type Ranking } from './reward.ts';
import { learningRate, type ScheduleConfig } from './schedule.ts';

export interface PreferencePair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
}

/** All (better, worse) pairs of each ranking; ties give none. */
export function pairsFromRankings(rankings: Ranking[]): PreferencePair[] {
  return rankings.flatMap((r) =>
    rankingPairs(r.completions.length, r.ranks).map(([w, l]) => ({ prompt: r.prompt, chosen: r.completions[w]!, rejected: r.completions[l]! })),
  );
}

export interface DpoConfig extends AdamWConfig, ScheduleConfig {
  beta: number; // 0.1, as in the DPO paper and TRL
  pairsPerStep: number;
  seqLen: number;
  padId: number;
  lossTypes?: DpoLossType[]; // TRL's loss_type: ['sigmoid'] when absent
  lossWeights?: number[]; // one per loss type; absent or [] = 1 each
  ldAlpha?: number; // LD-DPO's alpha: 1 (absent) = every token fully
  labelSmoothing?: number; // robust and exo_pair
}

export interface DpoStep {
  step: number;
  loss: number;
  'rewards/chosen': number;
  'rewards/rejected': number;
  'rewards/margins': number;
  'rewards/accuracies': number;
  lr: number;
  gradNorm: number;
  skipped: boolean;
}

export class DpoTrainer {
  step = 0;
  private constructor(
    readonly policy: Transformer,
    readonly lora: LoraSet | undefined,
    readonly cfg: DpoConfig,
    readonly plans: PlanSet,
    readonly refPlans: PlanSet,
    readonly opt: AdamW,
  ) {}

  /** `reference`: a frozen model for full fine-tuning; omitted with LoRA (the base is the reference). */
  static async create(policy: Transformer, cfg: DpoConfig, x: { lora?: LoraSet; reference?: Transformer }): Promise<DpoTrainer> {
    if (!x.lora && !x.reference) throw new Error('DPO needs a reference: a LoRA adapter (reference = base) or a frozen reference model');
    const B = 2 * cfg.pairsPerStep;
    const plans = await PlanSet.create(policy, B, cfg.seqLen, { training: true, lora: x.lora });
    const refPlans = await PlanSet.create(x.reference ?? policy, B, cfg.seqLen);
    const opt = await AdamW.create(policy.gpu, x.lora ? x.lora.params : policy.params, cfg);
    return new DpoTrainer(policy, x.lora, cfg, plans, refPlans, opt);
  }

  /** Rows: chosen then rejected of each pair; targets on completion tokens only; on the shortest plans that hold them. */
  private async layout(pairs: PreferencePair[]): Promise<{ plan: Plan; refPlan: Plan; ids: Int32Array; targets: Int32Array; ones: Float32Array }> {
    if (pairs.length > this.cfg.pairsPerStep) throw new Error(`${pairs.length} pairs for ${this.cfg.pairsPerStep} per step`);
    const seqs = pairs.flatMap((p) => [
      { prompt: p.prompt, completion: p.chosen },
      { prompt: p.prompt, completion: p.rejected },
    ]);
    const lengths = seqs.map((q) => rowLength(q, this.cfg.seqLen));
    const [plan, refPlan] = [await this.plans.fit(lengths), await this.refPlans.fit(lengths)];
    const { ids, targets } = layoutRows(seqs, plan.B, plan.T, this.cfg.padId);
    return { plan, refPlan, ids, targets, ones: targetWeights(targets) };
  }

  /** Each row's per-token log-probabilities of its completion's targets, in order (losses hold -log p per token). */
  private async rowLogps(plan: Plan, targets: Int32Array, calls: Parameters<Plan['model']['gpu']['run']>[0]): Promise<number[][]> {
    const gpu = this.policy.gpu;
    await gpu.check('dpo forward', () => gpu.run(calls, 'dpo'));
    const l = await gpu.read(plan.losses);
    const T = plan.T;
    return Array.from({ length: plan.B }, (_, r) => {
      const out: number[] = [];
      for (let t = 0; t < T; t++) if (targets[r * T + t]! >= 0) out.push(-l[r * T + t]!);
      return out;
    });
  }

  async trainStep(pairs: PreferencePair[]): Promise<DpoStep> {
    const gpu = this.policy.gpu;
    const { plan, refPlan, ids, targets, ones } = await this.layout(pairs);
    refPlan.setBatch(ids, targets, ones);
    const ref = await this.rowLogps(refPlan, targets, [...refPlan.forward, ...refPlan.loss]);
    plan.setBatch(ids, targets, ones);
    this.lora?.setStep(this.step);
    const pi = await this.rowLogps(plan, targets, [...plan.zeroGrads, ...plan.forward, ...plan.loss]);
    const { beta } = this.cfg,
      types = this.cfg.lossTypes ?? ['sigmoid'],
      weights = this.cfg.lossWeights?.length ? this.cfg.lossWeights : types.map(() => 1),
      alpha = this.cfg.ldAlpha ?? 1,
      e = this.cfg.labelSmoothing ?? 0,
      P = pairs.length;
    // per row: d(loss)/d(its log-ratio), the length its first tokens count fully for (LD-DPO), and the SFT term's weight per token
    const dRow = new Float64Array(2 * P),
      shared: number[] = [],
      sftWeight = new Float64Array(2 * P);
    let loss = 0,
      rc = 0,
      rr = 0,
      acc = 0;
    const chosenTokens = pairs.reduce((n, _, i) => n + pi[2 * i]!.length, 0);
    for (let i = 0; i < P; i++) {
      const [w, l] = [2 * i, 2 * i + 1];
      const n = Math.min(pi[w]!.length, pi[l]!.length);
      shared.push(n);
      const sum = (x: number[]) => ldWeighted(x, n, alpha); // alpha 1: the plain sum, to the bit (1 x is exact)
      const scores = { chosen: sum(pi[w]!) - sum(ref[w]!), rejected: sum(pi[l]!) - sum(ref[l]!), chosenTokens: pi[w]!.length, rejectedTokens: pi[l]!.length };
      const cw = beta * scores.chosen,
        cl = beta * scores.rejected;
      rc += cw / P;
      rr += cl / P;
      acc += (cw - cl > 0 ? 1 : 0) / P;
      types.forEach((type, k) => {
        if (type === 'sft') {
          // the chosen completions' mean negative log-likelihood per token, over the batch's chosen tokens (TRL's 'sft')
          loss -= (weights[k]! * pi[w]!.reduce((a, b) => a + b, 0)) / Math.max(1, chosenTokens);
          sftWeight[w] += weights[k]! / Math.max(1, chosenTokens);
          return;
        }
        const f = pairLoss(type, scores, beta, e);
        loss += (weights[k]! * f.loss) / P;
        dRow[w] += (f.dChosen * weights[k]!) / P;
        dRow[l] += (f.dRejected * weights[k]!) / P;
      });
    }
    // CE weight = -d(loss)/d(log p) per target: -dRow (times alpha past the shared length), plus the SFT term on chosen rows
    const tokenWeights = new Float32Array(targets.length);
    for (let r = 0; r < Math.min(2 * P, plan.B); r++) {
      let k = 0;
      for (let t = 0; t < plan.T; t++) {
        const j = r * plan.T + t;
        if (targets[j]! < 0) continue;
        tokenWeights[j] = -dRow[r]! * (k++ < shared[r >> 1]! ? 1 : alpha) + sftWeight[r]!;
      }
    }
    gpu.write(plan.weights, tokenWeights);
    const lr = learningRate(this.step + 1, this.cfg);
    this.opt.prepare(this.step + 1, lr);
    await gpu.check('dpo backward', () => gpu.run([...plan.lossFused, ...plan.backward, ...this.opt.calls], 'dpo'));
    const st = await this.opt.status();
    if (!st.skipped) this.step++;
    return {
      step: this.step,
      loss,
      'rewards/chosen': rc,
      'rewards/rejected': rr,
      'rewards/margins': rc - rr,
      'rewards/accuracies': acc,
      lr,
      gradNorm: st.gradNorm,
      skipped: st.skipped,
    };
  }

  /** Positions computed and tokens held so far (policy and reference). */
  get planUse(): PlanUse {
    return totalUse([this.plans, this.refPlans]);
  }

  destroy(): void {
    this.plans.destroy();
    this.refPlans.destroy();
    this.opt.destroy();
  }
}
