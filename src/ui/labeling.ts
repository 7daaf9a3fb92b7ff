// What a labeler works by, beside the rank view: the project's guidelines (an editable text, exported with
// the data as guidelines.md), the goal (comparisons before a first reward model), the pace (time per
// ranking, and the time to the goal at it) and what each training stage gets from the labels so far.
// Pure rules and this origin's localStorage, passed in so Node tests run them without a page.
import { rewardRankings, toPreferencePairs, toPrompts } from '../io/datasets.ts';
import { stageRecords, type UserData } from '../io/stage-data.ts';
import { plural } from './data-io.ts';

/**
 * The default guidelines, adapted from the labeling instructions of InstructGPT (Ouyang et al. 2022,
 * appendix B) and written for this project: the three criteria and the order the paper gives them. One
 * line per paragraph or item: the panel wraps the text to its width.
 */
export const DEFAULT_GUIDELINES = `# Labeling guidelines

Judge each answer as the person who wrote the prompt would, if they also cared about the truth and about other people. Three things count.

## Helpful
- Does what the prompt asks, in the form it asks for (a list, a short note, one sentence).
- Reads the intent behind the words: "a tip for baking bread" wants one useful tip, not a lecture.
- Is clear and to the point: no rambling, no repeating the question back.
- Invents no context the prompt did not give (a reply to an email does not make up the writer's plans), unless making it up is the task (a story, a letter to an invented person).
- Asks for clarification, or says what it assumed, when the prompt is truly ambiguous.

## Truthful
- States no false facts and does not make up details, names or sources.
- Where the prompt supplies the material (summarise this, answer from this text), uses only that material.
- Does not go along with a false premise in the prompt.

## Harmless
- Is not rude, demeaning or hateful towards anyone or any group.
- Gives no advice that could hurt someone, and does not help with clearly harmful aims.
- Adds no sexual or violent content that was not asked for. Content the user explicitly asked for (a battle scene in the story they requested) is not by itself a harm.

## When they pull apart
For most prompts, truthful and harmless matter more than helpful: a modest, correct, safe answer beats an impressive one that is wrong or hurtful. The exception: when one answer is much more helpful, only a little less truthful or harmless, and nothing serious is at stake (not medical, legal, financial or safety advice), prefer the more helpful one. And what the user explicitly asked for (a dark story, a blunt critique) is not a harm in itself: judge how well the answer does it.

## Ties, both bad, skips
- Tie: the two are about equally good, or differ only in ways these guidelines do not decide.
- Both bad: neither is acceptable. Write the answer you wanted if you can; it becomes a demonstration.
- Skip when you cannot judge (the prompt is unclear to you, or needs knowledge you lack). Guessing adds noise.
- Write a reason (r) when the call was close or surprising: it helps whoever reads these labels later.
`;

const GUIDELINES_KEY = 'rlhf-playground:guidelines:';
const GOAL_KEY = 'rlhf-playground:rank-goal';

/** The comparisons InstructGPT-style reward modelling wants before a first model is worth training here. */
export const DEFAULT_GOAL = 50;

type Kv = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | undefined;

/** The project's guidelines (one per store, the project's database): the user's edit, else the default. */
export function loadGuidelines(kv: Kv, project: string): string {
  return kv?.getItem(GUIDELINES_KEY + project) || DEFAULT_GUIDELINES;
}

/** Keeps an edit; the default (or an empty text, which means "back to the default") is not stored. */
export function saveGuidelines(kv: Kv, project: string, text: string): void {
  if (!text.trim() || text === DEFAULT_GUIDELINES) kv?.removeItem(GUIDELINES_KEY + project);
  else kv?.setItem(GUIDELINES_KEY + project, text);
}

export function loadGoal(kv: Kv): number {
  const n = Number(kv?.getItem(GOAL_KEY));
  return Number.isInteger(n) && n > 0 ? n : DEFAULT_GOAL;
}

export function saveGoal(kv: Kv, goal: number): void {
  kv?.setItem(GOAL_KEY, String(goal));
}

/** The bar's line: how far the comparisons are towards the goal, and what reaching it means. */
export function goalProgress(comparisons: number, goal: number): { fraction: number; text: string } {
  const fraction = Math.min(1, comparisons / goal);
  const text =
    comparisons >= goal
      ? `${comparisons} comparisons: enough for a first reward model (Train tab).`
      : `${comparisons} of ${goal} comparisons for a first reward model: ${goal - comparisons} to go.`;
  return { fraction, text };
}

/** Rankings timed at most (the pace of the last few, not of a session's start). */
export const PACE_WINDOW = 10;

/**
 * Seconds per ranking: the median of the last PACE_WINDOW times from showing a ranking to saving it
 * (a median, because one ranking left open over a coffee would swamp a mean); undefined before the first.
 */
export function secondsPerRanking(ms: readonly number[]): number | undefined {
  const last = ms.slice(-PACE_WINDOW).sort((a, b) => a - b); // slice: a copy, the caller's order stays
  if (!last.length) return undefined;
  const mid = last.length >> 1;
  return (last.length % 2 ? last[mid]! : (last[mid - 1]! + last[mid]!) / 2) / 1000;
}

/** Seconds as a person reads an estimate: to 5 s under a minute, to the minute under two hours, then hours. */
export function aboutDuration(s: number): string {
  if (s < 60) return `about ${Math.max(5, Math.round(s / 5) * 5)} s`;
  if (s < 7200) return `about ${Math.round(s / 60)} min`;
  return `about ${Math.round(s / 360) / 10} h`;
}

