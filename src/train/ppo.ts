// PPO against a reward model with a per-token KL penalty to the frozen SFT model (InstructGPT, section
// 3.5; Ziegler et al. 2019), with the four roles as separate (model, adapter, head) triples so that with
// LoRA they share one frozen base: reference = base, policy = base + policy adapter, reward = base + RM
// adapter + score head, value = base + value adapter + score head (initialised from the RM).
//
// How this departs from the textbook, for small models in a browser:
//  1. Rollouts are K samples per prompt decoded side by side with the KV cache; responses end at EOS or
//     at max_new_tokens.
//  2. Rewards: the RM score at the last response token, minus kl_coef * (log pi - log ref) per token;
//     kl_coef fixed or adapted to a KL target (Ziegler et al.).
//  3. GAE over response tokens (gamma 1, lam 0.95), advantages whitened over the batch.
//  4. Clipped policy loss and clipped value loss, `ppoEpochs` passes over `minibatches` (the paper: one
//     epoch); optional PPO-ptx: a cross-entropy term on SFT text accumulated into the same gradient.
//  5. Every loss's gradient reaches the GPU as per-token weights: the policy's as cross-entropy weights
//     (CE = -log p), the value's as gradients of the score head's outputs; one backward serves both.
// Defaults are the paper's where they carry over (kl 0.02, clip 0.2, gamma 1, one epoch); the learning
// rate is higher (1e-4 for LoRA adapters vs 1e-5 full) because adapters start at zero and runs are short.
import type { ScoreHead } from '../model/head.ts';
import type { LoraSet } from '../model/lora.ts';
import { PlanSet, totalUse, type PlanUse } from '../model/plan-set.ts';
import type { Plan, Transformer } from '../model/transformer.ts';
import { AdamW, type AdamWConfig } from './adamw.ts';
import { Generator } from './generate.ts';
import { fitBatch } from './sft.ts';
import { AdaptiveKl, emaUpdate, gae, klPenalizedRewards, policyLoss, valueLoss, whiten } from './ppo-math.ts';
import type { Rows } from './layout.ts';
import { fitRollouts, rolloutLogps, sampleRollouts, type Rollout, type StepPhase } from './rollouts.ts';

export type { Rollout };

export interface Role {
  model: Transformer;
  lora?: LoraSet;
  head?: ScoreHead;
}

export interface PpoConfig extends AdamWConfig {
  klCoef: number; // 0.02 (InstructGPT)
  klTarget: number; // adaptive controller target (nats per sequence); 0 = fixed kl_coef
  klHorizon: number; // 10000 (Ziegler et al.)
  cliprange: number; // 0.2
  cliprangeValue: number; // 0.2
  vfCoef: number; // 0.1 scale of the value loss gradient
  gamma: number; // 1
  lam: number; // 0.95
  ppoEpochs: number; // 1 (the paper)
  minibatches: number; // per epoch
  promptsPerStep: number;
  numSamples: number; // K
  maxNewTokens: number;
  temperature: number;
  seqLen: number; // prompt + response
  ptxCoef: number; // 0 = PPO, > 0 = PPO-ptx
  emaDecay: number; // 0 = off; the paper's EMA used 0.992
  earlyStopping?: boolean; // TRL's guard: skip the rest of a step's updates once approx KL > 1.5 x target_kl
  targetKl?: number;
  padId: number;
  eosIds: number[];
  seed: number;
}

export { PPO_DEFAULTS } from './ppo-defaults.ts';

/** What the UI shows per sampled rollout: each response token with its KL contribution, value and advantage. */
export interface TokenDiagnostics {
  prompt: number[];
  response: number[];
  score: number;
  kl: number[];
  value: number[];
  advantage: number[];
}

export interface PpoStep {
  step: number;
  'objective/scores': number;
  'objective/kl': number;
  'objective/entropy': number;
  'policy/clipfrac_avg': number;
  'policy/approxkl_avg': number;
  /** 1 when the early-stopping guard skipped the step's remaining updates (approx KL > 1.5 x target_kl), else 0 */
  'policy/early_stop': number;
  'loss/policy_avg': number;
  'loss/value_avg': number;
  'val/clipfrac_avg': number;
  'objective/response_length': number;
  kl_coef: number;
  skipped: boolean;
  samples: TokenDiagnostics[];
}

/** A flat array (one value per response token of all rows, in order) cut into rows as long as `like`'s. */
function byRow(flat: readonly number[], like: readonly (readonly number[])[]): number[][] {
  let k = 0;
  return like.map((row) => row.map(() => flat[k++]!));
}

