// <model-view>: where the model comes from (the built-in one served by this site, a Hub id, a URL, or
// files from this computer), the download's progress, what was loaded (architecture, parameters, the
// GPU memory sampling and training need) and the GPU adapter it runs on. The last URL or Hub choice is
// remembered and loaded again on the next visit (from the browser's cache: no second download); the
// built-in model loads by default so the page is useful at once.
import * as Comlink from 'comlink';
import { css, html } from 'lit';
import { CtxView } from './ctx-view.ts';
import type { AdapterSummary } from '../shared/types.ts';
import { parseModelRef } from '../io/hub.ts';
import { loadSession } from '../io/hub-publish.ts';
import type { ModelSource } from '../worker/api.ts';
import { BUILTIN_MODEL_FILES } from '../shared/builtin-model.ts';
import { fmtBytes, fmtCount, type AppContext } from './context.ts';
import { ARCHITECTURE_NAMES, fitsOn, SUGGESTIONS, suggestionText } from './model-suggestions.ts';
import { defaultHubAddress, hubAddress, setHubAddress } from './hub-address.ts';
import { sharedStyles } from './styles.ts';

const LAST_SOURCE = 'rlhf-playground:last-model';
export const BUILTIN_URL = 'models/default/';
/** The built-in model's name in the page, in runs and in exported files (its URL depends on the host). */
export const BUILTIN_NAME = 'rlhf-playground/default (built-in)';
const BUILTIN = { url: BUILTIN_URL, name: BUILTIN_NAME, only: BUILTIN_MODEL_FILES };

type Remembered = { url: string } | { hub: string; revision?: string; endpoint?: string };

/** A picked folder or files as the worker's `{ files }` source: paths inside the folder, bytes read here. */
async function readPicked(list: FileList): Promise<ModelSource> {
  const files = [...list];
  if (files.length === 1 && /\.zip$/i.test(files[0]!.name)) return { zip: new Uint8Array(await files[0]!.arrayBuffer()), name: files[0]!.name };
  const top = files[0]?.webkitRelativePath.split('/')[0] ?? '';
  const map = new Map<string, Uint8Array>();
  for (const f of files) {
    const rel = f.webkitRelativePath ? f.webkitRelativePath.slice(top.length + 1) : f.name;
    map.set(rel, new Uint8Array(await f.arrayBuffer()));
  }
  return { files: map, name: top || `${files.length} picked files` };
}

export class ModelView extends CtxView {
  static override properties = {
    ...CtxView.properties,
    loading: { state: true },
    progress: { state: true },
    error: { state: true },
    adapter: { state: true },
    hub: { state: true },
  };
  declare ctx: AppContext;
  declare loading: string | undefined;
  declare progress: { loaded: number; total?: number; file: string } | undefined;
  declare error: string | undefined;
  declare adapter: AdapterSummary | undefined;
  /** the Hub address models load from (and Share publishes to) */
  declare hub: string;
  private started = false;

  constructor() {
    super();
    this.hub = hubAddress();
  }

  static override styles = [
    sharedStyles,
    css`
    .sources { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: 0.75rem; }
    .sources .card { margin: 0; display: flex; flex-direction: column; gap: 0.5rem; }
    .sources input { width: 100%; }
    dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; margin: 0; }
    dt { color: #6e6e73; }
    dd { margin: 0; }
    #suggestions ul { list-style: none; padding: 0; margin: 0.5rem 0 0; display: grid; gap: 0.5rem; }
  `,
  ];

  protected listen(ctx: AppContext): (() => void)[] {
    // another view may open a model or select a policy (Share, Train, Compare)
    return [ctx.on('model', () => this.requestUpdate()), ctx.on('policy', () => this.requestUpdate())];
  }

  protected async reload(): Promise<void> {}

