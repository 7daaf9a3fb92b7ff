// The page's own DOM events: one map of each name to what it carries, so that tsc checks every dispatch
// and every listener of them. A judge view (<rank-view>, <pair-view>) sends its events with `emit`, whose
// detail must be the map's type; a template listens with `on` in the element's tag (`<pair-view
// ${on('pair-submit', (d) => ...)}>`), whose handler gets the map's type; and `addEventListener` reads
// it too, through the HTMLElementEventMap declared below. Lit's `@pair-submit=${...}` would take any
// listener unchecked, and a `new CustomEvent(...)` any detail: tests/ui-events.test.ts keeps both out of
// src/ui. The views' shared topics (context.ts's `ctx.on` / `ctx.changed`) have their own map, `Events`.
//
// An event goes from a child to whoever holds it. A parent that wants what a child's event would do
// does it itself, by the code its listener runs (the Rank tab's Submit button calls what `ranking-submit`
// calls): it never fires the child's event.
import { noChange } from 'lit';
import { Directive, directive, PartType, type ElementPart, type PartInfo } from 'lit/directive.js';
import type { RankingRecord } from '../store/db.ts';

/** A ranking as a judge view makes it: the store adds the date when it saves it. */
export type RankingSubmit = Omit<RankingRecord, 'createdAt'>;

/** A pair's verdict, and the better answer written when both were bad (a demonstration to add). */
export interface PairSubmit {
  record: RankingSubmit;
  demonstration?: string;
}

/** Every event of the page's elements, by name: what its `detail` is. */
export interface UiEvents {
  /** <rank-view>: the ranking on screen is submitted (Enter, or Enter in the reason field) */
  'ranking-submit': RankingSubmit;
  /** <pair-view>: a verdict was given (and, for both bad, the better answer written, if any) */
  'pair-submit': PairSubmit;
  /** <rank-view>, <pair-view>: the labeler skips what is on screen (Escape, or the Skip button) */
  'ranking-skip': void;
}

type UiEventMap = { [K in keyof UiEvents]: CustomEvent<UiEvents[K]> };

declare global {
  // addEventListener('pair-submit', (e) => e.detail.record) is typed by the map above
  interface HTMLElementEventMap extends UiEventMap {}
}

/** Sends `type` from `from` to whoever holds it: bubbling, and out of shadow roots (composed). */
export function emit<K extends keyof UiEvents>(from: EventTarget, type: K, ...detail: UiEvents[K] extends void ? [] : [UiEvents[K]]): void {
  from.dispatchEvent(new CustomEvent(type, { detail: detail[0], bubbles: true, composed: true }));
}

/** The element directive behind `on`: one listener per binding, calling the latest render's handler. */
class OnDirective extends Directive {
  private type?: string;
  private handler: (detail: unknown) => void = () => {};
  private readonly listener = (e: Event): void => this.handler((e as CustomEvent<unknown>).detail);

  constructor(part: PartInfo) {
    super(part);
    if (part.type !== PartType.ELEMENT) throw new Error("on() binds in an element's tag: <rank-view ${on('ranking-submit', ...)}>");
  }

  render(_type: string, _handler: (detail: unknown) => void): unknown {
    return noChange;
  }

  override update(part: ElementPart, [type, handler]: Parameters<this['render']>): unknown {
    this.handler = handler;
    if (type !== this.type) {
      if (this.type) part.element.removeEventListener(this.type, this.listener);
      part.element.addEventListener(type, this.listener);
      this.type = type;
    }
    return noChange;
  }
}
const onDirective = directive(OnDirective);

/** In a template's element tag: calls `handler` with the detail of each `type` event the element sends. */
export function on<K extends keyof UiEvents>(type: K, handler: (detail: UiEvents[K]) => void) {
  return onDirective(type, handler as (detail: unknown) => void);
}
