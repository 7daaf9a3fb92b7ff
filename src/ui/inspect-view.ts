// <inspect-view>: look inside a PPO, GRPO or RLOO run. Its rollouts are shown token by token, coloured by a chosen
// per-token quantity (KL contribution, value, advantage) with the number on hover; alarms flag the known
// failure signatures (src/ui/alarms.ts); and the user spot-checks recent rollouts with a 1-7 score, so
// that "the reward rises but the answers get worse" is caught by a person, not only by the reward model.
//
// Why it is built this way:
//  - The engine stores each PPO step's few rollouts (and its metrics); the spot checks are stored too,
//    so a run can be inspected, spot-checked and its alarms read after a reload. While a run trains the
//    newest steps come from ctx.samples (the session's events), which win over a stored copy of a step.
//  - The colour scale is diverging and symmetric around 0 (blue below, red above), scaled to the
//    largest |value| on screen: the sign is what matters for all three quantities.
//  - The engine reports a rollout's prompt as the model saw it (chat template included); it is shown,
//    and offered for ranking, as the user's own prompt whenever one of the stored prompts is inside it.
//  - A spot-check score goes to the rollout that was on screen when the user pressed it, even when a new
//    step's rollouts arrived in between.
//  - Model text is bound as text, never as HTML.
import { css, html } from 'lit';
import { styleMap } from 'lit/directives/style-map.js';
import * as db from '../store/db.ts';
import { asPpoMetrics, computeAlarms } from './alarms.ts';
import type { AppContext, RolloutSample } from './context.ts';
import { CtxView, errText } from './ctx-view.ts';
import { sharedStyles } from './styles.ts';
import type { CompletionRow } from '../shared/types.ts';

type Quantity = 'kl' | 'value' | 'advantage';

const ONLINE_STAGES = ['ppo', 'grpo', 'rloo'];

const QUANTITIES: { id: Quantity; label: string; low: string; high: string; allZero: string }[] = [
  {
    id: 'kl',
    label: 'KL contribution (log policy - log reference)',
    low: 'likelier under the starting model',
    high: 'likelier under the policy',
    allZero: 'the policy has not moved from the starting model yet (the rollouts of step 1 are sampled before the first update)',
  },
  {
    id: 'value',
    label: 'Value (expected reward from this token on)',
    low: 'expects a low reward',
    high: 'expects a high reward',
    allZero: 'the value model expects no reward either way',
  },
  {
    id: 'advantage',
    label: 'Advantage (better or worse than expected)',
    low: 'discouraged',
    high: 'reinforced',
    allZero: 'no token did better or worse than expected',
  },
];

/** Background for x on a diverging scale over [-max, max]: blue below 0, red above, white at 0. */
export function divergingColor(x: number, max: number): string {
  const t = Math.max(-1, Math.min(1, max > 0 ? x / max : 0));
  const [r, g, b] = t < 0 ? [33, 102, 172] : [214, 47, 39];
  return `rgba(${r}, ${g}, ${b}, ${(Math.abs(t) * 0.75).toFixed(3)})`;
}

/** A per-token number for a tooltip: four decimals, or three significant digits when that would read 0.0000. */
export function fmtValue(x: number): string {
  return x !== 0 && Math.abs(x) < 5e-5 ? x.toExponential(2) : x.toFixed(4);
}

/** Tokens such as <|endoftext|> or </s>: drawn apart from the text, since they are not text. */
export const isSpecialToken = (t: string) => /^<\|[^|]*\|>$|^<\/?s>$|^<(?:pad|unk|eos|bos)>$/.test(t);

/**
 * The user's prompt inside the prompt the model saw (chat template and special tokens around it): the
 * longest of `known` that it contains; undefined when none does.
 */
export function userPrompt(seen: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const k of known) if (k.trim() && seen.includes(k) && (!best || k.length > best.length)) best = k;
  return best;
}

interface Shown {
  step: number;
  sample: RolloutSample;
}

export class InspectView extends CtxView {
  private quantity: Quantity = 'kl';
  private runs: db.RunRecord[] = []; // online runs (PPO, GRPO, RLOO), newest first
  private runId?: string;
  private rows = new Map<number, db.MetricRecord>();
  private checks: db.SpotCheckRecord[] = [];
  private stored: Shown[] = []; // the inspected run's rollouts from the store, as they were when picked
  private storedTables = new Map<number, CompletionRow[]>(); // GRPO/RLOO: each stored step's completions table
  private step?: number; // the step whose rollouts are shown; undefined = the latest
  private saving = false;
  private known = new Set<string>(); // the user's prompts (stored prompts and those of the dataset)
  private offered?: Shown; // the rollout the spot check shows now: what keys 1-7 score

