// <data-view>: everything the user has made or brought, in one place: the prompts (what the Rank view
// and PPO sample), the demonstrations and other records of the user's dataset (what SFT, the reward
// model and DPO train on), the saved rankings and pairwise verdicts (each shown whole, edited in the
// Rank tab's own rank or pair view, or deleted), JSONL import and export.
//
// Why it is built this way:
//  - The rules (what an import adds, duplicates, ranking lines, counters, export) live in data-io.ts,
//    tested without a DOM; this element renders and routes clicks.
//  - Every change re-reads the store, applies itself to that fresh copy and writes it back, one change
//    at a time (`serial`): another view saving meanwhile, or a double click, loses nothing. Records are
//    found by content (recordKey), not by their index on screen, which a reload may have shifted.
//  - An import only adds: a bad line is listed as `file:line: problem` and the good lines are kept.
//  - Imported text is untrusted: it is bound as Lit text (or .value), never as HTML.
import { css, html, type TemplateResult } from 'lit';
import { decodeText } from '../io/text.ts';
import { exportJsonl, importJsonl, MAX_FILE_BYTES, rankingToRecord, type Record as DataRecord } from '../io/datasets.ts';
import * as db from '../store/db.ts';
import type { AppContext } from './context.ts';
import { CtxView } from './ctx-view.ts';
import './rank-view.ts';
import './pair-view.ts';
import { on, type PairSubmit } from './events.ts';
import { PairState, verdictLabel } from './pair-state.ts';
import { agreementText, loadRecheckEvery, recheckReordered, recheckText } from './consistency.ts';
import { FLAGS, RankingState } from './ranking-state.ts';
import { dataCounts, importData, importDataBundle, newItems, oneLine, plural, recordKey, type DataCounts, type ImportedData } from './data-io.ts';
import { sharedStyles } from './styles.ts';

const PAGE = 50;
/** Import problems listed at most (the rest are counted). */
const MAX_SHOWN_ERRORS = 200;

type Section = 'prompts' | 'records' | 'rankings';

const KIND_LABEL: { [K in DataRecord['kind']]: string } = {
  completion: 'demonstration',
  messages: 'conversation',
  preference: 'preference',
  ranking: 'ranking',
  prompt: 'prompt', // never among the records: an imported prompt-only line goes to the prompts
};

export class DataView extends CtxView {
  static override properties = {
    ...CtxView.properties,
    prompts: { state: true },
    records: { state: true },
    rankings: { state: true },
    editing: { state: true },
    opened: { state: true },
    editError: { state: true },
    importSummary: { state: true },
    importErrors: { state: true },
    shown: { state: true },
  };
  declare prompts: db.PromptRecord[];
  declare records: DataRecord[];
  declare rankings: db.RankingRecord[];
  /** what is being edited in place: `p:<prompt id>`, `r:<recordKey>` or `k:<ranking id>` */
  declare editing: string | undefined;
  /** the saved rankings shown whole (by id) */
  declare opened: Set<number>;
  /** the ranking being edited, as the rank view (or, for a pairwise verdict, the pair view) holds it */
  private rankEdit?: RankingState | PairState;
  declare editError: string | undefined;
  declare importSummary: string | undefined;
  declare importErrors: string[];
  declare shown: { [S in Section]: number };
  private queue: Promise<unknown> = Promise.resolve();

  constructor() {
    super();
    this.prompts = [];
    this.records = [];
    this.rankings = [];
    this.importErrors = [];
    this.opened = new Set();
    this.shown = { prompts: PAGE, records: PAGE, rankings: PAGE };
  }

