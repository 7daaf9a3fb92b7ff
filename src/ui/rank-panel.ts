// <rank-panel>: the heart of the playground. For the next prompt, K completions stream in from the
// current policy; then <rank-view> takes the keyboard (or the mouse) to order them, mark ties, score and
// flag them. A submitted ranking is written to IndexedDB before anything else happens, and the next
// prompt is already generating in the background while the user ranks, so it is there at once.
//
// Beside the K-way mode, a pairwise one: two completions in <pair-view>, A / B / tie / both bad, a
// faster call per prompt (Chatbot Arena's); "both bad" can add the better answer as a demonstration.
// The project's guidelines sit beside the ranking; above it a goal bar, what each training stage has to
// train on so far (pairs for the reward model and DPO, demonstrations for SFT, prompts for PPO) and the
// time per ranking, with the time to the goal at that pace.
// Now and then (1 in N) an earlier comparison comes back in a new order, unannounced, and the second
// judgement is kept on the first record: the labeler's agreement with themselves (consistency.ts).
// Once a reward model exists, a switch lets it choose what comes next (active-selection.ts): pairwise,
// the two of SELECT_SAMPLES samples it scores closest; K-way, the prompt among SELECT_POOL drawn ahead
// whose samples it scores closest on average (the switch's card lists them with their margins as they are
// scored). Each ranking it chose records how (`selection`).
//
// Prompts come from the store (the Data view edits them), unranked first; the user can also type one.
// An empty store offers the bundled example prompts.
import { rankingPairs, type Selection } from '../io/datasets.ts';
import * as Comlink from 'comlink';
import { css, html } from 'lit';
import { CtxView } from './ctx-view.ts';
import * as db from '../store/db.ts';
import { importData, oneLine, plural } from './data-io.ts';
import type { AppContext } from './context.ts';
import { KeyController } from './keys.ts';
import './rank-view.ts';
import { RankingState } from './ranking-state.ts';
import './pair-view.ts';
import { on } from './events.ts';
import { PairState } from './pair-state.ts';
import './guidelines-panel.ts';
import { goalProgress, loadGoal, paceText, saveGoal, secondsPerRanking, stageCounts, stageNeeds, timeToGoal, type StageCounts } from './labeling.ts';
import { loadRecheckEvery, newOrder, pickRecheck, ranksInRecordOrder, saveRecheckEvery } from './consistency.ts';
import { sharedStyles } from './styles.ts';
import { engineSampling, type GenerationConfig } from '../io/generation-config.ts';
import { generationFields } from './generation-fields.ts';
import {
  byUncertainty,
  leastSurePair,
  loadSelecting,
  meanMargin,
  noRewardModelReason,
  rewardModelsFor,
  saveSelecting,
  SELECT_POOL,
  SELECT_SAMPLES,
  uncertainSelection,
} from './active-selection.ts';
import { rewardModelLabel } from './train-view.ts';

interface Item {
  prompt: string;
  texts: string[];
  done: Promise<string[]>;
  error?: string;
  /** a prefetch: it gave way to other work, and can fail for reasons gone by now (a run that trained meanwhile) */
  background?: boolean;
  /** the engine's name for its generation (stopGeneration); none for completions given to rank */
  id?: string;
  /** the sampling settings it was drawn with (saved with its ranking); none for completions given to rank */
  generation?: GenerationConfig;
  /** an earlier comparison shown again: the record, and (K-way) which of its completions each shown one is */
  recheck?: { of: db.RankingRecord; order: number[] };
  /** the reward model chose it (the pair of the samples drawn, or the prompt of those drawn ahead): saved with its ranking */
  selection?: Selection;
  /** K-way, drawn ahead with the switch on: the mean score margin of its samples, once scored, and the reward model's run (null: all alike) */
  margin?: number | null;
  scoredBy?: string;
  /** why the reward model could not choose (it is shown as drawn) */
  selectError?: string;
}

/** K-way ranking, or pairwise verdicts (two completions). */
type Mode = 'rank' | 'pair';
const MODE_KEY = 'rlhf-playground:rank-mode';

