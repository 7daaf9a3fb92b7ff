// <rlhf-app>: the playground's shell. A header with the model, the policy and the live run; tabs for the
// views (the address keeps the tab: #rank survives a reload); the storage the browser gives us and
// whether it is persistent; notices, on the tab where they were raised (information expires, errors
// stay until dismissed and are named on the other tabs). Every view stays mounted while
// hidden, so a stream or a chart keeps its state when the user looks elsewhere.
import { css, html, LitElement, type PropertyValues } from 'lit';
import { storageEstimate } from '../store/db.ts';
import type { RunProgress } from '../worker/api.ts';
import { fmtBytes, type AppContext } from './context.ts';
import { ARCHITECTURE_NAMES } from './model-suggestions.ts';
import { sharedStyles } from './styles.ts';
import './model-view.ts';
import './data-view.ts';
import './rank-panel.ts';
import './train-view.ts';
import './inspect-view.ts';
import './compare-view.ts';
import './share-view.ts';

const TABS = [
  { id: 'model', label: 'Model' },
  { id: 'data', label: 'Data' },
  { id: 'rank', label: 'Rank' },
  { id: 'train', label: 'Train' },
  { id: 'inspect', label: 'Inspect' },
  { id: 'compare', label: 'Compare' },
  { id: 'share', label: 'Share' },
] as const;
type TabId = (typeof TABS)[number]['id'];

