// The Compare view's arithmetic and bookkeeping, kept out of the element so it runs (and is tested) in
// Node without a DOM: the blind A/B side assignment, a vote's winner, which votes belong to the current
// tuned model, and the win rate with a Wilson score interval.
//
// Why Wilson: with the handful of votes a person gives (5 to 50), the normal approximation
// p +- z sqrt(p(1-p)/n) leaves [0, 1] and collapses to zero width at 0 or n wins; the Wilson interval does
// neither and keeps close to its nominal coverage at small n (Brown, Cai & DasGupta 2001). Ties count half a win, as in
// db.winRate, so the interval is taken at the fractional success count w + t/2 out of n; that is an
// approximation (a tie is not half a Bernoulli trial), stated in the UI as "ties count half".
import { winRate, type VoteRecord } from '../store/db.ts';
import type { PolicyInfo } from '../worker/api.ts';

// The Wilson interval is shared with the experiment's statistics (src/shared/wilson.ts).
import { wilson, type Interval } from '../shared/wilson.ts';
export { wilson, Z95, type Interval } from '../shared/wilson.ts';

/** The side of a blind comparison; the other side is the reference. */
export type Side = 'A' | 'B';
export type Choice = Side | 'tie';

/** Where the tuned answer goes in a blind comparison: a fair coin (`rand` in [0, 1), injectable for tests). */
export const tunedSide = (rand: () => number = Math.random): Side => (rand() < 0.5 ? 'A' : 'B');

/** The VoteRecord winner of the user's choice, given the side the tuned answer was shown on. */
export function winnerOf(choice: Choice, tunedShownAs: Side): VoteRecord['winner'] {
  if (choice === 'tie') return 'tie';
  return choice === tunedShownAs ? 'tuned' : 'reference';
}

/** The reference of every comparison here: the loaded model as it was loaded. */
export const REFERENCE_MODEL = 'base';

/**
 * The VoteRecord.tunedModel name of a policy, as db.ts documents it ('run:<id>' for a run, the adapter's
 * name for an opened adapter); undefined when the policy is the loaded model itself (nothing to compare).
 */
export function tunedModelKey(p: PolicyInfo | undefined): string | undefined {
  if (!p || p.kind === 'base') return undefined;
  if (p.kind === 'run') return p.runId ? `run:${p.runId}` : undefined;
  return p.name;
}

export interface Tally extends ReturnType<typeof winRate> {
  n: number;
  interval?: Interval;
}

/** The tuned model's record (db.winRate) over the votes that compared it with this reference; others are ignored. */
export function tally(
  votes: readonly Pick<VoteRecord, 'winner' | 'tunedModel' | 'referenceModel'>[],
  tunedModel: string,
  referenceModel = REFERENCE_MODEL,
): Tally {
  const mine = votes.filter((v) => v.tunedModel === tunedModel && v.referenceModel === referenceModel);
  const r = winRate(mine);
  const t: Tally = { ...r, n: mine.length };
  const interval = wilson(r.wins + r.ties / 2, mine.length);
  if (interval) t.interval = interval;
  return t;
}

/** What the interval says: better or worse than the reference only when it excludes one half. */
export function verdict(t: Tally): 'better' | 'worse' | 'unclear' | 'none' {
  if (!t.interval) return 'none';
  if (t.interval.low > 0.5) return 'better';
  if (t.interval.high < 0.5) return 'worse';
  return 'unclear';
}

export const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
