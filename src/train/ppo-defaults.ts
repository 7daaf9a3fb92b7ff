// PPO's defaults apart from its trainer, so the page (the Train tab's form) gets them without the GPU code.
import type { PpoConfig } from './ppo.ts';

export const PPO_DEFAULTS: Omit<PpoConfig, 'padId' | 'eosIds'> = {
  lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, maxGradNorm: 1,
  kl_coef: 0.02, kl_target: 0, kl_horizon: 10000, cliprange: 0.2, cliprange_value: 0.2, vf_coef: 0.1, gamma: 1, lam: 0.95,
  ppo_epochs: 1, minibatches: 1, promptsPerStep: 4, numSamples: 4, maxNewTokens: 32, temperature: 1, seqLen: 128,
  ptx_coef: 0, ema_decay: 0, seed: 0,
};
