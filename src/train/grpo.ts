// GRPO (Shao et al. 2024, DeepSeekMath) and RLOO (Ahmadian et al. 2024) with TRL's semantics: G samples
// of each prompt, rewards from one or more reward functions (rules written in JavaScript, or a reward
// model), a baseline from the other samples of the same prompt instead of a value model, and a clipped
// surrogate. With LoRA the whole stage is one frozen base and one adapter: the reference (only when
// beta > 0) is the base with the adapter switched off; under full fine-tuning, an untouched copy.
//
// One step (TRL's generation batch with steps_per_generation 1):
//  1. rollouts: G samples per prompt with the KV cache (temperature, max_completion_length, EOS);
//  2. rewards: every reward function scores every completion (null = does not apply), summed with
//     reward_weights;
//  3. (beta > 0) log p of each completion token under the reference;
//  4. num_iterations updates: a forward of the policy gives log p (the first is the "old" policy, so
//     on-policy the ratio is 1 and no extra pass is needed), the loss's gradient with respect to each
//     token's log p goes to the GPU as cross-entropy weights (CE = -log p), one backward, AdamW.
// The math (advantages, loss_type, clipping, k3) is in grpo-math.ts and tested there.
import type { Call } from '../gpu/runtime.ts';
import type { ScoreHead } from '../model/head.ts';
import type { LoraSet } from '../model/lora.ts';
import { PlanSet, totalUse, type PlanUse } from '../model/plan-set.ts';
import type { Plan, Transformer } from '../model/transformer.ts';
import { AdamW, ADAMW_DEFAULTS, type AdamWConfig } from './adamw.ts';
import { Generator } from './generate.ts';
import { layoutRows, rowLength, type Rows } from './layout.ts';
import {
  combineRewards,
  grpoAdvantages,
  grpoLoss,
  nanMean,
  nanStd,
  rlooAdvantages,
  rlooLoss,
  rlooRewards,
  type LossType,
  type PgLoss,
  type PgRow,
  type ScaleRewards,
} from './grpo-math.ts';
import { checkScores } from '../shared/rewards.ts';
import { fitRollouts, rolloutLogps, sampleRollouts, type Rollout, type StepPhase } from './rollouts.ts';
import { learningRate, type ScheduleConfig } from './schedule.ts';

export type GroupMethod = 'grpo' | 'rloo';

export interface GrpoConfig extends AdamWConfig, ScheduleConfig {
  method: GroupMethod;
  numGenerations: number; // G
  promptsPerStep: number;
  maxCompletionLength: number;
  temperature: number;
  scaleRewards: ScaleRewards; // GRPO
  lossType: LossType; // GRPO
  normalizeAdvantages: boolean; // RLOO
  epsilon: number;
  epsilonHigh: number;
  beta: number; // GRPO: k3 KL term in the loss; RLOO: sequence KL folded into the reward
  numIterations: number;
  maskTruncatedCompletions: boolean;
  earlyStopping?: boolean; // TRL's guard: the rest of a step's updates are skipped once approx KL > 1.5 x target_kl
  targetKl?: number;
  rewardWeights?: number[];
  seqLen: number; // prompt + completion positions of the plans
  padId: number;
  eosIds: number[];
  seed: number;
}

/** What a caller of GrpoTrainer gives each time: the method, the batch's shape, the tokens and the schedule's length. */
type GrpoShape = 'method' | 'numGenerations' | 'promptsPerStep' | 'maxCompletionLength' | 'seqLen' | 'padId' | 'eosIds' | 'seed' | 'totalSteps';

/**
 * GrpoTrainer's own defaults, for callers that build the trainer directly (tests, benchmarks), as PPO_DEFAULTS
 * are PpoTrainer's: TRL's GRPOConfig defaults for the method (temperature 1, scale_rewards 'group', loss_type
 * 'dapo', epsilon 0.2 both ways, beta 0, one iteration per batch, truncated completions kept), AdamW's, and a
 * constant learning rate. A run's values are the schema's: the GRPO and RLOO stages pass a whole resolved config.
 */
export const GRPO_DEFAULTS: Omit<GrpoConfig, GrpoShape> = {
  ...ADAMW_DEFAULTS,
  warmupSteps: 0,
  minLrRatio: 1,
  temperature: 1,
  scaleRewards: 'group',
  lossType: 'dapo',
  normalizeAdvantages: false,
  epsilon: 0.2,
  epsilonHigh: 0.2,
  beta: 0,
  numIterations: 1,
  maskTruncatedCompletions: false,
};

