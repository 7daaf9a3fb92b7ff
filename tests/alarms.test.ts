// The Inspect view's alarms on crafted PPO histories: each failure signature fires on a run that shows
// it, and a healthy run (KL growing slowly from 0, small clip fractions, reward and the user's scores
// rising together, varied answers) raises nothing. Pure: no GPU, no DOM.
import { describe, expect, it } from 'vitest';
import { asPpoMetrics, computeAlarms, repetition, slope, type AlarmInput } from '../src/ui/alarms.ts';

const STEPS = 30;
const wobble = (s: number, size: number) => size * Math.sin(s * 1.7); // deterministic batch noise

/** A healthy run's metric rows, with `patch` overriding some metrics at some steps. */
function history(patch: (step: number) => Record<string, number | undefined> = () => ({})): AlarmInput['metrics'] {
  return Array.from({ length: STEPS }, (_, i) => {
    const step = i + 1;
    return {
      step,
      values: {
        'objective/kl': 0.05 * step + wobble(step, 0.03), // 0 -> 1.5 nats: the leash holds
        'objective/scores': 0.03 * step + wobble(step, 0.1),
        'policy/clipfrac_avg': 0.02,
        'policy/approxkl_avg': 0.002,
        'loss/policy_avg': -0.01,
        kl_coef: 0.02,
        ...(patch(step) as Record<string, number>), // the `{}` branches hold no key
      },
    };
  });
}

const words = (text: string) => text.split(/(?=\s)/);
const healthySamples = [
  { step: STEPS, response: 'Hi Omar, I hope you are having a good day and that the sun is out.' },
  { step: STEPS, response: 'Hello Priya! Wishing you a calm morning and a warm cup of tea.' },
].map((s) => ({ ...s, tokens: words(s.response) }));

/** Spot checks every 5 steps with the user's score following `score(step)`. */
const spotChecks = (score: (step: number) => number) => [5, 10, 15, 20, 25, 30].map((step) => ({ step, score: score(step), reward: 0.03 * step }));

const healthy: AlarmInput = {
  metrics: history(),
  spotChecks: spotChecks((s) => Math.min(7, 3 + Math.round(s / 10))),
  samples: healthySamples,
  config: { klTarget: 0, cliprange: 0.2 },
};

const ids = (input: AlarmInput) => computeAlarms(input).map((a) => a.id);