const tabFromHash = (): TabId => {
  const h = location.hash.replace(/^#\/?/, '');
  return (TABS.find((t) => t.id === h)?.id ?? 'model') as TabId;
};

/** `tab`: where it was raised (where the action was); it is shown there. */
interface Notice {
  id: number;
  text: string;
  kind: 'info' | 'error';
  tab: TabId;
}

export class RlhfApp extends LitElement {
  static override properties = {
    ctx: { attribute: false },
    tab: { state: true },
    notices: { state: true },
    storage: { state: true },
    persisted: { attribute: false },
    progress: { state: true },
    reconnecting: { state: true },
  };
  declare ctx: AppContext;
  declare tab: TabId;
  declare notices: Notice[];
  declare storage: { usage: number; quota: number } | undefined;
  /** whether the browser keeps this origin's storage (main.ts sets it once it has asked); undefined until then */
  declare persisted: boolean | undefined;
  declare progress: RunProgress | undefined;
  declare reconnecting: boolean;
  private off: (() => void)[] = [];
  private nextNotice = 0;
  /** each tab's own scroll position: a tab opens where the user left it (at first, at its top), not at another's */
  private scrolls = new Map<TabId, number>();

  constructor() {
    super();
    this.tab = tabFromHash();
    this.notices = [];
  }

  static override styles = [
    sharedStyles,
    css`
    :host { min-height: 100vh; background: #f5f5f7; }
    header { position: sticky; top: 0; z-index: 5; background: #fffffff0; backdrop-filter: blur(8px); border-bottom: 1px solid #e3e3e8; }
    .bar { max-width: 64rem; margin: 0 auto; padding: 0.6rem 1rem 0; display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; }
    .brand { font-weight: 700; font-size: 1.1rem; }
    .status { color: #6e6e73; font-size: 0.85em; flex: 1; min-width: 12rem; }
    nav { max-width: 64rem; margin: 0 auto; padding: 0 0.6rem; display: flex; gap: 0.1rem; overflow-x: auto; }
    nav a { padding: 0.45rem 0.8rem; color: #48484a; text-decoration: none; border-bottom: 2px solid transparent; white-space: nowrap; }
    nav a[aria-selected='true'] { color: #0a66c2; border-bottom-color: #0a66c2; font-weight: 600; }
    main { max-width: 64rem; margin: 0 auto; padding: 1rem; }
    .notices { max-width: 64rem; margin: 0.5rem auto 0; padding: 0 1rem; }
    .notice { display: flex; gap: 0.75rem; align-items: start; padding: 0.5rem 0.75rem; border-radius: 8px; margin: 0.3rem 0; background: #eef3fb; }
    .notice.error { background: #fdecea; color: #8a1c12; }
    .notice span { flex: 1; white-space: pre-wrap; }
    .notice button { padding: 0 0.5rem; }
    footer { max-width: 64rem; margin: 0 auto; padding: 1rem; color: #6e6e73; font-size: 0.8em; }
    .live { color: #0a66c2; }
  `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('hashchange', this.onHash);
    const c = this.ctx;
    this.off.push(
      c.on('notice', (n) => this.pushNotice(n.text, n.kind)),
      c.on('navigate', (tab) => {
        this.tab = (TABS.find((t) => t.id === tab)?.id ?? this.tab) as TabId; // now, not at the (later) hashchange
        location.hash = `#${tab}`;
      }),
      c.on('model', () => this.requestUpdate()),
      c.on('policy', () => this.requestUpdate()),
      c.on('progress', (p) => (this.progress = p)),
      c.on('status', (s) => {
        if (s.status !== 'running') this.progress = undefined;
        if (s.status === 'failed') this.pushNotice(`Run ${s.runId.slice(0, 8)} failed: ${s.error ?? 'unknown error'}`, 'error');
        void this.refreshStorage();
      }),
      c.on('gpu', (g) => (g.kind === 'lost' ? this.requestUpdate() : this.pushNotice(`GPU error (please report it): ${g.message}`, 'error'))),
      c.on('rankings', () => void this.refreshStorage()),
      c.on('data', () => void this.refreshStorage()),
    );
    void this.refreshStorage();
  }

  override disconnectedCallback(): void {
    window.removeEventListener('hashchange', this.onHash);
    for (const f of this.off) f();
    this.off = [];
    super.disconnectedCallback();
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    const left = changed.get('tab') as TabId | undefined;
    if (left !== undefined && left !== this.tab) this.scrolls.set(left, window.scrollY);
  }

  protected override updated(changed: PropertyValues<this>): void {
    const left = changed.get('tab') as TabId | undefined;
    if (left !== undefined && left !== this.tab) window.scrollTo(0, this.scrolls.get(this.tab) ?? 0);
  }

  private onHash = () => (this.tab = tabFromHash());

  private async refreshStorage(): Promise<void> {
    this.storage = await storageEstimate();
  }

  /** The lost-GPU notice's one click: a new device, the model on it, the stopped run resumed. */
  private async reconnect(): Promise<void> {
    this.reconnecting = true;
    await this.ctx.attempt('Reconnecting the GPU', () => this.ctx.reconnectGpu());
    this.reconnecting = false;
  }

  private pushNotice(text: string, kind: 'info' | 'error'): void {
    const n = { id: this.nextNotice++, text, kind, tab: this.tab };
    this.notices = [...this.notices.slice(-4), n];
    if (kind === 'info') setTimeout(() => this.dismiss(n.id), 6000);
  }

  private dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }

  private statusLine(): string {
    const c = this.ctx;
    if (!c.model) return 'No model loaded';
    const pol = c.policy && c.policy.kind !== 'base' ? ` · sampling ${c.policy.name}` : '';
    const merged = c.model.merged.length ? ` + ${c.model.merged.map((x) => x.stage.toUpperCase()).join(' + ')}` : '';
    return `${c.model.source}${merged} · ${ARCHITECTURE_NAMES[c.model.modelType]} · ${(c.model.params / 1e6).toFixed(1)}M parameters${pol}`;
  }

  override render() {
    const p = this.progress,
      s = this.storage;
    return html`
      <header>
        <div class="bar">
          <span class="brand">RLHF Playground</span>
          <span class="status" id="status">${this.statusLine()}${p ? html` · <span class="live">training ${p.step}/${p.total}</span>` : ''}</span>
        </div>
        <nav role="tablist">
          ${TABS.map((t) => html`<a role="tab" id="tab-${t.id}" href="#${t.id}" aria-selected=${String(this.tab === t.id)}>${t.label}</a>`)}
        </nav>
      </header>
      <div class="notices" aria-live="polite">
        ${
          this.ctx.gpuLost
            ? html`<div class="notice error" id="gpu-lost" role="alert"><span>The GPU stopped working: ${this.ctx.gpuLost}. Everything you made is
          saved in this browser: reconnect to go on (a training run the loss stopped resumes from its last checkpoint), or reload the page.</span>
          <button id="gpu-reconnect" class="primary" ?disabled=${this.reconnecting} @click=${() => void this.reconnect()}>${this.reconnecting ? 'Reconnecting…' : 'Reconnect and go on'}</button>
          <button id="gpu-reload" @click=${() => location.reload()}>Reload</button></div>`
            : ''
        }
        ${this.notices
          .filter((n) => n.tab === this.tab)
          .map(
            (n) => html`<div class="notice ${n.kind}" role=${n.kind === 'error' ? 'alert' : 'status'}><span>${n.text}</span>
          <button aria-label="Dismiss" @click=${() => this.dismiss(n.id)}>×</button></div>`,
          )}
        ${TABS.filter((t) => t.id !== this.tab).map((t) => {
          // errors stay where they were raised until dismissed; elsewhere one line says they are there
          const k = this.notices.filter((n) => n.tab === t.id && n.kind === 'error').length;
          return k
            ? html`<div class="notice error elsewhere"><span>${k === 1 ? 'An error' : `${k} errors`} on the ${t.label} tab</span><a href="#${t.id}">Show</a></div>`
            : '';
        })}
      </div>
      <main>
        <model-view .ctx=${this.ctx} ?hidden=${this.tab !== 'model'}></model-view>
        <data-view .ctx=${this.ctx} ?hidden=${this.tab !== 'data'}></data-view>
        <rank-panel .ctx=${this.ctx} ?hidden=${this.tab !== 'rank'}></rank-panel>
        <train-view .ctx=${this.ctx} ?hidden=${this.tab !== 'train'}></train-view>
        <inspect-view .ctx=${this.ctx} ?hidden=${this.tab !== 'inspect'}></inspect-view>
        <compare-view .ctx=${this.ctx} ?hidden=${this.tab !== 'compare'}></compare-view>
        <share-view .ctx=${this.ctx} ?hidden=${this.tab !== 'share'}></share-view>
      </main>
      <footer id="storage">
        Everything you make stays in this browser (IndexedDB)${s ? html`: ${fmtBytes(s.usage)} used of ${fmtBytes(s.quota)}` : ''}${
          this.persisted === undefined
            ? ''
            : this.persisted
              ? ' · storage is persistent'
              : ' · the browser may clear it under storage pressure (persistence was not granted)'
        }.
        Nothing leaves your machine unless you export or publish it.
      </footer>
    `;
  }
}

if (!customElements.get('rlhf-app')) customElements.define('rlhf-app', RlhfApp);
