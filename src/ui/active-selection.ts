// The Rank tab's active selection without the DOM (tested in Node): once a reward model exists, show
// what it is least sure of, the comparisons whose scores it puts closest, since those are the ones a
// judgement teaches it most (a pair it already scores far apart it mostly gets right).
//   pairwise: K samples are drawn for the prompt and the pair with the smallest |score difference| is shown;
//   K-way:    of the few upcoming prompts whose samples are drawn ahead, the one with the smallest mean
//             |score difference| over its pairs comes next (the experiment's `--select uncertain` rule).
// Identical completions are no comparison: their pairs are left out. Which reward model: the newest
// finished LoRA reward-model run trained on the loaded model (the runs PPO can train against).
import type { Selection } from '../io/datasets.ts';
import type { RunRecord } from '../store/db.ts';
import { leastSurePair, meanMargin } from '../shared/selection.ts';

export { leastSurePair, meanMargin }; // the rule, shared with the experiment's --select uncertain

/** Samples drawn for a pairwise judgement when the reward model picks the pair: 6 pairs to choose from. */
export const SELECT_SAMPLES = 4;
/** Upcoming prompts drawn ahead in the K-way mode, for the reward model to pick the next from. */
export const SELECT_POOL = 3;

/**
 * The candidates in the order to show them: scored ones by their margin, smallest first (the earlier one
 * first on a tie), then those with nothing to compare, in their own order. Unscored ones (undefined) are left out.
 */
export function byUncertainty<T extends { margin?: number | null }>(items: readonly T[]): T[] {
  const rank = (x: T) => (x.margin === null ? Infinity : x.margin!);
  return items
    .map((x, i) => ({ x, i }))
    .filter(({ x }) => x.margin !== undefined)
    .sort((p, q) => rank(p.x) - rank(q.x) || p.i - q.i)
    .map(({ x }) => x);
}

/** What a ranking records of how it was chosen. */
export const uncertainSelection = (margin: number, rewardModel: string): Selection => ({ method: 'uncertain', margin, reward_model: rewardModel });

/** Finished LoRA reward-model runs trained on the model with this fingerprint, newest first. */
export function rewardModelsFor(runs: readonly RunRecord[], fingerprint: string | undefined): RunRecord[] {
  if (!fingerprint) return [];
  return runs
    .filter((r) => r.stage === 'rm' && r.status === 'done' && Number(r.config.loraRank) > 0 && r.model?.fingerprint === fingerprint)
    .sort((a, b) => b.createdAt - a.createdAt);
}

/** Why no reward model can choose: none trained yet, or only on another starting model, or only fully fine-tuned ones. */
export function noRewardModelReason(runs: readonly RunRecord[], hasModel: boolean): string {
  if (!hasModel) return 'Load a model first.';
  const done = runs.filter((r) => r.stage === 'rm' && r.status === 'done');
  if (!done.length) return 'No reward model yet: train one on the Train tab from your rankings, and it can choose what you rank next.';
  if (!done.some((r) => Number(r.config.loraRank) > 0))
    return 'Your reward models are fully fine-tuned; this needs a LoRA reward model (as PPO does): train one with a LoRA rank.';
  return 'Your reward models were trained on another starting model than the one loaded now: train one on this model.';
}

const SWITCH_KEY = 'rlhf-playground:rank-uncertain';

/** Whether the switch is on (off unless the user turned it on). */
export const loadSelecting = (storage: Pick<Storage, 'getItem'> | undefined): boolean => storage?.getItem(SWITCH_KEY) === '1';

export function saveSelecting(storage: Pick<Storage, 'setItem'> | undefined, on: boolean): void {
  try {
    storage?.setItem(SWITCH_KEY, on ? '1' : '0');
  } catch {
    /* storage refused: the switch holds for this visit */
  }
}
