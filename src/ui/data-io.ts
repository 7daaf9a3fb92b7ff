// The Data view's rules without the DOM (run and tested in Node): what an imported file adds, what the
// counters count, and what the export writes (stored rankings as JSONL lines: rankingToRecord, src/io/datasets.ts).
//
// Import reads every line through importJsonl, whose rules (src/io/datasets.ts) are those of the command
// line and the worker too. A prompt-only line ({"prompt": str}: the shape of public/prompts/demo.jsonl
// and of our prompts export, or TRL's conversational {"prompt": [messages]}) becomes a prompt of the
// store's `prompts` (Rank view, PPO), which keeps a prompt as text: a conversation of one user message is
// that message's text (it encodes the same), and a system or multi-turn prompt is refused on its line.
//
// Nothing is replaced on import: records and prompts already stored (or twice in the file) are
// counted as duplicates and skipped, so importing an export again adds nothing.
import { exportJsonl, importJsonl, promptText, rankingToRecord, toPreferencePairs, type RankingLabels, type Record as DataRecord } from '../io/datasets.ts';
import { stageRecords, type UserData as StageUserData } from '../io/stage-data.ts';
import { decodeText } from '../io/text.ts';
import { ImportError } from '../io/export.ts';
import { unzipFiles, zipFiles } from '../io/zip.ts';
import type { PromptRecord, SpotCheckRecord, VoteRecord } from '../store/db.ts';

export interface ImportedData {
  records: DataRecord[];
  /** prompt-only lines, in file order */
  prompts: string[];
  /** `file:line: problem`, in line order (a whole-file problem has no line) */
  errors: string[];
}

/** Why the store cannot keep a prompt-only record as one of its text prompts; undefined when it can. */
function notTextPrompt(r: DataRecord): string | undefined {
  if (r.kind !== 'prompt') return undefined;
  const text = promptText(r.prompt);
  if (text === undefined)
    return "a system or multi-turn conversational prompt cannot be kept here: the Data tab stores a prompt as one user message (the command line's `ppo --prompts` takes it)";
  return text.trim() === '' ? 'the prompt is empty' : undefined;
}

/** Reads a JSONL file of records and/or prompt lines; a bad line is an error and every good line is kept. */
export function importData(text: string, file: string): ImportedData {
  const r = importJsonl(text, file, { refuse: notTextPrompt });
  const out: ImportedData = { records: [], prompts: [], errors: r.errors.map((e) => e.message) };
  for (const rec of r.records) {
    if (rec.kind === 'prompt') out.prompts.push(promptText(rec.prompt)!);
    else out.records.push(rec);
  }
  return out;
}

/** One string per distinct record: equal records (whatever their key order in the store) give equal keys. */
export function recordKey(r: DataRecord): string {
  switch (r.kind) {
    case 'completion':
      return JSON.stringify(['completion', r.prompt, r.completion]);
    case 'messages':
      return JSON.stringify(['messages', r.messages.map((m) => [m.role, m.content])]);
    case 'preference':
      return JSON.stringify(['preference', r.prompt, r.chosen, r.rejected]);
    case 'ranking':
      return JSON.stringify([
        'ranking',
        r.prompt,
        r.completions,
        r.ranks ?? r.completions.map((_, i) => i),
        r.scores ?? null,
        r.flags ?? null,
        r.verdict ?? null,
      ]);
    default:
      return JSON.stringify(r);
  }
}

/** The items of `incoming` whose key is neither in `existing` nor earlier in `incoming`. */
export function newItems<T>(existing: Iterable<string>, incoming: readonly T[], key: (t: T) => string): { added: T[]; duplicates: number } {
  const seen = new Set(existing);
  const added: T[] = [];
  for (const t of incoming) {
    const k = key(t);
    if (seen.has(k)) continue;
    seen.add(k);
    added.push(t);
  }
  return { added, duplicates: incoming.length - added.length };
}

export interface DataCounts {
  prompts: number;
  demonstrations: number;
  rankings: number;
  comparisons: number;
}

/**
 * The counters, from the records the stages would take now (stageRecords, the policy a run applies):
 * prompts are the store's prompts (the list on this tab); demonstrations are SFT's records; rankings are
 * the reward model's records (the stored rankings, then the imported ranking and preference records); and
 * comparisons the pairs they give it (K(K-1)/2 per ranking minus ties, one per preference). `policy`: the
 * tests' stand-in for stageRecords, to show that every count follows it.
 */
export function dataCounts(d: StageUserData, policy: typeof stageRecords = stageRecords): DataCounts {
  const rm = policy('rm', d);
  return {
    prompts: d.prompts.length,
    demonstrations: policy('sft', d).length,
    rankings: rm.length,
    comparisons: toPreferencePairs(rm).length,
  };
}