  static override styles = [
    sharedStyles,
    css`
    :host { outline: none; }
    .card > h3:first-child { margin-top: 0; }
    .table-wrap { overflow-x: auto; max-height: 28em; }
    #completions table { border-collapse: collapse; font-size: 0.88em; }
    #completions th, #completions td { border-bottom: 1px solid #e3e3e3; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
    #completions td.num { font-variant-numeric: tabular-nums; text-align: right; white-space: nowrap; }
    #completions td.text { white-space: pre-wrap; word-break: break-word; max-width: 32em; }
    .tokens { white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.9em; line-height: 1.7; }
    .tok { border-radius: 3px; }
    .tok.special { font-size: 0.75em; color: #6e6e73; border: 1px dotted #b0b0b8; padding: 0 0.15em; margin-left: 0.15em; }
    .legend { display: flex; align-items: center; gap: 0.5rem; font-size: 0.85em; }
    .legend .bar { width: 10rem; height: 0.8rem; border-radius: 3px; border: 1px solid #d0d0d7;
      background: linear-gradient(to right, rgba(33,102,172,0.75), rgba(255,255,255,0), rgba(214,47,39,0.75)); }
    .sample { border-top: 1px solid #ececf1; padding: 0.5rem 0; }
    .sample .prompt { font-weight: 600; }
    .alarm { border-left: 4px solid #e8a400; background: #fff8e6; padding: 0.4rem 0.75rem; margin: 0.4rem 0; border-radius: 4px; list-style: none; }
    .alarm.critical { border-color: #b42318; background: #fdf0ef; }
    #alarms { padding: 0; margin: 0; list-style: none; }
    .group { border-top: 1px solid #ececf1; }
    .group > .sample { border-top: none; padding-left: 0.75rem; }
    .group-head { display: flex; gap: 0.6rem; align-items: baseline; justify-content: space-between; padding-top: 0.5rem; }
    .score { min-width: 2.4rem; }
  `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    this.tabIndex = 0; // keys 1-7 score the spot check once the view has focus
    this.addEventListener('keydown', this.onKey);
  }

  override disconnectedCallback(): void {
    this.removeEventListener('keydown', this.onKey);
    super.disconnectedCallback();
  }

  // ---- the context ----

  protected listen(ctx: AppContext) {
    return [
      ctx.on('runs', () => void ctx.attempt('inspect: reading runs', () => this.loadRuns(ctx))),
      ctx.on('data', () => void ctx.attempt('inspect: reading prompts', () => this.loadPrompts(ctx))),
      ctx.on('samples', (s) => {
        if (s.runId && s.runId !== this.runId) void this.pick(s.runId);
        else this.requestUpdate();
      }),
      ctx.on('metrics', (m) => {
        if (m.runId !== this.runId) return;
        this.rows.set(m.step, m);
        this.requestUpdate();
      }),
    ];
  }

  protected async reload(ctx: AppContext): Promise<void> {
    await Promise.all([this.loadRuns(ctx), this.loadPrompts(ctx)]);
    if (!this.runId) await this.pick(ctx.liveRun ?? ctx.samples.at(-1)?.runId ?? this.runs[0]?.id);
  }

  private async loadRuns(ctx: AppContext): Promise<void> {
    this.runs = (await db.listRuns(ctx.store)).filter((r) => ONLINE_STAGES.includes(r.stage));
    this.requestUpdate();
  }

  private async loadPrompts(ctx: AppContext): Promise<void> {
    const [prompts, records] = await Promise.all([db.listPrompts(ctx.store), ctx.userRecords()]);
    this.known = new Set([...prompts.map((p) => p.text), ...records.flatMap((r) => ('prompt' in r && typeof r.prompt === 'string' ? [r.prompt] : []))]);
    this.requestUpdate();
  }

  /** The user's prompt of a rollout, else the prompt as the model saw it. */
  private promptOf(s: RolloutSample): string {
    return userPrompt(s.prompt, this.known) ?? s.prompt;
  }