export type { Rollout };

/** A reward function as the trainer calls it: one score (or null: does not apply) per rollout, in order. */
export interface RewardScorer {
  name: string;
  score(rs: Rollout[]): Promise<(number | null)[]>;
}

export interface GrpoRow {
  prompt: number[];
  completion: number[];
  rewards: (number | null)[];
  reward: number;
  advantage: number;
  /** log p of each completion token under the policy that sampled it, and under the reference (beta > 0) */
  logp: number[];
  ref?: number[];
}

export interface GrpoStep {
  step: number;
  /** TRL's metric names. */
  metrics: Record<string, number>;
  skipped: boolean;
  /** Every rollout of the step with each reward function's score and its advantage (TRL's completions table). */
  rows: GrpoRow[];
}

/** A reward model (base + adapter + score head) as a reward function: its score at the completion's last token, plus its bias. */
export class ModelReward implements RewardScorer {
  private constructor(
    readonly name: string,
    private plans: PlanSet,
    private bias: number,
    private padId: number,
  ) {}

  static async create(
    name: string,
    role: { model: Transformer; lora?: LoraSet; head: ScoreHead },
    rows: number,
    T: number,
    bias: number,
    padId: number,
  ): Promise<ModelReward> {
    return new ModelReward(name, await PlanSet.create(role.model, rows, T, { lora: role.lora, score: role.head }), bias, padId);
  }

  async score(rs: Rollout[]): Promise<number[]> {
    const gpu = this.plans.full.model.gpu,
      out: number[] = [],
      B = this.plans.B;
    for (let i = 0; i < rs.length; i += B) {
      const seqs = rs.slice(i, i + B).map((r) => ({ prompt: r.prompt, completion: r.response }));
      const plan = await this.plans.fit(seqs.map((q) => rowLength(q, this.plans.maxT)));
      const { ids, last } = layoutRows(seqs, B, plan.T, this.padId);
      plan.setBatch(ids);
      await gpu.check('reward model score', () => gpu.run(plan.forward, 'grpo'));
      const s = await gpu.read(plan.scores!);
      for (const at of last) out.push(s[at]! + this.bias);
    }
    return out;
  }

  get planUse(): PlanUse {
    return totalUse([this.plans]);
  }

  destroy(): void {
    this.plans.destroy();
  }
}

/** Every score of every reward function, checked: one finite number or null per rollout. */
async function scoreAll(fns: RewardScorer[], rs: Rollout[]): Promise<(number | null)[][]> {
  const out: (number | null)[][] = [];
  for (const f of fns) out.push(checkScores(await f.score(rs), rs.length, `reward function "${f.name}"`));
  return out;
}

export class GrpoTrainer {
  step = 0;
  private gen: Generator;

  private constructor(
    readonly policy: { model: Transformer; lora?: LoraSet },
    readonly cfg: GrpoConfig,
    readonly rewards: RewardScorer[],
    private plans: PlanSet,
    private ref: PlanSet | undefined,
    private opt: AdamW,
  ) {
    this.gen = new Generator(policy.model, policy.lora);
  }

  /** `reference` is needed when beta > 0: the base without the adapter (LoRA) or an untouched copy (full fine-tuning). */
  static async create(
    policy: { model: Transformer; lora?: LoraSet },
    reference: Transformer | undefined,
    rewards: RewardScorer[],
    cfg: GrpoConfig,
  ): Promise<GrpoTrainer> {
    if (!rewards.length) throw new Error(`${cfg.method.toUpperCase()} needs at least one reward function`);
    if (cfg.rewardWeights && cfg.rewardWeights.length !== rewards.length)
      throw new Error(`reward_weights has ${cfg.rewardWeights.length} entries for ${rewards.length} reward functions`);
    if (cfg.method === 'rloo' && cfg.numGenerations < 2) throw new Error('RLOO needs num_generations >= 2 (the baseline is the other samples of the prompt)');
    if (cfg.beta > 0 && !reference) throw new Error('beta > 0 needs a reference model');
    const B = cfg.promptsPerStep * cfg.numGenerations,
      T = cfg.seqLen;
    const plans = await PlanSet.create(policy.model, B, T, { training: true, lora: policy.lora });
    const ref = cfg.beta > 0 ? await PlanSet.create(reference!, B, T) : undefined;
    const opt = await AdamW.create(policy.model.gpu, policy.lora ? policy.lora.params : policy.model.params, cfg);
    return new GrpoTrainer(policy, cfg, rewards, plans, ref, opt);
  }

