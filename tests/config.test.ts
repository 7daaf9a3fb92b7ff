// The stage defaults for small models (src/shared/config.ts): learning rates scaled by width from the
// paper's (and LoRA's usual) values for 4096-wide models, and passes over the data that follow its size.
import { describe, expect, it } from 'vitest';
import { autoEpochs, defaultLr, resolveConfig, stepsFor, widthScale } from '../src/shared/config.ts';

describe('stage defaults', () => {
  it("scales the paper's learning rates by 4096 / hidden, within 1x and 32x", () => {
    expect(defaultLr('rm', false, 4096)).toBe(3.1e-5); // InstructGPT's 6B reward model had 9e-6; measured better here
    expect(defaultLr('ppo', false, 4096)).toBe(9.7e-6); // its 9.65e-6, to two digits
    expect(defaultLr('rm', false, 128)).toBe(9.9e-4); // the built-in model: 32x
    expect(defaultLr('dpo', false, 128)).toBe(9.6e-4);
    expect(defaultLr('sft', false, 768)).toBe(5.1e-5); // GPT-2: about the usual 5e-5
    expect(defaultLr('sft', true, 4096)).toBe(2e-4);
    expect(defaultLr('dpo', true, 8192)).toBe(1e-4); // wider than the paper's: never below its value
    expect(widthScale(16)).toBe(32); // tiny test models: capped
    expect(resolveConfig('rm', {}, { maxPositions: 64, hidden: 128 }).lr).toBe(9.9e-4);
    expect(resolveConfig('rm', { lr: 1e-3 }, { maxPositions: 64, hidden: 128 }).lr).toBe(1e-3); // given, kept
  });

  it('auto epochs: enough passes for 32 steps, at most 8, at least 1; steps and epochs given win', () => {
    expect(autoEpochs(4)).toBe(8); // 200 comparisons as 31 rankings in batches of 8
    expect(autoEpochs(16)).toBe(2);
    expect(autoEpochs(1)).toBe(8);
    expect(autoEpochs(500)).toBe(1); // a dataset the size of the paper's: one pass, as it made
    const shape = { maxPositions: 64, hidden: 128 };
    const auto = resolveConfig('dpo', {}, shape);
    expect(auto.epochs).toBe(0);
    expect(stepsFor(auto, 4)).toBe(32);
    expect(stepsFor(resolveConfig('dpo', { epochs: 1 }, shape), 4)).toBe(4);
    expect(stepsFor(resolveConfig('dpo', { epochs: 1, steps: 40 }, shape), 4)).toBe(40); // max_steps overrides
    expect(() => resolveConfig('dpo', { epochs: -1 }, shape)).toThrow(/config.epochs/);
  });
});
