// DPO's pairwise losses (TRL's loss_type): each one's value at known points, and its derivatives against
// central differences of the loss itself, over random pairs; the config's rules for them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DPO_LOSS_TYPES, dpoLossTypes, ldWeighted, logSigmoid, pairLoss, type DpoLossType, type PairScores } from '../src/train/dpo-math.ts';
import { resolveConfig } from '../src/shared/config.ts';

const PAIRWISE = DPO_LOSS_TYPES.filter((t): t is Exclude<DpoLossType, 'sft'> => t !== 'sft');
const shape = { maxPositions: 256, hidden: 128 };

describe('DPO losses', () => {
  it('take the values of their papers at known points', () => {
    const s = (chosen: number, rejected: number, chosenTokens = 1, rejectedTokens = 1): PairScores => ({ chosen, rejected, chosenTokens, rejectedTokens });
    // the policy equal to the reference: every log-ratio 0
    expect(pairLoss('sigmoid', s(0, 0), 0.1, 0).loss).toBeCloseTo(Math.log(2), 12);
    expect(pairLoss('hinge', s(0, 0), 0.1, 0).loss).toBe(1);
    expect(pairLoss('ipo', s(0, 0), 0.1, 0).loss).toBeCloseTo(25, 12); // (0 - 1 / 0.2)^2
    expect(pairLoss('bco_pair', s(0, 0), 0.1, 0).loss).toBeCloseTo(2 * Math.log(2), 12);
    expect(pairLoss('nca_pair', s(0, 0), 0.1, 0).loss).toBeCloseTo(2 * Math.log(2), 12);
    expect(pairLoss('sppo_hard', s(0, 0), 0.5, 0).loss).toBeCloseTo(2, 12);
    expect(pairLoss('apo_zero', s(0, 0), 0.1, 0).loss).toBeCloseTo(1, 12);
    expect(pairLoss('apo_down', s(0, 0), 0.1, 0).loss).toBeCloseTo(1, 12);
    expect(pairLoss('robust', s(0, 0), 0.1, 0.1).loss).toBeCloseTo(Math.log(2), 12); // (0.9 - 0.1) log 2 / 0.8
    // exo_pair at e: KL((1/2, 1/2) || (1 - e, e))
    expect(pairLoss('exo_pair', s(0, 0), 0.1, 0.01).loss).toBeCloseTo(0.5 * Math.log(0.5 / 0.99) + 0.5 * Math.log(0.5 / 0.01), 12);
    // ipo on per-token averages: 10 nats over 10 tokens against 2 over 4, beta 1: (1 - 0.5 - 0.5)^2 = 0
    expect(pairLoss('ipo', s(10, 2, 10, 4), 1, 0).loss).toBeCloseTo(0, 12);
    expect(pairLoss('sigmoid_norm', s(10, 2, 10, 4), 1, 0).loss).toBeCloseTo(-logSigmoid(0.5), 12);
    // robust without flipped labels is DPO
    expect(pairLoss('robust', s(3, -1), 0.2, 0).loss).toBeCloseTo(pairLoss('sigmoid', s(3, -1), 0.2, 0).loss, 12);
    // hinge is flat past the margin 1 / beta
    expect(pairLoss('hinge', s(11, 0), 0.1, 0)).toEqual({ loss: 0, dChosen: 0, dRejected: 0 });
  });

  it('give the derivatives of their values (central differences, random pairs)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PAIRWISE),
        fc.double({ min: -20, max: 20, noNaN: true }),
        fc.double({ min: -20, max: 20, noNaN: true }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0.05, max: 2, noNaN: true }),
        fc.double({ min: 0.001, max: 0.4, noNaN: true }),
        (type, c, r, nc, nr, beta, e) => {
          const f = (dc: number, dr: number) => pairLoss(type, { chosen: c + dc, rejected: r + dr, chosenTokens: nc, rejectedTokens: nr }, beta, e).loss;
          const at = pairLoss(type, { chosen: c, rejected: r, chosenTokens: nc, rejectedTokens: nr }, beta, e);
          if (type === 'hinge' && Math.abs(beta * c - beta * r - 1) < 1e-3) return; // the kink
          const h = 1e-5;
          const numC = (f(h, 0) - f(-h, 0)) / (2 * h),
            numR = (f(0, h) - f(0, -h)) / (2 * h);
          expect(Math.abs(at.dChosen - numC)).toBeLessThan(1e-5 * Math.max(1, Math.abs(numC)));
          expect(Math.abs(at.dRejected - numR)).toBeLessThan(1e-5 * Math.max(1, Math.abs(numR)));
          expect(Number.isFinite(at.loss)).toBe(true);
        },
      ),
      { numRuns: 600, seed: 5 },
    );
  });

  it('LD-DPO counts the tokens past the shorter completion alpha times', () => {
    expect(ldWeighted([-1, -2, -3, -4], 2, 0.5)).toBe(-1 - 2 + 0.5 * (-3 - 4));
    expect(ldWeighted([-1, -2], 2, 0)).toBe(-3);
    expect(ldWeighted([-1, -2, -3], 1, 1)).toBe(-6);
  });

  it('reads lossType as TRL does, and refuses what no loss reads', () => {
    expect(dpoLossTypes('sigmoid')).toEqual(['sigmoid']);
    expect(dpoLossTypes('sigmoid, bco_pair,sft')).toEqual(['sigmoid', 'bco_pair', 'sft']);
    expect(() => dpoLossTypes('sigmoid,dapo')).toThrow(/'dapo' is not one of/);
    expect(() => dpoLossTypes('ipo,ipo')).toThrow(/twice/);
    expect(resolveConfig('dpo', {}, shape)).toMatchObject({ lossType: 'sigmoid', lossWeights: [], ldAlpha: 1, labelSmoothing: 0 });
    expect(resolveConfig('dpo', { lossType: 'sigmoid,sft', lossWeights: [1, 0.5] }, shape).lossWeights).toEqual([1, 0.5]);
    expect(() => resolveConfig('dpo', { lossType: 'sigmoid,sft', lossWeights: [1] }, shape)).toThrow(
      /config.lossWeights: \[1\] is not one weight per loss type \(2\)/,
    );
    expect(() => resolveConfig('dpo', { lossType: 'hinge', labelSmoothing: 0.1 }, shape)).toThrow(/only the 'robust' and 'exo_pair' losses read it/);
    expect(() => resolveConfig('dpo', { lossType: 'robust', labelSmoothing: 0.5 }, shape)).toThrow(/config.labelSmoothing: 0.5 is not in \[0, 0.5\)/);
    expect(() => resolveConfig('dpo', { lossType: 'exo_pair' }, shape)).toThrow(/above 0 for 'exo_pair'/);
    expect(() => resolveConfig('dpo', { ldAlpha: 1.5 }, shape)).toThrow(/config.ldAlpha: 1.5 is not in \[0, 1\]/);
    expect(() => resolveConfig('dpo', { lossType: 'ipo,kto' }, shape)).toThrow(
      /config.lossType: "ipo,kto" is not made of DPO's loss types \(sigmoid, hinge, .*\) joined by commas: 'kto' is none of them/,
    );
    expect(() => resolveConfig('dpo', { lossType: 'ipo,ipo' }, shape)).toThrow(/config.lossType: "ipo,ipo" is not a list that names each loss once/);
    // GRPO keeps its own
    expect(resolveConfig('grpo', { rewardFuncs: ['f'] }, shape).lossType).toBe('dapo');
    expect(() => resolveConfig('grpo', { rewardFuncs: ['f'], lossType: 'ipo' }, shape)).toThrow(/config.lossType: "ipo" is not 'grpo'/);
    // a DPO run saved before DPO had loss types holds GRPO's default, which it never read
    expect(resolveConfig('dpo', { lossType: 'dapo' }, shape).lossType).toBe('sigmoid');
  });
});