  /** Inspects another run: its metric history and spot checks from the store. */
  private async pick(runId: string | undefined): Promise<void> {
    const ctx = this.ctx;
    this.runId = runId || undefined;
    this.step = undefined;
    this.rows = new Map();
    this.checks = [];
    this.stored = [];
    this.storedTables = new Map();
    this.requestUpdate();
    if (!ctx || !this.runId) return;
    const id = this.runId;
    const [metrics, checks, rollouts] = await Promise.all([db.getMetrics(ctx.store, id), db.listSpotChecks(ctx.store, id), db.listRollouts(ctx.store, id)]);
    if (this.runId !== id) return;
    for (const m of metrics) if (!this.rows.has(m.step)) this.rows.set(m.step, m);
    this.checks = checks;
    this.stored = rollouts.flatMap((r) => r.samples.map((sample) => ({ step: r.step, sample })));
    this.storedTables = new Map(rollouts.flatMap((r) => (r.completions ? [[r.step, r.completions] as const] : [])));
    this.requestUpdate();
  }

  // ---- rollouts and spot checks ----

  /** The inspected run's rollouts, oldest first: the stored ones, and the session's for the steps since (or redone). */
  private rollouts(): Shown[] {
    const live = (this.ctx?.samples ?? []).filter((s) => s.runId === this.runId).map(({ step, sample }) => ({ step, sample }));
    const fresh = new Set(live.map((s) => s.step));
    return [...this.stored.filter((s) => !fresh.has(s.step)), ...live].sort((a, b) => a.step - b.step); // stable: a step's samples keep their order
  }

  /** GRPO/RLOO: step `step`'s completions table, this session's copy first, else the stored one. */
  private table(step: number | undefined): CompletionRow[] | undefined {
    if (step === undefined) return undefined;
    return this.ctx?.completions.find((c) => c.runId === this.runId && c.step === step)?.rows ?? this.storedTables.get(step);
  }

  /** Every completion of the step with each reward function's score and its advantage, as TRL logs it. */
  private tableView(step: number | undefined) {
    const rows = this.table(step);
    if (!rows?.length) return null;
    const names = Object.keys(rows[0]!.rewards);
    const num = (x: number | null | undefined) => (x === null || x === undefined ? '—' : x.toFixed(3));
    return html`
      <section class="card" id="completions">
        <h3>Completions of step ${step}</h3>
        <p class="muted small">Every completion of the step with each reward (— where a function does not apply), their weighted sum and the advantage it was trained with: the group's other completions are its baseline.</p>
        <div class="table-wrap"><table>
          <thead><tr><th>prompt</th><th>completion</th>${names.map((n) => html`<th>${n}</th>`)}<th>reward</th><th>advantage</th></tr></thead>
          <tbody>${rows.map(
            (r) => html`<tr>
            <td>${this.promptOfText(r.prompt)}</td><td class="text">${r.completion}</td>${names.map((n) => html`<td class="num">${num(r.rewards[n])}</td>`)}
            <td class="num">${num(r.reward)}</td><td class="num" style=${styleMap({ background: divergingColor(r.advantage, Math.max(...rows.map((x) => Math.abs(x.advantage)), 1e-9)) })}>${num(r.advantage)}</td>
          </tr>`,
          )}</tbody>
        </table></div>
      </section>`;
  }

  /** The user's prompt inside a prompt as the model saw it, else that prompt. */
  private promptOfText(seen: string): string {
    return userPrompt(seen, this.known) ?? seen;
  }

  /** The newest rollout the user has not scored yet. */
  private nextCheck(all: Shown[]): Shown | undefined {
    const seen = new Set(this.checks.map((c) => `${c.step}\n${c.response}`));
    return [...all].reverse().find((s) => !seen.has(`${s.step}\n${s.sample.response}`));
  }

  /** Saves the user's score of `s`, the rollout that was on screen (keys: the one shown now). */
  private async score(score: number, s = this.offered): Promise<void> {
    const ctx = this.ctx;
    if (!ctx || !s || !this.runId || this.saving) return;
    this.saving = true;
    this.requestUpdate();
    try {
      const record = { runId: this.runId, step: s.step, prompt: this.promptOf(s.sample), response: s.sample.response, reward: s.sample.score, score };
      await db.addSpotCheck(ctx.store, record);
      this.checks = [...this.checks, { ...record, createdAt: Date.now() }];
    } catch (e) {
      ctx.notify(`saving the spot check: ${errText(e)}`, 'error');
    } finally {
      this.saving = false;
      this.requestUpdate();
    }
  }

