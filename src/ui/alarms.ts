// Alarms for the ways PPO (and GRPO / RLOO, through asPpoMetrics) is known to go wrong, read off what a
// run already reports: its metric history (TRL's names, as src/train/ppo.ts emits them), the user's spot checks and a few decoded rollouts.
// Pure functions (no DOM, no GPU, no store) so each signature is tested on a crafted history.
//
// The signatures (see Ziegler et al. 2019, InstructGPT section 3.5, and TRL's PPO docs):
//  1. KL below zero. objective/kl estimates KL(policy || reference) from the policy's own samples; a true
//     KL is never negative, so a clearly negative mean says the samples were not drawn from the scored
//     distribution (sampling settings that differ from the log-probabilities), which the policy exploits.
//  2. KL exploding: far over the adaptive controller's target, over an absolute cap, or growing several
//     fold within a few steps: the policy runs away from the reference and its text degrades.
//  3. Policy ratio far from 1: policy/clipfrac_avg (share of tokens whose ratio left 1 +- cliprange) and
//     policy/approxkl_avg (mean 0.5 (log ratio)^2, so sqrt(2 approxkl) is a typical |log ratio|). Large
//     values mean each update moves the policy further than the clipped objective can trust.
//  4. Reward hacking: the reward model's score rises while the user's own 1-7 spot checks fall.
//  5. Repetition collapse: a response filled by one token or one short phrase over and over.
//  6. Updates stopped early: TRL's early-stopping guard (early_stopping, target_kl) skipped a step's
//     remaining updates because the policy had moved more than 1.5 x target_kl from the one that sampled.
// Each rule averages a few steps (`window`) so that one noisy batch raises nothing.
import type { MetricRecord, SpotCheckRecord } from '../store/db.ts';

export type AlarmId = 'kl-negative' | 'kl-exploding' | 'policy-ratio' | 'reward-hacking' | 'repetition' | 'early-stop';

export interface Alarm {
  id: AlarmId;
  severity: 'warning' | 'critical';
  title: string;
  detail: string; // what was measured, and what usually causes it
  step?: number; // the last step of the evidence
}

export interface AlarmInput {
  metrics: Pick<MetricRecord, 'step' | 'values'>[]; // in step order
  spotChecks?: Pick<SpotCheckRecord, 'step' | 'score' | 'reward'>[];
  samples?: { step: number; response: string; tokens?: string[] }[]; // recent rollouts
  config?: { klTarget?: number; cliprange?: number };
}

export const ALARM_LIMITS = {
  window: 5, // steps averaged per check
  klNegative: 0.05, // nats per sequence below zero tolerated (sampling noise of the estimator)
  klTargetMultiple: 3, // with an adaptive KL: alarm above 3 x kl_target
  klMax: 10, // with a fixed kl_coef: alarm above 10 nats per sequence
  klGrowth: 4, // ... or when the last window's mean is 4 x the one before
  klGrowthFloor: 1, // ... and above 1 nat (KL starts near 0, so early growth is relative noise)
  clipfrac: 0.2, // share of tokens clipped
  logRatio: 0.2, // typical |log ratio| (the default cliprange); the run's cliprange when known
  minSpotChecks: 4, // spot checks needed before comparing trends
  rewardRise: 0.1, // reward-model score gained over the spot-checked steps (fitted line)
  scoreDrop: 0.5, // user score lost over the same steps, on the 1-7 scale (fitted line)
  minTokens: 8, // shorter responses are not judged for repetition
  distinctRatio: 0.3, // distinct tokens / tokens below this is collapse
  ngramCoverage: 0.5, // one n-gram (n <= maxNgram) repeated over this share of the response is collapse
  maxNgram: 4,
};
export type AlarmLimits = typeof ALARM_LIMITS;

type Point = [step: number, value: number];

/**
 * A GRPO or RLOO step's metrics under the PPO names the alarms read, where they mean the same thing:
 * the mean reward as objective/scores (reward hacking: it rises while the spot checks fall), the KL per
 * token times the mean completion length as objective/kl (nats per sequence, as PPO's), and the share of
 * clipped tokens as policy/clipfrac_avg. They have no approxkl (the ratio alarm reads the clip share alone).
 */
export function asPpoMetrics(values: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = { ...values };
  if ('reward' in values) out['objective/scores'] = values.reward!;
  if ('kl' in values && 'completions/mean_length' in values) out['objective/kl'] = values.kl! * values['completions/mean_length']!;
  if ('clip_ratio/region_mean' in values) out['policy/clipfrac_avg'] = values['clip_ratio/region_mean']!;
  if ('early_stop' in values) out['policy/early_stop'] = values.early_stop!;
  return out;
}

