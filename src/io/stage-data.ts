// Which records a stage trains on: the one policy, applied by the worker when a run starts (it reads the
// user's data from the store itself), and by the page for its counts (the Rank tab's stageCounts, the Data
// tab's and the model card's dataCounts) and asked through the engine's stageData for the Train tab's
// summaries, so that what the page counts is what a run trains on. The run keeps the records it was given
// (its snapshot in the store), and a resumed run trains on those, not on whatever the user's data is by then.
//
//   SFT           the user's demonstrations: {"prompt","completion"} and chat {"messages"} records
//   PPO, GRPO,    the store's prompts (as prompt records), the user's own prompt records, and their
//   RLOO          demonstrations, whose prompts are sampled too and which PPO-ptx trains on
//   RM, DPO       the Rank tab's rankings (a decided pair as a preference: rankingToRecord), then the
//                 user's imported ranking and preference records
//
// It lives in io, beside the records it chooses from, and not in train: the page may not import train
// (src/LAYERS.md), and its counts must follow this policy rather than repeat it.
// Pure: no store, no GPU (tests/stage-data.test.ts).
import { rankingToRecord, type RankingLabels, type Record as DataRecord } from './datasets.ts';
import { isOnline, type Stage } from '../shared/config.ts';

/** What the user made, as the store keeps it: the prompts' texts, the Rank tab's rankings (oldest first), their own records. */
export interface UserData {
  prompts: readonly string[];
  rankings: readonly RankingLabels[];
  records: readonly DataRecord[];
}

/** The records `stage` trains on, from the user's data (in that order: prompts or rankings first, then their own records). */
export function stageRecords(stage: Stage, d: UserData): DataRecord[] {
  const own = d.records;
  if (stage === 'sft') return own.filter((r) => r.kind === 'completion' || r.kind === 'messages');
  if (isOnline(stage)) {
    return [...d.prompts.map((prompt): DataRecord => ({ kind: 'prompt', prompt })), ...own.filter((r) => r.kind === 'prompt' || r.kind === 'completion')];
  }
  return [...d.rankings.map(rankingToRecord), ...own.filter((r) => r.kind === 'ranking' || r.kind === 'preference')];
}