export class PpoTrainer {
  step = 0;
  readonly kl: AdaptiveKl;
  private gen: Generator;
  private ema?: Map<string, Float32Array>;

  private constructor(
    readonly roles: { policy: Role; reference: Role; reward: Role; value: Role },
    readonly cfg: PpoConfig,
    readonly plans: { policy: PlanSet; reference: PlanSet; reward: PlanSet; value: PlanSet },
    readonly opt: { policy: AdamW; value: AdamW },
  ) {
    this.kl = new AdaptiveKl(cfg.klCoef, cfg.klTarget || 1, cfg.klHorizon);
    this.gen = new Generator(roles.policy.model, roles.policy.lora);
  }

  static async create(roles: { policy: Role; reference: Role; reward: Role; value: Role }, cfg: PpoConfig): Promise<PpoTrainer> {
    if (!roles.reward.head || !roles.value.head) throw new Error('the reward and value roles need a score head');
    const rows = (cfg.promptsPerStep * cfg.numSamples) / cfg.minibatches;
    if (!Number.isInteger(rows)) throw new Error(`${cfg.promptsPerStep * cfg.numSamples} rollouts do not split into ${cfg.minibatches} minibatches`);
    const B = cfg.promptsPerStep * cfg.numSamples,
      T = cfg.seqLen;
    const p = roles.policy,
      v = roles.value;
    const plans = {
      policy: await PlanSet.create(p.model, rows, T, { training: true, lora: p.lora }),
      reference: await PlanSet.create(roles.reference.model, B, T, { lora: roles.reference.lora }),
      reward: await PlanSet.create(roles.reward.model, B, T, { lora: roles.reward.lora, score: roles.reward.head }),
      value: await PlanSet.create(v.model, rows, T, { training: true, lora: v.lora, score: v.head }),
    };
    const opt = {
      policy: await AdamW.create(p.model.gpu, p.lora ? p.lora.params : p.model.params, cfg),
      value: await AdamW.create(v.model.gpu, [v.lora ? v.lora.params : v.model.params, v.head!.params], cfg),
    };
    return new PpoTrainer(roles, cfg, plans, opt);
  }

  /** The shortest plan of `set` that holds the rollouts, and them laid out on it one per row (fitRollouts). */
  private layout(set: PlanSet, rs: Rollout[]): ReturnType<typeof fitRollouts> {
    return fitRollouts(set, rs, this.cfg.padId);
  }

  /** log p of every response token of every row (as `laid` put them), from a plan's per-token losses. */
  private logps(plan: Plan, laid: Pick<Rows, 'read'>, calls: Parameters<Transformer['gpu']['run']>[0]): Promise<number[][]> {
    return rolloutLogps(plan, laid, calls, 'ppo');
  }

  /** Score-head outputs at the positions that predict each response token (values), or the last one (reward). */
  private async scores(plan: Plan, calls: Parameters<Transformer['gpu']['run']>[0]): Promise<Float32Array> {
    const gpu = plan.model.gpu;
    await gpu.check('ppo scores', () => gpu.run(calls, 'ppo'));
    return gpu.read(plan.scores!);
  }

