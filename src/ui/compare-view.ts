// <compare-view>: one prompt, the loaded model as loaded (the reference) beside the tuned policy, both
// streamed with the same sampling settings and seed. In blind mode the two answers are "A" and "B" in
// random order, drawn with a fresh seed each time (the seed field would let an open comparison of the
// same prompt show the blind answers beforehand, and repeated votes would judge the same two texts);
// the user votes A, B or tie (buttons or the keys a / b / t), the vote is saved
// (db.addVote) and only then is the identity revealed. The win rate of the tuned model over its blind
// votes is shown with a Wilson 95% interval, so ten votes do not pass for a verdict.
// When the Train tab's whole recipe ends, it selects the tuned policy and sends a prompt (the 'compare'
// event): this view starts a blind comparison of it at once, so the vote is ready when the answers are.
//
// Why it is built this way:
//  - The two answers are generated one after the other, left then right (the engine samples one call
//    at a time); in blind mode the left one is A, whichever model that is, so the order reveals nothing.
//  - The side assignment, the vote's winner, the vote key of a policy and the statistics are pure
//    functions in compare-math.ts, tested in Node; this element renders and routes input.
//  - A comparison remembers the tuned model it was made with, so a vote cast after the policy changed
//    still counts for the model that wrote the answer.
//  - Model text and prompts are bound as text, never as HTML.
import { KeyController } from './keys.ts';
import * as Comlink from 'comlink';
import { css, html, type TemplateResult } from 'lit';
import * as db from '../store/db.ts';
import type { PolicyInfo } from '../worker/api.ts';
import type { AppContext } from './context.ts';
import { pct, REFERENCE_MODEL, tally, tunedModelKey, tunedSide, verdict, winnerOf, type Choice, type Side, type Tally } from './compare-math.ts';
import { CtxView } from './ctx-view.ts';
import { oneLine, plural } from './data-io.ts';
import { sharedStyles } from './styles.ts';
import { engineSampling, type GenerationConfig } from '../io/generation-config.ts';
import { generationFields } from './generation-fields.ts';

interface Comparison {
  prompt: string;
  tunedModel: string; // VoteRecord.tunedModel
  tunedLabel: string;
  blind: boolean;
  tunedShownAs: Side; // open mode: 'B', the right-hand side
  texts: { [S in Side]: string };
  /** both answers' sampling seed: the seed field's in open mode, a fresh one per blind comparison */
  seed: number;
  /** the sampling settings both answers were drawn with (saved with the vote) */
  generation: GenerationConfig;
  done: boolean;
  failed: boolean;
  /** the user stopped it: the two answers are not alike in length, so it is not voted on */
  stopped?: boolean;
  /** the engine's name for the generation running now (stopGeneration) */
  genId?: string;
  vote?: Choice; // set once the vote is saved; reveals the sides
}

const SIDES: readonly Side[] = ['A', 'B'];
const other = (s: Side): Side => (s === 'A' ? 'B' : 'A');

export class CompareView extends CtxView {
  static override properties = {
    ...CtxView.properties,
    policy: { state: true },
    prompts: { state: true },
    runs: { state: true },
    votes: { state: true },
    blind: { state: true },
    seed: { state: true },
    cmp: { state: true },
    busy: { state: true },
  };
  declare policy: PolicyInfo | undefined;
  declare prompts: db.PromptRecord[];
  declare runs: db.RunRecord[];
  declare votes: db.VoteRecord[];
  declare blind: boolean;
  declare seed: number;
  declare cmp: Comparison | undefined;
  declare busy: boolean;
  private saving = false;

  constructor() {
    super();
    this.prompts = [];
    this.runs = [];
    this.votes = [];
    this.blind = true;
    this.seed = 1;
    this.busy = false;
  }