  static override styles = [
    sharedStyles,
    css`
    .card > h3:first-child { margin-top: 0; }
    .counts { display: flex; gap: 1.25rem; flex-wrap: wrap; font-variant-numeric: tabular-nums; }
    .counts b { font-size: 1.2rem; display: block; }
    ul.list { list-style: none; padding: 0; margin: 0.5rem 0 0; }
    ul.list > li { border-top: 1px solid #ececf1; padding: 0.45rem 0; display: flex; gap: 0.6rem; align-items: flex-start; }
    ul.list > li > .body { flex: 1; min-width: 0; }
    .actions { display: flex; gap: 0.3rem; flex-shrink: 0; }
    .prompt { font-weight: 600; }
    .turn { margin: 0.15rem 0; }
    .label { color: #6e6e73; font-size: 0.85em; margin-right: 0.3rem; }
    ol.ranked { margin: 0.2rem 0 0; padding-left: 1.4rem; }
    .add { display: grid; gap: 0.4rem; }
    .add textarea { min-height: 3rem; }
    #import-errors { margin: 0.4rem 0 0; padding-left: 1.2rem; max-height: 16rem; overflow: auto; font-family: ui-monospace, monospace; font-size: 0.85em; }
    #import-errors:empty { display: none; }
    td.cut { max-width: 22rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
    tr.ranking-detail > td { padding: 0.2rem 0 0.7rem; }
    ol.ranked .pill { margin-left: 0.3rem; }
    .edit-ranking { display: grid; gap: 0.5rem; }
  `,
  ];

  protected listen(ctx: AppContext): (() => void)[] {
    return (['data', 'rankings'] as const).map((t) => ctx.on(t, () => void ctx.attempt('Reading the store', () => this.reload(ctx))));
  }

  private reads = 0;

  protected async reload(ctx: AppContext): Promise<void> {
    const mine = ++this.reads; // a slower earlier read must not overwrite a later one
    const [prompts, records, rankings] = await Promise.all([db.listPrompts(ctx.store), ctx.userRecords(), db.listRankings(ctx.store)]);
    if (mine === this.reads) Object.assign(this, { prompts, records, rankings });
  }

  /** Runs changes one at a time, each on a fresh read of the store; an error becomes a notice. */
  private serial<R>(what: string, f: (ctx: AppContext) => Promise<R>): Promise<R | undefined> {
    const ctx = this.ctx;
    if (!ctx) return Promise.resolve(undefined);
    const run = this.queue.then(() => ctx.attempt(what, () => f(ctx)));
    this.queue = run;
    return run;
  }

  private field<T extends HTMLInputElement | HTMLTextAreaElement>(sel: string): T {
    return this.renderRoot.querySelector(sel) as T;
  }

  // ---- prompts ----

  private async addPrompt(): Promise<void> {
    const box = this.field<HTMLTextAreaElement>('#prompt-new');
    const text = box.value;
    if (!text.trim()) return this.ctx?.notify('Type a prompt first.');
    const added = await this.serial('Adding the prompt', async (ctx) => {
      if ((await db.addPrompt(ctx.store, { text, source: 'typed' })) === undefined) {
        ctx.notify('That prompt is already in the list.');
        return false;
      }
      ctx.changed('data');
      return true;
    });
    if (added) box.value = '';
  }

  private async savePrompt(p: db.PromptRecord): Promise<void> {
    const text = this.field<HTMLTextAreaElement>('.edit-prompt-text').value;
    if (!text.trim()) return void (this.editError = 'A prompt cannot be empty (delete it instead).');
    const ok = await this.serial('Saving the prompt', async (ctx) => {
      await db.putPrompt(ctx.store, { ...p, text });
      ctx.changed('data');
      return true;
    });
    if (ok) this.stopEditing();
  }

  private deletePrompt(p: db.PromptRecord): void {
    void this.serial('Deleting the prompt', async (ctx) => {
      await db.deletePrompt(ctx.store, p.id!);
      ctx.changed('data');
    });
  }

  // ---- the user's records ----

  /** Applies `f` to a fresh copy of the user's records and saves the result (nothing when f returns undefined). */
  private changeRecords(what: string, f: (records: DataRecord[]) => DataRecord[] | undefined): Promise<boolean> {
    return this.serial(what, async (ctx) => {
      const next = f(await ctx.userRecords());
      if (!next) return false;
      await ctx.saveUserRecords(next); // says changed('data')
      return true;
    }).then((ok) => ok ?? false);
  }

  private async addDemo(): Promise<void> {
    const p = this.field<HTMLTextAreaElement>('#demo-prompt'),
      c = this.field<HTMLTextAreaElement>('#demo-completion');
    if (!p.value.trim() || !c.value.trim()) return this.ctx?.notify('A demonstration needs a prompt and the answer you want.');
    const rec: DataRecord = { kind: 'completion', prompt: p.value, completion: c.value };
    const key = recordKey(rec);
    let duplicate = false;
    const ok = await this.changeRecords('Adding the demonstration', (rs) => {
      duplicate = rs.some((r) => recordKey(r) === key);
      return duplicate ? undefined : [...rs, rec];
    });
    if (duplicate) this.ctx?.notify('That demonstration is already there.');
    if (ok) p.value = c.value = '';
  }

