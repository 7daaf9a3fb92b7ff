// The state of one ranking in the rank view, kept apart from the DOM so keyboard use, drag-and-drop and
// the saved record follow one set of rules: K completions ordered best to worst, ties with the one
// above, an optional 1-7 quality score and the labeler metadata of InstructGPT's Table 3 per completion.
import { isQualityScore, rankingPairs } from '../io/datasets.ts';
import type { RankingRecord } from '../store/db.ts';
import { RATIONALE_KEY } from './pair-state.ts';

/** InstructGPT, Table 3: the metadata labelers gave each output (besides the 1-7 overall quality). */
export const FLAGS = [
  { id: 'fails-instruction', key: 'f', label: 'Fails to follow the correct instruction / task' },
  { id: 'inappropriate', key: 'i', label: 'Inappropriate for customer assistant' },
  { id: 'hallucination', key: 'h', label: 'Hallucination' },
  { id: 'satisfies-constraint', key: 'c', label: 'Satisfies constraint provided in the instruction' },
  { id: 'sexual', key: 'x', label: 'Contains sexual content' },
  { id: 'violent', key: 'v', label: 'Contains violent content' },
  { id: 'encourages-harm', key: 'e', label: 'Encourages or fails to discourage violence/abuse/terrorism/self-harm' },
  { id: 'denigrates', key: 'd', label: 'Denigrates a protected class' },
  { id: 'harmful-advice', key: 'a', label: 'Gives harmful advice' },
  { id: 'opinion', key: 'o', label: 'Expresses opinion' },
  { id: 'moral-judgment', key: 'm', label: 'Expresses moral judgment' },
] as const;

export type FlagId = (typeof FLAGS)[number]['id'];

export type RankAction = 'focus' | 'move' | 'tie' | 'score' | 'flag' | 'rationale' | 'submit' | 'skip' | 'none';

export class RankingState {
  /** completion indices, best first */
  order: number[];
  /** tied[p]: the completion at position p ties with the one at p - 1 (tied[0] is always false) */
  tied: boolean[];
  /** the position the keyboard acts on */
  focus = 0;
  readonly scores: (number | null)[];
  readonly flags: Set<FlagId>[];
  /** why (optional, one line) */
  rationale = '';

  constructor(
    readonly prompt: string,
    readonly completions: string[],
  ) {
    if (completions.length < 2 || completions.length > 9) throw new Error(`a ranking has 2 to 9 completions, got ${completions.length}`);
    this.order = completions.map((_, i) => i);
    this.tied = completions.map(() => false);
    this.scores = completions.map(() => null);
    this.flags = completions.map(() => new Set<FlagId>());
  }

  /**
   * A saved ranking opened again (the Data tab's edit): completions in their saved order, ties where their
   * ranks are equal, scores, flags and the reason as saved (a flag this version does not know is kept, not dropped).
   */
  static fromRecord(r: Pick<RankingRecord, 'prompt' | 'completions' | 'ranks' | 'scores' | 'flags' | 'rationale'>): RankingState {
    const s = new RankingState(r.prompt, r.completions);
    const rank = (i: number) => r.ranks[i] ?? i;
    s.order.sort((a, b) => rank(a) - rank(b) || a - b);
    s.tied = s.order.map((i, p) => p > 0 && rank(i) === rank(s.order[p - 1]!));
    r.completions.forEach((_, i) => {
      const score = r.scores?.[i];
      s.scores[i] = score !== undefined && score !== null && isQualityScore(score) ? score : null;
      for (const f of r.flags?.[i] ?? []) s.flags[i]!.add(f as FlagId);
    });
    s.rationale = r.rationale ?? '';
    return s;
  }

  get K(): number {
    return this.completions.length;
  }

  /** Moves the completion at position `from` to position `to` (drag-and-drop); ties stay with positions. */
  moveTo(from: number, to: number): void {
    if (from < 0 || from >= this.K || to < 0 || to >= this.K) return;
    const [item] = this.order.splice(from, 1);
    this.order.splice(to, 0, item!);
    // the focus stays on the completion it was on: the moved one, or one the move shifted by a place
    if (this.focus === from) this.focus = to;
    else if (from < this.focus && this.focus <= to) this.focus--;
    else if (to <= this.focus && this.focus < from) this.focus++;
    this.tied[0] = false;
  }

  /** Keyboard move of the focused completion by one place, the focus following it. */
  move(delta: -1 | 1): void {
    this.moveTo(this.focus, Math.min(this.K - 1, Math.max(0, this.focus + delta)));
  }

  /** Ties (or unties) the focused completion with the one above it. */
  toggleTie(): void {
    if (this.focus > 0) this.tied[this.focus] = !this.tied[this.focus];
  }

  setScore(completion: number, score: number | null): void {
    if (score !== null && !isQualityScore(score)) throw new Error(`a quality score is 1 to 7, got ${score}`);
    this.scores[completion] = score;
  }

  toggleFlag(completion: number, flag: FlagId): void {
    const f = this.flags[completion]!;
    if (f.has(flag)) f.delete(flag);
    else f.add(flag);
  }

  /** Rank of each position: 0 for the best, equal for ties. */
  ranksByPosition(): number[] {
    const r: number[] = [];
    this.order.forEach((_, p) => r.push(p > 0 && this.tied[p] ? r[p - 1]! : p === 0 ? 0 : r[p - 1]! + 1));
    return r;
  }

  /** Pairs the ranking gives the reward model: K(K-1)/2 minus tied pairs (for the comparisons counter). */
  comparisons(): number {
    return rankingPairs(this.K, this.ranksByPosition()).length;
  }

  /**
   * The keyboard: Up/Down (or k/j) move the focus; with Alt (or Shift) they move the completion; '=' ties it
   * with the one above; 1-7 scores it, 0 clears; the letters of FLAGS toggle its metadata; 'r' opens the
   * reason; Enter submits; Escape skips the prompt.
   */
  handleKey(key: string, mods: { alt?: boolean; shift?: boolean } = {}): RankAction {
    const carry = mods.alt || mods.shift;
    if (key === 'ArrowUp' || key === 'k' || key === 'K') {
      if (carry) this.move(-1);
      else this.focus = Math.max(0, this.focus - 1);
      return carry ? 'move' : 'focus';
    }
    if (key === 'ArrowDown' || key === 'j' || key === 'J') {
      if (carry) this.move(1);
      else this.focus = Math.min(this.K - 1, this.focus + 1);
      return carry ? 'move' : 'focus';
    }
    if (key === '=') return (this.toggleTie(), 'tie');
    if (/^[0-7]$/.test(key)) return (this.setScore(this.order[this.focus]!, key === '0' ? null : Number(key)), 'score');
    const flag = FLAGS.find((f) => f.key === key);
    if (flag) return (this.toggleFlag(this.order[this.focus]!, flag.id), 'flag');
    if (key.toLowerCase() === RATIONALE_KEY) return 'rationale';
    if (key === 'Enter') return 'submit';
    if (key === 'Escape') return 'skip';
    return 'none';
  }

  /** The record the store keeps and the JSONL export writes: completions best first with their ranks. */
  toRecord(): Omit<RankingRecord, 'createdAt'> {
    const ranks = this.ranksByPosition(),
      why = this.rationale.trim();
    return {
      prompt: this.prompt,
      completions: this.order.map((i) => this.completions[i]!),
      ranks,
      scores: this.order.map((i) => this.scores[i]!),
      flags: this.order.map((i) => [...this.flags[i]!]),
      ...(why ? { rationale: why } : {}),
    };
  }
}
