// The pure helpers of the Train, Inspect and chart elements, in Node without a browser: what the
// chart's value axis writes, how Inspect colours and labels tokens and finds the user's prompt inside
// the one the model saw, and the Train view's data summary and reward-model labels.
import { describe, expect, it } from 'vitest';
import type { Record as DataRecord } from '../src/io/datasets.ts';
import { tickLabels } from '../src/ui/chart.ts';
import { divergingColor, fmtValue, isSpecialToken, userPrompt } from '../src/ui/inspect-view.ts';
import { dataSummary, phaseEta, rewardModelLabel, selectChoices } from '../src/ui/train-view.ts';

describe('chart value axis', () => {
  it('writes the decimals the tick spacing needs, so small values are not all "0"', () => {
    // uPlot's default wrote these as "-0", "-0", "0", "0"
    expect(tickLabels([-0.0004, -0.0002, 0, 0.0002], 0.0002)).toEqual(['-0.0004', '-0.0002', '0.0000', '0.0002']);
    expect(tickLabels([0, 0.25, 0.5, 0.75, 1], 0.25)).toEqual(['0.00', '0.25', '0.50', '0.75', '1.00']);
    expect(tickLabels([0, 20, 40], 20)).toEqual(['0', '20', '40']);
    expect(tickLabels([0.1 * 3, 0.6], 0.30000000000000004)).toEqual(['0.3', '0.6']);
  });

  it('never writes "-0" for a tick at zero computed as a tiny negative number', () => {
    expect(tickLabels([-1e-18, 0.5], 0.5)).toEqual(['0.0', '0.5']);
    expect(tickLabels([-0.5, -2.7755575615628914e-17], 0.5)).toEqual(['-0.5', '0.0']);
  });

  it('uses exponents for tiny spacings and huge values, and leaves gaps empty', () => {
    expect(tickLabels([1e-8, 2e-8], 1e-8)).toEqual(['1e-8', '2e-8']);
    expect(tickLabels([0, 5e7], 5e7)).toEqual(['0', '5e+7']);
    expect(tickLabels([null, 1], 1)).toEqual(['', '1']);
  });
});

describe('inspect helpers', () => {
  it('colours below 0 blue, above red, 0 transparent, scaled to the largest |value|', () => {
    expect(divergingColor(0, 1)).toBe('rgba(214, 47, 39, 0.000)');
    expect(divergingColor(1, 1)).toBe('rgba(214, 47, 39, 0.750)');
    expect(divergingColor(-0.5, 1)).toBe('rgba(33, 102, 172, 0.375)');
    expect(divergingColor(3, 1)).toBe('rgba(214, 47, 39, 0.750)'); // clamped
    expect(divergingColor(0.2, 0)).toBe('rgba(214, 47, 39, 0.000)'); // everything 0: no colour
  });

  it('writes a token value with four decimals, or three digits where that would read 0.0000', () => {
    expect(fmtValue(0)).toBe('0.0000');
    expect(fmtValue(-0.12345)).toBe('-0.1235');
    expect(fmtValue(1.2e-6)).toBe('1.20e-6');
    expect(fmtValue(-3e-5)).toBe('-3.00e-5');
  });

  it('knows special tokens from text', () => {
    for (const t of ['<|endoftext|>', '<|im_end|>', '</s>', '<s>', '<pad>']) expect(isSpecialToken(t)).toBe(true);
    for (const t of [' <', 'hello', '<b>', '< |x| >', ' <|endoftext|>']) expect(isSpecialToken(t)).toBe(false);
  });

  it("finds the user's prompt inside the chat-templated one, the longest that fits", () => {
    const known = ['Say hello to Ana.', 'Say hello', 'Tell me about rain.'];
    expect(userPrompt('User: Say hello to Ana. Assistant:', known)).toBe('Say hello to Ana.');
    expect(userPrompt('<|im_start|>user\nTell me about rain.<|im_end|>\n<|im_start|>assistant\n', known)).toBe('Tell me about rain.');
    expect(userPrompt('User: Something else. Assistant:', known)).toBeUndefined();
    expect(userPrompt('anything', ['', '  '])).toBeUndefined();
  });
});