  /** The record as edited in place: a demonstration from its two fields, any other kind from its JSONL line. */
  private editedRecord(old: DataRecord): DataRecord | string {
    if (old.kind === 'completion') {
      const prompt = this.field<HTMLTextAreaElement>('.edit-prompt').value,
        completion = this.field<HTMLTextAreaElement>('.edit-completion').value;
      return prompt.trim() && completion.trim() ? { kind: 'completion', prompt, completion } : 'A demonstration needs a prompt and a completion.';
    }
    const r = importJsonl(this.field<HTMLTextAreaElement>('.edit-json').value.trim(), 'edited record');
    if (r.errors.length) return r.errors.map((e) => e.message).join('\n');
    if (r.records[0]?.kind === 'prompt') return 'A prompt-only line is a prompt: add it under Prompts.';
    return r.records.length === 1 ? r.records[0]! : 'Write exactly one JSON line.';
  }

  private async saveRecord(old: DataRecord): Promise<void> {
    const next = this.editedRecord(old);
    if (typeof next === 'string') return void (this.editError = next);
    const key = recordKey(old);
    let gone = false;
    const ok = await this.changeRecords('Saving the record', (rs) => {
      const i = rs.findIndex((r) => recordKey(r) === key);
      gone = i < 0;
      return gone ? undefined : rs.map((r, j) => (j === i ? next : r));
    });
    if (gone) this.editError = 'This record is no longer in the store (deleted elsewhere?).';
    else if (ok) this.stopEditing();
  }

  private deleteRecord(old: DataRecord): void {
    const key = recordKey(old);
    void this.changeRecords('Deleting the record', (rs) => {
      const i = rs.findIndex((r) => recordKey(r) === key);
      return i < 0 ? undefined : rs.filter((_, j) => j !== i);
    });
  }

  private edit(what: string | undefined): void {
    this.editing = what;
    this.editError = undefined;
  }

  private stopEditing(): void {
    this.edit(undefined);
  }

  // ---- import, export, rankings ----

  private async importFile(e: Event): Promise<void> {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = ''; // the same file can be picked again
    if (!file) return;
    if (file.size > MAX_FILE_BYTES) {
      this.importSummary = undefined;
      this.importErrors = [`${file.name}: file is larger than ${MAX_FILE_BYTES / 2 ** 20} MB; split it into smaller files`];
      return;
    }
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (bytes[0] === 0x50 && bytes[1] === 0x4b) {
      // "PK": a zip, e.g. this playground's data export
      let got: ReturnType<typeof importDataBundle>;
      try {
        got = importDataBundle(bytes, file.name);
      } catch (err) {
        this.importSummary = undefined;
        this.importErrors = [err instanceof Error ? err.message : String(err)];
        return;
      }
      const kept = got.kept.length ? `; ${got.kept.join(', ')} kept as a record, not imported` : '';
      await this.addImported(got, file.name, kept);
      return;
    }
    let text: string;
    try {
      text = decodeText(bytes, file.name);
    } catch (err) {
      // an empty or binary file, or one that is not UTF-8: said once, not line by line
      this.importSummary = undefined;
      this.importErrors = [(err as Error).message];
      return;
    }
    await this.importText(text, file.name);
  }

  private async importPasted(): Promise<void> {
    const box = this.field<HTMLTextAreaElement>('#import-text');
    if (!box.value.trim()) return this.ctx?.notify('Paste JSONL lines first.');
    if (await this.importText(box.value, 'pasted')) box.value = '';
  }

  /** Adds the good lines of `text` (records to the user's dataset, prompt lines to the prompts); true when no line was bad. */
  private importText(text: string, file: string): Promise<boolean> {
    return this.addImported(importData(text, file), file);
  }