  static override styles = [
    sharedStyles,
    css`
    :host { outline: none; }
    .settings label { display: inline-flex; gap: 0.35rem; align-items: center; }
    .settings input[type='number'] { width: 5rem; }
    #cmp-prompt { min-height: 3.5rem; }
    .sides { display: grid; grid-template-columns: 1fr 1fr; gap: 0.75rem; }
    @media (max-width: 40rem) { .sides { grid-template-columns: 1fr; } }
    .side { background: #fff; border: 1px solid #e3e3e8; border-radius: 10px; padding: 0.75rem 0.9rem; min-height: 6rem; }
    .side.chosen { border-color: #0a66c2; box-shadow: 0 0 0 2px #0a66c233; }
    .side h3 { margin: 0 0 0.4rem; }
    .side .text { white-space: pre-wrap; word-break: break-word; }
    .votes button { min-width: 6rem; }
    #win-rate { font-variant-numeric: tabular-nums; }
    kbd { font: 0.8em ui-monospace, monospace; border: 1px solid #c7c7cf; border-radius: 4px; padding: 0 0.3rem; }
  `,
  ];

  protected listen(ctx: AppContext): (() => void)[] {
    return [
      ...(['model', 'policy', 'data', 'votes', 'runs'] as const).map((t) => ctx.on(t, () => void ctx.attempt('Reading the store', () => this.reload(ctx)))),
      ctx.on('compare', (c) => void ctx.attempt('Comparing', () => this.blindOn(ctx, c.prompt))),
      ctx.on('generation', () => this.requestUpdate()), // the shared sampling settings changed on another tab
    ];
  }

  /** A blind comparison of `prompt` at once, with the policy as it is now (the whole recipe's result): the vote is ready when both answers are written. */
  private async blindOn(ctx: AppContext, prompt: string): Promise<void> {
    await this.reload(ctx);
    this.blind = true;
    await this.updateComplete;
    this.setPrompt(prompt);
    await this.go();
  }

  private reads = 0;

  protected async reload(ctx: AppContext): Promise<void> {
    const mine = ++this.reads; // a slower earlier read must not overwrite a later one
    const [policy, prompts, runs, votes] = await Promise.all([
      ctx.engine.policyInfo(),
      db.listPrompts(ctx.store),
      db.listRuns(ctx.store),
      db.listVotes(ctx.store),
    ]);
    if (mine === this.reads) Object.assign(this, { policy, prompts, runs, votes });
  }

  /** The tuned model's vote key, or why there is nothing to compare. */
  private tuned(): { key: string; label: string } | { why: string } {
    const p = this.policy;
    if (!p) return { why: 'Load a model first (Model tab).' };
    const key = tunedModelKey(p);
    if (!key)
      return {
        why: `Samples come from the starting model itself (${p.name}): train an SFT, DPO or PPO run, or open one, to compare (a reward model scores answers and writes none).`,
      };
    const run = p.kind === 'run' ? this.runs.find((r) => r.id === p.runId) : undefined;
    return { key, label: run ? `${run.stage.toUpperCase()} run ${run.id.slice(0, 8)}` : p.kind === 'adapter' ? `adapter ${p.name}` : p.name };
  }

