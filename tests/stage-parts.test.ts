// The pieces the stage builders share, on the CPU: one layout of "prompt + completion into row r" (ids,
// targets, last token, and per-token values read from and placed into a batch at the positions that
// predict the completion), the per-row target weights DPO writes, the stepper that alone sets a stage's
// trainer to step s, and the LoRA shape a stage's adapter takes (rank, alpha, dropout from the config,
// whose defaults are the schema's; modules from LORA_DEFAULTS).
import { describe, expect, it } from 'vitest';
import { LORA_DEFAULTS } from '../src/model/lora.ts';
import { resolveConfig } from '../src/shared/config.ts';
import { layoutRows, targetWeights } from '../src/train/layout.ts';
import { loraConfig, stepper } from '../src/train/stages/common.ts';

const SEQS = [
  { prompt: [1, 2, 3], completion: [4, 5] },
  { prompt: [6], completion: [7, 8, 9] },
  { prompt: [10, 11], completion: [12, 13, 14, 15, 16] },
];
const B = 4,
  T = 6,
  PAD = 0;

describe('layoutRows', () => {
  it('puts each completion token where the hand-written rule did: row * T + prompt length - 1 + k', () => {
    const laid = layoutRows(SEQS.slice(0, 2), B, T, PAD);
    const x = Float32Array.from({ length: B * T }, (_, i) => i);
    // read: the value at the position that predicts each completion token
    expect(laid.read(x)).toEqual(SEQS.slice(0, 2).map((s, row) => s.completion.map((_, k) => x[row * T + s.prompt.length - 1 + k])));
    // place: the values there, 0 elsewhere; a target at each
    const placed = laid.place([
      [0.5, -1],
      [2, 3, 4],
    ]);
    const hand = new Float32Array(B * T);
    [
      [0.5, -1],
      [2, 3, 4],
    ].forEach((v, row) => v.forEach((y, k) => (hand[row * T + SEQS[row]!.prompt.length - 1 + k] = y)));
    expect([...placed]).toEqual([...hand]);
    placed.forEach((y, i) => y !== 0 && expect(laid.targets[i]).toBeGreaterThanOrEqual(0));
    // a shorter row of values (GRPO's masked rows: none) leaves the rest 0
    expect([...laid.place([[], [1]])].filter((y) => y !== 0)).toEqual([1]);
    // the last token of each row, as a reward model reads it
    expect(laid.last).toEqual([0 * T + 4, 1 * T + 3]);
  });

  it('reads and places only the completion tokens that fit in T, in the rows rowOf gives', () => {
    const laid = layoutRows(SEQS, B, T, PAD, (i) => [3, 0, 1][i]!);
    const x = Float32Array.from({ length: B * T }, (_, i) => i);
    // the third sequence (2 + 5 tokens) is cut at T = 6: four of its five tokens are predicted in row 1
    expect(laid.read(x)).toEqual([
      [3 * T + 2, 3 * T + 3],
      [0, 1, 2],
      [T + 1, T + 2, T + 3, T + 4],
    ]);
    expect(laid.count).toBe(2 + 3 + 4);
    const placed = laid.place([
      [1, 1],
      [1, 1, 1],
      [1, 1, 1, 1, 1],
    ]);
    expect([...placed]).toEqual([...targetWeights(laid.targets)]);
  });

  it('weights targets by a constant', () => {
    const { targets } = layoutRows(SEQS.slice(0, 2), B, T, PAD);
    expect([...targetWeights(targets, 0.25)]).toEqual([...targets].map((t) => (t >= 0 ? 0.25 : 0)));
  });
});

describe('stepper', () => {
  it('runs step s with the trainer at step s, whatever it counted before, and leaves the counting to it', async () => {
    const trainer = { step: 0, seen: [] as number[] };
    const step = stepper(trainer, {
      batch: (s) => `batch ${s}`,
      train: async (batch) => {
        trainer.seen.push(trainer.step);
        trainer.step += 10; // a trainer used alone counts its own steps (a skipped one: none)
        return batch;
      },
      out: (r, batch, s) => ({ metrics: { s }, tokens: r === batch ? 1 : 0, skipped: false }),
    });
    expect(await step(3)).toEqual({ metrics: { s: 3 }, tokens: 1, skipped: false });
    await step(4);
    await step(0); // a resumed run, or the same step again
    expect(trainer.seen).toEqual([3, 4, 0]);
  });
});

describe("a stage's adapter", () => {
  it('takes rank, alpha and dropout from the config and the modules from LORA_DEFAULTS', () => {
    const c = resolveConfig('ppo', { loraRank: 4, loraAlpha: 12, rewardRunId: 'rm' }, { maxPositions: 1024, hidden: 64 });
    expect(loraConfig(c, 'llama')).toEqual({ r: 4, alpha: 12, dropout: 0, targets: LORA_DEFAULTS.llama.targets });
  });

  it("LORA_DEFAULTS (tests' and benchmarks' typical adapter) is the schema's rank-8 default of the offline stages", () => {
    for (const stage of ['sft', 'rm', 'dpo'] as const) {
      const c = resolveConfig(stage, { loraRank: 8 }, { maxPositions: 1024, hidden: 64 });
      for (const arch of ['gpt2', 'llama'] as const) expect(loraConfig(c, arch)).toEqual(LORA_DEFAULTS[arch]);
    }
  });
});
