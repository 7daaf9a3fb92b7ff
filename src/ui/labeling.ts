// What a labeler works by, beside the rank view: the project's guidelines (an editable text, exported with
// the data as guidelines.md), the goal (comparisons before a first reward model) and the pace (time per
// ranking). Pure rules and this origin's localStorage, passed in so Node tests run them without a page.

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
  const text = comparisons >= goal
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
