// The user's data as records (the `Record` union: one kind per line format below), the one rule set that
// decides whether a value is a record (checkRecord: the importers, the store and the stages all ask it),
// the Rank tab's stored rankings (RankingLabels: their rules and their records), and import and export as
// the JSONL formats TRL's trainers read, plus our K-way ranking line. Pure: runs in browsers and in Node
// (no fs, no network).
//
// Line formats (one JSON object per line; TRL's dataset-formats guide names them):
//   {"prompt": str, "completion": str}                       prompt-completion, standard (SFT)
//   {"messages": [{"role", "content"}, ...]}                 language modeling, conversational (SFT)
//   {"prompt": str, "chosen": str, "rejected": str,          preference with explicit prompt (reward model, DPO);
//    "rationale"?: str, "generation_config"?: {...}}          the Rank tab's decided pairwise verdicts are written so,
//                                                             with the same optional fields as a ranking line (below)
//   {"prompt": str, "completions": [best, ..., worst],       ours: a K-way ranking, 2 <= K <= 9, best first;
//    "ranks"?: [0, ...],                                      optional ranks mark ties (0 = best, equal = tie);
//    "scores"?: [1..7 | null, ...], "flags"?: [[str], ...],   optional labels per completion, in the same order:
//                                                             InstructGPT's 1-7 quality and its Table 3 flags
//                                                             (trainers ignore both; they keep the labelling)
//    "rationale"?: str,                                       optional: why the labeler ranked them so
//    "verdict"?: "tie" | "both-bad",                          optional, K = 2 with "ranks": [0, 0]: a pairwise verdict
//                                                             that decides nothing, the two as good (a tie) or both
//                                                             bad (Chatbot Arena's "both are bad"). It gives no pair:
//                                                             the reward model and DPO drop it, as InstructGPT drops
//                                                             ties; both-bad marks a prompt worth a demonstration
//    "generation_config"?: {"temperature", "top_p",           optional: how the completions were sampled, under
//                           "top_k", "max_new_tokens"},       transformers' GenerationConfig names (generation-config.ts)
//    "selection"?: {"method": "uncertain",                    optional: the Rank tab's active selection chose it, as the
//                   "margin": number >= 0,                    comparison a reward model was least sure of: the score
//                   "reward_model"?: str}}                    margin of the pair shown (pairwise) or the mean margin over
//                                                             the prompt's pairs (K-way), and the reward model's run id;
//                                                             a preference line may carry it too (trainers ignore it)
//   {"prompt": str}                                          prompt-only, standard (PPO's prompts, the Rank tab's)
//   {"prompt": [{"role", "content"}, ...]}                   prompt-only, conversational: formatted with the chat
//                                                             template and its generation prompt, so it must end
//                                                             with a user turn
// A prompt-only line may carry flat metadata beside the prompt ("task", "id": strings, numbers, booleans,
// null), as public datasets and public/prompts/demo.jsonl do; it is ignored and not written back. SFT,
// the reward model and DPO skip prompt-only records; PPO takes the prompt of every record but a chat
// "messages" one (toPrompts).
//
// Also accepted on import (never written): TRL's conversational preference form
//   {"prompt"?: [messages], "chosen": [messages], "rejected": [messages]}
// mapped to a standard preference record when it is single-turn: the prompt (explicit, or implicit =
// the turns chosen and rejected share before their final turn) must be exactly one user message, and
// chosen / rejected must end in an assistant turn, whose content becomes the chosen / rejected text.
// Anything longer (system prompts, multi-turn context) is reported as unsupported rather than
// flattened into a string, which would silently change what the model is trained on.
//
// A record in memory or in the store is the line's object with its `kind` ({"kind": "completion", "prompt",
// "completion"}), nothing else: a prompt is {"kind": "prompt", "prompt"}, never a demonstration with an
// empty completion.
//
// Import is for untrusted files: every line is checked, a bad line is reported as `file:line: problem`
// (1-based line numbers) and every good line is kept. Parsing uses parseJsonStrict (duplicate keys
// are errors, objects have null prototypes, nesting is bounded). Strings are kept verbatim: nothing is
// interpreted as HTML or trimmed.

import { generationConfigProblem, type GenerationConfig } from './generation-config.ts';
import { isJsonObject, JsonSyntaxError, parseJsonStrict, type JsonObject, type JsonValue } from './json-strict.ts';

