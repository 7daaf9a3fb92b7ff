// <guidelines-panel>: the project's labeling guidelines beside the ranking (labeling.ts keeps them: one
// text per store, exported with the data as guidelines.md). Read as text (never parsed as HTML), edited
// in place, reset to the default adapted from InstructGPT's instructions. Collapsible, so a labeler who
// knows them gets the room back; every control is a button or a field (keyboard and mouse alike).
import { css, html, LitElement } from 'lit';
import { DEFAULT_GUIDELINES, loadGuidelines, saveGuidelines } from './labeling.ts';
import { sharedStyles } from './styles.ts';

export class GuidelinesPanel extends LitElement {
  static override properties = { project: {}, text: { state: true }, editing: { state: true } };
  /** the store's name: guidelines are per project */
  declare project: string;
  declare text: string;
  declare editing: boolean;

  constructor() {
    super();
    this.project = '';
    this.text = '';
    this.editing = false;
  }

  static override styles = [
    sharedStyles,
    css`
    details { background: #fff; border: 1px solid #e3e3e8; border-radius: 10px; padding: 0.6rem 0.8rem; }
    summary { font-weight: 600; cursor: pointer; }
    .text { white-space: pre-wrap; word-break: break-word; font-size: 0.85em; max-height: 60vh; overflow: auto; margin: 0.4rem 0; }
    textarea { min-height: 20rem; font: 0.85em ui-monospace, monospace; }
  `,
  ];

  protected override willUpdate(changed: Map<string, unknown>): void {
    if (changed.has('project')) this.text = loadGuidelines(globalThis.localStorage, this.project);
  }

  private save(): void {
    const box = this.renderRoot.querySelector<HTMLTextAreaElement>('textarea.guidelines-text')!;
    saveGuidelines(globalThis.localStorage, this.project, box.value);
    this.text = loadGuidelines(globalThis.localStorage, this.project);
    this.editing = false;
  }

  private reset(): void {
    saveGuidelines(globalThis.localStorage, this.project, DEFAULT_GUIDELINES);
    this.text = DEFAULT_GUIDELINES;
    this.editing = false;
  }

  private async edit(): Promise<void> {
    this.editing = true;
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLTextAreaElement>('textarea.guidelines-text')?.focus();
  }

  override render() {
    return html`<details open>
      <summary>Guidelines</summary>
      ${
        this.editing
          ? html`<textarea class="guidelines-text" aria-label="Guidelines (Markdown)" .value=${this.text}
          @keydown=${(e: KeyboardEvent) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              this.save();
            }
            if (e.key === 'Escape') {
              e.preventDefault();
              this.editing = false;
            }
          }}></textarea>
        <div class="row"><button class="primary save-guidelines" @click=${() => this.save()}>Save (Ctrl+Enter)</button>
          <button class="cancel-guidelines" @click=${() => (this.editing = false)}>Cancel (Esc)</button></div>`
          : html`<div class="text" id="guidelines-text">${this.text}</div>
        <div class="row"><button class="edit-guidelines" @click=${() => void this.edit()}>Edit</button>
          ${this.text === DEFAULT_GUIDELINES ? '' : html`<button class="reset-guidelines" @click=${() => this.reset()}>Reset to the default</button>`}
          <span class="muted small">exported with your data (guidelines.md)</span></div>`
      }
    </details>`;
  }
}

if (!customElements.get('guidelines-panel')) customElements.define('guidelines-panel', GuidelinesPanel);
