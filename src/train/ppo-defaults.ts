// PpoTrainer's own defaults, for callers that build the trainer directly (tests, benchmarks). The PPO
// stage (src/train/stages.ts) passes every field of a resolved config over them, so a run's values are the
// schema's (src/shared/schema.ts); here only what the schema does not hold, and the trainer's own choices
// where they are the paper's rather than the playground's.
import type { PpoConfig } from './ppo.ts';
import { stageDefaults } from '../shared/schema.ts';

/** The schema's PPO defaults for a full fine-tuning of a model as wide as the paper's, whose positions do not bound seqLen. */
const schema = stageDefaults('ppo', 0, { maxPositions: Number.MAX_SAFE_INTEGER, hidden: 4096 });

export const PPO_DEFAULTS: Omit<PpoConfig, 'padId' | 'eosIds'> = {
  beta1: schema.beta1,
  beta2: schema.beta2,
  eps: schema.eps,
  weightDecay: schema.weightDecay,
  maxGradNorm: schema.maxGradNorm,
  klTarget: schema.klTarget,
  cliprange: schema.cliprange,
  cliprangeValue: schema.cliprangeValue,
  vfCoef: schema.vfCoef,
  gamma: schema.gamma,
  lam: schema.lam,
  minibatches: schema.minibatches,
  promptsPerStep: schema.batchSize,
  numSamples: schema.numSamples,
  maxNewTokens: schema.maxNewTokens,
  temperature: schema.temperature,
  seqLen: schema.seqLen, // the schema's SEQ_LEN (256): this table said 128, which no run used (see SEQ_LEN)
  ptxCoef: schema.ptxCoef,
  emaDecay: schema.emaDecay,
  seed: schema.seed,
  // the trainer's own, apart from a run's: a fixed 1e-4 (a run's is scaled by width: defaultLr), the
  // paper's kl_coef on an unnormalised reward (a run's PPO_KL_COEF is on the normalised one) and the
  // paper's single pass over each batch (a run's PPO_EPOCHS is 4); kl_horizon is the adaptive
  // controller's (Ziegler et al.), which the schema does not expose
  lr: 1e-4,
  klCoef: 0.02,
  ppoEpochs: 1,
  klHorizon: 10000,
};