  private async addImported(got: ImportedData, file: string, note = ''): Promise<boolean> {
    const shown = got.errors.slice(0, MAX_SHOWN_ERRORS);
    if (got.errors.length > shown.length) shown.push(`… and ${got.errors.length - shown.length} more problems`);
    this.importErrors = shown;
    const summary = await this.serial(`Importing ${file}`, async (ctx) => {
      const [records, rankings] = await Promise.all([ctx.userRecords(), db.listRankings(ctx.store)]);
      const recs = newItems([...records, ...rankings.map(rankingToRecord)].map(recordKey), got.records, recordKey);
      if (recs.added.length) await ctx.saveUserRecords([...records, ...recs.added]);
      const ps = await db.addPrompts(ctx.store, got.prompts, file);
      if (ps.added.length) ctx.changed('data');
      const dup = recs.duplicates + ps.duplicates;
      return (
        `${file}: added ${plural(recs.added.length, 'record')} and ${plural(ps.added.length, 'prompt')}` +
        (dup ? `; ${dup} already here (skipped)` : '') +
        note +
        (got.errors.length ? `; ${plural(got.errors.length, 'line')} not imported:` : '.')
      );
    });
    this.importSummary = summary ?? `${file}: nothing was imported.`;
    return summary !== undefined && got.errors.length === 0;
  }

  private exportAll(): void {
    void this.serial('Exporting', async (ctx) => {
      if (!(await ctx.downloadUserData())) ctx.notify('Nothing to export yet.');
    });
  }

  private toggleRanking(r: db.RankingRecord): void {
    const opened = new Set(this.opened);
    if (!opened.delete(r.id!)) opened.add(r.id!);
    this.opened = opened;
  }

  private editRanking(r: db.RankingRecord): void {
    this.rankEdit = r.verdict ? PairState.fromRecord(r) : RankingState.fromRecord(r);
    this.edit(`k:${r.id}`);
    void this.updateComplete.then(() => (this.renderRoot.querySelector('.edit-ranking rank-view, .edit-ranking pair-view') as HTMLElement | null)?.focus());
  }

  /**
   * The edited labels over the stored ranking, its id, date and sampling settings kept: the order, ties,
   * scores, flags and reason of a ranking, or the verdict and reason of a pair (whose better answer, when
   * both were bad and one was written, joins the demonstrations).
   */
  private saveRanking(r: db.RankingRecord, pair?: PairSubmit): void {
    const state = this.rankEdit;
    if (!state) return;
    const edited = pair?.record ?? (state instanceof RankingState ? state.toRecord() : undefined);
    if (!edited) return;
    // a repeat's ranks follow the record's completions, which a ranking saves in its new order (a pair keeps its order)
    const recheck = r.recheck && state instanceof RankingState ? recheckReordered(r.recheck, state.order) : r.recheck;
    void this.serial('Saving the ranking', async (ctx) => {
      const { rationale: _old, recheck: _repeat, ...rest } = r;
      await db.saveRanking(ctx.store, { ...rest, ...edited, ...(recheck ? { recheck } : {}), editedAt: Date.now() });
      if (pair?.demonstration) await ctx.addDemonstration(r.prompt, pair.demonstration);
      this.stopEditing();
      ctx.changed('rankings');
    });
  }

  private deleteRanking(r: db.RankingRecord): void {
    void this.serial('Deleting the ranking', async (ctx) => {
      await db.deleteRanking(ctx.store, r.id!);
      ctx.changed('rankings');
    });
  }

  // ---- rendering ----

  private more(section: Section, total: number): TemplateResult | string {
    const n = this.shown[section];
    if (total <= n) return '';
    return html`<button class="more" @click=${() => (this.shown = { ...this.shown, [section]: n + PAGE })}>Show ${Math.min(PAGE, total - n)} more (${total - n} hidden)</button>`;
  }

  private editButtons(save: () => void): TemplateResult {
    return html`<div class="actions"><button class="primary save" @click=${save}>Save</button><button class="cancel" @click=${() => this.stopEditing()}>Cancel</button></div>
      ${this.editError ? html`<p class="error pre edit-error">${this.editError}</p>` : ''}`;
  }

  private rowActions(what: string, del: () => void): TemplateResult {
    return html`<div class="actions"><button class="edit" @click=${() => this.edit(what)}>Edit</button><button class="danger delete" @click=${del}>Delete</button></div>`;
  }

  private promptRow(p: db.PromptRecord): TemplateResult {
    const what = `p:${p.id}`;
    if (this.editing === what) {
      return html`<li class="prompt-row editing"><div class="body"><textarea class="edit-prompt-text" .value=${p.text}></textarea>${this.editButtons(() => void this.savePrompt(p))}</div></li>`;
    }
    return html`<li class="prompt-row"><div class="body pre">${p.text}</div>${this.rowActions(what, () => this.deletePrompt(p))}</li>`;
  }

