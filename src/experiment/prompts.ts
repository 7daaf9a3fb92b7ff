// The experiment's prompts for the built-in model, from the corpus it was trained on
// (scripts/default-model/corpus.ts): training prompts (ranked, and PPO's) built from the corpus's training
// slot values, demonstrations written in the corpus's helpful style, and held-out prompts built only from
// the slot values the corpus keeps out of training (names, objects and places the model never saw), so
// the evaluation's prompts never appear in training.
import { demoPrompts, generateCorpus } from '../../scripts/default-model/corpus.ts';
import type { Record as DataRecord } from '../io/datasets.ts';
import { epochOrder } from '../train/stages.ts';

export interface ExperimentPrompts {
  /** Prompts the labeler ranks samples of, in the order it meets them (distinct). */
  train(seed: number): string[];
  /** PPO's prompts (prompt-only records). */
  ppo(seed: number): DataRecord[];
  /** SFT's demonstrations. */
  demonstrations(seed: number): DataRecord[];
  /** Held-out prompts: the win rate and the reward model's held-out accuracy. */
  readonly eval: string[];
}

const distinct = (xs: string[]) => [...new Set(xs)];

/** `evalPrompts`: fewer held-out prompts (spread over the task families), for a quick run. */
export function builtinPrompts(opts: { demonstrations?: number; ppoPrompts?: number; evalPrompts?: number } = {}): ExperimentPrompts {
  const nDemos = opts.demonstrations ?? 64, nPpo = opts.ppoPrompts ?? 64;
  const all = demoPrompts().map((p) => p.prompt);
  const every = Math.max(1, Math.floor(all.length / (opts.evalPrompts ?? all.length)));
  const evalSet = all.filter((_, i) => i % every === 0).slice(0, opts.evalPrompts ?? all.length);
  const held = new Set(all);
  const train = (seed: number) => distinct(generateCorpus(4000, 100 + seed).map((e) => e.prompt)).filter((p) => !held.has(p));
  return {
    train: (seed) => {
      const ps = train(seed);
      return epochOrder(ps.length, seed, 0).map((i) => ps[i]!);
    },
    // PPO's prompts come from the far end of the same list: other prompts than those ranked first
    ppo: (seed) => train(seed).slice(-nPpo).map((prompt) => ({ kind: 'completion', prompt, completion: '' })),
    demonstrations: (seed) =>
      generateCorpus(4000, 900 + seed).filter((e) => e.style === 'helpful' && !held.has(e.prompt)).slice(0, nDemos)
        .map((e) => ({ kind: 'completion', prompt: e.prompt, completion: e.completion })),
    eval: evalSet,
  };
}
