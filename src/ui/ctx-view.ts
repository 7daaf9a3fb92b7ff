// The base of a view that lives on an AppContext: it subscribes to the context's events while it is in
// the page and has a context, and lets them go when it leaves (a view removed from the page must not
// keep receiving a run's metrics). The context may arrive before or after the element is connected, and
// may be replaced; each time the view subscribes again and reloads what it shows from the store.
import { LitElement, type PropertyValues } from 'lit';
import type { AppContext } from './context.ts';

export abstract class CtxView extends LitElement {
  static override properties = { ctx: { attribute: false } };
  declare ctx: AppContext | undefined;
  private bound?: AppContext;
  private offs: (() => void)[] = [];

  /** Subscribes to the context's topics; returns the unsubscribe functions. */
  protected abstract listen(ctx: AppContext): (() => void)[];
  /** Reads what the view shows from the store (after subscribing, so no event falls in between). */
  protected abstract reload(ctx: AppContext): Promise<void>;

  override connectedCallback(): void {
    super.connectedCallback();
    this.bind();
  }

  override disconnectedCallback(): void {
    this.unbind();
    super.disconnectedCallback();
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('ctx')) this.bind();
  }

  private bind(): void {
    if (this.bound === this.ctx || !this.isConnected) return;
    this.unbind();
    const ctx = this.ctx;
    if (!ctx) return;
    this.bound = ctx;
    this.offs = this.listen(ctx);
    void ctx.attempt('load the view', () => this.reload(ctx));
  }

  private unbind(): void {
    for (const off of this.offs) off();
    this.offs = [];
    this.bound = undefined;
  }
}

/** An error's message as text. */
export const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));