  override connectedCallback(): void {
    super.connectedCallback();
    if (this.started || !this.ctx) return;
    this.started = true;
    void this.ctx.attempt('GPU adapter', async () => {
      this.adapter = this.ctx.adapter = await this.ctx.engine.adapterInfo();
    });
    let last: Remembered | undefined;
    try {
      last = JSON.parse(localStorage.getItem(LAST_SOURCE) ?? 'null') ?? undefined;
    } catch {
      last = undefined;
    }
    // a private model from the Hub loads again with the Share tab's sign-in (a typed token is not kept)
    if (last && 'hub' in last) last = { ...last, accessToken: loadSession(last.endpoint ?? this.hub)?.accessToken } as Remembered;
    const builtin = () => this.load(BUILTIN, 'the built-in model');
    // the last model may be gone (offline, a token needed): then the built-in one, and its error stays shown
    if (!last) void builtin();
    else {
      void this.load(last, 'your last model').then(async () => {
        if (this.ctx?.model) return;
        const why = this.error;
        await builtin();
        this.error ??= why;
      });
    }
  }

  /** Loads a model in the worker; on success it becomes the base of every view. */
  async load(source: ModelSource, label: string): Promise<void> {
    if (this.loading) return;
    // the worker resolves relative URLs against its own script: make them absolute here
    if ('url' in source) source = { ...source, url: new URL(source.url, location.href).href };
    this.loading = label;
    this.error = undefined;
    this.progress = undefined;
    try {
      const { model, policy } = await this.ctx.engine.openCheckpoint(
        source,
        Comlink.proxy((p: { file: string; overallLoaded: number; overallTotal?: number }) => {
          this.progress = { loaded: p.overallLoaded, total: p.overallTotal, file: p.file };
        }),
      );
      this.ctx.model = model;
      this.ctx.policy = policy;
      this.ctx.changed('model', model);
      this.ctx.changed('policy', policy);
      if ('hub' in source)
        localStorage.setItem(LAST_SOURCE, JSON.stringify({ hub: source.hub, revision: source.revision, endpoint: source.endpoint } satisfies Remembered));
      else if ('url' in source && !source.files && source.url !== new URL(BUILTIN_URL, location.href).href)
        localStorage.setItem(LAST_SOURCE, JSON.stringify({ url: source.url }));
      else localStorage.removeItem(LAST_SOURCE);
      this.ctx.notify(`Loaded ${model.source}${policy.kind === 'adapter' ? ` with the adapter ${policy.name}` : ''}.`);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      this.error = why.startsWith(`${label}: `) ? why : `${label}: ${why}`; // Hub errors start with the model id
      localStorage.removeItem(LAST_SOURCE);
    } finally {
      this.loading = undefined;
    }
  }

  /** Merges a trained run into the model: the next stages start from it (SFT before the RM and PPO). */
  private async adopt(runId: string): Promise<void> {
    this.loading = 'the run into the model';
    const info = await this.ctx.attempt('Starting from the run', () => this.ctx.engine.adoptRun(runId));
    this.loading = undefined;
    if (!info) return;
    this.ctx.model = info;
    this.ctx.changed('model', info);
    await this.ctx.refreshPolicy();
    this.ctx.notify(`The next runs start from run ${runId.slice(0, 8)}.`);
  }

  private async reset(): Promise<void> {
    this.loading = 'the model as loaded';
    const info = await this.ctx.attempt('Going back to the model as loaded', () => this.ctx.engine.resetModel());
    this.loading = undefined;
    if (!info) return;
    this.ctx.model = info;
    this.ctx.changed('model', info);
    await this.ctx.refreshPolicy();
  }

  private input(id: string): string {
    return (this.renderRoot.querySelector(`#${id}`) as HTMLInputElement).value.trim();
  }

  /** An id (`owner/name`, `@revision` optional) or a model page's URL, from the chosen Hub. A typed token
   *  goes first; else the Share tab's sign-in to this Hub, so private and gated models load once signed in. */
  private loadHub(): void {
    const text = this.input('hub-id');
    if (!text) return;
    let ref: { id: string; revision?: string };
    try {
      ref = parseModelRef(text, this.hub);
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
      return;
    }
    this.loadHubId(ref.id, ref.revision);
  }

  private loadHubId(id: string, revision?: string): void {
    const token = this.input('hub-token-load') || loadSession(this.hub)?.accessToken;
    void this.load({ hub: id, revision, endpoint: this.hub, accessToken: token || undefined }, revision ? `${id}@${revision}` : id);
  }