const WAIT_FOR_RUN = 'New completions wait until the training run pauses or ends; PPO rollouts can be ranked meanwhile from the Inspect tab.';

/** Pairs a ranking gives: K(K-1)/2 minus tied pairs. */
const comparisonsOf = (ranks: number[]) => rankingPairs(ranks.length, ranks).length;

export class RankPanel extends CtxView {
  static override properties = {
    ...CtxView.properties,
    item: { state: true },
    state: { state: true },
    counts: { state: true },
    stages: { state: true },
    K: { state: true },
    mode: { state: true },
    goal: { state: true },
    recheckEvery: { state: true },
    promptsLeft: { state: true },
    selecting: { state: true },
    runs: { state: true },
  };
  declare ctx: AppContext;
  declare item: Item | undefined;
  declare state: RankingState | PairState | undefined;
  declare counts: { rankings: number; comparisons: number };
  /** what the training stages get from everything labelled and written so far */
  declare stages: StageCounts | undefined;
  declare K: number;
  declare mode: Mode;
  /** comparisons wanted before a first reward model (the bar) */
  declare goal: number;
  /** 1 in this many comparisons is an earlier one again (0: never) */
  declare recheckEvery: number;
  declare promptsLeft: number;
  /** the switch: the reward model chooses what to rank next (when one exists) */
  declare selecting: boolean;
  /** every run in the store (the reward models that can choose, and why none can) */
  declare runs: db.RunRecord[];
  /** when the ranking on screen was shown (performance.now()), and how long the ones saved since the page opened took */
  private shownAt = 0;
  private times: number[] = [];
  /** prompts drawn ahead, in the background: one, or SELECT_POOL for the reward model to choose from (K-way) */
  private pool: Item[] = [];
  private skipped = new Set<string>();
  private tick = 0; // repaint pacing for streamed text

  constructor() {
    super();
    this.counts = { rankings: 0, comparisons: 0 };
    this.K = 4;
    this.mode = globalThis.localStorage?.getItem(MODE_KEY) === 'pair' ? 'pair' : 'rank';
    this.goal = loadGoal(globalThis.localStorage);
    this.recheckEvery = loadRecheckEvery(globalThis.localStorage);
    this.promptsLeft = 0;
    this.selecting = loadSelecting(globalThis.localStorage);
    this.runs = [];
  }

  static override styles = [
    sharedStyles,
    css`
    .settings label { display: inline-flex; gap: 0.35rem; align-items: center; }
    .settings input { width: 4.5rem; }
    .settings input[type='radio'] { width: auto; margin: 0; }
    .samples { list-style: none; padding: 0; margin: 0; }
    .samples li { border: 1px solid #e3e3e8; border-radius: 8px; padding: 0.5rem 0.75rem; margin: 0.35rem 0; background: #fff; white-space: pre-wrap; min-height: 1.5em; }
    .counter { font-variant-numeric: tabular-nums; }
    .prompt { font-weight: 600; white-space: pre-wrap; }
    #own-prompt { flex: 1; min-width: 14rem; }
    .layout { display: grid; grid-template-columns: minmax(0, 1fr) minmax(14rem, 22rem); gap: 0.75rem; align-items: start; }
    .layout > guidelines-panel { margin: 0.75rem 0; position: sticky; top: 0.5rem; }
    @media (max-width: 900px) { .layout { grid-template-columns: minmax(0, 1fr); } }
    .mode label { display: inline-flex; gap: 0.3rem; align-items: center; }
    #goal-input { width: 4.5rem; }
    .progress { display: grid; gap: 0.25rem; }
    #stage-needs { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 0.75rem; margin: 0.25rem 0 0; }
    #stage-needs dt { font-weight: 600; }
    #stage-needs dd { margin: 0; }
    #ahead { margin: 0.2rem 0 0; padding-left: 1.4rem; }
    #ahead li[data-next] { font-weight: 600; }
    .selection label { display: inline-flex; gap: 0.4rem; align-items: center; font-weight: 600; }
    .selection p { margin: 0.25rem 0 0; }
  `,
  ];

