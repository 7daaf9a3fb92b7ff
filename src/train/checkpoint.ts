// Training checkpoints: every trainable table's weights and AdamW moments, the step, and the run's own
// state (config, data cursor, RNG, metric history) as JSON, streamed tensor by tensor (tensorsOf /
// restoreFrom): to IndexedDB or OPFS chunks in the page (src/store/checkpoints.ts), to one safetensors file
// whose metadata carries the JSON from the CLI (src/cli/checkpoint-file.ts). Restoring puts back exactly
// the same floats, so a resumed run continues bit for bit.
import { writeSafetensors } from '../io/safetensors.ts';
import type { ParamTable } from '../model/params.ts';

export interface Checkpoint<S = unknown> {
  state: S;
  tensors: Map<string, Float32Array>; // `${table}/${slot}/${name}`
}

const SLOTS = ['param', 'm', 'v'] as const;

export async function snapshot<S>(tables: Record<string, ParamTable>, state: S): Promise<Checkpoint<S>> {
  const tensors = new Map<string, Float32Array>();
  for (const [t, table] of Object.entries(tables)) {
    for (const slot of SLOTS) {
      if (!table.arenas[0]?.[slot]) continue;
      for (const e of table.entries) tensors.set(`${t}/${slot}/${e.name}`, await table.download(e.name, slot));
    }
  }
  return { state: structuredClone(state), tensors };
}

/** The tables' tensors under their checkpoint names, downloaded one at a time (a checkpoint is written as they come). */
export async function* tensorsOf(tables: Record<string, ParamTable>): AsyncGenerator<[string, Float32Array]> {
  for (const [t, table] of Object.entries(tables)) {
    for (const slot of SLOTS) {
      if (!table.arenas[0]?.[slot]) continue;
      for (const e of table.entries) yield [`${t}/${slot}/${e.name}`, await table.download(e.name, slot)];
    }
  }
}

/** What tensorsOf yields, in its order, before downloading anything: each name and its float count. */
export function checkpointLayout(tables: Record<string, ParamTable>): [string, number][] {
  const out: [string, number][] = [];
  for (const [t, table] of Object.entries(tables)) {
    for (const slot of SLOTS)
      if (table.arenas[0]?.[slot]) for (const e of table.entries) out.push([`${t}/${slot}/${e.name}`, e.shape.reduce((p, d) => p * d, 1)]);
  }
  return out;
}

/** The bytes tensorsOf yields, before downloading anything (the storage check). */
export function tensorBytes(tables: Record<string, ParamTable>): number {
  return checkpointLayout(tables).reduce((a, [, n]) => a + 4 * n, 0);
}

/** The safetensors metadata `format` of a checkpoint file (its run state is the metadata's `state`). */
export const CHECKPOINT_FORMAT = 'rlhf-playground-checkpoint';

/** Puts back tensors as they are read (one at a time); every tensor of the tables must come. */
export async function restoreFrom(tables: Record<string, ParamTable>, tensors: AsyncIterable<[string, Float32Array]>, file: string): Promise<void> {
  const want = new Map<string, [ParamTable, string, (typeof SLOTS)[number]]>();
  for (const [t, table] of Object.entries(tables)) {
    for (const slot of SLOTS) if (table.arenas[0]?.[slot]) for (const e of table.entries) want.set(`${t}/${slot}/${e.name}`, [table, e.name, slot]);
  }
  for await (const [key, data] of tensors) {
    const w = want.get(key);
    if (!w) continue; // a table this stage does not train now
    w[0].upload(w[1], data, w[2]);
    want.delete(key);
  }
  const [missing] = want.keys();
  if (missing !== undefined) throw new Error(`${file}: has no tensor "${missing}"${want.size > 1 ? ` (and ${want.size - 1} more missing)` : ''}`);
}

export function checkpointBytes(c: Checkpoint): Uint8Array {
  const tensors = [...c.tensors].map(([name, data]) => ({ name, shape: [data.length], data }));
  return writeSafetensors(tensors, { format: CHECKPOINT_FORMAT, state: JSON.stringify(c.state) });
}