describe('train view helpers', () => {
  const ranking = (prompt: string): DataRecord => ({ kind: 'ranking', prompt, completions: ['a', 'b', 'c'] });

  it('summarises each stage and says what is missing', () => {
    expect(dataSummary('rm', [], { batchSize: 8, rewardModels: 0 })).toMatchObject({ text: '0 rankings, 0 pairs', missing: 'rank at least one prompt first' });
    const rm = dataSummary('rm', [ranking('p'), ranking('q')], { batchSize: 8, rewardModels: 0 });
    expect(rm).toEqual({ text: '2 rankings, 6 pairs', missing: undefined, hint: 'Rank at least 10 prompts to get a held-out accuracy' });
    const prompts: DataRecord[] = ['a', 'b', 'c'].map((p) => ({ kind: 'completion', prompt: p, completion: '' }));
    expect(dataSummary('ppo', prompts, { batchSize: 4, rewardModels: 1 }).missing).toBe('add at least 4 prompts first (one step takes a batch of 4)');
    expect(dataSummary('ppo', prompts, { batchSize: 2, rewardModels: 0 }).missing).toBe('train a reward model with LoRA on this model first');
    expect(dataSummary('ppo', prompts, { batchSize: 2, rewardModels: 1 })).toEqual({
      text: '3 prompts (0 with a demonstration, for PPO-ptx)',
      missing: undefined,
    });
    expect(dataSummary('ppo', prompts.slice(0, 1), { batchSize: 1, rewardModels: 1 }).text).toBe('1 prompt (0 with a demonstration, for PPO-ptx)');
    expect(dataSummary('rm', [ranking('p')], { batchSize: 1, rewardModels: 0 }).text).toBe('1 ranking, 3 pairs');
    expect(dataSummary('sft', prompts.slice(0, 1), { batchSize: 1, rewardModels: 0 }).text).toBe('1 demonstration');
    // GRPO and RLOO need prompts only: their reward functions are written on the tab, a reward model is optional
    for (const stage of ['grpo', 'rloo'] as const) {
      expect(dataSummary(stage, prompts, { batchSize: 2, rewardModels: 0 })).toEqual({ text: '3 prompts', missing: undefined });
      expect(dataSummary(stage, prompts, { batchSize: 4, rewardModels: 1 }).missing).toBe('add at least 4 prompts first (one step takes a batch of 4)');
    }
  });

  it('labels a reward model briefly: the time today, the date before, the held-out accuracy when there is one', () => {
    const now = new Date(2026, 10, 25, 15, 0).getTime();
    const today = rewardModelLabel({ id: 'e8855485-0000', createdAt: new Date(2026, 10, 25, 3, 47).getTime(), result: { eval_accuracy: 0.8125 } }, now);
    expect(today).toMatch(/^e8855485 · \S+.* · held-out 81%$/);
    expect(today).not.toMatch(/2026/);
    const older = rewardModelLabel({ id: 'abcdef12-0000', createdAt: new Date(2026, 10, 20, 3, 47).getTime() }, now);
    expect(older).toMatch(/^abcdef12 · \S*2026\S*$/);
  });
});

describe('the ETA inside a long online step', () => {
  const at = { done: 0, total: 48, phaseSecs: 0, stepSecs: 0, stepsAfter: 1 };
  it('says nothing until the first phase has measured something', () => {
    expect(phaseEta({ ...at, phase: 'sampling' })).toBe('');
    expect(phaseEta({ ...at, phase: 'sampling', done: 3, phaseSecs: 0.5 })).toBe('');
    expect(phaseEta({ ...at, phase: 'scoring', done: 1, phaseSecs: 30 })).toBe('');
  });
  it('before a step has finished: the phase under way, at its rate so far (sampling: the token budget, so at most)', () => {
    expect(phaseEta({ ...at, phase: 'sampling', done: 12, phaseSecs: 40 })).toBe('at most about 2 min left in this phase');
    expect(phaseEta({ ...at, phase: 'updating', done: 1, total: 4, phaseSecs: 10 })).toBe('about 30 s left in this phase');
    expect(phaseEta({ ...at, phase: 'updating', done: 3, total: 4, phaseSecs: 1 })).toBe('about 5 s left in this phase');
  });
  it('once a step has finished: what is left of this step and of the run, from the seconds per step', () => {
    expect(phaseEta({ ...at, phase: 'sampling', done: 2, stepSecs: 60, secondsPerStep: 180, stepsAfter: 2 })).toBe(
      'about 2 min left in this step, about 8 min in the run',
    );
    // a step running longer than the last ones is not given a negative time
    expect(phaseEta({ ...at, phase: 'scoring', stepSecs: 200, secondsPerStep: 180, stepsAfter: 0 })).toBe('about 5 s left in this step, about 5 s in the run');
    expect(phaseEta({ ...at, phase: 'updating', stepSecs: 0, secondsPerStep: 7300, stepsAfter: 0 })).toBe(
      'about 2 h 2 min left in this step, about 2 h 2 min in the run',
    );
  });
});

describe("the Train form's selects", () => {
  it('offer the current value where the choices lack it (a combination of DPO losses)', () => {
    expect(selectChoices(['sigmoid', 'ipo', 'sft'], 'ipo')).toEqual(['sigmoid', 'ipo', 'sft']);
    expect(selectChoices(['sigmoid', 'ipo', 'sft'], 'sigmoid,sft')).toEqual(['sigmoid', 'ipo', 'sft', 'sigmoid,sft']);
  });
});