  private recordBody(r: DataRecord): TemplateResult {
    switch (r.kind) {
      case 'completion':
        return html`<div class="pre prompt">${r.prompt}</div><div class="pre">${r.completion}</div>`;
      case 'messages':
        return html`${r.messages.map((m) => html`<div class="turn pre"><span class="label">${m.role}</span>${m.content}</div>`)}`;
      case 'preference':
        return html`<div class="pre prompt">${r.prompt}</div>
          <div class="turn pre"><span class="label">chosen</span>${r.chosen}</div>
          <div class="turn pre"><span class="label">rejected</span>${r.rejected}</div>${this.why(r.rationale)}`;
      case 'ranking':
        return html`<div class="pre prompt">${r.prompt}</div>${r.verdict ? html`<span class="pill">${verdictLabel(r.verdict)}</span>` : ''}
          <ol class="ranked">${r.completions.map((c, i) => html`<li class="pre"><span class="label">#${(r.ranks?.[i] ?? i) + 1}</span>${c}</li>`)}</ol>${this.why(r.rationale)}`;
      case 'prompt':
        return typeof r.prompt === 'string'
          ? html`<div class="pre prompt">${r.prompt}</div>`
          : html`${r.prompt.map((m) => html`<div class="turn pre"><span class="label">${m.role}</span>${m.content}</div>`)}`;
    }
  }

  private recordRow(r: DataRecord): TemplateResult {
    const what = `r:${recordKey(r)}`;
    const kind = html`<span class="pill">${KIND_LABEL[r.kind]}</span>`;
    if (this.editing !== what) {
      return html`<li class="record-row" data-kind=${r.kind}><div class="body">${kind} ${this.recordBody(r)}</div>${this.rowActions(what, () => this.deleteRecord(r))}</li>`;
    }
    const fields =
      r.kind === 'completion'
        ? html`<label>Prompt<textarea class="edit-prompt" .value=${r.prompt}></textarea></label><label>Completion<textarea class="edit-completion" .value=${r.completion}></textarea></label>`
        : html`<label>As a JSONL line<textarea class="edit-json" .value=${exportJsonl([r]).trim()}></textarea></label>`;
    return html`<li class="record-row editing" data-kind=${r.kind}><div class="body add">${kind}${fields}${this.editButtons(() => void this.saveRecord(r))}</div></li>`;
  }

  private rankingRow(r: db.RankingRecord): TemplateResult {
    const line = rankingToRecord(r);
    const best = line.kind === 'preference' ? line.chosen : r.verdict ? '' : (line.completions[0] ?? '');
    const editing = this.editing === `k:${r.id}`,
      open = editing || this.opened.has(r.id!);
    const row = html`<tr class="ranking-row" data-id=${String(r.id)}>
      <td class="cut" title=${r.prompt}>${oneLine(r.prompt)}</td>
      <td class="num">${r.verdict ? 'A / B' : `K = ${r.completions.length}`}</td>
      <td class="cut" title=${best}>${best ? html`<span class="label">best</span>${oneLine(best)}` : html`<span class="label">${verdictLabel(r.verdict!).toLowerCase()}</span>`}</td>
      <td class="num" title=${r.editedAt ? `edited ${new Date(r.editedAt).toLocaleString()}` : ''}>${new Date(r.createdAt).toLocaleDateString()}${r.editedAt ? ' (edited)' : ''}</td>
      <td><div class="actions">
        <button class="show" aria-expanded=${open ? 'true' : 'false'} ?disabled=${editing} @click=${() => this.toggleRanking(r)}>${open ? 'Hide' : 'Show'}</button>
        <button class="edit" ?disabled=${editing} @click=${() => this.editRanking(r)}>Edit</button>
        <button class="danger delete" @click=${() => this.deleteRanking(r)}>Delete</button>
      </div></td>
    </tr>`;
    if (!open) return row;
    return html`${row}<tr class="ranking-detail"><td colspan="5">${editing && this.rankEdit ? this.rankingEditor(r, this.rankEdit) : this.rankingWhole(r)}</td></tr>`;
  }

