// The bench's stage section: what a step costs when it computes the tokens it holds. Every stage of the
// recipe (SFT, reward model, DPO, PPO, GRPO) runs a few steps on the built-in model with the efficacy
// experiment's data (its demonstrations, rankings of K = 4 of their completions, its PPO prompts),
// through the same stage builder as the page and the CLI, first with each batch on the shortest plan
// that holds it (src/model/plan-set.ts), then with every batch at the stage's full length as before;
// for each: ms per step, positions computed, tokens held, and the speedup.
import type { Gpu } from '../src/gpu/runtime.ts';
import type { Record as DataRecord } from '../src/io/datasets.ts';
import { readModelFolder } from '../src/io/folder.ts';
import { Tok } from '../src/io/tokenizer.ts';
import { builtinPrompts } from '../src/experiment/prompts.ts';
import { loadModel } from '../src/model/index.ts';
import { PlanSet } from '../src/model/plan-set.ts';
import { snapshot } from '../src/train/checkpoint.ts';
import { resolveConfig, type Stage } from '../src/shared/config.ts';
import { buildStage, type StageContext } from '../src/train/stages.ts';

export interface StageRow {
  stage: Stage;
  steps: number;
  ms_per_step: number;
  positions: number;
  tokens: number;
  full_length_ms_per_step: number;
  full_length_positions: number;
  /** full-length time / bucketed time */
  speedup: number;
}

const MODEL = 'public/models/default';

export async function benchStages(gpu: Gpu, log: (s: string) => void, quick: boolean): Promise<StageRow[]> {
  const files = await readModelFolder(MODEL);
  const tok = Tok.fromJson(files.tokenizer!, files.tokenizerConfig, `${MODEL}/tokenizer.json`);
  const prompts = builtinPrompts();
  const demos = prompts.demonstrations(1);
  // rankings of K = 4: each demonstration's prompt with its own and the next three completions
  const rankings: DataRecord[] = demos.map((d, i) => ({
    kind: 'ranking',
    prompt: (d as { prompt: string }).prompt,
    completions: [0, 1, 2, 3].map((k) => (demos[(i + k) % demos.length] as { completion: string }).completion),
    ranks: [0, 1, 2, 3],
  }));
  const plan: [Stage, DataRecord[], number][] = [
    ['sft', demos, quick ? 2 : 4],
    ['rm', rankings, quick ? 2 : 4],
    ['dpo', rankings, quick ? 2 : 4],
    ['ppo', prompts.ppo(1), 1],
    ['grpo', prompts.ppo(1), 1],
  ];
  const rows: StageRow[] = [];
  const was = PlanSet.bucketing;
  try {
    const { model: base } = loadModel(gpu, { ...files, configFile: `${MODEL}/config.json` });
    const ctx: StageContext = { gpu, files, tok, base };
    // the online stages train against a reward model: a short one, trained once
    const rmCfg = resolveConfig('rm', { seed: 1, steps: 2 }, base.cfg);
    const rmRun = await buildStage(ctx, 'rm', rmCfg, rankings);
    for (let s = 0; s < rmCfg.steps; s++) await rmRun.step(s);
    await rmRun.finish();
    const reward = { config: rmCfg, checkpoint: await snapshot(rmRun.trainables, rmRun.state()) };
    rmRun.destroy();
    for (const [stage, records, steps] of plan) {
      const time = async (bucketing: boolean) => {
        PlanSet.bucketing = bucketing;
        const c = resolveConfig(stage, { seed: 1, ...(stage === 'ppo' || stage === 'grpo' ? { rewardRunId: 'bench' } : {}) }, base.cfg);
        const run = await buildStage({ ...ctx, reward }, stage, c, records);
        try {
          await run.step(0); // warm-up: pipelines and the plans the first batches need
          const before = run.planUse();
          const t0 = performance.now();
          for (let s = 1; s <= steps; s++) await run.step(s);
          const use = run.planUse();
          return { ms: (performance.now() - t0) / steps, positions: use.positions - before.positions, tokens: use.tokens - before.tokens };
        } finally {
          run.destroy();
        }
      };
      const on = await time(true),
        off = await time(false);
      const row: StageRow = {
        stage,
        steps,
        ms_per_step: Math.round(on.ms),
        positions: on.positions,
        tokens: on.tokens,
        full_length_ms_per_step: Math.round(off.ms),
        full_length_positions: off.positions,
        speedup: Number((off.ms / on.ms).toFixed(2)),
      };
      log(
        `stage ${stage}: ${row.ms_per_step} ms/step on ${row.positions} positions for ${row.tokens} tokens; full length ${row.full_length_ms_per_step} ms/step on ${row.full_length_positions} positions (${row.speedup}x)`,
      );
      rows.push(row);
    }
    base.params.destroy();
  } finally {
    PlanSet.bucketing = was;
  }
  return rows;
}
