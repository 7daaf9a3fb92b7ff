// <rank-view>: order K completions best to worst by drag-and-drop or by keyboard alone, mark ties, score
// 1-7 and set the Table 3 flags; Enter submits (a `ranking-submit` event carrying the record), Escape
// skips (`ranking-skip`). The rules live in RankingState; this element only renders and routes input.
// Model text is bound as text, never as HTML.
import { KeyController } from './keys.ts';
import { css, html, LitElement } from 'lit';
import { FLAGS, RankingState } from './ranking-state.ts';

export class RankView extends LitElement {
  static override properties = { state: { attribute: false } };
  declare state: RankingState | undefined;
  private dragFrom = -1;

  static override styles = css`
    :host { display: block; font: 15px/1.5 system-ui, sans-serif; outline: none; }
    .prompt { font-weight: 600; margin-bottom: 0.5rem; }
    ol { list-style: none; padding: 0; margin: 0; }
    li { border: 1px solid #d0d0d7; border-radius: 8px; padding: 0.5rem 0.75rem; margin: 0.35rem 0; background: #fff; cursor: grab; }
    li.focus { border-color: #0a66c2; box-shadow: 0 0 0 2px #0a66c233; }
    li.tied { margin-top: -0.1rem; border-top-style: dashed; }
    .meta { color: #6e6e73; font-size: 0.85em; }
    .help { color: #6e6e73; font-size: 0.8em; margin-top: 0.5rem; }
  `;


  private onKey = (e: KeyboardEvent): void => {
    const s = this.state;
    if (!s) return;
    const action = s.handleKey(e.key, { alt: e.altKey, shift: e.shiftKey });
    if (action === 'none') return;
    e.preventDefault();
    if (action === 'submit') this.dispatchEvent(new CustomEvent('ranking-submit', { detail: s.toRecord(), bubbles: true, composed: true }));
    else if (action === 'skip') this.dispatchEvent(new CustomEvent('ranking-skip', { bubbles: true, composed: true }));
    this.requestUpdate();
  };

  protected readonly keys = new KeyController(this, this.onKey); // focusable, Enter/keys while in the page

  private drop(to: number): void {
    this.state?.moveTo(this.dragFrom, to);
    this.dragFrom = -1;
    this.requestUpdate();
  }

  override render() {
    const s = this.state;
    if (!s) return html``;
    const ranks = s.ranksByPosition();
    return html`
      <div class="prompt">${s.prompt}</div>
      <ol>
        ${s.order.map((k, p) => html`
          <li class="${p === s.focus ? 'focus' : ''} ${s.tied[p] ? 'tied' : ''}" draggable="true" data-completion="${k}"
            @click=${() => { s.focus = p; this.requestUpdate(); }}
            @dragstart=${() => (this.dragFrom = p)} @dragover=${(e: DragEvent) => e.preventDefault()} @drop=${() => this.drop(p)}>
            <div>${s.completions[k]}</div>
            <div class="meta">#${ranks[p]! + 1}${s.tied[p] ? ' (tie)' : ''}${s.scores[k] ? ` · quality ${s.scores[k]}/7` : ''}${
              [...s.flags[k]!].map((f) => ` · ${FLAGS.find((x) => x.id === f)!.label}`).join('')}</div>
          </li>`)}
      </ol>
      <div class="help">Up/Down: choose · Alt or Shift + Up/Down: move · =: tie with the one above · 1-7: quality · ${
        FLAGS.map((f) => `${f.key}: ${f.label.toLowerCase()}`).join(' · ')} · Enter: submit · Esc: skip · ${s.comparisons()} comparisons</div>
    `;
  }
}

if (!customElements.get('rank-view')) customElements.define('rank-view', RankView);