export type Message = { role: 'system' | 'user' | 'assistant'; content: string };
/** TRL's "prompt": text, or a conversation (conversational format). */
export type Prompt = string | Message[];
export type Record =
  | { kind: 'prompt'; prompt: Prompt }
  | { kind: 'completion'; prompt: string; completion: string }
  | { kind: 'messages'; messages: Message[] }
  | {
      kind: 'preference';
      prompt: string;
      chosen: string;
      rejected: string;
      rationale?: string;
      generation_config?: Partial<GenerationConfig>;
      selection?: Selection;
    }
  | {
      kind: 'ranking';
      prompt: string;
      completions: string[];
      ranks?: number[];
      scores?: (number | null)[];
      flags?: string[][];
      rationale?: string;
      generation_config?: Partial<GenerationConfig>;
      verdict?: Undecided;
      selection?: Selection;
    };

/**
 * How a comparison came to be shown (the Rank tab's active selection): 'uncertain', a reward model was
 * least sure of it. `margin`: the |score difference| of the pair shown (pairwise mode), or the mean over the
 * prompt's pairs of completions (K-way mode); `reward_model`: the reward-model run that scored them.
 */
export interface Selection {
  method: 'uncertain';
  margin: number;
  reward_model?: string;
}

/** Why `v` is not a Selection; undefined when it is. */
export function selectionProblem(v: unknown): string | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v))
    return '"selection" must be an object {"method": "uncertain", "margin": number, "reward_model"?: string}';
  const o = v as { [k: string]: unknown };
  for (const k of Object.keys(o))
    if (!['method', 'margin', 'reward_model'].includes(k)) return `"selection" has an unknown key ${JSON.stringify(k)} (allowed: method, margin, reward_model)`;
  if (o.method !== 'uncertain') return `"selection"."method" must be "uncertain", got ${JSON.stringify(o.method)}`;
  if (typeof o.margin !== 'number' || !Number.isFinite(o.margin) || o.margin < 0)
    return `"selection"."margin" must be a number >= 0, got ${JSON.stringify(o.margin)}`;
  if (o.reward_model !== undefined && typeof o.reward_model !== 'string')
    return `"selection"."reward_model" must be a string, got ${JSON.stringify(o.reward_model)}`;
  return undefined;
}

/**
 * A pairwise verdict (the Rank tab's A / B mode, Chatbot Arena's four buttons): the completion shown as A
 * is better, the one shown as B, they tie, or both are bad.
 */
export const VERDICTS = ['a', 'b', 'tie', 'both-bad'] as const;
export type Verdict = (typeof VERDICTS)[number];
/** The verdicts that prefer neither completion: a ranking line keeps them ("verdict"); the others are preference lines. */
export type Undecided = Extract<Verdict, 'tie' | 'both-bad'>;
export const isUndecided = (v: unknown): v is Undecided => v === 'tie' || v === 'both-bad';

/**
 * The ranks a pairwise verdict gives the two completions (in their stored order), `shown` naming the
 * completions shown as A and B: the better one 0, the other 1; equal (no pair) for a tie or both bad.
 */
export function verdictRanks(verdict: Verdict, shown: readonly [number, number]): number[] {
  const ranks = [0, 0];
  if (verdict === 'a') ranks[shown[1]] = 1;
  if (verdict === 'b') ranks[shown[0]] = 1;
  return ranks;
}

/** `errors[].line` is 1-based; 0 marks a problem with the whole file (e.g. its size). */
export interface ImportResult {
  records: Record[];
  errors: { line: number; message: string }[];
}

export type SftRow = { prompt: string; completion: string } | { messages: Message[] };
export type PreferencePair = { prompt: string; chosen: string; rejected: string };

export const MAX_LINE_CHARS = 1_000_000;
export const MAX_FILE_BYTES = 200 * 1024 * 1024;
export const MIN_RANKING = 2;
export const MAX_RANKING = 9;

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant']);
const q = JSON.stringify;

/** The highest quality score: InstructGPT's 1-7 Likert scale. */
export const MAX_SCORE = 7;
/** A quality score: an integer 1..MAX_SCORE (the rank view, stored rankings, spot checks and the JSONL line share this rule). */
export const isQualityScore = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= MAX_SCORE;

// ---- the one rule set ----
//
// Whether a value is a record of one of the kinds above is decided here, by checkRecord, for every way a
// record comes in: a JSONL line (importJsonl maps the line to a record, then checks it), the store (the
// user's dataset and a run's snapshot of its data, when saved and when read back; a stored ranking's
// labels, checkRankingLabels, through the same rules), the stages that train on records (src/train), and
// the export (exportJsonl). A problem is a RecordError whose message says what is wrong; the caller adds
// where (`file:line: `, `dataset "user", record 3: `).

/** A record, or a stored ranking, that breaks the rules: the message names the problem. */
export class RecordError extends Error {
  override name = 'RecordError';
}
function bad(msg: string): never {
  throw new RecordError(msg);
}

