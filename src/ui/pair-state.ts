// The state of one pairwise judgement (the Rank tab's A / B mode), kept apart from the DOM like
// RankingState: two completions side by side in a random order, and Chatbot Arena's four verdicts (A is
// better, B is better, tie, both are bad) or a skip. The order shown is kept in the record: a labeler's
// preference for a side (position bias) would otherwise be invisible, and a repeat can swap it.
//
// Keys: ← and → pick the side (a spatial key per column; 'a' is a Table 3 flag in the K-way view, so
// Compare's a/b cannot be used here without one key meaning two things on one tab), 't' ties as in
// Compare's blind vote, 'n' for "neither is good", 'r' writes a reason (both modes), Escape skips.
import { verdictRanks, type Verdict } from '../io/datasets.ts';
import type { RankingRecord } from '../store/db.ts';

export const PAIR_KEYS: readonly { verdict: Verdict; key: string; shown: string; label: string }[] = [
  { verdict: 'a', key: 'ArrowLeft', shown: '←', label: 'A is better' },
  { verdict: 'b', key: 'ArrowRight', shown: '→', label: 'B is better' },
  { verdict: 'tie', key: 't', shown: 't', label: 'Tie' },
  { verdict: 'both-bad', key: 'n', shown: 'n', label: 'Both are bad' },
];

/** The key that opens the one-line reason, in both modes. */
export const RATIONALE_KEY = 'r';

export type PairAction = Verdict | 'rationale' | 'skip' | 'none';

export class PairState {
  /** why (optional, one line) */
  rationale = '';

  /**
   * `completions` as drawn (two); `shown` the completions shown as A and B. `verdict`: the one saved
   * before, when a saved judgement is opened again (the Data tab's edit).
   */
  constructor(
    readonly prompt: string,
    readonly completions: readonly string[],
    readonly shown: [number, number],
    readonly verdict?: Verdict,
  ) {
    if (completions.length !== 2) throw new Error(`a pairwise judgement has 2 completions, got ${completions.length}`);
  }

  /** A new pair, the sides drawn at random. */
  static drawn(prompt: string, completions: readonly string[], random: () => number = Math.random): PairState {
    return new PairState(prompt, completions, random() < 0.5 ? [0, 1] : [1, 0]);
  }

  /** A saved judgement opened again: the same sides, verdict and reason. */
  static fromRecord(r: Pick<RankingRecord, 'prompt' | 'completions' | 'shown' | 'verdict' | 'rationale'>): PairState {
    const s = new PairState(r.prompt, r.completions, r.shown ? [r.shown[0], r.shown[1]] : [0, 1], r.verdict);
    s.rationale = r.rationale ?? '';
    return s;
  }

  /** The text shown on side 0 (A) or 1 (B). */
  side(i: 0 | 1): string {
    return this.completions[this.shown[i]]!;
  }

  handleKey(key: string, mods: { alt?: boolean; ctrl?: boolean; meta?: boolean } = {}): PairAction {
    if (mods.alt || mods.ctrl || mods.meta) return 'none';
    const k = PAIR_KEYS.find((p) => p.key === key || p.key === key.toLowerCase());
    if (k) return k.verdict;
    if (key.toLowerCase() === RATIONALE_KEY) return 'rationale';
    if (key === 'Escape') return 'skip';
    return 'none';
  }

  /** The record the store keeps: completions as drawn, their ranks from the verdict, the sides shown, the reason. */
  toRecord(verdict: Verdict): Omit<RankingRecord, 'createdAt'> {
    const why = this.rationale.trim();
    return {
      prompt: this.prompt,
      completions: [...this.completions],
      ranks: verdictRanks(verdict, this.shown),
      verdict,
      shown: [...this.shown],
      ...(why ? { rationale: why } : {}),
    };
  }
}

/** How a verdict reads on the Data tab. */
export const verdictLabel = (v: Verdict) => PAIR_KEYS.find((p) => p.verdict === v)!.label;