/**
 * How long the rest of the way to the goal takes at this pace: the comparisons left over the comparisons a
 * ranking has given on average (a K-way ranking gives up to K(K-1)/2, a pair one or none), times the seconds
 * per ranking. Undefined at the goal, before the first timed ranking, or before any comparison.
 */
export function timeToGoal(comparisons: number, rankings: number, goal: number, secondsPer: number | undefined): number | undefined {
  if (secondsPer === undefined || comparisons >= goal || comparisons <= 0 || rankings <= 0) return undefined;
  return Math.ceil((goal - comparisons) / (comparisons / rankings)) * secondsPer;
}

/** The pace line under the bar. */
export function paceText(secondsPer: number | undefined, timed: number, toGoal: number | undefined): string {
  if (secondsPer === undefined) return 'Time per ranking: shown after the first one.';
  const each = secondsPer < 10 ? secondsPer.toFixed(1) : String(Math.round(secondsPer));
  return `Time per ranking: ${each} s (median of the last ${Math.min(timed, PACE_WINDOW)})${toGoal === undefined ? '.' : `; ${aboutDuration(toGoal)} to the goal at this pace.`}`;
}

/** Rankings a reward model wants before it holds 1 in 10 out to measure its accuracy (src/train/stages.ts). */
export const HELD_OUT_FROM = 10;

/**
 * What the training stages get from everything labelled and written so far: each stage's records as a run
 * would take them now (stageRecords, the one policy the worker applies), counted as the stage reads them.
 */
export interface StageCounts {
  /** the pairs the reward model trains on (chosen over rejected), and how many came from the user's imported records */
  pairs: number;
  importedPairs: number;
  /** DPO's pairs (the same records as the reward model's today) */
  dpoPairs: number;
  /** rankings the reward model keeps: those that give a pair (a tie or both-bad drops out, as InstructGPT drops ties) */
  rmRankings: number;
  /** SFT's demonstrations, and of them the answers written for a prompt judged "both bad" */
  demonstrations: number;
  betterAnswers: number;
  /** what PPO samples on (GRPO and RLOO take the same records): the prompts, and the demonstrations' prompts */
  prompts: number;
}

/** Counts each stage's records, from the user's data (the store's prompts, the Rank tab's rankings, their own records); `policy`: the tests' stand-in for stageRecords. */
export function stageCounts(d: UserData, policy: typeof stageRecords = stageRecords): StageCounts {
  const rm = policy('rm', d),
    sft = policy('sft', d);
  // what the reward model takes from the user's own records alone: their imported rankings and pairs
  const imported = policy('rm', { prompts: [], rankings: [], records: d.records });
  const bothBad = new Set(d.rankings.filter((r) => r.verdict === 'both-bad').map((r) => r.prompt));
  return {
    pairs: toPreferencePairs(rm).length,
    importedPairs: toPreferencePairs(imported).length,
    dpoPairs: toPreferencePairs(policy('dpo', d)).length,
    // as the reward model's stage reads them (src/train/stages/common.ts): rankings that give a pair, and each preference
    rmRankings: rewardRankings(rm).length + rm.filter((r) => r.kind === 'preference').length,
    demonstrations: sft.length,
    betterAnswers: sft.filter((r) => r.kind === 'completion' && bothBad.has(r.prompt)).length,
    prompts: toPrompts(policy('ppo', d)).length, // one prompt per record, as the online stages sample them (toPrompts)
  };
}

/** One line per stage: what it has to train on now, and what it still needs. */
export function stageNeeds(c: StageCounts): { stage: 'rm' | 'dpo' | 'sft' | 'online'; name: string; text: string }[] {
  const imported = c.importedPairs ? ` (${c.importedPairs} imported)` : '';
  const heldOut =
    c.rmRankings >= HELD_OUT_FROM
      ? '1 in 10 held out to measure its accuracy'
      : `a held-out accuracy from ${HELD_OUT_FROM} rankings: ${HELD_OUT_FROM - c.rmRankings} to go`;
  return [
    {
      stage: 'rm',
      name: 'Reward model',
      text: c.pairs
        ? `${plural(c.pairs, 'comparison')}${imported} from ${plural(c.rmRankings, 'ranking')}; ${heldOut}.`
        : 'no comparisons yet: a decided pair or an ordered ranking gives them (a tie or both bad gives none).',
    },
    {
      stage: 'dpo',
      name: 'DPO',
      text: c.dpoPairs ? `${c.dpoPairs === c.pairs ? 'the same ' : ''}${plural(c.dpoPairs, 'pair')}, the better answer as chosen.` : 'no pairs yet.',
    },
    {
      stage: 'sft',
      name: 'SFT',
      text: c.demonstrations
        ? `${plural(c.demonstrations, 'demonstration')}${c.betterAnswers ? ` (${c.betterAnswers} written when both answers were bad)` : ''}.`
        : 'no demonstrations yet: write one on the Data tab, or a better answer when both are bad (n).',
    },
    {
      stage: 'online',
      name: 'PPO, GRPO, RLOO',
      text: `${plural(c.prompts, 'prompt')} to sample on${c.prompts ? '' : ': add prompts on the Data tab'}; PPO also needs the reward model.`,
    },
  ];
}
