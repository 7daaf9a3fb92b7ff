// <share-view>: what leaves the machine, and only when the user asks. Three sections:
//   Download   the chosen model or adapter (a finished run, or the current policy) as a zip, the user's
//              data as JSONL, and "export for a cluster" (TRL datasets + configs) as a zip;
//   Publish    sign in with Hugging Face (OAuth, or a pasted token), preview the model card, upload the
//              chosen model with it as one commit, and link to the repo;
//   Open       a shared checkpoint from a zip file, a URL or a Hub id, which becomes the policy.
// The rules live elsewhere (share-data.ts: what to read; model-card.ts; hub-publish.ts: the Hub); this
// element renders them and routes input. Every user or model string is bound as text (Lit escapes it);
// the published repo's link is built from the checked repo id, never from what the server returned.
import { CtxView } from './ctx-view.ts';
import { hubAddress } from './hub-address.ts';
import * as Comlink from 'comlink';
import { css, html, nothing, type PropertyValues } from 'lit';
import { unzipFiles, zipFiles } from '../io/zip.ts';
import { parseModelRef } from '../io/hub.ts';
import {
  completeSignIn,
  hubEndpoint,
  HubPublishError,
  loadSession,
  oauthAvailable,
  publish,
  repoId,
  signInUrl,
  signInWithToken,
  signOut,
  type HubSession,
  type PublishProgress,
  type PublishResult,
} from '../io/hub-publish.ts';
import { modelCard } from '../io/model-card.ts';
import { clusterExport } from '../io/trl.ts';
import * as db from '../store/db.ts';
import type { ModelSource } from '../worker/api.ts';
import { download, fmtBytes, type AppContext, type Topic } from './context.ts';
import { cardInput, clusterInput, defaultRepoName, exportableRuns, exportKind, mergedChain } from './share-data.ts';
import { plural } from './data-io.ts';
import { sharedStyles } from './styles.ts';

type Busy = 'model' | 'data' | 'cluster' | 'signin' | 'publish' | 'open';
type OpenFrom = 'file' | 'url' | 'hub';
type Progress = { phase: PublishProgress['phase'] | 'exporting'; file?: string; fraction?: number };

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));
const PHASES: Record<Progress['phase'], string> = {
  exporting: 'Exporting the model',
  checking: 'Checking the token',
  creating: 'Creating the repo',
  preuploading: 'Preparing the upload',
  uploading: 'Uploading',
  committing: 'Committing',
  done: 'Done',
};
const OPEN_LABEL: Record<OpenFrom, string> = { file: 'the file', url: 'the URL', hub: 'the Hub id' };
const TOPICS: Topic[] = ['runs', 'policy', 'model', 'data', 'rankings'];

export class ShareView extends CtxView {
  static override properties = {
    ...CtxView.properties,
    hubUrl: { attribute: 'hub-url' },
    clientId: { attribute: 'client-id' },
    runs: { state: true },
    choice: { state: true },
    counts: { state: true },
    busy: { state: true },
    session: { state: true },
    signinError: { state: true },
    repo: { state: true },
    isPrivate: { state: true },
    license: { state: true },
    description: { state: true },
    card: { state: true },
    progress: { state: true },
    result: { state: true },
    publishError: { state: true },
    openFrom: { state: true },
    openProgress: { state: true },
    openStatus: { state: true },
    openError: { state: true },
  };
  /** The Hub to sign in to and publish on (a mirror, or a fake one in tests). */
  declare hubUrl: string;
  /** The OAuth app's client id; empty inside a Space with hf_oauth (the Space's own), else sign-in needs one. */
  declare clientId: string;
  declare runs: db.RunRecord[];
  declare choice: string; // '' = the current policy, else a run id
  declare counts: { records: number; rankings: number; prompts: number };
  declare busy: Busy | undefined;
  declare session: HubSession | undefined;
  declare signinError: string | undefined;
  declare repo: string;
  declare isPrivate: boolean;
  declare license: string;
  declare description: string;
  declare card: string;
  declare progress: Progress | undefined;
  declare result: PublishResult | undefined;
  declare publishError: string | undefined;
  declare openFrom: OpenFrom | undefined;
  declare openProgress: number | undefined;
  declare openStatus: string | undefined;
  declare openError: string | undefined;