  private onKey = (e: KeyboardEvent): void => {
    const target = e.composedPath()[0];
    if (target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const choice = ({ a: 'A', b: 'B', t: 'tie' } as const)[e.key.toLowerCase() as 'a' | 'b' | 't'];
    if (!choice || !this.canVote()) return;
    e.preventDefault();
    void this.vote(choice);
  };

  protected readonly keys = new KeyController(this, this.onKey); // focusable, Enter/keys while in the page

  private canVote(): boolean {
    const c = this.cmp;
    return !!c && c.blind && c.done && !c.failed && !c.stopped && !c.vote && !this.saving;
  }

  private async go(): Promise<void> {
    const ctx = this.ctx;
    const prompt = (this.renderRoot.querySelector('#cmp-prompt') as HTMLTextAreaElement).value;
    const t = this.tuned();
    if (!ctx || this.busy || 'why' in t) return;
    if (!prompt.trim()) return ctx.notify('Type a prompt or pick one.');
    const side = this.blind ? tunedSide() : 'B';
    const seed = this.blind ? crypto.getRandomValues(new Uint32Array(1))[0]! >>> 1 : this.seed;
    const cmp: Comparison = {
      prompt,
      tunedModel: t.key,
      tunedLabel: t.label,
      blind: this.blind,
      tunedShownAs: side,
      texts: { A: '', B: '' },
      seed,
      generation: { ...ctx.generation },
      done: false,
      failed: false,
    };
    this.cmp = cmp;
    this.busy = true;
    const opts = { numSamples: 1, ...engineSampling(cmp.generation), seed };
    const ok = await ctx.attempt('Comparing', async () => {
      for (const s of SIDES) {
        const onToken = Comlink.proxy((_k: number, text: string) => {
          cmp.texts[s] = text;
          this.requestUpdate();
        });
        if (cmp.stopped) break;
        cmp.genId = crypto.randomUUID();
        const r = await ctx.engine.generate(prompt, { ...opts, model: s === side ? 'policy' : 'base', id: cmp.genId }, onToken);
        cmp.texts[s] = r.texts[0] ?? '';
      }
      return true;
    });
    cmp.done = true;
    cmp.failed = !ok;
    this.busy = false;
    this.requestUpdate();
    if (ok && cmp.blind) this.focus(); // the keys a / b / t vote from here
  }

  /** Ends the comparison now: the answer being written stops where it is, the other is not started. */
  private stop(): void {
    const c = this.cmp;
    if (!c || c.done || !this.ctx) return;
    c.stopped = true;
    if (c.genId) void this.ctx.engine.stopGeneration(c.genId);
    this.requestUpdate();
  }

  private async vote(choice: Choice): Promise<void> {
    const c = this.cmp,
      ctx = this.ctx;
    if (!c || !ctx || !this.canVote()) return;
    this.saving = true;
    const saved = await ctx.attempt('Saving the vote', () =>
      db.addVote(ctx.store, {
        prompt: c.prompt,
        tuned: c.texts[c.tunedShownAs],
        reference: c.texts[other(c.tunedShownAs)],
        tunedModel: c.tunedModel,
        referenceModel: REFERENCE_MODEL,
        tunedShownAs: c.tunedShownAs,
        winner: winnerOf(choice, c.tunedShownAs),
        seed: c.seed,
        generation_config: c.generation,
      }),
    );
    this.saving = false;
    if (saved === undefined) return;
    c.vote = choice;
    this.requestUpdate();
    ctx.changed('votes');
  }

  private pickStored(e: Event): void {
    const sel = e.target as HTMLSelectElement;
    const p = this.prompts.find((x) => String(x.id) === sel.value);
    if (p) this.setPrompt(p.text);
    sel.value = '';
  }

  private pickRandom(): void {
    const p = this.prompts[Math.floor(Math.random() * this.prompts.length)];
    if (p) this.setPrompt(p.text);
  }

  private setPrompt(text: string): void {
    (this.renderRoot.querySelector('#cmp-prompt') as HTMLTextAreaElement).value = text;
  }

  private async selectRun(e: Event): Promise<void> {
    const ctx = this.ctx,
      id = (e.target as HTMLSelectElement).value;
    if (!ctx || !id) return;
    this.busy = true;
    await ctx.attempt('Opening the run', async () => {
      await ctx.engine.selectRun(id);
      await ctx.refreshPolicy(); // says changed('policy'): this view reloads
    });
    this.busy = false;
  }

  private num(key: 'seed', min: number, max: number, int: boolean) {
    return (e: Event) => {
      const v = Number((e.target as HTMLInputElement).value);
      if (Number.isFinite(v)) this[key] = Math.min(max, Math.max(min, int ? Math.round(v) : v));
    };
  }

  // ---- rendering ----

  /** The reference as the engine samples it: the loaded model, with any runs merged into it as the starting model. */
  private referenceLabel(): string {
    const merged = this.ctx?.model?.merged ?? [];
    return merged.length
      ? `the starting model (${merged.map((m) => `${m.stage.toUpperCase()} run ${m.runId.slice(0, 8)}`).join(' + ')} merged)`
      : 'the loaded model';
  }

  private sideTitle(c: Comparison | undefined, s: Side): string {
    if (!c) return this.blind ? s : s === 'A' ? 'Reference' : 'Tuned';
    const isTuned = s === c.tunedShownAs;
    const who = isTuned ? `tuned: ${c.tunedLabel}` : `reference: ${this.referenceLabel()}`;
    if (!c.blind) return who[0]!.toUpperCase() + who.slice(1);
    return c.vote ? `${s} · ${who}` : s;
  }

  private sideBox(s: Side): TemplateResult {
    const c = this.cmp;
    const id = s === 'A' ? 'cmp-left' : 'cmp-right';
    const chosen = c?.vote === s;
    const streaming = c && !c.done && !c.texts[s];
    return html`<div class="side ${chosen ? 'chosen' : ''}" id=${id} data-side=${s} data-model=${c?.vote || (c && !c.blind) ? (s === c.tunedShownAs ? 'tuned' : 'reference') : ''}>
      <h3>${this.sideTitle(c, s)}</h3>
      <div class="text">${c?.texts[s] ?? ''}${streaming ? html`<span class="muted">…</span>` : ''}</div>
    </div>`;
  }

  private voteBar(): TemplateResult | string {
    const c = this.cmp;
    if (!c?.done || c.failed) return '';
    if (c.stopped) return html`<p id="cmp-stopped" class="muted small">Stopped: the answers are cut where they were, so this comparison is not voted on.</p>`;
    // the same text on both sides: with the same seed, the tuned model has not moved on this prompt
    const same =
      c.texts.A === c.texts.B
        ? html`<p id="cmp-same" class="muted small">Both answers are the same: on this prompt and seed the tuned model still writes what the reference writes${c.blind && !c.vote ? ' (a tie is the honest vote)' : ''}. Try another prompt or seed.</p>`
        : '';
    if (!c.blind) return same;
    if (c.vote) {
      const w = winnerOf(c.vote, c.tunedShownAs);
      const said = w === 'tie' ? 'a tie' : w === 'tuned' ? `the tuned model (${c.tunedLabel})` : `the reference (${this.referenceLabel()})`;
      return html`${same}<p id="vote-result" data-seed=${c.seed}>You chose ${said}: the tuned answer was ${c.tunedShownAs}. Saved.
        <span class="muted small">Both were drawn with seed ${c.seed}: set it and turn blind mode off to see them again side by side.</span></p>`;
    }
    const can = this.canVote();
    return html`${same}<div class="row votes">
      <span>Which is better?</span>
      <button id="vote-a" class="primary" ?disabled=${!can} @click=${() => void this.vote('A')}>A is better <kbd>a</kbd></button>
      <button id="vote-b" class="primary" ?disabled=${!can} @click=${() => void this.vote('B')}>B is better <kbd>b</kbd></button>
      <button id="vote-tie" ?disabled=${!can} @click=${() => void this.vote('tie')}>Tie <kbd>t</kbd></button>
    </div>`;
  }

  private winRateLine(t: Tally, label: string): TemplateResult {
    if (!t.n || t.rate === null || !t.interval) return html`<p id="win-rate" class="muted">No blind votes for ${label} yet.</p>`;
    const v = verdict(t);
    const says = v === 'better' ? 'better than the reference' : v === 'worse' ? 'worse than the reference' : 'not distinguishable from the reference yet';
    return html`<p id="win-rate" data-rate=${t.rate} data-low=${t.interval.low} data-high=${t.interval.high}>
      <b>${label}</b> wins <b>${pct(t.rate)}</b> of ${plural(t.n, 'blind vote')}
      (95% interval ${pct(t.interval.low)}–${pct(t.interval.high)}; ties count half): ${says}.
      <span class="muted">${plural(t.wins, 'win')} · ${plural(t.losses, 'loss', 'losses')} · ${plural(t.ties, 'tie')}</span>
    </p>`;
  }

  override render() {
    const t = this.tuned();
    const live = !!this.ctx?.liveRun;
    const cannot = 'why' in t ? t.why : live ? 'A run is training: pause it to compare.' : undefined;
    const runs = this.runs.filter((r) => r.stage !== 'rm' && (r.step ?? 0) > 0 && r.status !== 'running');
    return html`
      <h2>Compare</h2>
      <p class="muted small">The same prompt, seed and settings for the reference (${this.referenceLabel()}) and the tuned model. Blind mode hides which is which until you vote, and draws a new seed each time.</p>

      <div class="card">
        <div class="row">
          <span>Tuned model: <b id="cmp-tuned">${'key' in t ? t.label : 'none'}</b></span>
          ${
            runs.length
              ? html`<label class="row">choose a run
            <select id="cmp-run" ?disabled=${live || this.busy} @change=${(e: Event) => void this.selectRun(e)}>
              <option value="" ?selected=${this.policy?.kind !== 'run'}>—</option>
              ${runs.map((r) => html`<option value=${r.id} ?selected=${this.policy?.runId === r.id}>${r.stage.toUpperCase()} run ${r.id.slice(0, 8)} · ${r.status} · step ${r.step}</option>`)}
            </select></label>`
              : ''
          }
        </div>
        ${cannot ? html`<div class="empty" id="cmp-why">${cannot}</div>` : ''}
        ${'key' in t ? this.winRateLine(tally(this.votes, t.key), t.label) : ''}
      </div>

      <div class="card">
        <label for="cmp-prompt">Prompt</label>
        <textarea id="cmp-prompt" placeholder="Type a prompt, or pick a stored one"
          @keydown=${(e: KeyboardEvent) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              void this.go();
            }
          }}></textarea>
        <div class="row settings">
          ${
            this.prompts.length
              ? html`<select id="cmp-pick" @change=${(e: Event) => this.pickStored(e)}>
              <option value="">Pick a stored prompt…</option>
              ${this.prompts.map((p) => html`<option value=${String(p.id)}>${oneLine(p.text, 80)}</option>`)}
            </select>
            <button id="cmp-random" @click=${() => this.pickRandom()}>Random prompt</button>`
              : ''
          }
          ${generationFields(this.ctx, 'cmp')}
          <label title=${this.blind ? 'blind comparisons draw a new seed each time' : 'both answers are sampled with this seed'}>seed <input id="cmp-seed" type="number" min="0" step="1"
            .value=${this.blind ? '' : String(this.seed)} placeholder=${this.blind ? 'new' : ''} ?disabled=${this.blind} @change=${this.num('seed', 0, 2 ** 31 - 1, true)}></label>
          <label><input id="cmp-blind" type="checkbox" .checked=${this.blind} ?disabled=${this.busy} @change=${(e: Event) => (this.blind = (e.target as HTMLInputElement).checked)}> blind A/B</label>
          <button id="cmp-go" class="primary" ?disabled=${!!cannot || this.busy} @click=${() => void this.go()}>${this.busy ? 'Generating…' : 'Compare'}</button>
          ${this.busy && this.cmp && !this.cmp.done ? html`<button id="cmp-stop" ?disabled=${!!this.cmp.stopped} @click=${() => this.stop()}>Stop</button>` : ''}
        </div>
      </div>

      <div class="sides">${SIDES.map((s) => this.sideBox(s))}</div>
      ${this.voteBar()}
    `;
  }
}

if (!customElements.get('compare-view')) customElements.define('compare-view', CompareView);
