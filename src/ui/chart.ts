// <line-chart>: one or more metric curves over optimizer steps, drawn by uPlot (a canvas chart that
// redraws thousands of points in well under a frame, so a live run can append every step).
//
// Why it looks like this:
//  - uPlot's stylesheet lives in the document, which a shadow root does not see: it is inlined here.
//  - The data is kept as rows (step -> {series: value}) and handed to uPlot whole on each change; the
//    series can then change without losing data, and a step written twice (a resumed run redoing it)
//    replaces the old row instead of drawing a zigzag.
//  - The number of steps drawn is on the host (`points`, `data-points`) so a test can see the chart move.
//  - `label`, not `title`: the host's native title attribute would be a tooltip over the whole chart.
//  - The value axis writes as many decimals as its tick spacing needs (uPlot's default keeps three, so a
//    KL of -0.0004 read "-0" beside "0"), and is as wide as its longest label.
import { css, html, LitElement, unsafeCSS, type PropertyValues } from 'lit';
import uPlot from 'uplot';
import uplotCss from 'uplot/dist/uPlot.min.css?inline';

export interface ChartRow {
  step: number;
  values: Record<string, number>;
}

// steps are whole numbers: no tick at 1.5
const STEP_TICKS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000];
const PALETTE = ['#0a66c2', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#5c940d'];

/** Decimals that write `incr` exactly (0.25 -> 2, 0.0005 -> 4, 20 -> 0), at most 12. */
function decimalsOf(incr: number): number {
  if (!(incr > 0 && Number.isFinite(incr))) return 3;
  for (let d = 0; d < 12; d++) {
    const x = incr * 10 ** d;
    if (Math.round(x) >= 1 && Math.abs(x - Math.round(x)) <= 1e-6 * x) return d;
  }
  return 12;
}

/** Labels of ticks `incr` apart: the decimals the spacing needs, never "-0", exponents for tiny or huge numbers. */
export function tickLabels(splits: readonly (number | null)[], incr: number): string[] {
  const d = decimalsOf(incr);
  return splits.map((v) => {
    if (v === null || !Number.isFinite(v)) return '';
    const x = Math.abs(v) < incr / 2 ? 0 : v; // a tick at 0 computed as -1e-18
    const a = Math.abs(x);
    if (a !== 0 && (d > 6 || a >= 1e7)) return Number(x.toPrecision(3)).toExponential();
    return x.toFixed(d);
  });
}

export class LineChart extends LitElement {
  static override properties = { label: {}, series: { attribute: false }, height: { type: Number } };
  declare label: string;
  /** the value names to draw, one curve each (e.g. TRL's metric names) */
  declare series: string[];
  /** plot height in CSS pixels, axes included, legend excluded */
  declare height: number;

  private rows: ChartRow[] = []; // by step, ascending
  private plot?: uPlot;
  private resize?: ResizeObserver;

  static override styles = [
    unsafeCSS(uplotCss),
    css`
      :host { display: block; min-width: 0; }
      .label { font-weight: 600; font-size: 0.9rem; margin-bottom: 0.25rem; }
      .empty { color: #6e6e73; font-size: 0.85em; }
      :host([data-points]:not([data-points='0'])) .empty { display: none; }
      .uplot { font-family: inherit; }
    `,
  ];

  constructor() {
    super();
    this.label = '';
    this.series = [];
    this.height = 180;
  }

  /** Steps drawn (at least one series has a value there). */
  get points(): number {
    return this.rows.length;
  }

  /** Steps where `series` has a finite value (the held-out accuracy is measured at some steps only). */
  seriesPoints(series: string): number {
    return this.rows.filter((r) => Number.isFinite(r.values[series])).length;
  }

  /** Adds (or replaces) one step's values; a non-finite value leaves a gap. (Not `append`: Element has one.) */
  addStep(step: number, values: Record<string, number>): void {
    let i = this.rows.length;
    while (i > 0 && this.rows[i - 1]!.step > step) i--;
    if (i > 0 && this.rows[i - 1]!.step === step) this.rows[i - 1] = { step, values: { ...this.rows[i - 1]!.values, ...values } };
    else this.rows.splice(i, 0, { step, values });
    this.draw();
  }

  /** Replaces everything with these rows (any order; a later row of the same step wins). */
  setHistory(rows: ChartRow[]): void {
    const byStep = new Map<number, ChartRow>();
    for (const r of rows) byStep.set(r.step, { step: r.step, values: { ...byStep.get(r.step)?.values, ...r.values } });
    this.rows = [...byStep.values()].sort((a, b) => a.step - b.step);
    this.draw();
  }

  clear(): void {
    this.setHistory([]);
  }

  override connectedCallback(): void {
    super.connectedCallback();
    // the chart follows its container's width (a window resize, a sidebar closing, a tab shown)
    this.resize = new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: this.height }));
    this.resize.observe(this);
    if (this.hasUpdated) this.create();
    else this.dataset.points = String(this.rows.length);
  }

  override disconnectedCallback(): void {
    this.resize?.disconnect();
    this.plot?.destroy();
    this.plot = undefined;
    super.disconnectedCallback();
  }

  protected override firstUpdated(): void {
    this.create();
  }

  protected override updated(changed: PropertyValues<this>): void {
    if (changed.has('series') && changed.get('series') !== undefined)
      this.create(); // new curves: a new plot
    else if (changed.has('height')) this.plot?.setSize({ width: this.width(), height: this.height });
  }

  private width(): number {
    return Math.max(120, Math.floor(this.clientWidth || 400)); // hidden (0 wide): draw at a guess, resize later
  }

  private create(): void {
    this.plot?.destroy();
    const target = this.renderRoot.querySelector<HTMLElement>('.plot');
    if (!target) return;
    this.plot = new uPlot(
      {
        width: this.width(),
        height: this.height,
        scales: { x: { time: false } },
        axes: [
          { label: 'step', incrs: STEP_TICKS },
          {
            values: (_u, splits, _axis, _space, incr) => tickLabels(splits, incr),
            // 7 px a character at uPlot's 12 px font, plus the tick and the gap
            size: (_u, values) => Math.max(40, 16 + 7 * Math.max(0, ...(values ?? []).map((v) => v.length))),
          },
        ],
        series: [{ label: 'step' }, ...this.series.map((name, i) => ({ label: name, stroke: PALETTE[i % PALETTE.length], width: 1.5 }))],
      },
      this.aligned(),
      target,
    );
    this.draw();
  }

  private aligned(): uPlot.AlignedData {
    const cell = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : null);
    return [this.rows.map((r) => r.step), ...this.series.map((name) => this.rows.map((r) => cell(r.values[name])))];
  }

  private draw(): void {
    this.plot?.setData(this.aligned());
    this.dataset.points = String(this.rows.length); // also shows or hides "no steps yet" (CSS)
  }

  override render() {
    return html`
      ${this.label ? html`<div class="label">${this.label}</div>` : null}
      <div class="plot"></div>
      <div class="empty">no steps yet</div>
    `;
  }
}

if (!customElements.get('line-chart')) customElements.define('line-chart', LineChart);

declare global {
  interface HTMLElementTagNameMap {
    'line-chart': LineChart;
  }
}
