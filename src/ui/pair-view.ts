// <pair-view>: two completions side by side, A and B, judged by one key or one click (PAIR_KEYS): A is
// better, B is better, a tie, or both bad; Escape skips. A verdict is sent as a `pair-submit` event
// ({ record, demonstration? }); a skip as `ranking-skip`, as the rank view does (events.ts: their types). "Both are bad" first offers
// to write a better answer: saved as a demonstration, it is the SFT data such a prompt lacks (leave it empty
// to save the verdict alone). The rules live in PairState; model text is bound as text, never as HTML.
import { css, html, LitElement } from 'lit';
import type { Verdict } from '../io/datasets.ts';
import { emit, type PairSubmit } from './events.ts';
import { KeyController } from './keys.ts';
import { PAIR_KEYS, type PairState } from './pair-state.ts';
import { rationaleField, rationaleStyles, typing } from './rationale-field.ts';

export class PairView extends LitElement {
  static override properties = { state: { attribute: false }, writing: { state: true } };
  declare state: PairState | undefined;
  /** "both are bad" was chosen for this pair: the better answer is being written */
  declare writing: PairState | undefined;
  private reasonFor?: PairState;

  static override styles = [
    rationaleStyles,
    css`
    :host { display: block; font: 15px/1.5 system-ui, sans-serif; outline: none; }
    :host(:focus-visible) { outline: 2px solid #0a66c2; outline-offset: 4px; border-radius: 8px; }
    .prompt { font-weight: 600; margin-bottom: 0.5rem; white-space: pre-wrap; }
    .sides { display: grid; grid-template-columns: 1fr 1fr; gap: 0.6rem; }
    .side { border: 1px solid #d0d0d7; border-radius: 8px; padding: 0.5rem 0.75rem; background: #fff; min-width: 0; }
    .side h4 { margin: 0 0 0.3rem; font-size: 0.85em; color: #6e6e73; }
    .text { white-space: pre-wrap; word-break: break-word; }
    .verdicts { display: flex; flex-wrap: wrap; gap: 0.4rem; margin-top: 0.6rem; }
    button { font: inherit; font-size: 0.9em; padding: 0.3rem 0.75rem; border: 1px solid #c7c7cf; border-radius: 7px; background: #f6f6f8; cursor: pointer; color: #1d1d1f; }
    button[aria-pressed='true'] { background: #0a66c2; border-color: #0a66c2; color: #fff; }
    button.primary { background: #0a66c2; border-color: #0a66c2; color: #fff; }
    kbd { font: 0.9em ui-monospace, monospace; opacity: 0.75; }
    .better { margin-top: 0.6rem; padding: 0.5rem 0.6rem; background: #f6f6f8; border-radius: 8px; }
    .better textarea { width: 100%; min-height: 4.5rem; box-sizing: border-box; font: inherit; padding: 0.3rem 0.5rem; border: 1px solid #c7c7cf; border-radius: 6px; }
    .help { color: #6e6e73; font-size: 0.8em; margin-top: 0.5rem; }
  `,
  ];

  private onKey = (e: KeyboardEvent): void => {
    const s = this.state;
    if (!s || typing(e)) return;
    if (this.writing === s) {
      // the better answer's buttons have the focus: Escape still goes back
      if (e.key === 'Escape') {
        e.preventDefault();
        this.back();
      }
      return;
    }
    const action = s.handleKey(e.key, { alt: e.altKey, ctrl: e.ctrlKey, meta: e.metaKey });
    if (action === 'none') return;
    e.preventDefault();
    if (action === 'skip') emit(this, 'ranking-skip');
    else if (action === 'rationale') void this.openReason();
    else this.choose(action);
  };

  protected readonly keys = new KeyController(this, this.onKey);

  private async openReason(): Promise<void> {
    this.reasonFor = this.state;
    this.requestUpdate();
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLInputElement>('input.rationale')?.focus();
  }

  /** A verdict: sent at once, but "both are bad" first opens the better answer. */
  private choose(v: Verdict): void {
    const s = this.state;
    if (!s) return;
    if (v !== 'both-bad') return this.send({ record: s.toRecord(v) });
    this.writing = s;
    void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLTextAreaElement>('textarea.better-text')?.focus());
  }

  /** Both bad, with the better answer written (when it is not empty) as a demonstration. */
  private saveBothBad(): void {
    const s = this.state;
    if (!s) return;
    const text = this.renderRoot.querySelector<HTMLTextAreaElement>('textarea.better-text')?.value ?? '';
    this.send({ record: s.toRecord('both-bad'), ...(text.trim() ? { demonstration: text } : {}) });
  }

  private send(detail: PairSubmit): void {
    this.writing = undefined;
    emit(this, 'pair-submit', detail);
  }

  private back(): void {
    this.writing = undefined;
    this.focus();
  }

  private renderBetter() {
    return html`<div class="better" aria-label="Write a better answer">
      <label>Both are bad. Write a better answer? It is saved as a demonstration for supervised fine-tuning (optional: leave it empty to save the verdict alone).
        <textarea class="better-text" @keydown=${(e: KeyboardEvent) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            this.saveBothBad();
          } else if (e.key === 'Escape') {
            e.preventDefault();
            this.back();
          }
        }}></textarea></label>
      <div class="verdicts"><button class="primary save-both-bad" @click=${() => this.saveBothBad()}>Save (Ctrl+Enter)</button>
        <button class="back" @click=${() => this.back()}>Back to the verdict (Esc)</button></div>
    </div>`;
  }

  override render() {
    const s = this.state;
    if (!s) return html``;
    return html`
      <div class="prompt">${s.prompt}</div>
      <div class="sides">
        ${([0, 1] as const).map((i) => html`<section class="side" data-side=${i ? 'B' : 'A'} aria-label=${i ? 'B' : 'A'}><h4>${i ? 'B' : 'A'}</h4><div class="text">${s.side(i)}</div></section>`)}
      </div>
      ${
        this.writing === s
          ? this.renderBetter()
          : html`<div class="verdicts">
        ${PAIR_KEYS.map(
          (k) => html`<button class="verdict" data-verdict=${k.verdict} aria-pressed=${String(s.verdict === k.verdict)} title="key ${k.shown}"
          @click=${() => this.choose(k.verdict)}><kbd>${k.shown}</kbd> ${k.label}</button>`,
        )}
        <button class="skip" @click=${() => emit(this, 'ranking-skip')}><kbd>Esc</kbd> Skip</button>
        <button class="why" @click=${() => void this.openReason()}><kbd>r</kbd> Why…</button>
      </div>`
      }
      ${this.reasonFor === s || s.rationale ? rationaleField(s, { enter: () => this.focus(), escape: () => this.focus() }) : ''}
      <div class="help">← A better · → B better · t tie · n both bad (then write a better answer, or not) · r reason · Esc skip</div>
    `;
  }
}

if (!customElements.get('pair-view')) customElements.define('pair-view', PairView);