  /** One PPO iteration; `onPhase` hears where it is (sampling, scoring, updating) as it goes. */
  async trainStep(prompts: number[][], onPhase?: (p: StepPhase) => void): Promise<PpoStep> {
    const cfg = this.cfg,
      B = cfg.promptsPerStep * cfg.numSamples;
    if (prompts.length !== cfg.promptsPerStep) throw new Error(`PPO step takes ${cfg.promptsPerStep} prompts, got ${prompts.length}`);
    // ---- 1. rollouts ----
    const rs = await sampleRollouts(this.gen, prompts, this.step, cfg, onPhase);
    onPhase?.({ phase: 'scoring', done: 0, total: 1 });
    // ---- 2. reference and old-policy log-probs, scores, old values ----
    const { plan: ref, ...lref } = await this.layout(this.plans.reference, rs);
    ref.setBatch(lref.ids, lref.targets, lref.ones);
    const refLogp = await this.logps(ref, lref, [...ref.forward, ...ref.loss]);
    const oldLogp: number[][] = [],
      oldValues: number[][] = [];
    const rows = B / cfg.minibatches;
    for (let mb = 0; mb < cfg.minibatches; mb++) {
      const part = rs.slice(mb * rows, (mb + 1) * rows);
      const { plan: pp, ...l } = await this.layout(this.plans.policy, part);
      pp.setBatch(l.ids, l.targets, l.ones);
      oldLogp.push(...(await this.logps(pp, l, [...pp.forward, ...pp.loss])));
      const { plan: vp, ...lv } = await this.layout(this.plans.value, part);
      vp.setBatch(lv.ids, lv.targets, lv.ones);
      oldValues.push(...lv.read(await this.scores(vp, vp.forward)));
    }
    const { plan: rm, ...lm } = await this.layout(this.plans.reward, rs);
    rm.setBatch(lm.ids);
    const sc = await this.scores(rm, rm.forward);
    const scores = lm.last.map((at) => sc[at]!);
    // ---- 3. rewards, advantages ----
    const beta = this.kl.value;
    const perRow = rs.map((_, i) => {
      const { rewards, kl } = klPenalizedRewards(scores[i]!, oldLogp[i]!, refLogp[i]!, beta);
      const { advantages, returns } = gae(rewards, oldValues[i]!, cfg.gamma, cfg.lam);
      return { kl, advantages, returns };
    });
    const flatAdv = whiten(perRow.flatMap((x) => x.advantages));
    let o = 0;
    const adv = perRow.map((x) => x.advantages.map(() => flatAdv[o++]!));
    // ---- 4. PPO epochs over minibatches ----
    let pl = 0,
      vl = 0,
      cf = 0,
      vcf = 0,
      akl = 0,
      n = 0,
      nv = 0,
      skipped = false,
      earlyStop = false;
    updates: for (let epoch = 0; epoch < cfg.ppoEpochs; epoch++) {
      for (let mb = 0; mb < cfg.minibatches; mb++) {
        onPhase?.({ phase: 'updating', done: n, total: cfg.ppoEpochs * cfg.minibatches });
        const sl = (a: number[][]) => a.slice(mb * rows, (mb + 1) * rows);
        const part = rs.slice(mb * rows, (mb + 1) * rows);
        // policy: the clipped objective's gradient into the policy's grads, then (ptx and) AdamW
        const pp = this.plans.policy.full;
        this.roles.policy.lora?.setStep(this.step * 1000 + epoch * 100 + mb);
        const res = await this.policyPass(part, sl(oldLogp), sl(adv));
        // TRL's early stopping: this update (its gradient is in the grads, zeroed by the next pass) and the rest of the step's are skipped
        if (cfg.earlyStopping && res.approxKl > 1.5 * (cfg.targetKl ?? 1)) {
          earlyStop = true;
          pl += res.loss;
          cf += res.clipFrac;
          akl += res.approxKl;
          n++; // the policy metrics count the pass that stopped it
          break updates;
        }
        if (cfg.ptxCoef > 0 && this.ptx.length) await this.ptxPass();
        this.opt.policy.prepare(this.step + 1, cfg.lr);
        await pp.model.gpu.check('ppo policy update', () => pp.model.gpu.run(this.opt.policy.calls, 'ppo'));
        skipped ||= (await this.opt.policy.status()).skipped;
        // value: the clipped value loss's gradient into the value model's grads, then AdamW
        const vp = this.plans.value.full;
        const vr = await this.valuePass(
          part,
          sl(oldValues),
          perRow.slice(mb * rows, (mb + 1) * rows).map((x) => x.returns),
        );
        this.opt.value.prepare(this.step + 1, cfg.lr);
        await vp.model.gpu.check('ppo value update', () => vp.model.gpu.run(this.opt.value.calls, 'ppo'));
        pl += res.loss;
        vl += vr.loss;
        cf += res.clipFrac;
        vcf += vr.clipFrac;
        akl += res.approxKl;
        n++;
        nv++;
      }
    }
    if (cfg.emaDecay > 0) await this.updateEma();
    const klSum = perRow.map((x) => x.kl.reduce((a, b) => a + b, 0));
    const meanKl = klSum.reduce((a, b) => a + b, 0) / B;
    if (cfg.klTarget > 0) this.kl.update(meanKl, B);
    if (!skipped) this.step++;
    const tokens = rs.reduce((s, r) => s + r.response.length, 0);
    return {
      step: this.step,
      'objective/scores': scores.reduce((a, b) => a + b, 0) / B,
      'objective/kl': meanKl,
      'objective/entropy': rs.reduce((s, r) => s + r.entropy.reduce((a, b) => a + b, 0), 0) / Math.max(1, tokens),
      'policy/clipfrac_avg': cf / n,
      'policy/approxkl_avg': akl / n,
      'policy/early_stop': earlyStop ? 1 : 0,
      'loss/policy_avg': pl / n,
      'loss/value_avg': vl / nv,
      'val/clipfrac_avg': vcf / nv,
      'objective/response_length': tokens / B,
      kl_coef: beta,
      skipped,
      samples: rs
        .slice(0, 4)
        .map((r, i) => ({ prompt: r.prompt, response: r.response, score: scores[i]!, kl: perRow[i]!.kl, value: oldValues[i]!, advantage: adv[i]! })),
    };
  }