  private cardSeq = 0;
  private signInChecked = false;

  constructor() {
    super();
    const env = import.meta.env as Record<string, string | undefined> | undefined;
    this.hubUrl = hubAddress();
    this.clientId = env?.VITE_HF_CLIENT_ID || '';
    this.runs = [];
    this.choice = '';
    this.counts = { records: 0, rankings: 0, prompts: 0 };
    this.repo = '';
    this.isPrivate = false;
    this.license = '';
    this.description = '';
    this.card = '';
  }

  static override styles = [
    sharedStyles,
    css`
    :host([hidden]) { display: none; }
    section.card > label { margin: 0.5rem 0; }
    label > input[type='text'], label > input:not([type]), label > input[type='url'], label > input[type='password'], label > select { display: block; width: 100%; max-width: 32rem; }
    .card-preview { max-height: 22rem; overflow: auto; background: #f6f6f8; border-radius: 8px; padding: 0.6rem 0.8rem; font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
    .check { display: flex; gap: 0.4rem; align-items: center; }
  `,
  ];

  // ---- lifecycle: subscribe while connected and bound to a context ----

  override connectedCallback(): void {
    super.connectedCallback();
    if (!this.signInChecked) {
      this.signInChecked = true;
      queueMicrotask(() => void this.checkSignIn()); // after the page has set hubUrl / clientId
    }
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    super.willUpdate(changed);
    if (changed.has('hubUrl') && changed.get('hubUrl') !== undefined) this.session = this.storedSession();
  }

  protected listen(ctx: AppContext): (() => void)[] {
    return [...TOPICS.map((t) => ctx.on(t, () => void this.reload())), ctx.on('hub', (address) => (this.hubUrl = address))];
  }

  protected async reload(): Promise<void> {
    const ctx = this.ctx;
    if (!ctx) return;
    await ctx.attempt('Share: read the store', async () => {
      const [runs, own, rankings, prompts] = await Promise.all([
        db.listRuns(ctx.store),
        ctx.userRecords(),
        db.listRankings(ctx.store),
        db.listPrompts(ctx.store),
      ]);
      this.runs = exportableRuns(runs);
      if (this.choice && !this.runs.some((r) => r.id === this.choice)) this.choice = '';
      this.counts = { records: own.length, rankings: rankings.length, prompts: prompts.length };
    });
    await this.refreshCard();
  }

  // ---- what is chosen, and its card ----

  private chosenRun(): db.RunRecord | undefined {
    const id = this.choice || (this.ctx?.policy?.kind === 'run' ? this.ctx.policy.runId : undefined);
    return this.runs.find((r) => r.id === id);
  }

  /** The repo id the inputs name (with the signed-in user as owner of a bare name), or undefined when not valid yet. */
  private targetRepo(): string | undefined {
    try {
      return repoId(this.repo || defaultRepoName(this.ctx?.model, this.chosenRun()), this.session?.user);
    } catch {
      return undefined;
    }
  }

  private async cardFor(repo: string | undefined, bundledBase = false): Promise<string> {
    const ctx = this.ctx!;
    return modelCard(
      await cardInput(ctx.store, {
        runId: this.choice || undefined,
        policy: ctx.policy,
        model: ctx.model,
        repo,
        description: this.description,
        license: this.license,
        bundledBase,
      }),
    );
  }

  private async refreshCard(): Promise<void> {
    if (!this.ctx) return;
    const seq = ++this.cardSeq;
    try {
      const card = await this.cardFor(this.targetRepo());
      if (seq === this.cardSeq) this.card = card;
    } catch (e) {
      if (seq === this.cardSeq) this.card = `(the model card cannot be written: ${errText(e)})`;
    }
  }