type Obj = { readonly [k: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const typeName = (v: unknown): string =>
  v === undefined ? 'nothing' : v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;

/** The fields of each kind of record besides `kind`: what its JSONL line may hold (in the order it is written). */
const FIELDS = {
  prompt: ['prompt'],
  completion: ['prompt', 'completion'],
  messages: ['messages'],
  preference: ['prompt', 'chosen', 'rejected', 'rationale', 'generation_config', 'selection'],
  ranking: ['prompt', 'completions', 'ranks', 'scores', 'flags', 'rationale', 'generation_config', 'verdict', 'selection'],
} as const satisfies { readonly [K in Record['kind']]: readonly string[] };
const KINDS = Object.keys(FIELDS) as Record['kind'][];
const WHAT: { readonly [K in Record['kind']]: string } = {
  prompt: 'a prompt-only record',
  completion: 'a completion record',
  messages: 'a messages record',
  preference: 'a preference record',
  ranking: 'a ranking record',
};

function onlyKeys(o: Obj, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) bad(`unknown key ${q(k)} in ${what} (allowed: ${allowed.join(', ')})`);
}

function str(o: Obj, key: string, where = ''): string {
  const v = o[key];
  if (v === undefined) bad(`missing ${q(key)}${where}`);
  if (typeof v !== 'string') bad(`${q(key)}${where} must be a string, got ${typeName(v)}`);
  return v as string;
}

function messageList(v: unknown, key: string): Message[] {
  if (!Array.isArray(v)) return bad(`${q(key)} must be an array of messages, got ${typeName(v)}`);
  if (v.length === 0) bad(`${q(key)} must hold at least one message`);
  return v.map((m: unknown, i) => {
    const where = ` in ${key}[${i}]`;
    if (!isObj(m)) return bad(`${key}[${i}] must be an object, got ${typeName(m)}`);
    onlyKeys(m, ['role', 'content'], `${key}[${i}]`);
    const role = str(m, 'role', where);
    if (!ROLES.has(role)) bad(`bad role ${q(role)}${where} (allowed: system, user, assistant)`);
    return { role: role as Message['role'], content: str(m, 'content', where) };
  });
}

/** A prompt-only record's prompt: non-empty text, or a conversation ending with the user's turn. */
function promptValue(p: unknown): Prompt {
  if (Array.isArray(p)) {
    const prompt = messageList(p, 'prompt');
    // the generation prompt opens the assistant's turn, which answers the last user turn
    const last = prompt.at(-1)!;
    if (last.role !== 'user') bad(`a conversational prompt must end with a user turn, got role ${q(last.role)}`);
    return prompt;
  }
  if (typeof p !== 'string') bad(`"prompt" must be a string or a list of messages, got ${typeName(p)}`);
  if ((p as string).trim() === '') bad('"prompt" is empty');
  return p as string;
}

/** K completions (MIN_RANKING..MAX_RANKING strings), listed best first: optional ranks, 0 first, never decreasing. */
function rankingOrder(completions: unknown, ranks: unknown): { completions: string[]; ranks?: number[] } {
  if (!Array.isArray(completions)) return bad(`"completions" must be an array of strings, got ${typeName(completions)}`);
  if (ranks !== undefined && !Array.isArray(ranks)) return bad(`"ranks" must be an array of integers, got ${typeName(ranks)}`);
  const k = completions.length;
  if (k < MIN_RANKING || k > MAX_RANKING) bad(`a ranking needs ${MIN_RANKING} to ${MAX_RANKING} completions, got ${k}`);
  completions.forEach((c: unknown, i) => {
    if (typeof c !== 'string') bad(`completions[${i}] must be a string, got ${typeName(c)}`);
  });
  if (ranks === undefined) return { completions: [...completions] as string[] };
  if (ranks.length !== k) bad(`"ranks" has ${ranks.length} entries but there are ${k} completions`);
  ranks.forEach((r: unknown, i) => {
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 0) bad(`ranks[${i}] must be an integer >= 0, got ${q(r)}`);
    if (i === 0 && r !== 0) bad('ranks[0] must be 0 (completions are listed best first)');
    if (i > 0 && r < (ranks[i - 1] as number))
      bad(`ranks must not decrease (completions are listed best to worst): ranks[${i}] = ${r} < ranks[${i - 1}] = ${q(ranks[i - 1])}`);
  });
  return { completions: [...completions] as string[], ranks: [...ranks] as number[] };
}

function rankingScores(v: unknown, k: number): (number | null)[] {
  if (!Array.isArray(v)) return bad(`"scores" must be an array of integers 1-${MAX_SCORE} or null, got ${typeName(v)}`);
  if (v.length !== k) bad(`"scores" has ${v.length} entries but there are ${k} completions`);
  return v.map((x: unknown, i) => {
    if (x !== null && !isQualityScore(x)) bad(`scores[${i}] must be an integer 1-${MAX_SCORE} or null, got ${q(x)}`);
    return x as number | null;
  });
}

