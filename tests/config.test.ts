// The stage defaults for small models (src/shared/config.ts): learning rates scaled by width from the
// paper's (and LoRA's usual) values for 4096-wide models, and passes over the data that follow its size.
import { describe, expect, it } from 'vitest';
import { autoEpochs, defaultLr, RENAMED_KEYS, resolveConfig, stepsFor, upgradeConfig, widthScale, type TrainInput } from '../src/shared/config.ts';
import { OPTION } from '../src/shared/schema.ts';

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

describe('config keys', () => {
  const shape = { maxPositions: 64, hidden: 128 };
  it('are camelCase, each one an option of the schema', () => {
    for (const k of Object.keys(OPTION)) expect(k, k).toMatch(/^[a-z][a-zA-Z0-9]*$/);
    for (const [old, key] of Object.entries(RENAMED_KEYS)) {
      expect(key in OPTION, key).toBe(true);
      expect(
        old.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()),
        old,
      ).toBe(key); // the old name is the key in snake_case
    }
  });

  it('reads a config written with the old snake_case keys as it meant', () => {
    const old = { rewardRunId: 'rm', kl_coef: 0.2, ppo_epochs: 2, early_stopping: false, target_kl: 1 } as unknown as TrainInput;
    const c = resolveConfig('ppo', old, shape);
    expect([c.klCoef, c.ppoEpochs, c.earlyStopping, c.targetKl]).toEqual([0.2, 2, false, 1]);
    expect(Object.keys(c).some((k) => k.includes('_'))).toBe(false);
    const g = resolveConfig('grpo', { reward_funcs: ['concise'], loss_type: 'grpo', num_iterations: 2 } as unknown as TrainInput, shape);
    expect([g.rewardFuncs, g.lossType, g.numIterations]).toEqual([['concise'], 'grpo', 2]);
    // both spellings: the same value is one setting, different values an error that names both
    expect(upgradeConfig({ klCoef: 0.2, kl_coef: 0.2 })).toEqual({ klCoef: 0.2 });
    expect(() => upgradeConfig({ klCoef: 0.2, kl_coef: 0.1 })).toThrow('config.klCoef: given twice, as klCoef and as kl_coef, with different values');
    const today = { lr: 1e-4 };
    expect(upgradeConfig(today)).toBe(today); // nothing to rename: the same object
  });

  it('refuses a key that is no option, rather than ignoring it', () => {
    expect(() => resolveConfig('sft', { learning_rate: 1e-4 } as unknown as TrainInput, shape)).toThrow('config.learning_rate: not a training option');
    expect(() => resolveConfig('sft', { lr: 1e-4, foo: 1, bar: 2 } as unknown as TrainInput, shape)).toThrow('config.foo: not a training option (nor bar)');
  });
});
