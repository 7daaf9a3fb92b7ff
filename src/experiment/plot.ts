// The experiment's figure as one SVG (no dependencies): the RL stages' reward-model score and KL per step
// (PPO solid, GRPO dashed, RLOO dotted), and the win rate against the number of comparisons, one line per
// labeler and method.
import type { ExperimentResults } from './run.ts';

const W = 420,
  H = 260,
  M = { l: 48, r: 12, t: 28, b: 40 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface Series {
  name: string;
  points: [number, number][];
  dash?: string;
  color: string;
}
/** A method's line style, the same in every panel. */
const DASH: Record<string, string | undefined> = { ppo: undefined, dpo: '8 3', grpo: '5 3', rloo: '2 2' };

function panel(x0: number, title: string, xLabel: string, yLabel: string, series: Series[], y?: [number, number], guide?: number): string {
  const pts = series.flatMap((s) => s.points);
  if (!pts.length) return `<g transform="translate(${x0},0)"><text x="${W / 2}" y="${H / 2}" text-anchor="middle">${esc(title)}: no data</text></g>`;
  const xs = pts.map((p) => p[0]),
    ys = pts.map((p) => p[1]);
  const [xa, xb] = [Math.min(...xs), Math.max(...xs) === Math.min(...xs) ? Math.min(...xs) + 1 : Math.max(...xs)];
  let [ya, yb] = y ?? [Math.min(0, ...ys), Math.max(...ys)];
  if (yb === ya) yb = ya + 1;
  const px = (x: number) => M.l + ((x - xa) / (xb - xa)) * (W - M.l - M.r);
  const py = (v: number) => H - M.b - ((v - ya) / (yb - ya)) * (H - M.t - M.b);
  const ticks = (a: number, b: number) => Array.from({ length: 5 }, (_, i) => a + ((b - a) * i) / 4);
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
  const out = [`<g transform="translate(${x0},0)">`, `<text x="${W / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(title)}</text>`];
  out.push(`<rect x="${M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" fill="none" stroke="#999"/>`);
  for (const v of ticks(ya, yb)) out.push(`<text x="${M.l - 4}" y="${py(v) + 4}" text-anchor="end" font-size="10">${fmt(v)}</text>`);
  for (const v of ticks(xa, xb)) out.push(`<text x="${px(v)}" y="${H - M.b + 14}" text-anchor="middle" font-size="10">${fmt(v)}</text>`);
  if (guide !== undefined) out.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${py(guide)}" y2="${py(guide)}" stroke="#bbb" stroke-dasharray="2 3"/>`);
  out.push(`<text x="${W / 2}" y="${H - 8}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(12,${H / 2}) rotate(-90)" text-anchor="middle" font-size="11">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const d = s.points.map(([x, v], j) => `${j ? 'L' : 'M'}${px(x).toFixed(1)},${py(v).toFixed(1)}`).join('');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    for (const [x, v] of s.points.length <= 12 ? s.points : [])
      out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(v).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    out.push(`<text x="${M.l + 6}" y="${M.t + 12 + 12 * i}" font-size="10" fill="${s.color}">${esc(s.name)}</text>`);
  });
  out.push('</g>');
  return out.join('\n');
}

export function plotSvg(r: ExperimentResults): string {
  const labelers = Object.keys(r.summary);
  const color = (i: number) => COLORS[i % COLORS.length]!;
  const reward: Series[] = [],
    kl: Series[] = [],
    win: Series[] = [];
  labelers.forEach((l, i) => {
    const rl = { ppo: r.ppo_steps[l], grpo: r.rl_steps?.[l]?.grpo, rloo: r.rl_steps?.[l]?.rloo };
    for (const [k, steps] of Object.entries(rl)) {
      if (!steps?.length) continue;
      const name = `${l}: ${k.toUpperCase()}`;
      reward.push({ name, points: steps.map((s) => [s.step, s.reward]), color: color(i), dash: DASH[k] });
      const withKl = steps.filter((s) => s.kl !== undefined && Number.isFinite(s.kl));
      if (withKl.length) kl.push({ name, points: withKl.map((s) => [s.step, s.kl!]), color: color(i), dash: DASH[k] });
    }
    const c = r.curve[l] ?? [];
    for (const k of ['ppo', 'dpo', 'grpo', 'rloo'] as const) {
      const pts = c.flatMap((p) => (p[`${k}_win_rate`] ? [[p.comparisons, p[`${k}_win_rate`]!.mean] as [number, number]] : []));
      if (pts.length) win.push({ name: `${l}: ${k.toUpperCase()}`, points: pts, color: color(i), dash: DASH[k] });
    }
  });
  const body = [
    panel(0, 'RL: reward model score per step', 'step (PPO, GRPO, RLOO)', 'mean RM score of the rollouts', reward),
    // as each trainer logs it (TRL's names): PPO's objective/kl per rollout, GRPO's and RLOO's kl per token
    panel(W, 'RL: KL to the SFT model per step', 'step (PPO, GRPO, RLOO)', 'KL, nats: PPO per rollout, GRPO/RLOO per token', kl),
    panel(2 * W, 'Win rate against the SFT model', 'comparisons given by the labeler', 'win rate (held-out prompts)', win, [0, 1], 0.5),
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${3 * W}" height="${H + 18}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
${body.join('\n')}
<text x="8" y="${H + 12}" font-size="10" fill="#555">${esc(`${r.settings.seeds} seeds; means over seeds; adapter: ${r.adapter}; ${Math.round(r.seconds)} s`)}</text>
</svg>
`;
}
