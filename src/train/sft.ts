// Supervised fine-tuning: next-token cross-entropy on completion tokens only (prompt and padding masked),
// AdamW with warmup + cosine decay, global-norm clipping and gradient accumulation.
//
// One optimizer step = `accumulation` micro-batches of [B, T]. Each micro-batch is its own submit
// (its ids are written between submits); the token weights are 1 / (completion tokens in the whole
// step), so the accumulated gradient is the gradient of the step's mean loss, whatever the split.
import type { LoraSet } from '../model/lora.ts';
import { PlanSet, totalUse, type PlanUse } from '../model/plan-set.ts';
import type { Plan, Transformer } from '../model/transformer.ts';
import { AdamW, type AdamWConfig } from './adamw.ts';
import { layoutRows, narrowRows, targetSpans, targetWeights } from './layout.ts';
import { learningRate, type ScheduleConfig } from './schedule.ts';

export interface Example {
  prompt: number[];
  completion: number[];
}

export interface Batch {
  ids: Int32Array; // [B*T]
  targets: Int32Array; // [B*T], -1 = no loss
  count: number; // tokens with a loss
}

/** Lays examples out one per row, right-padded; a target is the next token when that token is part of the completion. */
export function sftBatch(examples: Example[], B: number, T: number, padId: number): Batch {
  if (examples.length > B) throw new Error(`${examples.length} examples for ${B} rows`);
  const { ids, targets, count } = layoutRows(examples, B, T, padId);
  return { ids, targets, count };
}

/**
 * A batch laid out B x T (sftBatch) on the shortest plan of `plans` that holds its rows' targets, cut to
 * it, with `weight` on every target: SFT's micro-batches and PPO-ptx's.
 */
export async function fitBatch(plans: PlanSet, b: Batch, T: number, weight: number): Promise<Plan> {
  const B = plans.B;
  const plan = await plans.fit(targetSpans(b.targets, B, T));
  const targets = narrowRows(b.targets, B, T, plan.T);
  plan.setBatch(narrowRows(b.ids, B, T, plan.T), targets, targetWeights(targets, weight));
  return plan;
}

export interface SftConfig extends AdamWConfig, ScheduleConfig {
  batchSize: number; // rows per micro-batch
  seqLen: number;
  accumulation: number; // micro-batches per optimizer step
}

export interface StepResult {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  skipped: boolean; // a NaN/Inf gradient: the weights were left untouched
  tokens: number;
}

export class SftTrainer {
  step = 0;
  private constructor(
    readonly model: Transformer,
    readonly cfg: SftConfig,
    readonly plans: PlanSet,
    readonly opt: AdamW,
    readonly lora?: LoraSet,
  ) {}

  /** Full fine-tuning, or with `lora` only the adapter trains (the base stays frozen). */
  static async create(model: Transformer, cfg: SftConfig, lora?: LoraSet): Promise<SftTrainer> {
    const plans = await PlanSet.create(model, cfg.batchSize, cfg.seqLen, { training: true, lora });
    const opt = await AdamW.create(model.gpu, lora ? lora.params : model.params, cfg);
    return new SftTrainer(model, cfg, plans, opt, lora);
  }

  /** One optimizer step over `micro` batches (length = accumulation). */
  async trainStep(micro: Batch[]): Promise<StepResult> {
    const gpu = this.model.gpu;
    const total = micro.reduce((s, b) => s + b.count, 0);
    const lr = learningRate(this.step + 1, this.cfg);
    let loss = 0;
    this.lora?.setStep(this.step);
    for (const [i, b] of micro.entries()) {
      const plan = await fitBatch(this.plans, b, this.cfg.seqLen, 1 / Math.max(1, total));
      const calls = [...(i === 0 ? plan.zeroGrads : []), ...plan.forward, ...plan.lossFused, ...plan.backward];
      await gpu.check('sft step', () => gpu.run(calls, 'sft'));
      loss += await plan.readLoss();
    }
    this.opt.prepare(this.step + 1, lr);
    await gpu.check('adamw', () => gpu.run(this.opt.calls, 'adamw'));
    const st = await this.opt.status();
    if (!st.skipped) this.step++;
    return { step: this.step, loss, lr, gradNorm: st.gradNorm, skipped: st.skipped, tokens: total };
  }

  /** Mean loss on batches without touching the weights. */
  async evaluate(batches: Batch[]): Promise<number> {
    const gpu = this.model.gpu;
    let sum = 0,
      n = 0;
    for (const b of batches) {
      const plan = await fitBatch(this.plans, b, this.cfg.seqLen, 1);
      await gpu.check('eval', () => gpu.run([...plan.forward, ...plan.loss]));
      sum += await plan.readLoss();
      n += b.count;
    }
    return sum / Math.max(1, n);
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
