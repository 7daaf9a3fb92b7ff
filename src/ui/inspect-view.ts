// <inspect-view>: look inside a PPO run. Its rollouts are shown token by token, coloured by a chosen
// per-token quantity (KL contribution, value, advantage) with the number on hover; alarms flag the known
// failure signatures (src/ui/alarms.ts); and the user spot-checks recent rollouts with a 1-7 score, so
// that "the reward rises but the answers get worse" is caught by a person, not only by the reward model.
//
// Why it is built this way:
//  - Rollouts are not stored (they are many and only worth a glance): they come from ctx.samples, the
//    bounded list of the live session. Metrics and spot checks are in the store, so a run's alarms
//    survive a reload.
//  - The colour scale is diverging and symmetric around 0 (blue below, red above), scaled to the
//    largest |value| on screen: the sign is what matters for all three quantities.
//  - Model text is bound as text, never as HTML.
import { css, html } from 'lit';
import { styleMap } from 'lit/directives/style-map.js';
import * as db from '../store/db.ts';
import { computeAlarms } from './alarms.ts';
import type { AppContext, RolloutSample } from './context.ts';
import { CtxView, errText } from './ctx-view.ts';
import { sharedStyles } from './styles.ts';

type Quantity = 'kl' | 'value' | 'advantage';

const QUANTITIES: { id: Quantity; label: string; low: string; high: string }[] = [
  { id: 'kl', label: 'KL contribution (log policy - log reference)', low: 'likelier under the starting model', high: 'likelier under the policy' },
  { id: 'value', label: 'Value (expected reward from this token on)', low: 'expects a low reward', high: 'expects a high reward' },
  { id: 'advantage', label: 'Advantage (better or worse than expected)', low: 'discouraged', high: 'reinforced' },
];

/** Background for x on a diverging scale over [-max, max]: blue below 0, red above, white at 0. */
export function divergingColor(x: number, max: number): string {
  const t = Math.max(-1, Math.min(1, max > 0 ? x / max : 0));
  const [r, g, b] = t < 0 ? [33, 102, 172] : [214, 47, 39];
  return `rgba(${r}, ${g}, ${b}, ${(Math.abs(t) * 0.75).toFixed(3)})`;
}

interface Shown { step: number; sample: RolloutSample }

export class InspectView extends CtxView {
  private quantity: Quantity = 'kl';
  private runs: db.RunRecord[] = []; // PPO runs, newest first
  private runId?: string;
  private rows = new Map<number, db.MetricRecord>();
  private checks: db.SpotCheckRecord[] = [];
  private step?: number; // the step whose rollouts are shown; undefined = the latest
  private saving = false;