/** The finite values of one metric over steps. */
export function metricSeries(metrics: AlarmInput['metrics'], key: string): Point[] {
  return metrics.flatMap((m) => (Number.isFinite(m.values[key]) ? [[m.step, m.values[key]!] as Point] : []));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Least-squares slope of value over step (0 for fewer than two distinct steps). */
export function slope(points: Point[]): number {
  if (points.length < 2) return 0;
  const mx = mean(points.map((p) => p[0])),
    my = mean(points.map((p) => p[1]));
  let sxy = 0,
    sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : 0;
}

/** Means of the last window and of the one before it (undefined where there are too few points). */
function windows(points: Point[], w: number): { last?: number; before?: number; step?: number } {
  if (points.length < w) return {};
  const v = points.map((p) => p[1]);
  return { last: mean(v.slice(-w)), before: points.length >= 2 * w ? mean(v.slice(-2 * w, -w)) : undefined, step: points.at(-1)![0] };
}

const f = (x: number, digits = 3) => Number(x.toPrecision(digits)).toString();

export function klAlarms(input: AlarmInput, lim: AlarmLimits = ALARM_LIMITS): Alarm[] {
  const { last, before, step } = windows(metricSeries(input.metrics, 'objective/kl'), lim.window);
  if (last === undefined) return [];
  const out: Alarm[] = [];
  if (last < -lim.klNegative) {
    out.push({
      id: 'kl-negative',
      severity: 'critical',
      step,
      title: 'KL to the reference is negative',
      detail: `objective/kl averaged ${f(last)} nats over the last ${lim.window} steps. A true KL is never below 0: the rollouts are not samples of the distribution being scored (temperature, top-k/top-p or blocked tokens that the log-probabilities do not include), and the policy is being paid for exploiting that.`,
    });
  }
  const target = input.config?.klTarget ?? 0;
  const why =
    target > 0 && last > lim.klTargetMultiple * target
      ? `${f(last / target, 2)} x the target ${f(target)}`
      : target <= 0 && last > lim.klMax
        ? `over ${lim.klMax} nats`
        : before !== undefined && last > lim.klGrowthFloor && last > lim.klGrowth * Math.max(before, 0)
          ? `up from ${f(before)} in ${lim.window} steps`
          : undefined;
  if (why) {
    out.push({
      id: 'kl-exploding',
      severity: 'critical',
      step,
      title: 'KL is exploding',
      detail: `objective/kl averaged ${f(last)} nats over the last ${lim.window} steps, ${why}. The policy is leaving the reference faster than the penalty pulls it back; its text usually degrades next. Lower the learning rate, raise kl_coef or set kl_target.`,
    });
  }
  return out;
}

export function ratioAlarm(input: AlarmInput, lim: AlarmLimits = ALARM_LIMITS): Alarm[] {
  const clip = windows(metricSeries(input.metrics, 'policy/clipfrac_avg'), lim.window);
  const akl = windows(metricSeries(input.metrics, 'policy/approxkl_avg'), lim.window);
  const logRatio = akl.last === undefined ? undefined : Math.sqrt(2 * Math.max(0, akl.last));
  const maxLog = input.config?.cliprange ?? lim.logRatio;
  const parts = [
    clip.last !== undefined && clip.last > lim.clipfrac ? `policy/clipfrac_avg ${f(clip.last)} (${Math.round(clip.last * 100)}% of tokens clipped)` : '',
    logRatio !== undefined && logRatio > maxLog
      ? `policy/approxkl_avg ${f(akl.last!)} (a typical ratio of ${f(Math.exp(-logRatio))} to ${f(Math.exp(logRatio))})`
      : '',
  ].filter(Boolean);
  if (!parts.length) return [];
  return [
    {
      id: 'policy-ratio',
      severity: 'warning',
      step: clip.step ?? akl.step,
      title: 'Policy ratio far from 1',
      detail: `${parts.join('; ')}, averaged over the last ${lim.window} steps. Each update moves the policy further than the clipped objective can trust: lower the learning rate, or use fewer ppo_epochs or minibatches.`,
    },
  ];
}

export function rewardHackingAlarm(input: AlarmInput, lim: AlarmLimits = ALARM_LIMITS): Alarm[] {
  const checks = input.spotChecks ?? [];
  if (checks.length < lim.minSpotChecks) return [];
  const first = Math.min(...checks.map((c) => c.step)),
    last = Math.max(...checks.map((c) => c.step));
  if (last <= first) return [];
  // the reward's trend over the spot-checked steps: the batch means when there are enough, else the
  // reward model's scores of the very responses the user judged
  const batch = metricSeries(input.metrics, 'objective/scores').filter(([s]) => s >= first && s <= last);
  const reward = batch.length >= 3 ? batch : checks.map((c): Point => [c.step, c.reward]);
  const rise = slope(reward) * (last - first);
  const drop = -slope(checks.map((c): Point => [c.step, c.score])) * (last - first);
  if (!(rise > lim.rewardRise && drop > lim.scoreDrop)) return [];
  return [
    {
      id: 'reward-hacking',
      severity: 'critical',
      step: last,
      title: 'Reward rises while your scores fall',
      detail: `From step ${first} to ${last} the reward model's score rose by ${f(rise)} while your ${checks.length} spot checks fell by ${f(drop, 2)} points (fitted lines). The policy is pleasing the reward model, not you: stop here, keep an earlier checkpoint, rank more of its answers and retrain the reward model.`,
    },
  ];
}

/** How repetitive one response is: distinct tokens / tokens, and the share covered by its most repeated n-gram. */
export function repetition(tokens: string[], maxNgram = ALARM_LIMITS.maxNgram): { distinctRatio: number; coverage: number; repeated: string; times: number } {
  const n = tokens.length;
  let best = { coverage: 0, repeated: '', times: 0 };
  for (let k = 1; k <= Math.min(maxNgram, n); k++) {
    const counts = new Map<string, number>(); // keyed with a separator: ['a', 'bc'] is not ['ab', 'c']
    for (let i = 0; i + k <= n; i++) {
      const g = tokens.slice(i, i + k).join('\u0000');
      counts.set(g, (counts.get(g) ?? 0) + 1);
    }
    for (const [g, c] of counts) {
      const coverage = Math.min(1, (c * k) / n); // a thing seen twice may be style; three times is a loop
      if (c >= 3 && coverage > best.coverage) best = { coverage, repeated: g.replaceAll('\u0000', ''), times: c };
    }
  }
  return { distinctRatio: n ? new Set(tokens).size / n : 1, ...best };
}

export function repetitionAlarm(input: AlarmInput, lim: AlarmLimits = ALARM_LIMITS): Alarm[] {
  const collapsed = (input.samples ?? []).flatMap((s) => {
    const tokens = s.tokens ?? s.response.split(/(?=\s)/); // words with their leading space, when tokens are missing
    if (tokens.length < lim.minTokens) return [];
    const r = repetition(tokens, lim.maxNgram);
    return r.distinctRatio < lim.distinctRatio || r.coverage >= lim.ngramCoverage ? [{ s, r }] : [];
  });
  if (!collapsed.length) return [];
  const { s, r } = collapsed[0]!;
  const what = r.times
    ? `${JSON.stringify(r.repeated)} ${r.times} times (${Math.round(r.coverage * 100)}% of the response)`
    : `only ${Math.round(r.distinctRatio * 100)}% distinct tokens`;
  return [
    {
      id: 'repetition',
      severity: collapsed.length * 2 >= (input.samples?.length ?? 0) ? 'critical' : 'warning',
      step: s.step,
      title: 'Responses collapse into repetition',
      detail: `${collapsed.length} of ${input.samples!.length} recent rollouts repeat themselves, e.g. ${what}. The reward model pays for a pattern, or the KL leash is too loose: raise kl_coef, lower the learning rate, or go back to an earlier checkpoint.`,
    },
  ];
}

/** Every alarm that fires, most severe first. */
/** Any step of the last window whose remaining updates the early-stopping guard skipped (one is enough: it already means the policy ran off). */
export function earlyStopAlarm(input: AlarmInput, lim: AlarmLimits = ALARM_LIMITS): Alarm[] {
  const recent = metricSeries(input.metrics, 'policy/early_stop').slice(-lim.window);
  const stopped = recent.filter(([, v]) => v > 0);
  if (!stopped.length) return [];
  return [
    {
      id: 'early-stop',
      severity: 'warning',
      step: stopped.at(-1)![0],
      title: 'Updates stopped early',
      detail: `In ${stopped.length} of the last ${recent.length} steps the early-stopping guard skipped the step's remaining updates: the policy had moved more than 1.5 x target_kl (approx KL) from the one that sampled. Lower the learning rate, or use fewer ppo_epochs (num_iterations).`,
    },
  ];
}

export function computeAlarms(input: AlarmInput, lim: AlarmLimits = ALARM_LIMITS): Alarm[] {
  const all = [
    ...klAlarms(input, lim),
    ...ratioAlarm(input, lim),
    ...rewardHackingAlarm(input, lim),
    ...repetitionAlarm(input, lim),
    ...earlyStopAlarm(input, lim),
  ];
  return all.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'critical' ? -1 : 1));
}