  protected listen(ctx: AppContext): (() => void)[] {
    return [
      ctx.on('rankings', () => void this.reload()),
      ctx.on('data', () => void this.reload()),
      ctx.on('model', () => void this.loadRuns()),
      ctx.on('runs', () => void this.loadRuns()),
      ctx.on('rank', (r) => void this.rankGiven(r.prompt, r.completions)),
      // a new model or policy: samples of the old one are not what the user wants to rank
      ctx.on('policy', () => this.dropQueued()),
      // the sampling settings changed (here or on Compare): the prefetched prompt is drawn again with them
      ctx.on('generation', () => {
        this.settingsChanged();
        this.requestUpdate();
      }),
    ];
  }

  protected async reload(): Promise<void> {
    await this.loadRuns();
    const [rankings, records, prompts] = await Promise.all([db.listRankings(this.ctx.store), this.ctx.userRecords(), db.listPrompts(this.ctx.store)]);
    this.counts = { rankings: rankings.length, comparisons: rankings.reduce((s, r) => s + comparisonsOf(r.ranks), 0) };
    this.stages = stageCounts({ prompts: prompts.map((p) => p.text), rankings, records });
    this.promptsLeft = (await this.queue()).length;
  }

  private async loadRuns(): Promise<void> {
    this.runs = await db.listRuns(this.ctx.store);
  }

  /** The reward model that chooses (the newest finished one on the loaded model), when the switch is on. */
  private chooser(): string | undefined {
    return this.selecting ? rewardModelsFor(this.runs, this.ctx.model?.fingerprint)[0]?.id : undefined;
  }

  private dropQueued(): void {
    this.pool = [];
    if (this.item && !this.state) this.item = undefined;
    this.requestUpdate();
  }

  /** Prompts not ranked yet and not skipped in this session, in the order the user added them. */
  private async queue(): Promise<string[]> {
    const ranked = new Set((await db.listRankings(this.ctx.store)).map((r) => r.prompt));
    return (await db.listPrompts(this.ctx.store)).map((p) => p.text).filter((t) => !ranked.has(t) && !this.skipped.has(t));
  }

  /** `background`: the prefetch of the next prompt, which gives way to whatever else the user asks of the engine (Compare, Share). */
  private generate(prompt: string, background = false): Item {
    // the reward model picks the pair of a few samples, or (K-way) scores the prompts drawn ahead to pick from
    const rm = this.chooser(),
      pick = rm && this.mode === 'pair' ? 'pair' : rm && background ? 'prompt' : undefined;
    const K = this.mode === 'pair' ? (pick ? SELECT_SAMPLES : 2) : this.K;
    const generation = { ...this.ctx.generation };
    const item: Item = { prompt, texts: Array<string>(K).fill(''), done: Promise.resolve([]), background, id: crypto.randomUUID(), generation };
    const seed = Math.floor(Math.random() * 2 ** 31);
    item.done = this.ctx.engine
      .generate(
        prompt,
        { numSamples: K, ...engineSampling(generation), seed, background, id: item.id },
        Comlink.proxy((k: number, text: string) => {
          item.texts[k] = text;
          if (this.item === item && performance.now() - this.tick > 50) {
            this.tick = performance.now();
            this.requestUpdate();
          }
        }),
      )
      .then(
        (r) => {
          item.texts = r.texts;
          return pick && rm ? this.choose(item, pick, rm) : r.texts;
        },
        (e: unknown) => {
          item.error = e instanceof Error ? e.message : String(e);
          return [];
        },
      );
    return item;
  }