function rankingFlags(v: unknown, k: number): string[][] {
  if (!Array.isArray(v)) return bad(`"flags" must be an array (one list of flag names per completion), got ${typeName(v)}`);
  if (v.length !== k) bad(`"flags" has ${v.length} entries but there are ${k} completions`);
  return v.map((f: unknown, i) => {
    if (!Array.isArray(f)) return bad(`flags[${i}] must be an array of flag names, got ${typeName(f)}`);
    f.forEach((x: unknown, j) => {
      if (typeof x !== 'string' || !/^[a-z][a-z0-9-]{0,39}$/.test(x))
        bad(`flags[${i}][${j}] must be a flag name such as "hallucination" (lower case, digits and '-'), got ${q(x)}`);
      if (f.indexOf(x) !== j) bad(`flags[${i}] names ${q(x)} twice`);
    });
    return [...f] as string[];
  });
}

/** A plain copy of a selection, keys in a fixed order. */
const copySelection = (x: Selection): Selection => ({
  method: x.method,
  margin: x.margin,
  ...(x.reward_model === undefined ? {} : { reward_model: x.reward_model }),
});

/** The labelling a ranking or preference record may carry: why (the rationale), how its completions were sampled, and how it was chosen. */
function labels(v: Obj, rec: Extract<Record, { kind: 'ranking' | 'preference' }>): void {
  if (v.rationale !== undefined) rec.rationale = str(v, 'rationale');
  if (v.generation_config !== undefined) {
    const problem = generationConfigProblem(v.generation_config);
    if (problem) bad(problem);
    rec.generation_config = { ...(v.generation_config as Partial<GenerationConfig>) };
  }
  if (v.selection !== undefined) {
    const problem = selectionProblem(v.selection);
    if (problem) bad(problem);
    rec.selection = copySelection(v.selection as Selection);
  }
}

/** Fields set to undefined are absent (a record built in code may spell an unset option so). */
const defined = (v: Obj): Obj => Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined));

/**
 * The one rule set: `v` as a record of its `kind`, or a RecordError naming the problem. Checks the keys
 * (the kind's fields, nothing else), each field's type and range, and the rules between fields (a
 * ranking's K, ranks, scores and flags per completion, a verdict's pair), and returns a plain copy with its
 * keys in a fixed order: what the store keeps and the stages train on.
 */
export function checkRecord(value: unknown): Record {
  if (!isObj(value)) return bad(`a record must be an object, got ${typeName(value)}`);
  const kind = value.kind;
  if (typeof kind !== 'string' || !(KINDS as string[]).includes(kind))
    return bad(`"kind" must be one of ${KINDS.map((k) => q(k)).join(', ')}, got ${q(kind) ?? 'nothing'}`);
  const k = kind as Record['kind'];
  const v = defined(value);
  onlyKeys(v, ['kind', ...FIELDS[k]], WHAT[k]);
  switch (k) {
    case 'prompt':
      return { kind: 'prompt', prompt: promptValue(v.prompt) };
    case 'completion':
      return { kind: 'completion', prompt: str(v, 'prompt'), completion: str(v, 'completion') };
    case 'messages':
      return { kind: 'messages', messages: messageList(v.messages, 'messages') };
    case 'preference': {
      const rec: Record = { kind: 'preference', prompt: str(v, 'prompt'), chosen: str(v, 'chosen'), rejected: str(v, 'rejected') };
      labels(v, rec);
      return rec;
    }
    case 'ranking': {
      const prompt = str(v, 'prompt');
      const { completions, ranks } = rankingOrder(v.completions, v.ranks);
      const rec: Record = { kind: 'ranking', prompt, completions, ...(ranks ? { ranks } : {}) };
      if (v.scores !== undefined) rec.scores = rankingScores(v.scores, completions.length);
      if (v.flags !== undefined) rec.flags = rankingFlags(v.flags, completions.length);
      if (v.verdict !== undefined) {
        if (!isUndecided(v.verdict))
          bad(`"verdict" must be "tie" or "both-bad" (a decided pair is a {"prompt","chosen","rejected"} line), got ${q(v.verdict)}`);
        if (completions.length !== 2 || ranks?.[0] !== 0 || ranks[1] !== 0)
          bad('a "verdict" belongs to a pair whose two completions tie: 2 completions with "ranks": [0, 0]');
        rec.verdict = v.verdict;
      }
      labels(v, rec);
      return rec;
    }
  }
}

/** `fn()`, or its RecordError again with `where` in front (`<where>: <problem>`): how callers name what was refused. */
export function naming<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof RecordError) throw new RecordError(`${where}: ${e.message}`);
    throw e;
  }
}

