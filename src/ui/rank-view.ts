// <rank-view>: order K completions best to worst by drag-and-drop or by keyboard alone, mark ties, score
// 1-7 and set the Table 3 flags, 'r' writes a one-line reason; Enter submits (a `ranking-submit` event
// carrying the record), Escape skips (`ranking-skip`; events.ts: their types). The rules live in RankingState; this element only
// renders and routes input.
// Model text is bound as text, never as HTML.
import { KeyController } from './keys.ts';
import { css, html, LitElement } from 'lit';
import { plural } from './data-io.ts';
import { emit } from './events.ts';
import { FLAGS, RankingState } from './ranking-state.ts';
import { rationaleField, rationaleStyles, typing } from './rationale-field.ts';

export class RankView extends LitElement {
  static override properties = { state: { attribute: false } };
  declare state: RankingState | undefined;
  private dragFrom = -1;
  /** the ranking whose reason field was opened ('r'): a new ranking starts with it closed */
  private reasonFor?: RankingState;

  static override styles = [
    rationaleStyles,
    css`
    :host { display: block; font: 15px/1.5 system-ui, sans-serif; outline: none; }
    :host(:focus-visible) { outline: 2px solid #0a66c2; outline-offset: 4px; border-radius: 8px; }
    .prompt { font-weight: 600; margin-bottom: 0.5rem; }
    ol { list-style: none; padding: 0; margin: 0; }
    li { border: 1px solid #d0d0d7; border-radius: 8px; padding: 0.5rem 0.75rem; margin: 0.35rem 0; background: #fff; cursor: grab; }
    li.focus { border-color: #0a66c2; box-shadow: 0 0 0 2px #0a66c233; }
    li.tied { margin-top: -0.1rem; border-top-style: dashed; }
    .meta { color: #6e6e73; font-size: 0.85em; }
    .help { color: #6e6e73; font-size: 0.8em; margin-top: 0.5rem; }
    .panel { margin-top: 0.6rem; padding: 0.5rem 0.6rem; background: #f6f6f8; border-radius: 8px; }
    .line { display: flex; flex-wrap: wrap; gap: 0.3rem; align-items: center; }
    .flags { margin-top: 0.35rem; }
    .what { color: #48484a; font-size: 0.85em; margin: 0 0.2rem; }
    .chip { font: inherit; font-size: 0.8em; padding: 0.1rem 0.5rem; border: 1px solid #c7c7cf; border-radius: 999px; background: #fff; cursor: pointer; color: #1d1d1f; }
    .chip:disabled { opacity: 0.4; cursor: default; }
    .chip[aria-pressed='true'] { background: #0a66c2; border-color: #0a66c2; color: #fff; }
    .chip kbd { font: 0.9em ui-monospace, monospace; opacity: 0.7; }
  `,
  ];

  private onKey = (e: KeyboardEvent): void => {
    const s = this.state;
    if (!s || typing(e)) return;
    const action = s.handleKey(e.key, { alt: e.altKey, shift: e.shiftKey });
    if (action === 'none') return;
    e.preventDefault();
    if (action === 'submit') this.submit();
    else if (action === 'skip') emit(this, 'ranking-skip');
    else if (action === 'rationale') void this.openReason();
    this.requestUpdate();
  };

  private submit(): void {
    if (this.state) emit(this, 'ranking-submit', this.state.toRecord());
  }

  private async openReason(): Promise<void> {
    this.reasonFor = this.state;
    this.requestUpdate();
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLInputElement>('input.rationale')?.focus();
  }

  protected readonly keys = new KeyController(this, this.onKey); // focusable, Enter/keys while in the page

  private drop(to: number): void {
    this.state?.moveTo(this.dragFrom, to);
    this.dragFrom = -1;
    this.requestUpdate();
  }

  /** A control of the panel for the focused completion: the same action as its key, then the keyboard again. */
  private act(f: () => void): void {
    f();
    this.requestUpdate();
    this.focus();
  }

  override render() {
    const s = this.state;
    if (!s) return html``;
    const ranks = s.ranksByPosition();
    const p = s.focus,
      k = s.order[p]!;
    return html`
      <div class="prompt">${s.prompt}</div>
      <ol>
        ${s.order.map(
          (c, i) => html`
          <li class="${i === p ? 'focus' : ''} ${s.tied[i] ? 'tied' : ''}" draggable="true" data-completion="${c}"
            @click=${() => {
              s.focus = i;
              this.requestUpdate();
            }}
            @dragstart=${() => (this.dragFrom = i)} @dragover=${(e: DragEvent) => e.preventDefault()} @drop=${() => this.drop(i)}>
            <div>${s.completions[c]}</div>
            <div class="meta">#${ranks[i]! + 1}${s.tied[i] ? ' (tie)' : ''}${s.scores[c] ? ` · quality ${s.scores[c]}/7` : ''}${[...s.flags[c]!]
              .map((f) => ` · ${FLAGS.find((x) => x.id === f)!.label}`)
              .join('')}</div>
          </li>`,
        )}
      </ol>
      <div class="panel" aria-label="The selected completion">
        <div class="line"><span class="what">#${ranks[p]! + 1} selected</span>
          <button class="chip" ?disabled=${p === 0} @click=${() => this.act(() => s.move(-1))} title="move up (Alt+Up)">↑</button>
          <button class="chip" ?disabled=${p === s.K - 1} @click=${() => this.act(() => s.move(1))} title="move down (Alt+Down)">↓</button>
          <button class="chip" aria-pressed=${String(s.tied[p] ?? false)} ?disabled=${p === 0} @click=${() => this.act(() => s.toggleTie())} title="tie with the one above (=)">= tie</button>
          <span class="what">quality</span>
          ${[1, 2, 3, 4, 5, 6, 7].map(
            (n) => html`<button class="chip score" aria-pressed=${String(s.scores[k] === n)} title="quality ${n}/7 (key ${n}; 0 clears)"
            @click=${() => this.act(() => s.setScore(k, s.scores[k] === n ? null : n))}>${n}</button>`,
          )}
        </div>
        <div class="line flags">
          ${FLAGS.map(
            (f) => html`<button class="chip flag" data-flag=${f.id} aria-pressed=${String(s.flags[k]!.has(f.id))} title="key ${f.key}"
            @click=${() => this.act(() => s.toggleFlag(k, f.id))}><kbd>${f.key}</kbd> ${f.label}</button>`,
          )}
          <button class="chip why" title="a one-line reason for the whole ranking (r)" @click=${() => void this.openReason()}><kbd>r</kbd> Why…</button>
        </div>
      </div>
      ${this.reasonFor === s || s.rationale ? rationaleField(s, { enter: () => this.submit(), escape: () => this.focus() }) : ''}
      <div class="help">↑/↓ choose · Alt or Shift+↑/↓ move · = tie · 1-7 quality (0 clears) · letters: flags · r reason · Enter submit · Esc skip · drag to reorder · ${plural(s.comparisons(), 'comparison')}</div>
    `;
  }
}

if (!customElements.get('rank-view')) customElements.define('rank-view', RankView);
