// DPO's pairwise losses, TRL's `loss_type`s, as functions of a pair's log-ratios (log pi(y) - log ref(y) of the
// chosen and the rejected completion) with their derivatives: DpoTrainer turns the derivatives into per-token
// cross-entropy weights. Pure arithmetic, no GPU, so each loss and its gradient is tested on its own.
//
// The losses (beta is each one's beta; e the label smoothing; d = chosen - rejected, n the completions' token counts):
//   sigmoid       -log s(beta d)                                   (DPO, Rafailov et al. 2023)
//   hinge         max(0, 1 - beta d)                               (SLiC)
//   ipo           (c / n_c - r / n_r - 1 / (2 beta))^2             (IPO, Eq. 17; per-token averages, as TRL and the IPO authors)
//   robust        (-(1 - e) log s(beta d) + e log s(-beta d)) / (1 - 2e)   (Robust DPO; e = the share of flipped labels)
//   exo_pair      KL(softmax(beta (c, r)) || (1 - e, e))           (EXO, pairwise)
//   nca_pair      -log s(beta c) - log s(-beta c) / 2 - log s(-beta r) / 2   (NCA)
//   bco_pair      -log s(beta c) - log s(-beta r)                  (BCO)
//   sppo_hard     (c - 1 / (2 beta))^2 + (r + 1 / (2 beta))^2      (SPPO, hard labels)
//   apo_zero      1 - s(beta c) + s(beta r)                        (APO-zero)
//   apo_down      s(beta c) + 1 - s(beta d)                        (APO-down)
//   sigmoid_norm  -log s(beta (c / n_c - r / n_r))                 (DPO on per-token averages)
//   sft           the chosen completions' mean negative log-likelihood per token (RPO: with sigmoid, weight alpha)
// Several may be combined, each with a weight (TRL's list `loss_type` and `loss_weights`: MPO is
// sigmoid, bco_pair and sft with 0.8, 0.2, 1). TRL's aot, aot_unpaired (sorted over the batch) and discopop are not here.
import type { DpoLossType } from '../shared/schema.ts';

export { DPO_LOSS_TYPES, dpoLossTypes, READS_LABEL_SMOOTHING, type DpoLossType } from '../shared/schema.ts';

/** A pair as its losses see it: the log-ratios (summed over the completion, or LD-DPO's weighted sum) and the completions' token counts. */
export interface PairScores {
  chosen: number;
  rejected: number;
  chosenTokens: number;
  rejectedTokens: number;
}

/** A pairwise loss and its derivatives with respect to the chosen and the rejected log-ratio. */
export interface PairLoss {
  loss: number;
  dChosen: number;
  dRejected: number;
}

export const logSigmoid = (x: number): number => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));
export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const dSigmoid = (x: number): number => sigmoid(x) * sigmoid(-x);

/** One pair's loss of `type` (not 'sft', which is per token: DpoTrainer's) with beta and label smoothing e. */
export function pairLoss(type: Exclude<DpoLossType, 'sft'>, s: PairScores, beta: number, e: number): PairLoss {
  const z = beta * s.chosen - beta * s.rejected; // beta d, as the margins are logged (beta x each log-ratio)
  const nc = Math.max(1, s.chosenTokens),
    nr = Math.max(1, s.rejectedTokens);
  switch (type) {
    case 'sigmoid': {
      const g = -beta * sigmoid(-z);
      return { loss: -logSigmoid(z), dChosen: g, dRejected: -g };
    }
    case 'hinge': {
      const on = z < 1;
      return { loss: Math.max(0, 1 - z), dChosen: on ? -beta : 0, dRejected: on ? beta : 0 };
    }
    case 'ipo': {
      const m = s.chosen / nc - s.rejected / nr - 1 / (2 * beta);
      return { loss: m * m, dChosen: (2 * m) / nc, dRejected: (-2 * m) / nr };
    }
    case 'robust': {
      const g = (beta * (-(1 - e) * sigmoid(-z) - e * sigmoid(z))) / (1 - 2 * e);
      return { loss: (-(1 - e) * logSigmoid(z) + e * logSigmoid(-z)) / (1 - 2 * e), dChosen: g, dRejected: -g };
    }
    case 'exo_pair': {
      const qw = sigmoid(z),
        ql = sigmoid(-z),
        lw = logSigmoid(z) - Math.log1p(-e),
        ll = logSigmoid(-z) - Math.log(e);
      const g = beta * qw * ql * (lw - ll);
      return { loss: qw * lw + ql * ll, dChosen: g, dRejected: -g };
    }
    case 'nca_pair': {
      const c = beta * s.chosen,
        r = beta * s.rejected;
      return {
        loss: -logSigmoid(c) - 0.5 * logSigmoid(-c) - 0.5 * logSigmoid(-r),
        dChosen: beta * (-sigmoid(-c) + 0.5 * sigmoid(c)),
        dRejected: beta * 0.5 * sigmoid(r),
      };
    }
    case 'bco_pair': {
      const c = beta * s.chosen,
        r = beta * s.rejected;
      return { loss: -logSigmoid(c) - logSigmoid(-r), dChosen: -beta * sigmoid(-c), dRejected: beta * sigmoid(r) };
    }
    case 'sppo_hard': {
      const a = s.chosen - 0.5 / beta,
        b = s.rejected + 0.5 / beta;
      return { loss: a * a + b * b, dChosen: 2 * a, dRejected: 2 * b };
    }
    case 'apo_zero': {
      const c = beta * s.chosen,
        r = beta * s.rejected;
      return { loss: 1 - sigmoid(c) + sigmoid(r), dChosen: -beta * dSigmoid(c), dRejected: beta * dSigmoid(r) };
    }
    case 'apo_down': {
      const c = beta * s.chosen;
      return { loss: sigmoid(c) + 1 - sigmoid(z), dChosen: beta * (dSigmoid(c) - dSigmoid(z)), dRejected: beta * dSigmoid(z) };
    }
    case 'sigmoid_norm': {
      const y = beta * (s.chosen / nc - s.rejected / nr),
        g = -beta * sigmoid(-y);
      return { loss: -logSigmoid(y), dChosen: g / nc, dRejected: -g / nr };
    }
  }
}

/**
 * LD-DPO's split of a completion's per-token log-probabilities (Liu et al. 2024; TRL's `ld_alpha`): the first
 * `shared` tokens (the shorter completion's length) count fully, those past them alpha times: the weighted sum.
 */
export function ldWeighted(logps: ArrayLike<number>, shared: number, alpha: number): number {
  let s = 0;
  for (let k = 0; k < logps.length; k++) s += (k < shared ? 1 : alpha) * logps[k]!;
  return s;
}