  /**
   * The policy's clipped objective on one minibatch of rollouts: the loss, with its gradient left in the
   * policy's grads (zeroed first). dloss/dlog p per token becomes a cross-entropy weight (CE = -log p).
   */
  async policyPass(part: Rollout[], oldLogp: number[][], adv: number[][]): Promise<ReturnType<typeof policyLoss>> {
    const { plan: pp, ...l } = await this.layout(this.plans.policy, part);
    pp.setBatch(l.ids, l.targets, l.ones);
    const logp = await this.logps(pp, l, [...pp.zeroGrads, ...pp.forward, ...pp.loss]);
    const res = policyLoss(logp.flat(), oldLogp.flat(), adv.flat(), this.cfg.cliprange);
    pp.model.gpu.write(
      pp.weights,
      l.place(
        byRow(
          res.dlogp.map((d) => -d),
          logp,
        ),
      ),
    );
    await pp.model.gpu.check('ppo policy backward', () => pp.model.gpu.run([...pp.lossFused, ...pp.backward], 'ppo'));
    return res;
  }

  /** The clipped value loss on one minibatch: the loss, with vf_coef x its gradient left in the value model's grads. */
  async valuePass(part: Rollout[], oldValues: number[][], returns: number[][]): Promise<ReturnType<typeof valueLoss>> {
    const { plan: vp, ...l } = await this.layout(this.plans.value, part);
    vp.setBatch(l.ids, l.targets, l.ones);
    const values = l.read(await this.scores(vp, [...vp.zeroGrads, ...vp.forward]));
    const vr = valueLoss(values.flat(), oldValues.flat(), returns.flat(), this.cfg.cliprangeValue);
    vp.model.gpu.write(
      vp.dscores!,
      l.place(
        byRow(
          vr.dvalues.map((d) => this.cfg.vfCoef * d),
          values,
        ),
      ),
    );
    await vp.model.gpu.check('ppo value backward', () => vp.model.gpu.run(vp.backward, 'ppo'));
    return vr;
  }

  // ---- PPO-ptx: cross-entropy on SFT/pretraining text, accumulated into the policy gradient ----
  private ptx: { ids: Int32Array; targets: Int32Array; count: number }[] = [];
  private ptxNext = 0;

  /** Batches (laid out for the policy plan's rows) for the ptx term; see sftBatch. */
  setPtxData(batches: { ids: Int32Array; targets: Int32Array; count: number }[]): void {
    this.ptx = batches;
  }

  private async ptxPass(): Promise<void> {
    const b = this.ptx[this.ptxNext++ % this.ptx.length]!;
    const pp = await fitBatch(this.plans.policy, b, this.cfg.seqLen, this.cfg.ptxCoef / Math.max(1, b.count));
    await pp.model.gpu.check('ppo ptx', () => pp.model.gpu.run([...pp.forward, ...pp.lossFused, ...pp.backward], 'ppo'));
  }

  /** EMA of the policy's trainable weights (kept on the CPU; `emaWeights` returns them for export). */
  private async updateEma(): Promise<void> {
    const table = this.roles.policy.lora ? this.roles.policy.lora.params : this.roles.policy.model.params;
    this.ema ??= new Map();
    for (const e of table.entries) {
      const w = await table.download(e.name);
      const cur = this.ema.get(e.name);
      if (!cur) this.ema.set(e.name, w);
      else emaUpdate(cur, w, this.cfg.emaDecay);
    }
  }

  get emaWeights(): Map<string, Float32Array> | undefined {
    return this.ema;
  }

  /** Positions computed and tokens held so far (policy, reference, reward and value passes). */
  get planUse(): PlanUse {
    return totalUse(Object.values(this.plans));
  }

  destroy(): void {
    this.gen.destroy();
    for (const p of Object.values(this.plans)) p.destroy();
    this.opt.policy.destroy();
    this.opt.value.destroy();
  }
}
