// Self-consistency: now and then (1 in N, the user sets N) the Rank tab shows an earlier comparison
// again, its completions in a new order, and keeps the second judgement on the first record (`recheck`):
// not a second record, so nothing is trained on or exported twice. How often the two agree is the labeler's
// agreement with themselves, shown on the Data tab next to InstructGPT's inter-labeler agreement.
//
// Agreement is counted per pair of completions: the same one better, or neither (a tie, or both bad) both
// times. Each repeat is one trial (the fraction of its pairs that agree: pairs of one ranking are not
// independent), and the interval is Wilson's over the repeats.
import type { RankingRecord } from '../store/db.ts';
import { wilson, type Interval } from './compare-math.ts';

/** InstructGPT (Ouyang et al. 2022, section 3.4): training labelers agreed with each other 72.6 ± 1.5% of the time. */
export const INSTRUCTGPT_AGREEMENT = 0.726;

export const DEFAULT_RECHECK_EVERY = 10;
const RECHECK_KEY = 'rlhf-playground:recheck-every';
type Kv = Pick<Storage, 'getItem' | 'setItem'> | undefined;

/** 1 in N rankings is a repeat; 0 turns repeats off. */
export function loadRecheckEvery(kv: Kv): number {
  const v = kv?.getItem(RECHECK_KEY);
  const n = v === null || v === undefined ? NaN : Number(v);
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_RECHECK_EVERY;
}

export function saveRecheckEvery(kv: Kv, n: number): void {
  kv?.setItem(RECHECK_KEY, String(n));
}

/** Rankings saved since that are not repeated yet: a comparison just made is still remembered, not judged anew. */
export const RECHECK_GAP = 3;

/**
 * The earlier comparison to repeat now, or undefined: with chance 1 in `every`, one at random of those of
 * this mode (pairwise verdicts or K-way rankings) not repeated yet and not among the last RECHECK_GAP saved.
 */
export function pickRecheck(
  rankings: readonly RankingRecord[],
  pairwise: boolean,
  every: number,
  random: () => number = Math.random,
): RankingRecord | undefined {
  if (every < 1 || random() >= 1 / every) return undefined;
  const older = rankings.slice(0, Math.max(0, rankings.length - RECHECK_GAP));
  const fit = older.filter((r) => r.id !== undefined && !r.recheck && (r.verdict !== undefined) === pairwise);
  return fit.length ? fit[Math.floor(random() * fit.length)] : undefined;
}

/** A new order of K items (a permutation unlike the identity, so every repeat is shown differently). */
export function newOrder(K: number, random: () => number = Math.random): number[] {
  const p = Array.from({ length: K }, (_, i) => i);
  do {
    for (let i = K - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
  } while (p.every((x, i) => x === i));
  return p;
}

/**
 * A K-way repeat's ranks in the first record's completion order: `shownAs[c]` is the record's completion
 * that was shown c-th; `order` and `ranks` are the repeat's (RankingState's order, best first, and the rank of
 * each position).
 */
export function ranksInRecordOrder(shownAs: readonly number[], order: readonly number[], ranks: readonly number[]): number[] {
  const out: number[] = [];
  order.forEach((c, p) => (out[shownAs[c]!] = ranks[p]!));
  return out;
}

/**
 * A repeat's ranks after the record was edited as a ranking, which saves its completions in the new order:
 * `order[p]` is the old index of the completion now at p.
 */
export function recheckReordered(recheck: NonNullable<RankingRecord['recheck']>, order: readonly number[]): NonNullable<RankingRecord['recheck']> {
  return { ...recheck, ranks: order.map((i) => recheck.ranks[i]!) };
}

/** Sign of each pair's judgement (i < j): -1 when i is better, 1 when j is, 0 for neither. */
function judgements(ranks: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < ranks.length; i++) for (let j = i + 1; j < ranks.length; j++) out.push(Math.sign(ranks[i]! - ranks[j]!));
  return out;
}

/** The fraction of a repeated comparison's pairs judged alike both times; undefined when it was not repeated. */
export function agreementOf(r: Pick<RankingRecord, 'ranks' | 'recheck'>): number | undefined {
  if (!r.recheck) return undefined;
  const a = judgements(r.ranks),
    b = judgements(r.recheck.ranks);
  return a.filter((x, i) => x === b[i]).length / a.length;
}

/** The labeler's agreement with themselves over every repeat, with its 95% interval; undefined before the first repeat. */
export function selfAgreement(
  rankings: readonly Pick<RankingRecord, 'ranks' | 'recheck'>[],
): { repeats: number; rate: number; interval: Interval } | undefined {
  const each = rankings.map(agreementOf).filter((x): x is number => x !== undefined);
  const sum = each.reduce((s, x) => s + x, 0);
  const interval = wilson(sum, each.length);
  return interval && { repeats: each.length, rate: sum / each.length, interval };
}

const pct = (x: number) => `${Math.round(x * 100)}%`;

/** The Data tab's line: the agreement with its interval, beside InstructGPT's figure for context. */
export function agreementText(rankings: readonly Pick<RankingRecord, 'ranks' | 'recheck'>[], every: number): string {
  const a = selfAgreement(rankings);
  const context = `For context, InstructGPT's labelers agreed with each other ${(INSTRUCTGPT_AGREEMENT * 100).toFixed(1)}% of the time (±1.5%).`;
  if (!a) {
    const how = every > 0 ? `the Rank tab shows about 1 in ${every} comparisons again, in a new order` : 'repeats are off on the Rank tab';
    return `Agreement with yourself: not measured yet (${how}). ${context}`;
  }
  return `Agreement with yourself: ${pct(a.rate)} over ${a.repeats} repeat${a.repeats === 1 ? '' : 's'} (95% interval ${pct(a.interval.low)} to ${pct(a.interval.high)}), comparisons judged again in a new order. ${context}`;
}

/** Under a repeated record on the Data tab: how the second judgement compared with the first. */
export function recheckText(r: Pick<RankingRecord, 'ranks' | 'recheck'>): string | undefined {
  const a = agreementOf(r);
  if (a === undefined) return undefined;
  if (r.ranks.length === 2) return `Judged again later, sides swapped: ${a === 1 ? 'the same call' : 'a different call'}.`;
  return `Judged again later in a new order: ${pct(a)} of its pairs alike.`;
}