  /** The shortest plan of `set` that holds the rollouts, and them laid out on it one per row (fitRollouts). */
  private layout(set: PlanSet, rs: Rollout[]): ReturnType<typeof fitRollouts> {
    return fitRollouts(set, rs, this.cfg.padId);
  }

  private logps(plan: Plan, laid: Pick<Rows, 'read'>, calls: Call[]): Promise<number[][]> {
    return rolloutLogps(plan, laid, calls, this.cfg.method);
  }

  /** Optimizer updates so far (num_iterations per step): AdamW's bias correction and the schedule count these. */
  private updates(it: number): number {
    return this.step * this.cfg.numIterations + it + 1;
  }

  /** One GRPO / RLOO step; `onPhase` hears where it is (sampling, scoring, updating) as it goes. */
  async trainStep(prompts: number[][], onPhase?: (p: StepPhase) => void): Promise<GrpoStep> {
    const c = this.cfg,
      G = c.numGenerations,
      B = c.promptsPerStep * G,
      method = c.method;
    if (prompts.length !== c.promptsPerStep) throw new Error(`a ${method.toUpperCase()} step takes ${c.promptsPerStep} prompts, got ${prompts.length}`);
    // ---- 1. rollouts ----
    const rs = await sampleRollouts(this.gen, prompts, this.step, { ...c, numSamples: G, maxNewTokens: c.maxCompletionLength }, onPhase);
    // ---- 2. rewards ----
    onPhase?.({ phase: 'scoring', done: 0, total: 1 });
    const perFn = await scoreAll(this.rewards, rs);
    const rewards = combineRewards(perFn, c.rewardWeights);
    // ---- 3. the reference's log-probs ----
    let refLogp: number[][] | undefined;
    if (this.ref) {
      const { plan: ref, ...l } = await this.layout(this.ref, rs);
      ref.setBatch(l.ids, l.targets, l.ones);
      refLogp = await this.logps(ref, l, [...ref.forward, ...ref.loss]);
    }
    // ---- 4. updates ----
    const gpu = this.plans.full.model.gpu;
    const truncated = rs.map((r) => c.maskTruncatedCompletions && r.finish === 'length');
    let old: number[][] = [],
      adv: number[] = [],
      seqKl: number[] = [],
      zeroStd = 0,
      groupStd: number[] = [];
    let loss = 0,
      low = 0,
      high = 0,
      region = 0,
      kl = 0,
      gradNorm = 0,
      lr = 0,
      skipped = false,
      approxKl = 0,
      earlyStop = 0;
    for (let it = 0; it < c.numIterations; it++) {
      onPhase?.({ phase: 'updating', done: it, total: c.numIterations });
      this.policy.lora?.setStep(this.updates(it));
      const res = await this.lossPass(rs, (logp) => {
        if (it === 0) {
          old = logp; // the policy that sampled: on-policy, the ratio of the first update is 1
          if (method === 'grpo') {
            const a = grpoAdvantages(rewards, G, c.scaleRewards);
            adv = a.advantages;
            zeroStd = a.fracZeroStd;
            groupStd = a.std;
          } else {
            const r = rlooRewards(rewards, old, refLogp, c.beta);
            seqKl = r.kl;
            adv = rlooAdvantages(r.rewards, G, c.normalizeAdvantages);
            ({ fracZeroStd: zeroStd, std: groupStd } = grpoAdvantages(rewards, G, 'none'));
          }
        }
        approxKl = meanApproxKl(logp, old, truncated);
        return rs.map((_, i) =>
          truncated[i] ? { logp: [], old: [], ref: [], advantage: 0 } : { logp: logp[i]!, old: old[i]!, ref: refLogp?.[i], advantage: adv[i]! },
        );
      });
      // TRL's early stopping: the policy has moved too far from the one that sampled: this update and the rest are skipped
      if (c.earlyStopping && approxKl > 1.5 * (c.targetKl ?? 1)) {
        earlyStop = 1;
        break;
      }
      lr = learningRate(this.updates(it), c);
      this.opt.prepare(this.updates(it), lr);
      await gpu.check(`${method} update`, () => gpu.run(this.opt.calls, method));
      const st = await this.opt.status();
      skipped ||= st.skipped;
      gradNorm += st.gradNorm / c.numIterations;
      loss += res.loss / c.numIterations;
      low += res.clipLow / c.numIterations;
      high += res.clipHigh / c.numIterations;
      region += res.clipRegion / c.numIterations;
      if (it === 0) kl = res.kl;
    }
    if (!skipped) this.step++;
    // ---- metrics (TRL's names) ----
    const lens = rs.map((r) => r.response.length),
      tokens = lens.reduce((a, b) => a + b, 0);
    if (method === 'rloo') kl = refLogp ? seqKl.reduce((a, b) => a + b, 0) / Math.max(1, tokens) : 0;
    const metrics: Record<string, number> = {
      early_stop: earlyStop,
      loss,
      learning_rate: lr,
      grad_norm: gradNorm,
      reward: nanMean(rewards),
      reward_std: nanMean(groupStd),
      frac_reward_zero_std: zeroStd,
      ...Object.fromEntries(
        this.rewards.flatMap((f, k) => {
          const s = perFn[k]!.map((x) => (x === null ? NaN : x));
          return [
            [`rewards/${f.name}/mean`, nanMean(s)],
            [`rewards/${f.name}/std`, nanStd(s)],
          ];
        }),
      ),
      ...(c.beta > 0 ? { kl } : {}),
      entropy: rs.reduce((s, r) => s + r.entropy.reduce((a, b) => a + b, 0), 0) / Math.max(1, tokens),
      'clip_ratio/low_mean': low,
      'clip_ratio/high_mean': high,
      'clip_ratio/region_mean': region,
      'completions/mean_length': tokens / B,
      'completions/min_length': Math.min(...lens),
      'completions/max_length': Math.max(...lens),
      'completions/clipped_ratio': rs.filter((r) => r.finish === 'length').length / B,
    };
    return {
      // a mean over no values (a reward function that applied to none of the batch) is left out rather than NaN
      step: this.step,
      metrics: Object.fromEntries(Object.entries(metrics).filter(([, v]) => Number.isFinite(v))),
      skipped,
      rows: rs.map((r, i) => ({
        prompt: r.prompt,
        completion: r.response,
        rewards: perFn.map((f) => f[i]!),
        reward: rewards[i]!,
        advantage: adv[i]!,
        logp: old[i]!,
        ...(refLogp ? { ref: refLogp[i]! } : {}),
      })),
    };
  }

