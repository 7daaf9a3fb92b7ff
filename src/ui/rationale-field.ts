// The optional one-line reason of a ranking or a pairwise verdict (the `rationale` of the record and of
// its JSONL line), shared by <rank-view> and <pair-view> so it reads and answers keys alike in both modes:
// 'r' opens it, Enter does what Enter does there (submits a ranking, or gives the keys back to a pair that
// still needs its verdict), Escape gives the keys back. Its keys stay in the field: a typed letter is not a flag.
import { css, html } from 'lit';

export const rationaleStyles = css`
  label.why { display: flex; gap: 0.4rem; align-items: center; margin-top: 0.5rem; color: #48484a; font-size: 0.85em; }
  label.why input { flex: 1; font: inherit; font-size: 1.1em; padding: 0.25rem 0.45rem; border: 1px solid #c7c7cf; border-radius: 6px; }
`;

/** The field; `target` holds the text (a RankingState or PairState). */
export function rationaleField(target: { rationale: string }, on: { enter: () => void; escape: () => void }) {
  return html`<label class="why">Why (optional) <input class="rationale" type="text" maxlength="500" placeholder="one line: what decided it (r)"
    .value=${target.rationale} @input=${(e: Event) => (target.rationale = (e.target as HTMLInputElement).value)}
    @keydown=${(e: KeyboardEvent) => {
      if (e.key !== 'Enter' && e.key !== 'Escape') return;
      e.preventDefault();
      if (e.key === 'Enter') on.enter();
      else on.escape();
    }}></label>`;
}

/** Whether a key event comes from a field the user types in (the views' own keys then stay out of it). */
export function typing(e: KeyboardEvent): boolean {
  const target = e.composedPath()[0];
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}