  // ---- downloads ----

  private async run(what: Busy, label: string, f: (ctx: AppContext) => Promise<void>): Promise<void> {
    const ctx = this.ctx;
    if (!ctx || this.busy) return;
    this.busy = what;
    try {
      await ctx.attempt(label, () => f(ctx));
    } finally {
      this.busy = undefined;
    }
  }

  private downloadModel = () =>
    this.run('model', 'Download the model', async (ctx) => {
      // the model card goes in as README.md, its loading code following the zip's layout
      const { bundledBase } = await ctx.engine.exportLayout(this.choice || undefined);
      const card = await this.cardFor(this.targetRepo(), bundledBase);
      const { name, zip } = await ctx.engine.exportModel(this.choice || undefined, { card });
      download(name, zip, 'application/zip');
      if (this.choice) await ctx.refreshPolicy(); // exporting a run makes it the policy
      ctx.notify(`Downloaded ${name} (${fmtBytes(zip.length)})`);
    });

  private downloadData = () =>
    this.run('data', 'Download my data', async (ctx) => {
      if (!(await ctx.downloadUserData())) ctx.notify('Nothing to download yet: add prompts, rank some samples or add demonstrations first');
    });

  private downloadCluster = () =>
    this.run('cluster', 'Export for a cluster', async (ctx) => {
      const input = await clusterInput(ctx.store, await ctx.userRecords(), ctx.model, await db.listRuns(ctx.store));
      download('rlhf-cluster.zip', zipFiles(clusterExport(input), 'rlhf-cluster'), 'application/zip');
    });

  // ---- sign in ----

  private storedSession(): HubSession | undefined {
    try {
      return loadSession(this.hubUrl);
    } catch {
      return undefined;
    }
  }

  /** On load: finish an OAuth sign-in the Hub has just sent the user back from, else use a stored session. */
  private async checkSignIn(): Promise<void> {
    try {
      this.session = (await completeSignIn({ hubUrl: this.hubUrl })) ?? this.storedSession();
    } catch (e) {
      this.signinError = errText(e);
      this.session = this.storedSession();
    }
    void this.refreshCard();
  }

  private signIn = async () => {
    this.signinError = undefined;
    this.busy = 'signin';
    try {
      location.assign(await signInUrl({ clientId: this.clientId, hubUrl: this.hubUrl }));
    } catch (e) {
      this.signinError = errText(e);
      this.busy = undefined;
    }
  };

  private useToken = async () => {
    const input = this.renderRoot.querySelector<HTMLInputElement>('#hub-token');
    const remember = this.renderRoot.querySelector<HTMLInputElement>('#hub-remember')?.checked ?? false;
    if (!input?.value.trim()) return;
    this.signinError = undefined;
    this.busy = 'signin';
    try {
      this.session = await signInWithToken(input.value, { hubUrl: this.hubUrl, remember });
      input.value = '';
    } catch (e) {
      this.signinError = errText(e);
    } finally {
      this.busy = undefined;
    }
    void this.refreshCard();
  };

  private signOut = () => {
    signOut();
    this.session = undefined;
    this.result = undefined;
    void this.refreshCard();
  };

  // ---- publish ----

  private publish = async () => {
    const ctx = this.ctx,
      session = this.session;
    if (!ctx || !session || this.busy) return;
    this.publishError = undefined;
    this.result = undefined;
    this.busy = 'publish';
    try {
      const repo = repoId(this.repo || defaultRepoName(ctx.model, this.chosenRun()), session.user);
      this.progress = { phase: 'exporting' };
      // a Hub repo holds the adapter at its top (its base is named, not carried, unless merged runs made it)
      const { bundledBase } = await ctx.engine.exportLayout(this.choice || undefined, false);
      const { name, zip } = await ctx.engine.exportModel(this.choice || undefined, { bundleBase: false });
      if (this.choice) await ctx.refreshPolicy();
      const files = unzipFiles(zip, name);
      const card = await this.cardFor(repo, bundledBase);
      this.card = card;
      this.result = await publish({
        repo,
        files,
        card,
        private: this.isPrivate,
        accessToken: session.accessToken,
        hubUrl: this.hubUrl,
        onProgress: (p) => void (this.progress = p),
      });
      ctx.notify(`Published ${this.result.repo}`);
    } catch (e) {
      this.publishError = errText(e);
      if (e instanceof HubPublishError && e.status === 401) this.signOut(); // the token is no good: ask for a new one
    } finally {
      this.busy = undefined;
      this.progress = undefined;
    }
  };

