// One training stage built from a resolved config and the run's data (text): the trainer, the tables a
// checkpoint holds, one optimizer step, the end of the run, and the files an export writes (package.ts).
// The worker's run driver (src/worker/run-driver.ts) and the command line (src/cli/train.ts) both drive it step by step.
// Each stage has its builder in stages/ (sft, rm, dpo, ppo, and group for GRPO/RLOO); what they share,
// the trained weights, the schedule, cleanup and the stepper, is stages/common.ts.
//
// Step s (0-based) always takes the same batch (a seeded shuffle per epoch) and runs with the trainer at
// step s (stages/common.ts: stepper), so the schedule, AdamW's bias correction and LoRA dropout continue
// exactly where a resumed run stopped.
import type { Gpu } from '../gpu/runtime.ts';
import type { StepPhase } from './rollouts.ts';
import { checkRecords, RecordError, type Record as DataRecord } from '../io/datasets.ts';
import type { ModelFiles } from '../io/sources.ts';
import type { Tok } from '../io/tokenizer.ts';
import type { LoraSet } from '../model/lora.ts';
import type { ParamTable } from '../model/params.ts';
import type { PlanUse } from '../model/plan-set.ts';
import type { Transformer } from '../model/transformer.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { RewardFunction } from '../shared/rewards.ts';
import type { CompletionRow } from '../shared/types.ts';
export type { CompletionRow } from '../shared/types.ts';
import type { Stage, TrainConfig } from '../shared/config.ts';
import { checkStageFits, stageMemoryOf } from '../shared/memory.ts';
import { DataError, setup, type Setup } from './stages/common.ts';
import { sftStage } from './stages/sft.ts';
import { rmStage } from './stages/rm.ts';
import { dpoStage } from './stages/dpo.ts';
import { ppoStage } from './stages/ppo.ts';
import { groupStage } from './stages/group.ts';

export { DataError, epochOrder, rewardModelRole } from './stages/common.ts';

export interface StepOut {
  metrics: Record<string, number>; // TRL's names
  tokens: number; // tokens the step processed (throughput)
  skipped: boolean; // a NaN/Inf gradient: the weights were left untouched
  /** Online rollouts with per-token diagnostics for the UI: each response token's text, KL contribution, value (PPO; [] without a value model) and advantage. */
  samples?: { prompt: string; response: string; score: number; tokens: string[]; kl: number[]; value: number[]; advantage: number[] }[];
  /** GRPO/RLOO: every rollout of the step with each reward function's score and its advantage (TRL's completions table). */
  completions?: CompletionRow[];
}

export interface StageRun {
  readonly totalSteps: number;
  /** The passes over the data the steps make, `epochs: 0` (auto) resolved; undefined when `steps` overrides the epochs. */
  readonly epochs?: number;
  /** What a checkpoint holds (weights and AdamW moments). */
  readonly trainables: Record<string, ParamTable>;
  /** Step s; an online stage tells `onPhase` where it is inside the step (a PPO step can take minutes). */
  step(s: number, onPhase?: (p: StepPhase) => void): Promise<StepOut>;
  /** After the last step (RM: held-out accuracy and the bias fit); goes into the run's result. */
  finish(): Promise<Record<string, number>>;
  /** Run state beyond the tensors, kept in the checkpoint (RM bias, PPO's adaptive KL coefficient). */
  state(): Record<string, number>;
  setState(s: Record<string, unknown>): void;
  /** What to sample from after this stage; undefined for a reward model. */
  readonly policy?: { model: Transformer; lora?: LoraSet };
  exportFiles(steps: number): Promise<Map<string, Uint8Array>>;
  /** Reward model: loss and pair accuracy on rankings it did not train on (the experiment's held-out set). */
  evaluate?(records: DataRecord[]): Promise<{ loss: number; accuracy: number; pairs: number }>;
  /** Positions the stage's plans computed and the tokens they held, so far (src/model/plan-set.ts). */
  planUse(): PlanUse;
  /** Reward model: the score of each (prompt, completion) (what to rank next: the pairs it is least sure of). */
  score?(items: { prompt: string; completion: string }[]): Promise<number[]>;
  destroy(): void;
}

export interface StageContext {
  gpu: Gpu;
  files: ModelFiles;
  tok: Tok;
  base: Transformer; // loaded from `files`, never trained: the frozen base of adapters and DPO's reference
  /** The base's weights are no longer those of `files` (earlier runs were merged in): models of our own start from the base. */
  adopted?: boolean;
  /** PPO: the reward-model run it trains against; GRPO/RLOO: the one named by rewardRunId, if any. */
  reward?: { config: TrainConfig; checkpoint: Checkpoint };
  /** GRPO/RLOO: the reward functions that config.rewardFuncs names. */
  rewardFunctions?: RewardFunction[];
}

/** Each stage's builder: from the trained weights and the shared helpers (setup) to its StageRun. */
const BUILDERS: Record<Stage, (x: Setup) => Promise<StageRun>> = {
  sft: sftStage,
  rm: rmStage,
  dpo: dpoStage,
  ppo: ppoStage,
  grpo: groupStage,
  rloo: groupStage,
};

/** A stage's run; refused before anything is allocated when one of its buffers could not exist on this adapter (on every path: the worker, the CLI, the experiment). */
export async function buildStage(ctx: StageContext, stage: Stage, c: TrainConfig, records: DataRecord[]): Promise<StageRun> {
  checkStageFits(stage, stageMemoryOf(ctx.base.cfg, stage, c, !!ctx.reward, ctx.base.f16Weights), {
    maxBufferSize: ctx.gpu.maxBuffer,
    maxStorageBufferBindingSize: ctx.gpu.maxBinding,
  });
  // the one rule set (src/io/datasets.ts) on every path too: the builders read the kinds' fields as checked
  let data: DataRecord[];
  try {
    data = checkRecords(records, `the ${stage} data`);
  } catch (e) {
    throw e instanceof RecordError ? new DataError(e.message) : e;
  }
  const x = await setup(ctx, stage, c, data);
  try {
    return await BUILDERS[stage](x);
  } catch (e) {
    x.cleanup.forEach((f) => f());
    throw e;
  }
}