  /**
   * The reward model's scores of `item`'s samples: pairwise, the two it scores closest become the item's
   * completions; K-way, their mean margin is kept for advance() to choose by. If it cannot score, the
   * samples are shown as drawn (the first two of a pair), and show() says why; while a run trains, the
   * item waits for it as a generation does.
   */
  private async choose(item: Item, how: 'pair' | 'prompt', rm: string): Promise<string[]> {
    const texts = item.texts;
    let scores: number[];
    try {
      scores = await this.ctx.engine.rewardScores(
        rm,
        texts.map((completion) => ({ prompt: item.prompt, completion })),
        { background: !!item.background },
      );
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      if (this.ctx.liveRun) {
        item.error = why;
        return [];
      }
      item.selectError = why;
      if (how === 'pair') item.texts = texts.slice(0, 2);
      this.requestUpdate();
      return item.texts;
    }
    if (how === 'prompt') {
      item.margin = meanMargin(texts, scores) ?? null;
      item.scoredBy = rm;
      this.requestUpdate(); // the switch's card lists the margins of the prompts drawn ahead
      return texts;
    }
    const best = leastSurePair(texts, scores);
    item.texts = best ? best.pair.map((i) => texts[i]!) : texts.slice(0, 2); // all alike: nothing to choose
    if (best) item.selection = uncertainSelection(best.margin, rm);
    return item.texts;
  }

  /** Shows `item` (streaming, then ranking) and starts the one after it. */
  private async show(item: Item): Promise<void> {
    this.item = item;
    this.state = undefined;
    this.focus(); // keys (Escape) reach the panel while the completions are written
    const texts = await item.done;
    if (this.item !== item) return;
    if (item.error && this.ctx.liveRun) {
      // a run started before this generation could: it waits for the run
      this.item = undefined;
      return this.ctx.notify(WAIT_FOR_RUN);
    }
    if (item.error && item.background) return this.show(this.generate(item.prompt)); // once more, while the user waits for it
    if (item.error) {
      this.ctx.notify(`Generating for "${item.prompt.slice(0, 60)}": ${item.error}`, 'error');
      this.requestUpdate();
      return;
    }
    if (item.selectError) this.ctx.notify(`The reward model could not choose (${item.selectError}); shown as drawn.`, 'error');
    this.state = item.recheck ? this.recheckState(item.recheck.of) : this.stateFor(item.prompt, texts);
    await this.updateComplete;
    this.focusJudge();
    void this.prefetch();
  }

  /** Pairwise when the mode asks for it and there are two completions (rollouts given to rank may be more); else a ranking. */
  private stateFor(prompt: string, texts: string[]): RankingState | PairState {
    this.shownAt = performance.now();
    return this.mode === 'pair' && texts.length === 2 ? PairState.drawn(prompt, texts) : new RankingState(prompt, texts);
  }

  /** An earlier comparison judged again: a pair with its sides swapped, a ranking in the new order of its item. */
  private recheckState(of: db.RankingRecord): RankingState | PairState {
    this.shownAt = performance.now();
    if (of.verdict && of.shown) return new PairState(of.prompt, of.completions, [of.shown[1], of.shown[0]]);
    return new RankingState(of.prompt, this.item!.texts);
  }

  /** The item that shows `of` again; K-way, its completions in a new order. */
  private recheckItem(of: db.RankingRecord): Item {
    const order = of.verdict ? [0, 1] : newOrder(of.completions.length);
    const texts = order.map((i) => of.completions[i]!);
    return { prompt: of.prompt, texts, done: Promise.resolve(texts), recheck: { of, order } };
  }

  private focusJudge(): void {
    this.renderRoot.querySelector<HTMLElement>('rank-view, pair-view')?.focus();
  }

  /** Draws the next prompt ahead (K-way with the reward model choosing, the next SELECT_POOL), in the background. */
  private async prefetch(): Promise<void> {
    if (this.ctx.liveRun) return; // the engine samples nothing while a run trains
    const want = this.mode === 'rank' && this.chooser() ? SELECT_POOL : 1;
    if (this.pool.length >= want) return;
    for (const p of await this.queue()) {
      if (this.pool.length >= want) break;
      if (p !== this.item?.prompt && !this.pool.some((x) => x.prompt === p)) this.pool.push(this.generate(p, true));
    }
    this.requestUpdate();
  }

  /**
   * K or a sampling setting changed: the next prompt, already being written in the background with
   * the old ones, is dropped (its generation stopped) and written anew, so what comes next has the settings
   * the user sees. The prompt on screen keeps the completions it has.
   */
  private settingsChanged(): void {
    const pre = this.pool;
    this.pool = [];
    for (const x of pre) if (x.id) void this.ctx.engine.stopGeneration(x.id);
    if (this.state) void this.prefetch();
  }