/** checkRecord over a list: the plain copies, or a RecordError `<where>, record <n>: <problem>` (n from 1). */
export function checkRecords(values: readonly unknown[], where: string): Record[] {
  if (!Array.isArray(values)) bad(`${where}: the records must be a list, got ${typeName(values)}`);
  return values.map((v, i) => naming(`${where}, record ${i + 1} of ${values.length}`, () => checkRecord(v)));
}

// ---- the Rank tab's rankings, as the store keeps them ----

/**
 * A ranking as the Rank tab makes it and the store keeps it (src/store/db.ts's RankingRecord adds its id and
 * times): the completions in the order they were drawn, with a rank each, and what labels them. Its JSONL
 * line (and what trains on it) is rankingToRecord's.
 */
export interface RankingLabels {
  prompt: string;
  completions: string[]; // K = 2..9
  ranks: number[]; // per completion, 0 = best; equal ranks are ties
  scores?: (number | null)[]; // per completion, 1..7 (Likert), null = not scored
  flags?: string[][]; // per completion, e.g. ['hallucination', 'fails-instruction']
  /** why the labeler ranked them so (optional; a record imported or made before it existed has none) */
  rationale?: string;
  /** how the completions were sampled (transformers' names); none for completions given to rank (PPO's rollouts) and for rankings saved before it was recorded */
  generation_config?: Partial<GenerationConfig>;
  /** a pairwise judgement (the Rank tab's A / B mode; K = 2, completions as drawn): its ranks follow from it */
  verdict?: Verdict;
  /** with a verdict: the completions shown as A and B (drawn in random order, so the side is known for each verdict) */
  shown?: [number, number];
  /**
   * The same comparison judged again later, its completions shown in a new order (the Rank tab's
   * self-consistency check): the ranks it got then, per completion in this record's order, and for a pair
   * the verdict and sides of that time. Kept here, not as a second record, so nothing trains or exports twice.
   */
  recheck?: { ranks: number[]; verdict?: Verdict; shown?: [number, number]; createdAt: number };
  /** the Rank tab's active selection chose it: the comparison a reward model was least sure of (exported as the line's "selection") */
  selection?: Selection;
}

/**
 * A stored ranking's rules, or a RecordError naming the problem. What it shares with a ranking record (the
 * prompt, K completions, their scores and flags, the rationale, the sampling settings, the selection) is
 * checkRecord's to decide; its own are the ranks in the drawn order (one per completion, 0..K-1) and a
 * pairwise verdict, which the ranks must say, with the sides it was shown on; a repeat by the same rules.
 */
export function checkRankingLabels(r: RankingLabels): void {
  if (!isObj(r)) bad(`a ranking must be an object, got ${typeName(r)}`);
  const { prompt, completions, scores, flags, rationale, generation_config, selection } = r;
  checkRecord({ kind: 'ranking', prompt, completions, scores, flags, rationale, generation_config, selection });
  const K = completions.length;
  if (!Array.isArray(r.ranks) || r.ranks.length !== K || !r.ranks.every((x) => Number.isInteger(x) && x >= 0 && x < K))
    throw new RecordError(`ranks must be ${K} integers in 0..${K - 1}`);
  if (r.verdict !== undefined || r.shown !== undefined) {
    const s = r.shown;
    if (!VERDICTS.includes(r.verdict!)) bad(`a pairwise verdict is one of ${VERDICTS.join(', ')}, got ${q(r.verdict)}`);
    if (K !== 2 || !Array.isArray(s) || s.length !== 2 || !((s[0] === 0 && s[1] === 1) || (s[0] === 1 && s[1] === 0)))
      bad('a pairwise verdict has 2 completions and the order they were shown in ([0, 1] or [1, 0])');
    if (verdictRanks(r.verdict!, s).some((x, i) => x !== r.ranks[i])) bad(`ranks ${q(r.ranks)} do not say what the verdict "${r.verdict}" says`);
  }
  if (r.recheck !== undefined) {
    if (!isObj(r.recheck)) bad(`a repeat must be an object, got ${typeName(r.recheck)}`);
    const { ranks, verdict, shown, createdAt } = r.recheck;
    if (!Number.isFinite(createdAt)) bad('a repeat has the time it was made');
    try {
      checkRankingLabels({ prompt, completions, ranks, ...(verdict === undefined ? {} : { verdict }), ...(shown === undefined ? {} : { shown }) });
    } catch (e) {
      if (e instanceof RecordError) bad(`the repeat: ${e.message}`);
      throw e;
    }
  }
}