  /**
   * One forward and backward of the policy on `rs`: log p of every completion token, the loss of the rows
   * `rowsOf` makes of them (GRPO's or RLOO's), and its gradient left in the trainable weights' grads
   * (zeroed first); d loss / d log p reaches the GPU as cross-entropy weights (CE = -log p). No update.
   */
  async lossPass(rs: Rollout[], rowsOf: (logp: number[][]) => PgRow[]): Promise<PgLoss> {
    const c = this.cfg,
      { plan: pp, ...l } = await this.layout(this.plans, rs),
      gpu = pp.model.gpu;
    pp.setBatch(l.ids, l.targets, l.ones);
    const rows = rowsOf(await this.logps(pp, l, [...pp.zeroGrads, ...pp.forward, ...pp.loss]));
    const res =
      c.method === 'grpo'
        ? grpoLoss(rows, {
            lossType: c.lossType,
            epsilon: c.epsilon,
            epsilonHigh: c.epsilonHigh,
            beta: c.beta,
            maxCompletionLength: c.maxCompletionLength,
          })
        : rlooLoss(rows, c);
    gpu.write(pp.weights, l.place(res.dlogp.map((row) => row.map((d) => -d)))); // a masked (truncated) row's are none: weight 0
    await gpu.check(`${c.method} backward`, () => gpu.run([...pp.lossFused, ...pp.backward], c.method));
    return res;
  }

  /** Positions computed and tokens held so far (policy and reference; a reward model's are its own). */
  get planUse(): PlanUse {
    return totalUse([this.plans, this.ref]);
  }

  destroy(): void {
    this.gen.destroy();
    this.plans.destroy();
    this.ref?.destroy();
    this.opt.destroy();
  }
}

/** PPO's approx KL of the policy now to the one that sampled, 0.5 (log p - log p_old)^2 averaged over the tokens in the loss. */
function meanApproxKl(logp: number[][], old: number[][], skip: boolean[]): number {
  let sum = 0,
    n = 0;
  logp.forEach((row, i) => {
    if (skip[i]) return;
    row.forEach((x, t) => {
      const d = x - old[i]![t]!;
      sum += 0.5 * d * d;
      n++;
    });
  });
  return n ? sum / n : 0;
}
