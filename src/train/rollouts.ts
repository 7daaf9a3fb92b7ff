// What the online stages (PPO, GRPO, RLOO) share about rollouts: sampling K of each prompt with the KV
// cache under seeds that depend only on the step and the prompt's place in it (so a resumed run samples
// the same), laying them out one per row of a plan, and reading each response token's log p back from a
// plan's per-token losses (CE = -log p at the position that predicts the token).
import type { Call } from '../gpu/runtime.ts';
import type { PlanSet } from '../model/plan-set.ts';
import type { Plan } from '../model/transformer.ts';
import { GENERATE_DEFAULTS, type FinishReason, type Generator } from './generate.ts';
import { layoutRows, targetWeights, type Rows } from './layout.ts';

/** `finish`: why the response ended (absent for rollouts made by hand, as in tests). */
export interface Rollout {
  prompt: number[];
  response: number[];
  entropy: number[];
  finish?: FinishReason;
}

/**
 * Where an online step is, for a sign of life inside a long step: drawing the rollouts (`done` tokens of
 * at most `total`), scoring them (reference, old policy, rewards: `done` of `total` passes), or updating
 * (minibatch `done` of `total` over all passes).
 */
export interface StepPhase {
  phase: 'sampling' | 'scoring' | 'updating';
  done: number;
  total: number;
}

export interface SampleOptions {
  numSamples: number;
  maxNewTokens: number;
  temperature: number;
  seqLen: number;
  eosIds: number[];
  seed: number;
  promptsPerStep: number;
}

/**
 * K rollouts of each prompt of step `step`, in prompt order, drawn for all prompts in one batch; a
 * response ends at EOS or where the positions run out. Prompt i's seed depends only on the step and i.
 */
export async function sampleRollouts(
  gen: Generator,
  prompts: number[][],
  step: number,
  o: SampleOptions,
  onPhase?: (p: StepPhase) => void,
): Promise<Rollout[]> {
  const requests = prompts.map((prompt, i) => {
    const maxNewTokens = Math.min(o.maxNewTokens, o.seqLen - prompt.length);
    if (maxNewTokens < 1) throw new Error(`a prompt of ${prompt.length} tokens leaves no room in ${o.seqLen} positions`);
    return { prompt, seed: o.seed + 7919 * (step * o.promptsPerStep + i), maxNewTokens };
  });
  const total = requests.reduce((n, r) => n + r.maxNewTokens * o.numSamples, 0);
  let drawn = 0;
  onPhase?.({ phase: 'sampling', done: 0, total });
  const gs = await gen.generateMany(
    requests,
    {
      ...GENERATE_DEFAULTS,
      numSamples: o.numSamples,
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      seed: o.seed,
      stopTokenIds: o.eosIds,
      planLength: o.seqLen, // every step's rollouts fit seqLen: one KV cache and step plan for the whole run
    },
    onPhase && (() => onPhase({ phase: 'sampling', done: ++drawn, total })),
  );
  return gs.flatMap((g, i) => g.ids.map((response, k) => ({ prompt: prompts[i]!, response, entropy: g.entropy[k]!, finish: g.finish[k]! })));
}

type RolloutRow = Pick<Rollout, 'prompt' | 'response'>;

/** Rollouts one per row of B x T (layoutRows): ids, targets (the response tokens, at the positions that predict them), weight 1 there. */
export function layoutRollouts(rs: readonly RolloutRow[], B: number, T: number, padId: number): Rows & { ones: Float32Array } {
  const long = rs.findIndex((r) => r.prompt.length + r.response.length > T);
  if (long >= 0)
    throw new Error(`rollout ${long} holds ${rs[long]!.prompt.length + rs[long]!.response.length} tokens, more than the ${T} positions of its batch`);
  const laid = layoutRows(
    rs.map((r) => ({ prompt: r.prompt, completion: r.response })),
    B,
    T,
    padId,
  );
  return { ...laid, ones: targetWeights(laid.targets) };
}

/** The shortest plan of `set` that holds the rollouts, and them laid out on it one per row (layoutRollouts). */
export async function fitRollouts(set: PlanSet, rs: readonly RolloutRow[], padId: number): Promise<{ plan: Plan } & ReturnType<typeof layoutRollouts>> {
  const plan = await set.fit(rs.map((r) => r.prompt.length + r.response.length));
  return { plan, ...layoutRollouts(rs, plan.B, plan.T, padId) };
}

/** Runs `calls` on `plan` and reads log p of every response token of every row (as `laid` put them) from its per-token losses. */
export async function rolloutLogps(plan: Plan, laid: Pick<Rows, 'read'>, calls: readonly Call[], label: string): Promise<number[][]> {
  const gpu = plan.model.gpu;
  await gpu.check(`${label} logprobs`, () => gpu.run(calls, label));
  return laid.read(await gpu.read(plan.losses)).map((row) => row.map((l) => -l));
}