/**
 * A stored ranking as a JSONL ranking record: completions best first (stable within a tie) with dense
 * ranks from 0, the order the format requires; "ranks" only when there are ties. The 1-7 scores and
 * Table 3 flags go along in the same order, each only when the user set one, and so do the rationale and
 * the sampling settings the completions were drawn with (`generation_config`) and, when active selection
 * chose it, how (`selection`), so an export keeps all the labelling and importing it gives the same record.
 *
 * A pairwise verdict that decides (A or B better) is TRL's {"prompt","chosen","rejected"} line, with the
 * reason and the sampling settings; a tie or "both bad" is a ranking line of the two, tied, with its
 * "verdict". The side each completion was shown on stays in the store (it matters to the labeler's
 * consistency, not to a trainer).
 */
export function rankingToRecord(
  r: Pick<RankingLabels, 'prompt' | 'completions' | 'ranks' | 'scores' | 'flags' | 'rationale' | 'generation_config' | 'verdict' | 'selection'>,
): Extract<Record, { kind: 'ranking' | 'preference' }> {
  if (r.verdict === 'a' || r.verdict === 'b') {
    const win = r.ranks[0]! <= r.ranks[1]! ? 0 : 1;
    const pref: Extract<Record, { kind: 'preference' }> = {
      kind: 'preference',
      prompt: r.prompt,
      chosen: r.completions[win]!,
      rejected: r.completions[1 - win]!,
    };
    if (r.rationale?.trim()) pref.rationale = r.rationale;
    if (r.generation_config) pref.generation_config = { ...r.generation_config };
    if (r.selection) pref.selection = { ...r.selection };
    return pref;
  }
  const rank = (k: number) => r.ranks[k] ?? k;
  const order = r.completions.map((_, i) => i).sort((a, b) => rank(a) - rank(b) || a - b);
  const ranks: number[] = [];
  let dense = 0;
  order.forEach((k, p) => {
    if (p > 0 && rank(k) !== rank(order[p - 1]!)) dense++;
    ranks.push(dense);
  });
  const rec: Extract<Record, { kind: 'ranking' }> = { kind: 'ranking', prompt: r.prompt, completions: order.map((k) => r.completions[k]!) };
  if (ranks.some((x, p) => x !== p)) rec.ranks = ranks;
  if (r.scores?.some((x) => x !== null && x !== undefined)) rec.scores = order.map((k) => r.scores![k] ?? null);
  if (r.flags?.some((f) => f?.length)) rec.flags = order.map((k) => [...(r.flags![k] ?? [])]);
  if (r.rationale?.trim()) rec.rationale = r.rationale;
  if (r.generation_config) rec.generation_config = { ...r.generation_config };
  if (isUndecided(r.verdict)) rec.verdict = r.verdict;
  if (r.selection) rec.selection = { ...r.selection };
  return rec;
}

// ---- JSONL lines ----

/** TRL's conversational preference row, single-turn only (see the header). */
function conversationalPreference(o: JsonObject): Record {
  const chosen = messageList(o.chosen, 'chosen');
  const rejected = messageList(o.rejected, 'rejected');
  let prompt: Message[];
  let chosenTurn: Message;
  let rejectedTurn: Message;
  if (o.prompt !== undefined) {
    prompt = messageList(o.prompt, 'prompt');
    if (chosen.length !== 1 || rejected.length !== 1) bad('with an explicit "prompt", "chosen" and "rejected" must each be a single assistant message');
    chosenTurn = chosen[0]!;
    rejectedTurn = rejected[0]!;
  } else {
    prompt = chosen.slice(0, -1);
    const other = rejected.slice(0, -1);
    if (prompt.length === 0) bad('conversational "chosen" has no prompt turn before its answer (add a "prompt")');
    if (q(prompt) !== q(other)) bad('"chosen" and "rejected" do not share the same turns before their final answer');
    chosenTurn = chosen.at(-1)!;
    rejectedTurn = rejected.at(-1)!;
  }
  if (chosenTurn.role !== 'assistant') bad(`the final "chosen" turn must be an assistant message, got role ${q(chosenTurn.role)}`);
  if (rejectedTurn.role !== 'assistant') bad(`the final "rejected" turn must be an assistant message, got role ${q(rejectedTurn.role)}`);
  if (prompt.length !== 1 || prompt[0]!.role !== 'user') {
    bad('only single-turn conversational preferences (the prompt is one user message) can be imported; system or multi-turn prompts are not supported');
  }
  return checkRecord({ kind: 'preference', prompt: prompt[0]!.content, chosen: chosenTurn.content, rejected: rejectedTurn.content });
}

/** TRL's prompt-only line (see the header); `o` has "prompt" and none of the other kinds' keys. */
function promptOnly(o: JsonObject): Record {
  const rec = checkRecord({ kind: 'prompt', prompt: o.prompt });
  for (const [k, x] of Object.entries(o)) {
    if (k !== 'prompt' && x !== null && typeof x === 'object')
      bad(`${q(k)} must be a string, number, boolean or null (a prompt-only line is {"prompt"} with optional flat metadata)`);
  }
  return rec;
}

