// The experiment's prompts for the built-in model, from the corpus it was trained on
// (scripts/default-model/corpus.ts): training prompts (ranked, and PPO's) built from the corpus's training
// slot values, demonstrations written in the corpus's helpful style, and two sets of held-out prompts: one
// built only from the slot values the corpus keeps out of training (names, objects and places the model
// never saw: `eval`), and one of prompts like the training ones, from the same names and objects, that are
// never ranked, demonstrated or given to PPO (`evalSeen`: held-out prompts of the training distribution,
// as InstructGPT's held-out prompts are). The evaluation's prompts never appear in training.
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
  /** Held-out prompts of unseen names, objects and places: the win rate and the reward model's held-out accuracy. */
  readonly eval: string[];
  /** Held-out prompts of the training vocabulary (as many as `eval`): never ranked, demonstrated or PPO's. */
  evalSeen(seed: number): string[];
}

const distinct = (xs: string[]) => [...new Set(xs)];

/** `evalPrompts`: fewer held-out prompts (spread over the task families), for a quick run. */
export function builtinPrompts(opts: { demonstrations?: number; ppoPrompts?: number; evalPrompts?: number } = {}): ExperimentPrompts {
  const nDemos = opts.demonstrations ?? 64,
    nPpo = opts.ppoPrompts ?? 64;
  const all = demoPrompts().map((p) => p.prompt);
  const every = Math.max(1, Math.floor(all.length / (opts.evalPrompts ?? all.length)));
  const evalSet = all.filter((_, i) => i % every === 0).slice(0, opts.evalPrompts ?? all.length);
  const held = new Set(all);
  const train = (seed: number) => distinct(generateCorpus(4000, 100 + seed).map((e) => e.prompt)).filter((p) => !held.has(p));
  const ppo = (seed: number) => train(seed).slice(-nPpo);
  const demonstrations = (seed: number) =>
    generateCorpus(4000, 900 + seed)
      .filter((e) => e.style === 'helpful' && !held.has(e.prompt))
      .slice(0, nDemos);
  const shuffled = (seed: number) => {
    const ps = train(seed);
    return epochOrder(ps.length, seed, 0).map((i) => ps[i]!);
  };
  // the seen-vocabulary held-out prompts: from the far end of the ranking order (the labeler ranks from its
  // start: 34 prompts give 200 comparisons), none of PPO's or the demonstrations'
  const evalSeen = (seed: number) => {
    const taken = new Set([...ppo(seed), ...demonstrations(seed).map((e) => e.prompt)]);
    return shuffled(seed)
      .reverse()
      .filter((p) => !taken.has(p))
      .slice(0, evalSet.length);
  };
  return {
    train: (seed) => {
      const out = new Set(evalSeen(seed));
      return shuffled(seed).filter((p) => !out.has(p));
    },
    // PPO's prompts come from the far end of the same list: other prompts than those ranked first
    ppo: (seed) => ppo(seed).map((prompt) => ({ kind: 'prompt', prompt })),
    demonstrations: (seed) => demonstrations(seed).map((e) => ({ kind: 'completion', prompt: e.prompt, completion: e.completion })),
    eval: evalSet,
    evalSeen,
  };
}