  /**
   * The next prompt: the prefetched one if it is still wanted (K-way with the reward model choosing, the one
   * of those drawn ahead whose samples it is least sure of, among those scored), else the first of the queue.
   */
  async advance(): Promise<void> {
    if (!this.ctx.model) return this.ctx.notify('Load a model first (Model tab).', 'error');
    if (this.ctx.liveRun) {
      this.item = undefined;
      this.state = undefined;
      return this.ctx.notify(WAIT_FOR_RUN);
    }
    const q = await this.queue();
    this.promptsLeft = q.length; // a skip changes it without a store event
    // a repeat among new work (not once the prompts run out); the prefetched prompt waits for the next turn
    const again = q.length ? pickRecheck(await db.listRankings(this.ctx.store), this.mode === 'pair', this.recheckEvery) : undefined;
    if (again) return this.show(this.recheckItem(again));
    const ahead = this.pool.filter((x) => q.includes(x.prompt));
    let pre = ahead[0];
    const least = this.mode === 'rank' && this.chooser() ? byUncertainty(ahead)[0] : undefined;
    if (least && typeof least.margin === 'number' && least.scoredBy) {
      pre = least;
      least.selection = uncertainSelection(least.margin, least.scoredBy);
    }
    this.pool = ahead.filter((x) => x !== pre);
    if (pre) return this.show(pre);
    if (!q.length) {
      this.item = undefined;
      this.state = undefined;
      return;
    }
    return this.show(this.generate(q[0]!));
  }

  /** Completions made elsewhere (PPO's rollouts during training): ranked like generated ones, nothing to generate. */
  private async rankGiven(prompt: string, completions: string[]): Promise<void> {
    this.pool = [];
    await this.show({ prompt, texts: completions, done: Promise.resolve(completions) });
  }

  private async rankOwn(): Promise<void> {
    const input = this.renderRoot.querySelector('#own-prompt') as HTMLTextAreaElement;
    const text = input.value.trim();
    if (!text || !this.ctx.model) return;
    input.value = '';
    // stored once, by the Data tab's rule: a prompt already in the list is ranked again, not added again
    if ((await db.addPrompt(this.ctx.store, { text, source: 'typed in the rank view' })) !== undefined) this.ctx.changed('data');
    this.skipped.delete(text);
    await this.show(this.generate(text));
  }

