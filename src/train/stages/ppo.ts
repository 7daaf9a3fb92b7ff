// PPO's stage (ppo.ts): reference = the base; reward and value (initialised from the RM, as the paper
// does) from the reward-model run. With LoRA the four roles share the base; full fine-tuning uses four
// models. PPO-ptx's demonstrations are the {"prompt","completion"} records given with the prompts.
import { loadModel } from '../../model/index.ts';
import { ScoreHead } from '../../model/head.ts';
import { LoraSet } from '../../model/lora.ts';
import type { ParamTable } from '../../model/params.ts';
import { PPO_DEFAULTS, PpoTrainer } from '../ppo.ts';
import { sftBatch, type Example } from '../sft.ts';
import type { StageRun } from '../stages.ts';
import { DataError, loraConfig, stepper, uploadParams, type Setup } from './common.ts';
import { onlinePrompts } from './online.ts';

export async function ppoStage(x: Setup): Promise<StageRun> {
  const { ctx, c, tok, B, pad, eos, model, adapter, cleanup } = x;
  const { base } = ctx;
  const rw = ctx.reward;
  if (!rw) throw new Error('PPO needs a reward-model run');
  if (rw.config.loraRank > 0 !== !!adapter)
    throw new DataError(adapter ? 'a LoRA policy needs a LoRA reward model (one shared base)' : 'a LoRA reward model needs a LoRA policy: give loraRank >= 1');
  const { prompts, perEpoch, batchAt, textOf, tokenTexts } = onlinePrompts(x);
  const { rmRole, valueRole, valueTables } = rewardAndValue(x, rw);
  // PPO-ptx: the demonstrations given with the prompts ({"prompt","completion"} lines with a completion)
  const ptx = x.records.flatMap((r): Example[] =>
    r.kind === 'completion' && r.completion ? [{ prompt: x.encPrompt(r.prompt), completion: x.encCompletion(r.completion) }] : [],
  );
  const T = x.fitT(Math.max(...prompts.map((p) => p.length + c.maxNewTokens), ...(c.ptxCoef > 0 ? ptx.map((e) => e.prompt.length + e.completion.length) : [])));
  const totalSteps = x.stepsFor(perEpoch);
  const t = await PpoTrainer.create(
    { policy: { model, lora: adapter }, reference: { model: base }, reward: rmRole, value: valueRole },
    {
      ...PPO_DEFAULTS,
      lr: c.lr,
      beta1: c.beta1,
      beta2: c.beta2,
      eps: c.eps,
      weightDecay: c.weightDecay,
      maxGradNorm: c.maxGradNorm,
      klCoef: c.klCoef,
      klTarget: c.klTarget,
      cliprange: c.cliprange,
      cliprangeValue: c.cliprangeValue,
      vfCoef: c.vfCoef,
      gamma: c.gamma,
      lam: c.lam,
      ppoEpochs: c.ppoEpochs,
      minibatches: c.minibatches,
      earlyStopping: c.earlyStopping,
      targetKl: c.targetKl,
      promptsPerStep: B,
      numSamples: c.numSamples,
      maxNewTokens: c.maxNewTokens,
      temperature: c.temperature,
      seqLen: T,
      padId: pad,
      eosIds: eos,
      seed: c.seed,
      ptxCoef: c.ptxCoef,
      emaDecay: c.emaDecay,
    },
  );
  cleanup.unshift(() => t.destroy());
  const rows = (B * c.numSamples) / c.minibatches;
  if (c.ptxCoef > 0) {
    if (!ptx.length) throw new DataError('ptx_coef > 0 needs {"prompt","completion"} records with completions beside the prompts');
    t.setPtxData(Array.from({ length: Math.ceil(ptx.length / rows) }, (_, i) => sftBatch(ptx.slice(i * rows, (i + 1) * rows), rows, T, pad)));
  }
  return x.run({
    totalSteps,
    trainables: { ...x.weights, ...valueTables },
    policy: { model, lora: adapter },
    planUse: () => t.planUse,
    step: stepper(t, {
      batch: batchAt,
      train: (batch, onPhase) => t.trainStep(batch, onPhase),
      out({ step: _s, samples, skipped, ...metrics }, batch) {
        const rollouts = batch.length * c.numSamples;
        return {
          metrics,
          skipped,
          tokens: Math.round(rollouts * metrics['objective/response_length']) + batch.reduce((n, p) => n + p.length * c.numSamples, 0),
          samples: samples.map((y) => ({
            prompt: textOf(y.prompt),
            response: tok.decode(y.response, { skipSpecialTokens: true }),
            score: y.score,
            tokens: tokenTexts(y.prompt, y.response),
            kl: y.kl,
            value: y.value,
            advantage: y.advantage,
          })),
        };
      },
    }),
    state: () => ({ kl_coef: t.kl.value }),
    setState: (st) => void (typeof st.kl_coef === 'number' && (t.kl.value = st.kl_coef)),
    // with an EMA, the final policy is the average (as the paper's), not the last iterate
    async finish(): Promise<Record<string, number>> {
      if (!t.emaWeights) return {};
      for (const [name, w] of t.emaWeights) x.weights.weights.upload(name, w);
      return { ema_decay: c.emaDecay };
    },
  });
}

/** The reward role (frozen) and the value role (trained), both the reward-model run's weights and head: on the base (LoRA) or models of their own. */
function rewardAndValue(x: Setup, rw: NonNullable<Setup['ctx']['reward']>) {
  const { ctx, adapter, cleanup } = x,
    { base } = ctx,
    arch = base.cfg.arch;
  let rmRole, valueRole, valueTables: Record<string, ParamTable>;
  if (adapter) {
    const rmLora = new LoraSet(base, loraConfig(rw.config, arch)),
      rmHead = new ScoreHead(base);
    const value = new LoraSet(base, loraConfig(rw.config, arch), { optimizer: true }),
      valueHead = new ScoreHead(base, { optimizer: true });
    cleanup.push(
      () => rmLora.destroy(),
      () => rmHead.destroy(),
      () => value.destroy(),
      () => valueHead.destroy(),
    );
    uploadParams(rmLora.params, rw.checkpoint, 'weights');
    uploadParams(value.params, rw.checkpoint, 'weights');
    rmRole = { model: base, lora: rmLora, head: rmHead };
    valueRole = { model: base, lora: value, head: valueHead };
    valueTables = { value: value.params, valueHead: valueHead.params };
  } else {
    const rmModel = loadModel(ctx.gpu, ctx.files).model,
      valueModel = loadModel(ctx.gpu, ctx.files, { optimizer: true }).model;
    const rmHead = new ScoreHead(rmModel),
      valueHead = new ScoreHead(valueModel, { optimizer: true });
    cleanup.push(
      () => rmHead.destroy(),
      () => valueHead.destroy(),
      () => rmModel.destroy(),
      () => valueModel.destroy(),
    );
    uploadParams(rmModel.params, rw.checkpoint, 'weights');
    uploadParams(valueModel.params, rw.checkpoint, 'weights');
    rmRole = { model: rmModel, head: rmHead };
    valueRole = { model: valueModel, head: valueHead };
    valueTables = { value: valueModel.params, valueHead: valueHead.params };
  }
  uploadParams(rmRole.head.params, rw.checkpoint, 'head');
  uploadParams(valueRole.head.params, rw.checkpoint, 'head');
  return { rmRole, valueRole, valueTables };
}