  // ---- open a shared checkpoint ----

  private async openSource(): Promise<ModelSource> {
    const q = <T extends HTMLElement>(id: string) => this.renderRoot.querySelector<T>(id)!;
    const file = q<HTMLInputElement>('#open-file').files?.[0];
    const url = q<HTMLInputElement>('#open-url').value.trim();
    const hub = q<HTMLInputElement>('#open-hub').value.trim();
    const from = this.openFrom ?? (file ? 'file' : url ? 'url' : hub ? 'hub' : undefined);
    if (from === 'file' && file) {
      const zip = new Uint8Array(await file.arrayBuffer());
      return Comlink.transfer({ zip, name: file.name }, [zip.buffer]); // moved to the worker, not copied
    }
    if (from === 'url' && url) {
      const u = new URL(url, location.href);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`${url}: only http(s) URLs can be opened`);
      return { url: u.href };
    }
    if (from === 'hub' && hub) {
      const endpoint = hubEndpoint(this.hubUrl);
      const { id, revision } = parseModelRef(hub, endpoint);
      return { hub: id, revision, endpoint, ...(this.session ? { accessToken: this.session.accessToken } : {}) };
    }
    throw new Error('choose a .zip file, or give a URL or a Hub id');
  }

  private open = async () => {
    const ctx = this.ctx;
    if (!ctx || this.busy) return;
    this.openError = undefined;
    this.openStatus = undefined;
    this.busy = 'open';
    try {
      const source = await this.openSource();
      this.openProgress = 0;
      const onProgress = Comlink.proxy((p: { overallLoaded: number; overallTotal?: number }) => {
        this.openProgress = p.overallTotal ? p.overallLoaded / p.overallTotal : undefined;
      });
      const r = await ctx.engine.openCheckpoint(source, onProgress);
      if (r.model.fingerprint !== ctx.model?.fingerprint) {
        ctx.model = r.model;
        ctx.changed('model', r.model);
      }
      await ctx.refreshPolicy();
      this.openStatus = r.policy.reward
        ? `Opened the reward model ${r.policy.name} (a LoRA adapter with its score head): generation now samples the loaded model with its adapter, which was trained to score text, not to write it`
        : `Opened: generation now samples ${r.policy.kind === 'adapter' ? 'the adapter' : 'the model'} ${r.policy.name}`;
    } catch (e) {
      this.openError = errText(e);
    } finally {
      this.busy = undefined;
      this.openProgress = undefined;
    }
  };

  // ---- render ----

  private runLabel(r: db.RunRecord): string {
    const lora = exportKind(r) === 'adapter' ? 'LoRA adapter' : mergedChain(r).length ? 'whole model (merged runs + LoRA)' : 'full model';
    return `${r.stage.toUpperCase()} · ${lora} · ${r.status} · step ${r.step ?? 0}/${r.totalSteps ?? '?'} · ${new Date(r.updatedAt).toLocaleString()}`;
  }

  private renderDownload() {
    const ctx = this.ctx;
    const noModel = !ctx?.model;
    return html`
      <section class="card">
        <h3>Download</h3>
        <label>Model or adapter
          <select id="share-model" .value=${this.choice} @change=${(e: Event) => {
            this.choice = (e.target as HTMLSelectElement).value;
            void this.refreshCard();
          }}>
            <option value="" ?selected=${this.choice === ''}>The current policy${ctx?.policy ? `: ${ctx.policy.name}` : ''}</option>
            ${this.runs.map((r) => html`<option value=${r.id} ?selected=${this.choice === r.id}>${this.runLabel(r)}</option>`)}
          </select>
        </label>
        <div class="row">
          <button id="download-model" ?disabled=${noModel || !!this.busy} @click=${this.downloadModel}>${this.busy === 'model' ? 'Exporting…' : 'Download model (.zip)'}</button>
          <button id="download-data" ?disabled=${!!this.busy} @click=${this.downloadData}>Download my data (.zip)</button>
          <button id="download-cluster" ?disabled=${!!this.busy} @click=${this.downloadCluster}>Export for a cluster (.zip)</button>
        </div>
        <p class="muted small">${noModel ? 'Load a model to export it. ' : ''}Your data: ${plural(this.counts.records, 'demonstration or imported record', 'demonstrations and imported records')}, ${plural(this.counts.rankings, 'ranking')}, ${plural(this.counts.prompts, 'prompt')}.
          The cluster export holds them as TRL datasets with a config per stage (trl sft | reward | dpo | rloo | grpo; reward functions as JavaScript, which TRL needs ported to Python).</p>
      </section>`;
  }

  private renderSignIn() {
    const s = this.session;
    if (s) {
      const until = s.expiresAt ? ` until ${new Date(s.expiresAt).toLocaleTimeString()}` : '';
      return html`<p class="row">Signed in as <b id="hub-user">${s.user ?? 'an unknown user'}</b>${until ? html`<span class="muted small">${until}</span>` : nothing}
        <button id="hub-signout" @click=${this.signOut}>Sign out</button></p>`;
    }
    const oauth = oauthAvailable(this.clientId);
    return html`
      <div class="row">
        <button id="hub-signin" class="primary" ?disabled=${!!this.busy || !oauth} @click=${this.signIn}
          title=${oauth ? 'Sign in on the Hub and come back here' : 'This copy of the playground has no Hugging Face OAuth app: paste a token instead'}>Sign in with Hugging Face</button>
        <span class="muted">or paste an access token with the write role:</span>
        <input id="hub-token" type="password" autocomplete="off" placeholder="hf_…" @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && void this.useToken()} />
        <button id="hub-token-use" ?disabled=${!!this.busy} @click=${this.useToken}>Use token</button>
      </div>
      ${
        oauth
          ? nothing
          : html`<p class="muted small" id="hub-no-oauth">Signing in with Hugging Face needs an OAuth app registered for this site
        (whoever hosts it builds it with <code>VITE_HF_CLIENT_ID</code>); an access token from
        <a href=${`${this.hubUrl}/settings/tokens`} target="_blank" rel="noopener">your token settings</a> works everywhere.</p>`
      }
      <label class="check small"><input id="hub-remember" type="checkbox" /> Keep the token on this device (otherwise it is forgotten when the tab closes)</label>`;
  }

  private renderPublish() {
    const target = this.targetRepo();
    const p = this.progress;
    const why = !this.session
      ? 'sign in (or use a token) first'
      : !this.ctx?.model
        ? 'load a model first'
        : !target
          ? 'give the repository as owner/name'
          : undefined;
    return html`
      <section class="card">
        <h3>Publish to the Hugging Face Hub</h3>
        <p class="muted small">On <span id="hub-host">${this.hubUrl.replace(/^https?:\/\//, '')}</span> (a mirror or your own Hub is set on the Model tab).</p>
        ${this.renderSignIn()}
        ${this.signinError ? html`<p class="error" id="hub-signin-error">${this.signinError}</p>` : nothing}
        <label>Repository (name, or owner/name)
          <input id="hub-repo" .value=${this.repo} placeholder=${defaultRepoName(this.ctx?.model, this.chosenRun())}
            @input=${(e: Event) => {
              this.repo = (e.target as HTMLInputElement).value;
              void this.refreshCard();
            }} />
        </label>
        <p class="muted small">${target ? `Publishes the model chosen above to ${target}.` : 'Give the repo as owner/name, or sign in to publish under your account.'}</p>
        <label class="check"><input id="hub-private" type="checkbox" .checked=${this.isPrivate} @change=${(e: Event) => (this.isPrivate = (e.target as HTMLInputElement).checked)} /> Private repository</label>
        <label>License (a Hub license id such as mit or apache-2.0; respect the base model's)
          <input id="hub-license" .value=${this.license} @input=${(e: Event) => {
            this.license = (e.target as HTMLInputElement).value;
            void this.refreshCard();
          }} />
        </label>
        <label>Description
          <textarea id="hub-description" .value=${this.description} @input=${(e: Event) => {
            this.description = (e.target as HTMLTextAreaElement).value;
            void this.refreshCard();
          }}></textarea>
        </label>
        <details open>
          <summary>Model card (README.md)</summary>
          <pre class="card-preview pre" id="hub-card">${this.card}</pre>
        </details>
        <div class="row">
          <button id="hub-publish" class="primary" ?disabled=${!!why || !!this.busy} title=${why ?? ''} @click=${this.publish}>Publish</button>
          ${why && !p ? html`<span class="muted small" id="hub-publish-why">To publish: ${why}.</span>` : nothing}
          ${p ? html`<span id="hub-progress">${PHASES[p.phase]}${p.file ? ` ${p.file}` : ''}${p.fraction !== undefined ? ` ${Math.round(p.fraction * 100)}%` : ''}</span>` : nothing}
        </div>
        ${p?.fraction !== undefined ? html`<progress max="1" .value=${p.fraction}></progress>` : nothing}
        ${
          this.result
            ? html`<p class="ok">Published${this.result.created ? '' : ' (a new commit in the existing repo)'}:
          <a id="hub-result" href=${this.result.url} target="_blank" rel="noopener noreferrer">${this.result.repo}</a></p>`
            : nothing
        }
        ${this.publishError ? html`<p class="error" id="hub-error">${this.publishError}</p>` : nothing}
      </section>`;
  }

  private renderOpen() {
    const from = (f: OpenFrom) => () => (this.openFrom = f);
    return html`
      <section class="card">
        <h3>Open a shared checkpoint</h3>
        <p class="muted small">A model folder or a LoRA adapter (PEFT), zipped, on a server or on the Hub. A model replaces the loaded one; an adapter goes on the loaded model (or on its base model from the Hub).</p>
        <label>A .zip file <input id="open-file" type="file" accept=".zip,application/zip" @change=${from('file')} /></label>
        <label>A URL of a model folder <input id="open-url" type="url" placeholder="https://example.org/my-model/" @input=${from('url')} /></label>
        <label>A Hub id <input id="open-hub" placeholder="owner/name or owner/name@revision" @input=${from('hub')} /></label>
        <div class="row">
          <button id="open-go" class="primary" ?disabled=${!this.ctx || !!this.busy} @click=${this.open}>Open${this.openFrom ? ` ${OPEN_LABEL[this.openFrom]}` : ''}</button>
          ${this.busy === 'open' ? html`<span class="muted">Opening…</span>` : nothing}
        </div>
        ${this.openProgress !== undefined ? html`<progress max="1" .value=${this.openProgress}></progress>` : nothing}
        ${this.openStatus ? html`<p class="ok" id="open-status">${this.openStatus}</p>` : nothing}
        ${this.openError ? html`<p class="error" id="open-error">${this.openError}</p>` : nothing}
      </section>`;
  }

  override render() {
    return html`<h2>Share</h2>${this.renderDownload()}${this.renderPublish()}${this.renderOpen()}`;
  }
}

if (!customElements.get('share-view')) customElements.define('share-view', ShareView);

declare global {
  interface HTMLElementTagNameMap {
    'share-view': ShareView;
  }
}
