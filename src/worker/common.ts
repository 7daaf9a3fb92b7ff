// Small helpers the engine's units share: callbacks from the page that must never stop the engine, and a
// run's record from the store.
import { releaseProxy } from 'comlink';
import * as db from '../store/db.ts';

export const newId = () => globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
export const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Calls a UI callback; a failing one (a closed page, a bug) never stops training. */
export async function notify(f: (() => unknown) | undefined): Promise<void> {
  try {
    await f?.();
  } catch {
    /* the UI's problem, not the run's */
  }
}

/** Lets a callback that came through comlink (a proxy to the page) go; plain functions are left alone. */
export function release(f: unknown): void {
  (f as { [releaseProxy]?: () => void } | undefined)?.[releaseProxy]?.();
}

/** A run's record, or an error naming it. */
export async function runOf(store: db.Store, runId: string): Promise<db.RunRecord> {
  const run = await db.getRun(store, runId);
  if (!run) throw new Error(`no run ${runId} in the store`);
  return run;
}