  /** The whole ranking: best first, ties marked, each completion's 1-7 score and flags, the reason and how it was sampled. */
  private rankingWhole(r: db.RankingRecord): TemplateResult {
    if (r.verdict && r.shown) {
      const sides = r.shown;
      return html`<div class="pre prompt">${r.prompt}</div>
        <p class="verdict"><span class="pill">${verdictLabel(r.verdict)}</span></p>
        <ol class="ranked">${sides.map((c, i) => html`<li class="ranked-item" data-side=${i ? 'B' : 'A'}><span class="label">${i ? 'B' : 'A'}</span><span class="pre">${r.completions[c]}</span></li>`)}</ol>
        ${this.rankingNotes(r)}`;
    }
    const s = RankingState.fromRecord(r),
      ranks = s.ranksByPosition();
    return html`<div class="pre prompt">${r.prompt}</div>
      <ol class="ranked">${s.order.map((i, p) => {
        const score = s.scores[i] !== null ? html`<span class="pill score">quality ${s.scores[i]}/7</span>` : '';
        const flags = [...s.flags[i]!].map((f) => html`<span class="pill flag">${FLAGS.find((x) => x.id === f)?.label ?? f}</span>`);
        // one line of markup: the completion keeps its own line breaks (pre-wrap), and no others are added
        return html`<li class="ranked-item" data-rank=${String(ranks[p])}><span class="label">#${ranks[p]! + 1}${s.tied[p] ? ' (tie)' : ''}</span><span class="pre">${r.completions[i]}</span>${score}${flags}</li>`;
      })}</ol>
      ${this.rankingNotes(r)}`;
  }

  /** The labeler's reason, under a ranking, a pair or a preference. */
  private why(rationale: string | undefined): TemplateResult | string {
    return rationale ? html`<p class="rationale"><span class="label">why</span>${rationale}</p>` : '';
  }

  /** The reason, how the completions were sampled, and whether the reward model chose them, under a saved ranking or verdict. */
  private rankingNotes(r: db.RankingRecord): TemplateResult {
    const g = r.generation_config,
      again = recheckText(r),
      sel = r.selection;
    return html`${this.why(r.rationale)}
      ${again ? html`<p class="muted small recheck">${again}</p>` : ''}
      ${sel ? html`<p class="muted small selected">Chosen by active selection: the reward model${sel.reward_model ? ` (run ${sel.reward_model.slice(0, 8)})` : ''} scored ${r.verdict ? 'the two' : 'them'} ${sel.margin.toFixed(3)} apart${r.verdict ? '' : ' on average'}.</p>` : ''}
      ${g ? html`<p class="muted small sampled">Sampled at temperature ${g.temperature}, top-p ${g.top_p}, top-k ${g.top_k || 'off'}, up to ${g.max_new_tokens} new tokens.</p>` : ''}`;
  }

  /**
   * The Rank tab's view over the saved ranking with its keys (Enter saves, 'r' the reason, Escape cancels),
   * or for a pairwise verdict its pair view (a verdict saves, the saved one is marked).
   */
  private rankingEditor(r: db.RankingRecord, state: RankingState | PairState): TemplateResult {
    if (state instanceof PairState) {
      return html`<div class="edit-ranking">
        <pair-view .state=${state} ${on('pair-submit', (d) => this.saveRanking(r, d))} ${on('ranking-skip', () => this.stopEditing())}></pair-view>
        <div class="actions"><button class="cancel" @click=${() => this.stopEditing()}>Cancel</button></div>
      </div>`;
    }
    return html`<div class="edit-ranking">
      <rank-view .state=${state} ${on('ranking-submit', () => this.saveRanking(r))} ${on('ranking-skip', () => this.stopEditing())}></rank-view>
      ${this.editButtons(() => this.saveRanking(r))}
    </div>`;
  }

  private countsBar(c: DataCounts): TemplateResult {
    const item = (id: string, n: number, label: string, title: string) =>
      html`<div id=${id} title=${title}><b>${n}</b>${n === 1 ? label.replace(/s$/, '') : label}</div>`;
    return html`<div class="counts card" id="data-counts">
      ${item('count-prompts', c.prompts, 'prompts', 'what the Rank view and PPO sample')}
      ${item('count-demos', c.demonstrations, 'demonstrations', 'prompt + answer pairs (and conversations) for supervised fine-tuning')}
      ${item('count-rankings', c.rankings, 'rankings', 'saved rankings plus imported rankings and preference pairs')}
      ${item('count-comparisons', c.comparisons, 'comparisons', 'the pairs the rankings give the reward model (ties give none)')}
    </div>`;
  }

  override render() {
    const { prompts, records, rankings, shown } = this;
    return html`
      <h2>Your data</h2>
      ${this.countsBar(dataCounts({ prompts: prompts.map((p) => p.text), rankings, records }))}
      <p class="muted small" id="self-agreement">${agreementText(rankings, loadRecheckEvery(globalThis.localStorage))}</p>

      <section class="card" id="prompts">
        <h3>Prompts</h3>
        <p class="muted small">The Rank view samples completions for these, and PPO trains on them.</p>
        <div class="add">
          <textarea id="prompt-new" placeholder="A prompt, e.g. Write a short thank-you note to a neighbour."></textarea>
          <div class="row"><button id="prompt-add" class="primary" @click=${() => void this.addPrompt()}>Add prompt</button></div>
        </div>
        ${prompts.length ? '' : html`<p class="empty">No prompts yet: add one, or import a JSONL file of {"prompt": ...} lines.</p>`}
        <ul class="list">${prompts.slice(0, shown.prompts).map((p) => this.promptRow(p))}</ul>
        ${this.more('prompts', prompts.length)}
      </section>

      <section class="card" id="records">
        <h3>Demonstrations and other records</h3>
        <p class="muted small">Write the answer you would want for a prompt: supervised fine-tuning learns from these. Imported conversations, preferences and rankings are listed here too.</p>
        <div class="add">
          <label>Prompt<textarea id="demo-prompt"></textarea></label>
          <label>The answer you want<textarea id="demo-completion"></textarea></label>
          <div class="row"><button id="demo-add" class="primary" @click=${() => void this.addDemo()}>Add demonstration</button></div>
        </div>
        ${records.length ? '' : html`<p class="empty">No demonstrations yet.</p>`}
        <ul class="list">${records.slice(0, shown.records).map((r) => this.recordRow(r))}</ul>
        ${this.more('records', records.length)}
      </section>

      <section class="card" id="import">
        <h3>Import JSONL</h3>
        <p class="muted small">One JSON object per line: {"prompt","completion"}, {"messages"}, {"prompt","chosen","rejected"}, {"prompt","completions"[,"ranks","scores","flags","rationale","verdict"]}, or {"prompt"} alone for a prompt; or the .zip that "Export everything" writes. Good lines are added; nothing stored is replaced.</p>
        <div class="row"><input type="file" id="import-file" accept=".jsonl,.json,.txt,.ndjson,.zip" @change=${(e: Event) => void this.importFile(e)}></div>
        <textarea id="import-text" placeholder="…or paste JSONL lines here"></textarea>
        <div class="row"><button id="import-go" @click=${() => void this.importPasted()}>Import pasted lines</button></div>
        ${this.importSummary ? html`<p id="import-summary">${this.importSummary}</p>` : ''}
        <ul id="import-errors" class="error">${this.importErrors.map((e) => html`<li>${e}</li>`)}</ul>
      </section>

      <section class="card" id="rankings">
        <h3>Saved rankings</h3>
        ${rankings.length ? html`<table><tbody>${rankings.slice(0, shown.rankings).map((r) => this.rankingRow(r))}</tbody></table>` : html`<p class="empty">No rankings yet: the Rank view makes them.</p>`}
        ${this.more('rankings', rankings.length)}
      </section>

      <section class="card" id="export">
        <h3>Export</h3>
        <p class="muted small">One .zip of JSONL files: data.jsonl (your records and rankings, in the formats above, which TRL reads), prompts.jsonl, and, when there are any, votes.jsonl (blind A/B votes) and spot-checks.jsonl (1-7 scores of PPO rollouts), with guidelines.md (the Rank tab's guidelines the labels were made under). A pairwise verdict is a {"prompt","chosen","rejected"} line, or a ranking line with its "verdict" for a tie or both bad. Importing the zip here adds the first two files back.</p>
        <button id="export-data" @click=${() => this.exportAll()}>Export everything (.zip)</button>
      </section>
    `;
  }
}

if (!customElements.get('data-view')) customElements.define('data-view', DataView);