  static override styles = [sharedStyles, css`
    :host { outline: none; }
    .tokens { white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.9em; line-height: 1.7; }
    .tok { border-radius: 3px; }
    .legend { display: flex; align-items: center; gap: 0.5rem; font-size: 0.85em; }
    .legend .bar { width: 10rem; height: 0.8rem; border-radius: 3px; border: 1px solid #d0d0d7;
      background: linear-gradient(to right, rgba(33,102,172,0.75), rgba(255,255,255,0), rgba(214,47,39,0.75)); }
    .sample { border-top: 1px solid #ececf1; padding: 0.5rem 0; }
    .sample .prompt { font-weight: 600; }
    .alarm { border-left: 4px solid #e8a400; background: #fff8e6; padding: 0.4rem 0.75rem; margin: 0.4rem 0; border-radius: 4px; list-style: none; }
    .alarm.critical { border-color: #b42318; background: #fdf0ef; }
    #alarms { padding: 0; margin: 0; }
    .score { min-width: 2.4rem; }
  `];

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
    await this.loadRuns(ctx);
    if (!this.runId) await this.pick(ctx.liveRun ?? ctx.samples.at(-1)?.runId ?? this.runs[0]?.id);
  }

  private async loadRuns(ctx: AppContext): Promise<void> {
    this.runs = (await db.listRuns(ctx.store)).filter((r) => r.stage === 'ppo');
    this.requestUpdate();
  }

  /** Inspects another run: its metric history and spot checks from the store. */
  private async pick(runId: string | undefined): Promise<void> {
    const ctx = this.ctx;
    this.runId = runId || undefined;
    this.step = undefined;
    this.rows = new Map();
    this.checks = [];
    this.requestUpdate();
    if (!ctx || !this.runId) return;
    const id = this.runId;
    const [metrics, checks] = await Promise.all([db.getMetrics(ctx.store, id), db.listSpotChecks(ctx.store, id)]);
    if (this.runId !== id) return;
    for (const m of metrics) if (!this.rows.has(m.step)) this.rows.set(m.step, m);
    this.checks = checks;
    this.requestUpdate();
  }

  // ---- rollouts and spot checks ----

  /** The inspected run's rollouts in the session, oldest first. */
  private rollouts(): Shown[] {
    return (this.ctx?.samples ?? []).filter((s) => s.runId === this.runId).map(({ step, sample }) => ({ step, sample }));
  }

  /** The newest rollout the user has not scored yet. */
  private nextCheck(all: Shown[]): Shown | undefined {
    const seen = new Set(this.checks.map((c) => `${c.step}\n${c.response}`));
    return [...all].reverse().find((s) => !seen.has(`${s.step}\n${s.sample.response}`));
  }

  private async score(score: number): Promise<void> {
    const ctx = this.ctx, s = this.nextCheck(this.rollouts());
    if (!ctx || !s || !this.runId || this.saving) return;
    this.saving = true;
    try {
      const record = { runId: this.runId, step: s.step, prompt: s.sample.prompt, response: s.sample.response, reward: s.sample.score, score };
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
    const alarms = computeAlarms({
      metrics: [...this.rows.values()].sort((a, b) => a.step - b.step),
      spotChecks: this.checks,
      // the newest rollouts, whichever step is on screen: alarms are about now
      samples: all.filter((s) => s.step === steps.at(-1)).map((s) => ({ step: s.step, response: s.sample.response, tokens: s.sample.tokens })),
      config: { kl_target: Number(run?.config.kl_target ?? 0), cliprange: Number(run?.config.cliprange ?? 0.2) },
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
          ${alarms.length ? alarms.map((a) => html`
            <li class="alarm ${a.severity}" data-alarm=${a.id} role=${a.severity === 'critical' ? 'alert' : 'status'}>
              <b>${a.title}</b>${a.step !== undefined ? html` <span class="muted small">(step ${a.step})</span>` : null}
              <div class="small">${a.detail}</div>
            </li>`)
            : html`<li class="none muted">No alarm. Watched: KL below zero or exploding, policy ratio far from 1, reward rising while your spot checks fall, repetitive answers.</li>`}
        </ul>
      </section>
      ${this.spotCheck(all)}
      ${this.rolloutView(shown, steps, step)}
    `;
  }

  private spotCheck(all: Shown[]) {
    const s = this.nextCheck(all);
    const mean = this.checks.length ? this.checks.reduce((a, c) => a + c.score, 0) / this.checks.length : undefined;
    return html`
      <section class="card" id="spot">
        <h3>Spot check</h3>
        <p class="muted small">Score the policy's latest answers yourself, 1 (bad) to 7 (great): if the reward climbs while your scores fall, the policy is gaming the reward model.
          ${this.checks.length} scored${mean !== undefined ? `, mean ${mean.toFixed(1)}` : ''}.</p>
        ${s ? html`
          <div class="sample" data-step=${s.step}>
            <div class="prompt">${s.sample.prompt}</div>
            <div class="pre">${s.sample.response}</div>
            <div class="muted small">step ${s.step} · reward model: ${s.sample.score.toFixed(3)}</div>
          </div>
          <div class="row">${[1, 2, 3, 4, 5, 6, 7].map((n) => html`
            <button class="score" data-score=${n} ?disabled=${this.saving} title="score ${n} (key ${n})" @click=${() => this.score(n)}>${n}</button>`)}
            <span class="muted small">or press 1-7</span>
          </div>`
          : html`<div class="empty">${all.length ? 'All rollouts shown so far are scored; more come with the next steps.' : 'Rollouts appear here while a PPO run trains.'}</div>`}
      </section>
    `;
  }

  private rolloutView(shown: Shown[], steps: number[], step: number | undefined) {
    const q = QUANTITIES.find((x) => x.id === this.quantity)!;
    const max = Math.max(0, ...shown.flatMap((s) => (s.sample[this.quantity] ?? []).map(Math.abs).filter(Number.isFinite)));
    return html`
      <section class="card" id="rollouts">
        <h3>Rollouts</h3>
        <div class="row">
          <label>Colour by
            <select id="quantity" @change=${(e: Event) => { this.quantity = (e.target as HTMLSelectElement).value as Quantity; this.requestUpdate(); }}>
              ${QUANTITIES.map((x) => html`<option value=${x.id} ?selected=${x.id === this.quantity}>${x.label}</option>`)}
            </select>
          </label>
          <label>Step
            <select id="sample-step" ?disabled=${!steps.length} @change=${(e: Event) => { const v = (e.target as HTMLSelectElement).value; this.step = v ? Number(v) : undefined; this.requestUpdate(); }}>
              <option value="" ?selected=${this.step === undefined}>latest</option>
              ${steps.map((s) => html`<option value=${s} ?selected=${s === this.step}>${s}</option>`)}
            </select>
          </label>
        </div>
        <div class="legend" id="legend">
          <span>${(-max).toPrecision(3)}</span><span class="bar"></span><span>${max.toPrecision(3)}</span>
          <span class="muted">blue: ${q.low} · red: ${q.high}; hover a token for its number</span>
        </div>
        ${shown.length ? shown.map((s) => this.tokens(s, max)) : html`<div class="empty">No rollouts for this run in this session yet.</div>`}
        ${step !== undefined ? html`<p class="muted small">step ${step}</p>` : null}
      </section>
    `;
  }

  private tokens({ step, sample }: Shown, max: number) {
    const values = sample[this.quantity];
    return html`
      <div class="sample" data-step=${step}>
        <div class="prompt">${sample.prompt}</div>
        <div class="tokens">${sample.tokens && values
          ? sample.tokens.map((t, i) => {
            const x = values[i];
            return x === undefined ? html`<span class="tok">${t}</span>`
              : html`<span class="tok" title=${`${JSON.stringify(t)} · ${this.quantity} ${x.toFixed(4)}`} style=${styleMap({ background: divergingColor(x, max) })}>${t}</span>`;
          })
          : sample.response}</div>
        <div class="muted small">reward model: ${sample.score.toFixed(3)}</div>
      </div>
    `;
  }
}

if (!customElements.get('inspect-view')) customElements.define('inspect-view', InspectView);

declare global {
  interface HTMLElementTagNameMap { 'inspect-view': InspectView }
}