  private useHub(): void {
    try {
      this.hub = setHubAddress(this.input('hub-address'));
      this.error = undefined;
      this.ctx.changed('hub', this.hub);
    } catch (e) {
      this.error = `Hub address: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  private loadUrl(): void {
    const url = this.input('model-url');
    if (url) void this.load({ url }, url);
  }

  private async loadPicked(e: Event): Promise<void> {
    const input = e.target as HTMLInputElement; // read now: a shadow-tree event's target is null once dispatched
    const list = input.files;
    if (!list?.length) return;
    try {
      await this.load(await readPicked(list), list.length === 1 ? list[0]!.name : `${list.length} picked files`);
    } finally {
      input.value = ''; // picking the same files again loads them again
    }
  }

  private renderModel() {
    const m = this.ctx.model;
    if (!m) return html`<p class="muted">No model loaded yet.</p>`;
    const pol = this.ctx.policy,
      busy = this.loading !== undefined;
    return html`
      <dl id="model-info">
        <dt>Model</dt><dd>${m.source}</dd>
        <dt>Architecture</dt><dd>${ARCHITECTURE_NAMES[m.modelType]}: ${m.layers} layers, hidden ${m.hidden}, ${m.heads} heads, vocabulary ${fmtCount(m.vocabSize)}, ${m.maxPositions} positions</dd>
        <dt>Parameters</dt><dd id="model-params">${fmtCount(m.params)} (${m.params.toLocaleString('en')})</dd>
        <dt>Chat template</dt><dd>${m.hasChatTemplate ? 'yes: prompts are formatted as a conversation' : 'no: prompts are used as plain text'}</dd>
        <dt>GPU memory</dt><dd>sampling 4 × ${m.memory.seqLen} tokens: ${fmtBytes(m.memory.inference)} · LoRA r=8 training (8 × ${m.memory.seqLen}): ${fmtBytes(m.memory.lora)} · full fine-tuning: ${fmtBytes(m.memory.full)}</dd>
        <dt>Starting model</dt><dd id="merged">${
          m.merged.length
            ? html`the loaded model with ${m.merged.map((x, i) => `${i ? ', then ' : ''}${x.stage.toUpperCase()} run ${x.runId.slice(0, 8)} (step ${x.step})`).join('')} merged in
            <button id="reset-model" class="small" ?disabled=${busy} @click=${() => void this.reset()}>Back to the model as loaded</button>`
            : 'the model as loaded: new runs start from it'
        }</dd>
        <dt>Samples from</dt><dd id="policy">${
          pol?.kind === 'adapter'
            ? `the adapter ${pol.name}`
            : pol?.kind === 'run'
              ? html`${pol.name} (trained here)
          <button id="adopt-run" class="small" ?disabled=${busy} title="Merge this run's weights into the model, so the next runs (reward model, PPO, DPO) start from it and PPO is held to it, as InstructGPT's PPO starts from its SFT model"
            @click=${() => void this.adopt(pol.runId!)}>Start the next runs from it</button>`
              : 'the starting model'
        }</dd>
      </dl>`;
  }

  private renderAdapter() {
    const a = this.adapter;
    if (!a) return html`<p class="muted">Asking the browser for a GPU…</p>`;
    const l = a.limits;
    return html`
      <dl id="adapter">
        <dt>GPU</dt><dd>${a.name}</dd>
        <dt>Features</dt><dd>${a.features.filter((f) => ['shader-f16', 'subgroups', 'timestamp-query'].includes(f)).join(', ') || 'none of shader-f16, subgroups, timestamp-query'}</dd>
        <dt>Limits</dt><dd>${fmtBytes(l.maxBufferSize ?? 0)} per buffer, ${fmtBytes(l.maxStorageBufferBindingSize ?? 0)} per storage binding, ${fmtBytes(l.maxComputeWorkgroupStorageSize ?? 0)} workgroup storage</dd>
      </dl>`;
  }

  /** Instruct models to start from, each with what it needs on this GPU; sampling refused: no Load button to press. */
  private renderSuggestions(busy: boolean) {
    return html`
      <div class="card" id="suggestions">
        <strong>Suggested models</strong>
        <span class="muted small">From the Hub, with the GPU memory each needs before you download it. WebGPU does not tell a page how much memory your GPU has: compare with it.</span>
        <ul>${SUGGESTIONS.map((s) => {
          const refused = fitsOn(s.cfg, this.adapter).uses[0]!.refused;
          return html`<li data-id=${s.id}>
            <button class="small" ?disabled=${busy || refused !== undefined} title=${refused ?? `Load ${s.id} from the Hub`} @click=${() => this.loadHubId(s.id)}>Load</button>
            <strong>${s.id}</strong> <span class="muted small">${s.about}</span>
            <div class="small">${suggestionText(s, this.adapter)}</div>
          </li>`;
        })}</ul>
      </div>`;
  }

  override render() {
    const busy = this.loading !== undefined;
    const p = this.progress;
    return html`
      <h2>Model</h2>
      <div class="sources">
        <div class="card">
          <strong>Built-in</strong>
          <span class="muted small">A 1M-parameter Llama trained on instructions by this project. Served by this site, works offline.</span>
          <button id="load-builtin" class="primary" ?disabled=${busy} @click=${() => void this.load(BUILTIN, 'the built-in model')}>Load built-in model</button>
        </div>
        <div class="card">
          <strong>Hugging Face Hub</strong>
          <input id="hub-id" type="text" placeholder="HuggingFaceTB/SmolLM2-135M" @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.loadHub()} />
          <input id="hub-token-load" type="password" placeholder="access token (optional)" title="an access token, for private or gated models" aria-label="Hugging Face access token, for private or gated models" autocomplete="off" />
          <button id="load-hub" ?disabled=${busy} @click=${() => this.loadHub()}>Load from the Hub</button>
          <details id="hub-where" class="small">
            <summary>From <span id="hub-shown">${this.hub.replace(/^https?:\/\//, '')}</span></summary>
            <input id="hub-address" type="text" .value=${this.hub} placeholder=${defaultHubAddress()} @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.useHub()} />
            <button id="use-hub" class="small" @click=${() => this.useHub()}>Use this Hub</button>
            <span class="muted">A mirror or your own Hub; the Share tab publishes there too. Empty: ${defaultHubAddress()}.</span>
          </details>
        </div>
        <div class="card">
          <strong>URL</strong>
          <input id="model-url" type="text" placeholder="https://example.org/my-model/" @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.loadUrl()} />
          <span class="muted small">A folder with config.json, model.safetensors and tokenizer.json, or a shared adapter.</span>
          <button id="load-url" ?disabled=${busy} @click=${() => this.loadUrl()}>Load URL</button>
        </div>
        <div class="card">
          <strong>From this computer</strong>
          <label class="small">Model folder <input id="pick-folder" type="file" webkitdirectory ?disabled=${busy} @change=${(e: Event) => void this.loadPicked(e)} /></label>
          <label class="small">Files or a .zip <input id="pick-files" type="file" multiple ?disabled=${busy} @change=${(e: Event) => void this.loadPicked(e)} /></label>
        </div>
      </div>
      ${this.renderSuggestions(busy)}
      ${
        busy
          ? html`<div class="card" id="loading">
        <div>Loading ${this.loading}…${p ? html` <span class="muted small">${p.file}: ${fmtBytes(p.loaded)}${p.total ? ` of ${fmtBytes(p.total)}` : ''}</span>` : ''}</div>
        ${p?.total ? html`<progress id="load-progress" max=${p.total} .value=${p.loaded}></progress>` : html`<progress id="load-progress"></progress>`}
      </div>`
          : ''
      }
      ${this.error ? html`<div class="card error" id="load-error" role="alert">${this.error}</div>` : ''}
      <div class="grid">
        <div class="card"><h3>Loaded</h3>${this.renderModel()}</div>
        <div class="card"><h3>Your GPU</h3>${this.renderAdapter()}</div>
      </div>
    `;
  }
}

if (!customElements.get('model-view')) customElements.define('model-view', ModelView);
