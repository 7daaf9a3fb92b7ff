// Direct Preference Optimization (Rafailov et al. 2023) straight from the user's rankings: every ranking
// gives its (better, worse) pairs, and
//   loss = -log sigmoid(beta * ((log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))))
// with log pi(y) the summed log-probability of the completion tokens given the prompt. The reference is
// the SFT model: the base without the adapter when training LoRA, else a frozen copy.
// A step runs the policy forward once for chosen and rejected rows, reads the per-token log-probs back,
// and turns dloss/dlog pi(y) into per-token cross-entropy weights (CE = -log p, so weight = -dloss/dlog p),
// so the fused cross-entropy kernel and the usual backward produce the DPO gradient.
import type { LoraSet } from '../model/lora.ts';
import { PlanSet, totalUse, type PlanUse } from '../model/plan-set.ts';
import type { Plan, Transformer } from '../model/transformer.ts';
import { AdamW, type AdamWConfig } from './adamw.ts';
import { layoutRows, rowLength, rowWeights, targetWeights } from './layout.ts';
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

const logSigmoid = (x: number) => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

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

  /** Summed log-probability of each row's completion under a plan (losses hold -log p per token). */
  private async rowLogps(plan: Plan, calls: Parameters<Plan['model']['gpu']['run']>[0]): Promise<number[]> {
    const gpu = this.policy.gpu;
    await gpu.check('dpo forward', () => gpu.run(calls, 'dpo'));
    const l = await gpu.read(plan.losses);
    const T = plan.T;
    return Array.from({ length: plan.B }, (_, r) => {
      let s = 0;
      for (let t = 0; t < T; t++) s -= l[r * T + t]!;
      return s;
    });
  }

  async trainStep(pairs: PreferencePair[]): Promise<DpoStep> {
    const gpu = this.policy.gpu;
    const { plan, refPlan, ids, targets, ones } = await this.layout(pairs);
    refPlan.setBatch(ids, targets, ones);
    const ref = await this.rowLogps(refPlan, [...refPlan.forward, ...refPlan.loss]);
    plan.setBatch(ids, targets, ones);
    this.lora?.setStep(this.step);
    const pi = await this.rowLogps(plan, [...plan.zeroGrads, ...plan.forward, ...plan.loss]);
    const { beta } = this.cfg,
      P = pairs.length,
      g: number[] = [];
    let loss = 0,
      rc = 0,
      rr = 0,
      acc = 0;
    for (let i = 0; i < P; i++) {
      const cw = beta * (pi[2 * i]! - ref[2 * i]!),
        cl = beta * (pi[2 * i + 1]! - ref[2 * i + 1]!);
      const z = cw - cl;
      loss -= logSigmoid(z) / P;
      rc += cw / P;
      rr += cl / P;
      acc += (z > 0 ? 1 : 0) / P;
      g.push((beta * sigmoid(-z)) / P); // -dloss/dlog pi(y_w) = +dloss/dlog pi(y_l)
    }
    // +g on the chosen row's targets, -g on the rejected one's
    gpu.write(
      plan.weights,
      rowWeights(targets, plan.T, (row) => (row % 2 ? -g[(row - 1) / 2]! : g[row / 2]!)),
    );
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