  /** While completions are written the rank view is not there yet: Escape skips the prompt from here. */
  private onKey = (e: KeyboardEvent): void => {
    const target = e.composedPath()[0];
    if (target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))) return;
    if (e.key !== 'Escape' || this.state || !this.item || this.item.error) return;
    e.preventDefault();
    void this.skipPrompt();
  };

  protected readonly keys = new KeyController(this, this.onKey);

  /** A ranking (rank view) or a verdict (pair view, with the better answer when both were bad and one was written). */
  private async submit(record: Omit<db.RankingRecord, 'createdAt'>, demonstration?: string): Promise<void> {
    const shown = this.state,
      drawn = this.item?.generation,
      took = performance.now() - this.shownAt,
      again = this.item?.recheck,
      chosen = this.item?.selection;
    // how these completions were sampled, and how the reward model chose them
    const made = { ...record, ...(drawn ? { generation_config: drawn } : {}), ...(chosen ? { selection: chosen } : {}) };
    const rec = again && shown ? { ...again.of, recheck: this.recheckOf(again, shown, record) } : made;
    this.focus(); // the keyboard stays here while the rank view is gone (Escape skips the next prompt as it is written)
    this.state = undefined; // one submit per ranking: the view goes while it is saved
    const saved = await this.ctx.attempt('Saving the ranking', async () => {
      const id = await db.saveRanking(this.ctx.store, rec);
      if (demonstration !== undefined && !(await this.ctx.addDemonstration(rec.prompt, demonstration)))
        this.ctx.notify('That answer is already among your demonstrations.');
      return id;
    });
    if (saved === undefined) {
      this.state = shown; // nothing is lost: the ranking comes back to submit again
      return;
    }
    this.times = [...this.times, took];
    this.ctx.changed('rankings');
    await this.advance();
  }

  private async skipPrompt(): Promise<void> {
    const it = this.item;
    if (it) this.skipped.add(it.prompt);
    if (it?.id && !this.state) void this.ctx.engine.stopGeneration(it.id); // skipped while it was being written
    await this.advance();
  }

  /** The repeat's judgement in the first record's terms: ranks per completion in its order (and for a pair, the verdict and sides). */
  private recheckOf(
    again: NonNullable<Item['recheck']>,
    state: RankingState | PairState,
    record: Omit<db.RankingRecord, 'createdAt'>,
  ): NonNullable<db.RankingRecord['recheck']> {
    const createdAt = Date.now();
    if (state instanceof PairState) return { ranks: record.ranks, verdict: record.verdict!, shown: record.shown!, createdAt };
    return { ranks: ranksInRecordOrder(again.order, state.order, state.ranksByPosition()), createdAt };
  }

  /** Ends the completions being written where they are, to rank them as they stand. */
  private stopWriting(): void {
    if (this.item?.id && !this.state) void this.ctx.engine.stopGeneration(this.item.id);
  }

  private async addExamples(): Promise<void> {
    await this.ctx.attempt('Adding the example prompts', async () => {
      const r = await fetch(new URL('prompts/demo.jsonl', location.href));
      const { prompts, errors } = importData(await r.text(), 'prompts/demo.jsonl');
      if (errors.length) throw new Error(errors.join('; '));
      const { added } = await db.addPrompts(this.ctx.store, prompts, 'example prompts');
      this.ctx.changed('data');
      this.ctx.notify(`Added ${added.length} example prompts.`);
    });
  }

  private set(key: 'K', v: number): void {
    if (this[key] === v) return;
    this[key] = v;
    this.settingsChanged();
  }

  /**
   * The other mode: kept across reloads; the prompt on screen is judged in it when its completions fit
   * (two for a pair), unless it is a repeat, which is judged as the first time was.
   */
  private setMode(mode: Mode): void {
    if (this.mode === mode) return;
    this.mode = mode;
    globalThis.localStorage?.setItem(MODE_KEY, mode);
    this.settingsChanged(); // the prefetched prompt has the other mode's number of completions
    if (this.state && !this.item?.recheck) {
      const texts = this.item!.texts;
      if (mode === 'rank' || texts.length === 2) this.state = this.stateFor(this.state.prompt, texts);
      void this.updateComplete.then(() => this.focusJudge());
    }
  }

  /** The switch: kept across reloads; what is drawn ahead is drawn again, as the reward model now chooses it (or not). */
  private setSelecting(on: boolean): void {
    this.selecting = on;
    saveSelecting(globalThis.localStorage, on);
    this.settingsChanged();
  }

  private setRecheckEvery(e: Event): void {
    this.recheckEvery = Math.round(this.num(e, 0, 1000, this.recheckEvery));
    saveRecheckEvery(globalThis.localStorage, this.recheckEvery);
  }

  private setGoal(e: Event): void {
    this.goal = Math.round(this.num(e, 1, 100_000, this.goal));
    saveGoal(globalThis.localStorage, this.goal);
  }

  private num(e: Event, min: number, max: number, fallback: number): number {
    const v = Number((e.target as HTMLInputElement).value);
    return Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
  }

  private renderStage() {
    const it = this.item;
    if (!it) {
      if (!this.ctx.model) return html`<div class="empty">Load a model in the Model tab to generate completions.</div>`;
      if (this.promptsLeft === 0) {
        return html`<div class="empty">No prompts left to rank. Add prompts in the Data tab, type one above, or
          <button id="add-examples" @click=${() => void this.addExamples()}>add the example prompts</button>.</div>`;
      }
      return html`<div class="empty">${plural(this.promptsLeft, 'prompt')} waiting.
        <button id="rank-start" class="primary" @click=${() => void this.advance()}>Generate ${this.mode === 'pair' ? 'a pair of' : this.K} completions</button></div>`;
    }
    if (this.state instanceof PairState) {
      return html`${this.chosenNote(it)}<pair-view .state=${this.state} ${on('pair-submit', (d) => void this.submit(d.record, d.demonstration))}
        ${on('ranking-skip', () => void this.skipPrompt())}></pair-view>`;
    }
    if (this.state) {
      return html`${this.chosenNote(it)}<rank-view .state=${this.state} ${on('ranking-submit', (record) => void this.submit(record))} ${on('ranking-skip', () => void this.skipPrompt())}></rank-view>
        <div class="row" style="margin-top:0.5rem"><button id="rank-submit" class="primary" @click=${() => this.submitClick()}>Submit ranking (Enter)</button>
        <button id="rank-skip" @click=${() => void this.skipPrompt()}>Skip (Esc)</button></div>`;
    }
    return html`<div class="prompt">${it.prompt}</div>
      <p class="muted small" id="rank-status">${it.error ? html`<span class="error">${it.error}</span>` : `Generating ${it.texts.length} completions…${this.mode === 'pair' && it.texts.length > 2 ? ' The reward model then shows the two it is least sure of.' : ''}`}</p>
      <ol class="samples">${it.texts.map((t) => html`<li class="sample">${t}</li>`)}</ol>
      ${
        it.error
          ? html`<button @click=${() => void this.show(this.generate(it.prompt))}>Try again</button>`
          : html`<div class="row">
        <button id="rank-stop" title="End the completions where they are and rank them as they stand" @click=${() => this.stopWriting()}>Stop and rank these</button>
        <button id="rank-skip-now" @click=${() => void this.skipPrompt()}>Skip this prompt (Esc)</button></div>`
      }`;
  }

  /** How the reward model chose what is shown, when it did. */
  private chosenNote(it: Item) {
    const sel = it.selection;
    if (!sel || it.recheck) return '';
    const m = sel.margin.toFixed(3);
    return html`<p class="muted small" id="chosen-note">${
      it.texts.length === 2 && this.state instanceof PairState
        ? `Chosen by the reward model: it scores these two ${m} apart, the closest pair of the ${SELECT_SAMPLES} answers drawn.`
        : `Chosen by the reward model: it scores these answers ${m} apart on average, the closest of the prompts drawn ahead.`
    }</p>`;
  }

  /** The switch that lets the reward model choose, with what it does and why, or why it cannot. */
  private renderSelection() {
    const rms = rewardModelsFor(this.runs, this.ctx.model?.fingerprint),
      rm = rms[0];
    const how =
      this.mode === 'pair'
        ? `it draws ${SELECT_SAMPLES} answers and shows the two it scores closest`
        : `of the next ${SELECT_POOL} prompts drawn ahead, it brings the one whose answers it scores closest`;
    return html`<div class="card selection">
      <label><input type="checkbox" id="rank-uncertain" .checked=${this.selecting && !!rm} ?disabled=${!rm}
        @change=${(e: Event) => this.setSelecting((e.target as HTMLInputElement).checked)} /> Rank what the reward model is least sure of</label>
      <p class="muted small" id="uncertain-why">${
        rm
          ? `Comparisons whose scores the reward model puts close teach it the most: ${how}. Reward model: run ${rewardModelLabel(rm)}${rms.length > 1 ? ' (the newest of yours)' : ''}.`
          : noRewardModelReason(this.runs, !!this.ctx.model)
      }</p>
      ${this.renderAhead()}
    </div>`;
  }

  /**
   * K-way with the reward model choosing: the prompts drawn ahead, each with its answers' mean margin once
   * scored; the smallest comes next (advance()), unless a repeat of an earlier comparison comes first.
   */
  private renderAhead() {
    if (this.mode !== 'rank' || !this.chooser() || !this.pool.length) return '';
    const next = byUncertainty(this.pool)[0];
    const status = (x: Item) =>
      x.error
        ? 'could not be drawn'
        : x.selectError
          ? 'could not be scored'
          : x.margin === null
            ? 'answers all alike'
            : typeof x.margin === 'number'
              ? `${x.margin.toFixed(3)} apart on average${x === next && typeof next.margin === 'number' ? ' (next)' : ''}`
              : 'being drawn and scored…';
    return html`<p class="muted small ahead-head">Drawn ahead, with the reward model's margins:</p>
      <ol class="small" id="ahead">${this.pool.map(
        (x) => html`<li class="ahead" data-prompt=${x.prompt} data-margin=${typeof x.margin === 'number' ? String(x.margin) : ''}
        ?data-next=${x === next && typeof x.margin === 'number'}>${oneLine(x.prompt, 60)} — ${status(x)}</li>`,
      )}</ol>`;
  }

  /** The Submit button: what the rank view's Enter does (its `ranking-submit` reaches submit() with the same record). */
  private submitClick(): void {
    if (this.state instanceof RankingState) void this.submit(this.state.toRecord());
  }

  override render() {
    return html`
      <div class="row" style="justify-content:space-between">
        <h2>Rank</h2>
        <span class="counter pill" id="comparisons">${plural(this.counts.rankings, 'ranking')} · ${plural(this.counts.comparisons, 'comparison')}</span>
      </div>
      <div class="card row settings">
        <span class="row mode" role="radiogroup" aria-label="How to judge">
          <label><input type="radio" name="rank-mode" id="mode-rank" .checked=${this.mode === 'rank'} @change=${() => this.setMode('rank')} /> Rank K</label>
          <label><input type="radio" name="rank-mode" id="mode-pair" .checked=${this.mode === 'pair'} @change=${() => this.setMode('pair')} /> Pairwise A / B</label>
        </span>
        ${this.mode === 'rank' ? html`<label>Completions (K) <input id="rank-k" type="number" min="2" max="9" .value=${String(this.K)} @change=${(e: Event) => this.set('K', Math.round(this.num(e, 2, 9, 4)))} /></label>` : ''}
        ${generationFields(this.ctx, 'rank')}
        <label title="An earlier comparison comes back now and then, in a new order, to measure how consistent you are (the Data tab shows it). 0 never.">Repeat 1 in
          <input id="recheck-every" type="number" min="0" max="1000" .value=${String(this.recheckEvery)} @change=${(e: Event) => this.setRecheckEvery(e)} /></label>
        <span class="muted small" id="prompts-left">${plural(this.promptsLeft, 'prompt')} to rank</span>
      </div>
      <div class="card row">
        <textarea id="own-prompt" rows="1" placeholder="Or type a prompt of your own…" @keydown=${(e: KeyboardEvent) => {
          if (e.key === 'Enter' && !e.shiftKey) {
            e.preventDefault();
            void this.rankOwn();
          }
        }}></textarea>
        <button @click=${() => void this.rankOwn()} ?disabled=${!this.ctx.model}>Generate</button>
      </div>
      ${this.renderSelection()}
      ${this.renderProgress()}
      <div class="layout">
        <div class="card">${this.renderStage()}</div>
        <guidelines-panel .project=${this.ctx.store.name}></guidelines-panel>
      </div>
    `;
  }

  /** The goal bar, what each stage has to train on so far, and the pace. */
  private renderProgress() {
    const p = goalProgress(this.counts.comparisons, this.goal),
      pace = secondsPerRanking(this.times);
    const toGoal = timeToGoal(this.counts.comparisons, this.counts.rankings, this.goal, pace);
    return html`<div class="card progress">
      <div class="row" style="justify-content:space-between">
        <span id="goal-text">${p.text}</span>
        <label class="small muted">Goal <input id="goal-input" type="number" min="1" .value=${String(this.goal)} @change=${(e: Event) => this.setGoal(e)} /> comparisons</label>
      </div>
      <progress id="goal-bar" max="1" .value=${p.fraction} aria-label="Comparisons towards the goal"></progress>
      <span class="muted small" id="pace">${paceText(pace, this.times.length, toGoal)}</span>
      ${
        this.stages
          ? html`<dl id="stage-needs" class="small" aria-label="What each training stage has so far">${stageNeeds(this.stages).map(
              (n) => html`
        <dt>${n.name}</dt><dd data-stage=${n.stage}>${n.text}</dd>`,
            )}</dl>`
          : ''
      }
    </div>`;
  }
}

if (!customElements.get('rank-panel')) customElements.define('rank-panel', RankPanel);