/** A line of one kind: its keys are the kind's fields (the line has no "kind"), then the record's rules. */
function lineOf(kind: Exclude<Record['kind'], 'prompt'>, v: JsonObject): Record {
  onlyKeys(v, FIELDS[kind], WHAT[kind]);
  return checkRecord({ kind, ...v });
}

/** One parsed line as a Record (its kind told by its keys), checked by checkRecord; throws RecordError. */
function toRecord(v: JsonValue): Record {
  if (!isJsonObject(v)) return bad(`each line must be a JSON object, got ${typeName(v)}`);
  const has = (k: string) => Object.hasOwn(v, k);
  if (has('messages')) return lineOf('messages', v);
  if (has('completions')) return lineOf('ranking', v);
  if (has('chosen') || has('rejected')) {
    if (Array.isArray(v.chosen) || Array.isArray(v.rejected)) {
      onlyKeys(v, ['prompt', 'chosen', 'rejected'], 'a conversational preference record');
      return conversationalPreference(v);
    }
    return lineOf('preference', v);
  }
  if (has('completion')) return lineOf('completion', v);
  if (has('prompt') && !has('ranks')) return promptOnly(v); // "ranks" without "completions": a broken ranking
  const keys = Object.keys(v);
  return bad(
    `not a known record shape (keys: ${keys.length ? keys.map((k) => q(k)).join(', ') : 'none'}); expected ` +
      '{"prompt","completion"}, {"messages"}, {"prompt","chosen","rejected"}, {"prompt","completions"[,"ranks","scores","flags","verdict"]} or {"prompt"}',
  );
}

/** UTF-8 length of a string, stopping early once past `limit`. */
function utf8LengthOver(text: string, limit: number): number {
  let n = 0;
  for (let i = 0; i < text.length && n <= limit; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) ((n += 4), i++);
    else n += 3;
  }
  return n;
}

function parseLine(line: string): JsonValue {
  try {
    return parseJsonStrict(line);
  } catch (e) {
    if (e instanceof JsonSyntaxError) bad(`invalid JSON: ${e.message}`);
    throw e;
  }
}

export interface ImportOptions {
  /** A caller's own limit on what it can keep: a reason refuses the record, reported as its line's problem. */
  refuse?: (r: Record) => string | undefined;
}

export function importJsonl(text: string, file: string, opts: ImportOptions = {}): ImportResult {
  const records: Record[] = [];
  const errors: ImportResult['errors'] = [];
  // Cheap bound first (a UTF-16 code unit is 1 to 3 UTF-8 bytes), exact count only when it matters.
  if (text.length > MAX_FILE_BYTES || (text.length * 3 > MAX_FILE_BYTES && utf8LengthOver(text, MAX_FILE_BYTES) > MAX_FILE_BYTES)) {
    errors.push({ line: 0, message: `${file}: file is larger than ${MAX_FILE_BYTES / (1024 * 1024)} MB; split it into smaller files` });
    return { records, errors };
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // byte order mark
  let lineNo = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    let line = text.slice(start, end);
    start = end + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim() === '') continue;
    try {
      if (line.length > MAX_LINE_CHARS) bad(`line is ${line.length} characters long (limit ${MAX_LINE_CHARS})`);
      const r = toRecord(parseLine(line));
      const refused = opts.refuse?.(r);
      if (refused !== undefined) bad(refused);
      records.push(r);
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      errors.push({ line: lineNo, message: `${file}:${lineNo}: ${e.message}` });
    }
  }
  return { records, errors };
}

/** The JSON object a record is written as (keys in a fixed order). */
function toJson(r: Record): object {
  switch (r.kind) {
    case 'prompt':
      return { prompt: typeof r.prompt === 'string' ? r.prompt : r.prompt.map((m) => ({ role: m.role, content: m.content })) };
    case 'completion':
      return { prompt: r.prompt, completion: r.completion };
    case 'messages':
      return { messages: r.messages.map((m) => ({ role: m.role, content: m.content })) };
    case 'preference':
      return {
        prompt: r.prompt,
        chosen: r.chosen,
        rejected: r.rejected,
        ...(r.rationale === undefined ? {} : { rationale: r.rationale }),
        ...(r.generation_config === undefined ? {} : { generation_config: { ...r.generation_config } }),
        ...(r.selection === undefined ? {} : { selection: copySelection(r.selection) }),
      };
    case 'ranking':
      return {
        prompt: r.prompt,
        completions: [...r.completions],
        ...(r.ranks === undefined ? {} : { ranks: [...r.ranks] }),
        ...(r.scores === undefined ? {} : { scores: [...r.scores] }),
        ...(r.flags === undefined ? {} : { flags: r.flags.map((f) => [...f]) }),
        ...(r.rationale === undefined ? {} : { rationale: r.rationale }),
        ...(r.generation_config === undefined ? {} : { generation_config: { ...r.generation_config } }),
        ...(r.verdict === undefined ? {} : { verdict: r.verdict }),
        ...(r.selection === undefined ? {} : { selection: copySelection(r.selection) }),
      };
    default:
      throw new TypeError(`unknown record kind ${q((r as { kind?: unknown }).kind)}`);
  }
}