  private onKey = (e: KeyboardEvent): void => {
    const target = e.composedPath()[0];
    if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) return;
    if (e.key >= '1' && e.key <= '7' && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      void this.score(Number(e.key));
    }
  };

  // ---- rendering ----

  override render() {
    if (!this.ctx) return html``;
    const all = this.rollouts();
    const steps = [...new Set(all.map((s) => s.step))];
    const step = this.step ?? steps.at(-1);
    const shown = all.filter((s) => s.step === step);
    const run = this.runs.find((r) => r.id === this.runId);
    const group = run !== undefined && run.stage !== 'ppo';
    const alarms = computeAlarms({
      metrics: [...this.rows.values()].sort((a, b) => a.step - b.step).map((m) => (group ? { ...m, values: asPpoMetrics(m.values) } : m)),
      spotChecks: this.checks,
      // the newest rollouts, whichever step is on screen: alarms are about now
      samples: all.filter((s) => s.step === steps.at(-1)).map((s) => ({ step: s.step, response: s.sample.response, tokens: s.sample.tokens })),
      config: { klTarget: Number(run?.config.klTarget ?? 0), cliprange: Number(run?.config.cliprange ?? 0.2) },
    });
    return html`
      <h2>Inspect</h2>
      <div class="row">
        <label>PPO run
          <select id="inspect-run" @change=${(e: Event) => this.pick((e.target as HTMLSelectElement).value)}>
            ${this.runs.length ? null : html`<option value="">none yet</option>`}
            ${this.runs.map((r) => html`<option value=${r.id} ?selected=${r.id === this.runId}>${`${r.id.slice(0, 8)} · ${r.status} · ${new Date(r.createdAt).toLocaleString()}`}</option>`)}
          </select>
        </label>
      </div>
      <section class="card">
        <h3>Alarms</h3>
        <ul id="alarms">
          ${
            alarms.length
              ? alarms.map(
                  (a) => html`
            <li class="alarm ${a.severity}" data-alarm=${a.id} role=${a.severity === 'critical' ? 'alert' : 'status'}>
              <b>${a.title}</b>${a.step !== undefined ? html` <span class="muted small">(step ${a.step})</span>` : null}
              <div class="small">${a.detail}</div>
            </li>`,
                )
              : html`<li class="none muted">No alarm. Watched: KL below zero or exploding, policy ratio far from 1, reward rising while your spot checks fall, repetitive answers.</li>`
          }
        </ul>
      </section>
      ${this.spotCheck(all)}
      ${this.rolloutView(shown, steps, step)}
      ${this.tableView(step)}
    `;
  }

  private spotCheck(all: Shown[]) {
    const s = this.nextCheck(all);
    this.offered = s;
    const mean = this.checks.length ? this.checks.reduce((a, c) => a + c.score, 0) / this.checks.length : undefined;
    return html`
      <section class="card" id="spot">
        <h3>Spot check</h3>
        <p class="muted small">Score the policy's latest answers yourself, 1 (bad) to 7 (great): if the reward climbs while your scores fall, the policy is gaming the reward model.
          ${this.checks.length} scored${mean !== undefined ? `, mean ${mean.toFixed(1)}` : ''}.</p>
        ${
          s
            ? html`
          <div class="sample" data-step=${s.step}>
            <div class="prompt">${this.promptOf(s.sample)}</div>
            <div class="pre">${s.sample.response}</div>
            <div class="muted small">step ${s.step} · reward model: ${s.sample.score.toFixed(3)}</div>
          </div>
          <div class="row">${[1, 2, 3, 4, 5, 6, 7].map(
            (n) => html`
            <button class="score" data-score=${n} ?disabled=${this.saving} title="score ${n} (key ${n})" @click=${() => this.score(n, s)}>${n}</button>`,
          )}
            <span class="muted small">or press 1-7</span>
          </div>`
            : html`<div class="empty">${all.length ? 'All rollouts shown so far are scored; more come with the next steps.' : 'Rollouts appear here while a PPO, GRPO or RLOO run trains.'}</div>`
        }
      </section>
    `;
  }

  /** GRPO and RLOO have no value model: only KL and advantage (one per completion, on each of its tokens). */
  private quantities(): typeof QUANTITIES {
    const stage = this.runs.find((r) => r.id === this.runId)?.stage;
    if (stage === 'ppo' || stage === undefined) return QUANTITIES;
    if (this.quantity === 'value') this.quantity = 'kl';
    return QUANTITIES.filter((q) => q.id !== 'value');
  }

  private rolloutView(shown: Shown[], steps: number[], step: number | undefined) {
    const quantities = this.quantities();
    const q = quantities.find((x) => x.id === this.quantity)!;
    const max = Math.max(0, ...shown.flatMap((s) => (s.sample[this.quantity] ?? []).map(Math.abs).filter(Number.isFinite)));
    const live = this.ctx?.liveRun === this.runId;
    // the rollouts of one prompt together: several answers to one prompt can be ranked at once
    const groups = new Map<string, Shown[]>();
    for (const s of shown) groups.set(s.sample.prompt, [...(groups.get(s.sample.prompt) ?? []), s]);
    return html`
      <section class="card" id="rollouts">
        <h3>Rollouts</h3>
        <div class="row">
          <label>Colour by
            <select id="quantity" @change=${(e: Event) => {
              this.quantity = (e.target as HTMLSelectElement).value as Quantity;
              this.requestUpdate();
            }}>
              ${quantities.map((x) => html`<option value=${x.id} ?selected=${x.id === this.quantity}>${x.label}</option>`)}
            </select>
          </label>
          <label>Step
            <select id="sample-step" ?disabled=${!steps.length} @change=${(e: Event) => {
              const v = (e.target as HTMLSelectElement).value;
              this.step = v ? Number(v) : undefined;
              this.requestUpdate();
            }}>
              <option value="" ?selected=${this.step === undefined}>latest${steps.length ? ` (${steps.at(-1)})` : ''}</option>
              ${steps.map((s) => html`<option value=${s} ?selected=${s === this.step}>${s}</option>`)}
            </select>
          </label>
        </div>
        ${
          !shown.length
            ? null
            : max > 0
              ? html`<div class="legend" id="legend">
            <span>${(-max).toPrecision(3)}</span><span class="bar"></span><span>${max.toPrecision(3)}</span>
            <span class="muted">blue: ${q.low} · red: ${q.high}; hover a token for its number</span>
          </div>`
              : html`<p class="legend muted" id="legend" data-all-zero>Every token is 0 at step ${step}: ${q.allZero}.</p>`
        }
        ${
          shown.length
            ? [...groups.values()].map((g) => this.group(g, max))
            : html`<div class="empty">${
                live
                  ? 'The first rollouts appear after the first step.'
                  : 'No rollouts stored for this run (runs trained before the playground kept them have none; the alarms above come from its stored metrics).'
              }</div>`
        }
      </section>
    `;
  }

  private group(g: Shown[], max: number) {
    const sample = g[0]!.sample;
    const prompt = userPrompt(sample.prompt, this.known);
    const answers = g.map((s) => s.sample.response);
    const why = answers.length < 2 ? 'one answer: a ranking needs two or more' : !prompt ? 'this prompt is not among your prompts (Data tab)' : undefined;
    return html`
      <div class="group">
        <div class="group-head">
          <span class="prompt">${prompt ?? sample.prompt}</span>
          <button class="rank-these" ?disabled=${!!why} title=${why ?? 'rank these answers on the Rank tab: your ranking teaches the next reward model'}
            @click=${() => prompt && this.ctx?.offerForRanking(prompt, answers)}>Rank these ${answers.length}</button>
        </div>
        ${g.map((s) => this.tokens(s, max))}
      </div>
    `;
  }

  private tokens({ step, sample }: Shown, max: number) {
    const values = sample[this.quantity];
    return html`
      <div class="sample" data-step=${step}>
        <div class="tokens">${
          sample.tokens && values
            ? sample.tokens.map((t, i) => {
                const x = values[i];
                const cls = isSpecialToken(t) ? 'tok special' : 'tok';
                return x === undefined || !Number.isFinite(x)
                  ? html`<span class=${cls}>${t}</span>`
                  : html`<span class=${cls} title=${`${JSON.stringify(t)} · ${this.quantity} ${fmtValue(x)}`} style=${styleMap({ background: divergingColor(x, max) })}>${t}</span>`;
              })
            : sample.response
        }</div>
        <div class="muted small">reward model: ${sample.score.toFixed(3)}</div>
      </div>
    `;
  }
}

if (!customElements.get('inspect-view')) customElements.define('inspect-view', InspectView);

declare global {
  interface HTMLElementTagNameMap {
    'inspect-view': InspectView;
  }
}
