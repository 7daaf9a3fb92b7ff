// The sampling settings' fields, the same in every view that draws samples (Rank, Compare): they show and
// change the one set the context keeps (ctx.generation, saved across reloads), so a change on one tab is
// what the other samples with too. Ids are `<prefix>-temperature`, `-top-p`, `-top-k`, `-max-tokens`.
import { html, type TemplateResult } from 'lit';
import { clampGeneration, GENERATION_LIMITS, type GenerationConfig, type GenerationKey } from '../io/generation-config.ts';
import type { AppContext } from './context.ts';

const FIELDS: { key: GenerationKey; id: string; label: string; step: string; title: string }[] = [
  {
    key: 'temperature',
    id: 'temperature',
    label: 'temperature',
    step: '0.1',
    title: 'temperature: 0 writes the most likely token each time; higher samples more varied text',
  },
  {
    key: 'top_p',
    id: 'top-p',
    label: 'top-p',
    step: '0.05',
    title: 'top_p: sample only from the most likely tokens that together make up this probability (1 = off)',
  },
  { key: 'top_k', id: 'top-k', label: 'top-k', step: '1', title: 'top_k: sample only from this many most likely tokens (0 = off)' },
  { key: 'max_new_tokens', id: 'max-tokens', label: 'max new tokens', step: '1', title: 'max_new_tokens: the longest a completion is written' },
];

/** The four fields as inline labels (the caller's `.settings` row lays them out). */
export function generationFields(ctx: AppContext | undefined, prefix: string): TemplateResult {
  const g: GenerationConfig | undefined = ctx?.generation;
  return html`${FIELDS.map((f) => {
    const l = GENERATION_LIMITS[f.key];
    return html`<label title=${f.title}>${f.label} <input id="${prefix}-${f.id}" class="gen-field" data-key=${f.key} type="number"
      min=${l.open ? String(Number(f.step)) : String(l.min)} max=${String(l.max)} step=${f.step} .value=${g ? String(g[f.key]) : ''}
      @change=${(e: Event) => {
        if (!ctx) return;
        const box = e.target as HTMLInputElement;
        const v = clampGeneration(f.key, box.valueAsNumber, ctx.generation[f.key]);
        box.value = String(v); // what is used, when the typed value was out of range
        ctx.setGeneration({ [f.key]: v });
      }}></label>`;
  })}`;
}