describe('alarms', () => {
  it('stay quiet on a healthy run', () => {
    expect(computeAlarms(healthy)).toEqual([]);
    // and on a run too short to judge, or with no PPO metrics at all (an SFT run)
    expect(computeAlarms({ metrics: history().slice(0, 3) })).toEqual([]);
    expect(computeAlarms({ metrics: [{ step: 1, values: { loss: 2.3 } }] })).toEqual([]);
  });

  it('fire on a negative KL, beyond the estimator noise', () => {
    const run = { ...healthy, metrics: history((s) => (s > 24 ? { 'objective/kl': -0.4 + wobble(s, 0.05) } : {})) };
    expect(ids(run)).toEqual(['kl-negative']);
    const alarm = computeAlarms(run)[0]!;
    expect(alarm.severity).toBe('critical');
    expect(alarm.step).toBe(STEPS);
    expect(alarm.detail).toMatch(/averaged -0\.3\d+ nats/);
    // a slightly negative KL (one noisy batch, or -0.01 on average) is noise
    expect(ids({ ...healthy, metrics: history((s) => (s === STEPS ? { 'objective/kl': -0.1 } : s > 25 ? { 'objective/kl': 0.005 } : {})) })).toEqual([]);
    expect(ids({ ...healthy, metrics: history((s) => (s > 25 ? { 'objective/kl': -0.01 } : {})) })).toEqual([]);
  });

  it('fire on an exploding KL: fast growth, over an absolute cap, or far over the adaptive target', () => {
    // growth: about 1.5 nats, then 10 within five steps
    expect(ids({ ...healthy, metrics: history((s) => (s > 25 ? { 'objective/kl': 8 + s - 25 } : {})) })).toEqual(['kl-exploding']);
    // slow but unbounded drift with a fixed kl_coef
    expect(ids({ ...healthy, metrics: history((s) => ({ 'objective/kl': 0.5 * s })) })).toEqual(['kl-exploding']);
    // the healthy run's 1.5 nats are fine without a target, but 5 x a target of 0.3
    const adaptive = { ...healthy, config: { klTarget: 0.3 } };
    expect(computeAlarms(adaptive).map((a) => [a.id, a.detail.includes('target')])).toEqual([['kl-exploding', true]]);
    expect(ids({ ...healthy, config: { klTarget: 1 } })).toEqual([]);
  });

  it('fire when the policy ratio strays from 1 (clip fraction or approx KL)', () => {
    expect(ids({ ...healthy, metrics: history((s) => (s > 24 ? { 'policy/clipfrac_avg': 0.45 } : {})) })).toEqual(['policy-ratio']);
    // approxkl 0.05 = a typical |log ratio| of sqrt(0.1) ~ 0.32, past the 0.2 clip range
    const wide = { ...healthy, metrics: history(() => ({ 'policy/approxkl_avg': 0.05 })) };
    expect(ids(wide)).toEqual(['policy-ratio']);
    expect(computeAlarms(wide)[0]!.detail).toMatch(/0\.729 to 1\.37/);
    // with a wider clip range the same ratios are allowed
    expect(ids({ ...wide, config: { cliprange: 0.4 } })).toEqual([]);
  });

  it('fire when the reward rises while the spot checks fall', () => {
    const hacked = { ...healthy, spotChecks: spotChecks((s) => 7 - Math.round(s / 6)) };
    expect(ids(hacked)).toEqual(['reward-hacking']);
    expect(computeAlarms(hacked)[0]!.detail).toMatch(/6 spot checks/);
    // falling scores with a flat reward are not reward hacking (the policy is just getting worse)
    expect(ids({ ...hacked, metrics: history(() => ({ 'objective/scores': 0.5 })) })).toEqual([]);
    // too few spot checks to speak of a trend
    expect(ids({ ...hacked, spotChecks: hacked.spotChecks.slice(-3) })).toEqual([]);
    // without batch rewards in the span, the reward model's scores of the checked answers carry the trend
    expect(ids({ ...hacked, metrics: [] })).toEqual(['reward-hacking']);
  });

  it('fire on repetition collapse: one token, one phrase, or few distinct tokens', () => {
    const one = { step: STEPS, response: '', tokens: Array(20).fill(' great') as string[] };
    const phrase = { step: STEPS, response: '', tokens: words('I love it so much I love it so much I love it so much I love it so much') };
    const few = { step: STEPS, response: '', tokens: words('good nice good fine nice good fine nice good fine nice fine') };
    for (const bad of [one, phrase, few]) {
      const alarms = computeAlarms({ ...healthy, samples: [...healthySamples, bad] });
      expect(alarms.map((a) => a.id)).toEqual(['repetition']);
    }
    const a = computeAlarms({ ...healthy, samples: [one, phrase] })[0]!;
    expect(a.severity).toBe('critical'); // all of them
    expect(a.detail).toMatch(/" great" 20 times/);
    // without tokens, the response's words are judged
    expect(ids({ ...healthy, samples: [{ step: 1, response: 'yes '.repeat(12) }] })).toEqual(['repetition']);
    // a short answer is not judged
    expect(ids({ ...healthy, samples: [{ step: 1, response: 'ok ok ok', tokens: ['ok', ' ok', ' ok'] }] })).toEqual([]);
  });

  it("fire when TRL's early-stopping guard skipped a step's updates, for PPO and GRPO alike", () => {
    expect(ids({ ...healthy, metrics: history(() => ({ 'policy/early_stop': 0 })) })).toEqual([]);
    const run = { ...healthy, metrics: history((s) => ({ 'policy/early_stop': s === 28 ? 1 : 0 })) };
    expect(ids(run)).toEqual(['early-stop']);
    expect(computeAlarms(run)[0]).toMatchObject({
      step: 28,
      severity: 'warning',
      detail: expect.stringMatching(/^In 1 of the last 5 steps the early-stopping guard skipped/),
    });
    // long ago: out of the window, quiet again
    expect(ids({ ...healthy, metrics: history((s) => ({ 'policy/early_stop': s === 3 ? 1 : 0 })) })).toEqual([]);
    // GRPO names it early_stop
    expect(asPpoMetrics({ early_stop: 1, reward: 0.5 })['policy/early_stop']).toBe(1);
  });

  it('report several alarms at once, most severe first', () => {
    const bad = {
      ...healthy,
      metrics: history((s) => (s > 24 ? { 'objective/kl': -1, 'policy/clipfrac_avg': 0.5 } : {})),
      samples: [{ step: STEPS, response: '', tokens: Array(12).fill('!') as string[] }],
    };
    expect(ids(bad)).toEqual(['kl-negative', 'repetition', 'policy-ratio']);
  });

  it('measure repetition and trends', () => {
    expect(repetition(['a', 'b', 'a', 'b', 'a', 'b'])).toMatchObject({ distinctRatio: 1 / 3, coverage: 1, times: 3 });
    expect(repetition(['a', 'bc', 'ab', 'c', 'a', 'bc'])).toMatchObject({ coverage: 0, times: 0 }); // tokens are not glued
    expect(
      slope([
        [1, 1],
        [2, 3],
        [3, 5],
      ]),
    ).toBeCloseTo(2);
    expect(slope([[4, 1]])).toBe(0);
  });
});

describe('GRPO and RLOO runs', () => {
  it("read under PPO's names where they mean the same: reward, KL per sequence, clipped share", () => {
    expect(asPpoMetrics({ reward: 0.5, kl: 0.02, 'completions/mean_length': 20, 'clip_ratio/region_mean': 0.1 })).toMatchObject({
      'objective/scores': 0.5,
      'objective/kl': 0.4,
      'policy/clipfrac_avg': 0.1,
    });
    expect(asPpoMetrics({ reward: 1 })).not.toHaveProperty('objective/kl');
  });
  it('a GRPO run whose KL per token times length runs away raises the KL alarm', () => {
    const metrics = Array.from({ length: 10 }, (_, i) => ({
      step: i + 1,
      values: asPpoMetrics({ reward: i, kl: i < 5 ? 0.01 : 1, 'completions/mean_length': 20, 'clip_ratio/region_mean': 0 }),
    }));
    expect(computeAlarms({ metrics }).map((a) => a.id)).toContain('kl-exploding');
  });
});