/**
 * One JSON object per line, '\n'-terminated, in the formats above. Every record is checked by the one rule
 * set (checkRecord) first, and its line read back, so whatever this writes importJsonl reads back; a bad
 * record throws a RangeError naming its index.
 */
export function exportJsonl(records: Record[]): string {
  let out = '';
  records.forEach((r, i) => {
    try {
      const line = q(toJson(checkRecord(r)));
      const back = toRecord(parseJsonStrict(line));
      if (back.kind !== r.kind) bad(`would read back as a ${back.kind} record`);
      out += line + '\n';
    } catch (e) {
      if (e instanceof RecordError) throw new RangeError(`record ${i} (${r.kind}) cannot be exported: ${e.message}`);
      throw e;
    }
  });
  return out;
}

/** SFT rows: completion and messages records as TRL's SFTTrainer reads them; other kinds are skipped. */
export function toSftRows(records: Record[]): SftRow[] {
  const rows: SftRow[] = [];
  for (const r of records) {
    if (r.kind === 'completion') rows.push({ prompt: r.prompt, completion: r.completion });
    else if (r.kind === 'messages') rows.push({ messages: r.messages.map((m) => ({ role: m.role, content: m.content })) });
  }
  return rows;
}

/** (winner, loser) index pairs of a K-way ranking (ranks: 0 = best, equal = tie; default best first); ties give no pair. */
export function rankingPairs(K: number, ranks?: number[]): [number, number][] {
  const r = ranks ?? Array.from({ length: K }, (_, i) => i);
  const pairs: [number, number][] = [];
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) if (r[i]! < r[j]!) pairs.push([i, j]);
  return pairs;
}

/**
 * Preference pairs for TRL's RewardTrainer / DPOTrainer: preference records as they are, and every
 * pair of each ranking with the better completion as "chosen" — K(K-1)/2 pairs for K completions,
 * minus the pairs that tie (equal ranks). Completion and messages records are skipped.
 */
export function toPreferencePairs(records: Record[]): PreferencePair[] {
  const pairs: PreferencePair[] = [];
  for (const r of records) {
    if (r.kind === 'preference') pairs.push({ prompt: r.prompt, chosen: r.chosen, rejected: r.rejected });
    else if (r.kind === 'ranking') {
      for (const [win, lose] of rankingPairs(r.completions.length, r.ranks))
        pairs.push({ prompt: r.prompt, chosen: r.completions[win]!, rejected: r.completions[lose]! });
    }
  }
  return pairs;
}

/**
 * PPO's prompts: prompt-only records, and the prompt of every completion, preference and ranking record
 * (a rankings file serves as prompts too); a chat "messages" record has no prompt of its own.
 */
export function toPrompts(records: Record[]): Prompt[] {
  return records.flatMap((r) => (r.kind === 'messages' ? [] : [r.prompt]));
}

/**
 * The prompt as the text of one user turn, when it is one: a string, or a conversation of a single user
 * message. The two encode alike (Tok.encodePrompt formats a string as that one user turn), so a
 * store that keeps prompts as text (the Data tab's) loses nothing; undefined for a system or multi-turn prompt.
 */
export function promptText(p: Prompt): string | undefined {
  if (typeof p === 'string') return p;
  return p.length === 1 && p[0]!.role === 'user' ? p[0]!.content : undefined;
}

/**
 * The rankings a reward model learns from: those that give at least one pair. A ranking whose completions
 * all tie (a pairwise tie or "both bad") says nothing about which is better and is dropped, as InstructGPT
 * drops ties, instead of taking a place in a batch with no loss.
 */
export function rewardRankings(records: Record[]): Extract<Record, { kind: 'ranking' }>[] {
  return toRankings(records).filter((r) => rankingPairs(r.completions.length, r.ranks).length > 0);
}

/** Rankings as they are (with their ranks, when given); other kinds are skipped. */
export function toRankings(records: Record[]): Extract<Record, { kind: 'ranking' }>[] {
  return records.filter((r): r is Extract<Record, { kind: 'ranking' }> => r.kind === 'ranking');
}