/** The export: the user's records then the stored rankings as one JSONL file, the prompts as another. */
export function exportData(
  records: readonly DataRecord[],
  rankings: readonly RankingLabels[],
  prompts: readonly Pick<PromptRecord, 'text'>[],
): { data: string; prompts: string } {
  return {
    data: exportJsonl([...records, ...rankings.map(rankingToRecord)]),
    prompts: prompts.map((p) => JSON.stringify({ prompt: p.text }) + '\n').join(''),
  };
}

/** The first line of a text, cut to `max` characters (for one-line summaries; the full text is a title). */
export function oneLine(text: string, max = 120): string {
  const first = text.split('\n', 1)[0]!;
  return first.length > max || first.length < text.length ? `${first.slice(0, max)}…` : first;
}

/** `1 record`, `2 records`, `1 loss`, `3 losses`. */
export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

// ---------------------------------------------------------------------------------------------
// Everything the user made, in one zip (the Data tab's export and Share's "Download my data"):
//   data.jsonl         demonstrations, imported records and the rankings with their labels (exportData)
//   prompts.jsonl      the prompts, one {"prompt": ...} a line
//   votes.jsonl        the blind A/B votes, as stored (which model won, the two answers, the seed, generation_config)
//   spot-checks.jsonl  the 1-7 scores of PPO rollouts, as stored
//   guidelines.md      the labeling guidelines the rankings were made under (the Rank tab's, as edited)
// Importing the zip on the Data tab adds data.jsonl and prompts.jsonl back (skipping what is there).
// Votes and spot checks name this browser's runs, so they are kept as a record and not imported; so are
// the guidelines, which an import must not silently replace.

export const DATA_BUNDLE = 'rlhf-playground-data';
const BUNDLE_DATA = ['data.jsonl', 'prompts.jsonl'] as const;
const BUNDLE_RECORD_ONLY = ['votes.jsonl', 'spot-checks.jsonl', 'guidelines.md'] as const;

export interface UserData {
  records: readonly DataRecord[];
  rankings: readonly RankingLabels[];
  prompts: readonly Pick<PromptRecord, 'text'>[];
  votes: readonly VoteRecord[];
  spotChecks: readonly SpotCheckRecord[];
  /** the labeling guidelines (Markdown) */
  guidelines?: string;
}

/** The zip's bytes, files in a folder named DATA_BUNDLE; undefined when there is nothing to export (guidelines alone are not data). */
export function dataBundle(d: UserData, opts: { mtime?: Date | number } = {}): Uint8Array | undefined {
  const { data, prompts } = exportData(d.records, d.rankings, d.prompts);
  const rows = (xs: readonly object[]) => xs.map((x) => JSON.stringify({ ...x, id: undefined }) + '\n').join('');
  const texts: [string, string][] = [
    ['data.jsonl', data],
    ['prompts.jsonl', prompts],
    ['votes.jsonl', rows(d.votes)],
    ['spot-checks.jsonl', rows(d.spotChecks)],
  ];
  const enc = new TextEncoder();
  const files = new Map(texts.filter(([, t]) => t).map(([n, t]) => [n, enc.encode(t)]));
  if (!files.size) return undefined;
  if (d.guidelines?.trim()) files.set('guidelines.md', enc.encode(d.guidelines.endsWith('\n') ? d.guidelines : d.guidelines + '\n'));
  return zipFiles(files, DATA_BUNDLE, opts);
}

/**
 * Reads the zip `dataBundle` writes (or any zip holding a data.jsonl and/or prompts.jsonl, at its top or in
 * one folder) with importData's rules; problems are named `zip/entry:line`. `kept` lists the files that
 * are a record only (votes, spot checks, guidelines). Throws ImportError for a zip with neither file.
 */
export function importDataBundle(zip: Uint8Array, file: string): ImportedData & { kept: string[] } {
  const entries = unzipFiles(zip, file, { maxTotalBytes: 256 * 2 ** 20 });
  const byName = new Map<string, [string, Uint8Array]>();
  for (const [path, bytes] of entries) {
    const parts = path.split('/');
    if (parts.length <= 2) byName.set(parts.at(-1)!, [path, bytes]);
  }
  const found = BUNDLE_DATA.filter((n) => byName.has(n));
  if (!found.length) throw new ImportError(`${file}: holds no data.jsonl or prompts.jsonl (an export of this playground's data has them)`);
  const out: ImportedData & { kept: string[] } = { records: [], prompts: [], errors: [], kept: BUNDLE_RECORD_ONLY.filter((n) => byName.has(n)) };
  for (const name of found) {
    const [path, bytes] = byName.get(name)!;
    let text: string;
    try {
      text = decodeText(bytes, `${file}/${path}`, { allowEmpty: true });
    } catch (e) {
      out.errors.push((e as Error).message);
      continue;
    }
    const got = importData(text, `${file}/${path}`);
    out.records.push(...got.records);
    out.prompts.push(...got.prompts);
    out.errors.push(...got.errors);
  }
  return out;
}
