// Training checkpoints: every trainable table's weights and AdamW moments, the step, and the run's own
// state (config, data cursor, RNG, metric history) as JSON. Stored as one safetensors file whose
// metadata carries the JSON, so the same bytes go to IndexedDB in the page and to a folder from the CLI.
// Restoring puts back exactly the same floats, so a resumed run continues bit for bit.
import { parseSafetensors, readTensorF32, writeSafetensors } from '../io/safetensors.ts';
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

export function restore<S>(tables: Record<string, ParamTable>, c: Checkpoint<S>): S {
  for (const [t, table] of Object.entries(tables)) {
    for (const slot of SLOTS) {
      if (!table.arenas[0]?.[slot]) continue;
      for (const e of table.entries) {
        const data = c.tensors.get(`${t}/${slot}/${e.name}`);
        if (!data) throw new Error(`checkpoint has no ${slot} for ${t} tensor "${e.name}"`);
        table.upload(e.name, data, slot);
      }
    }
  }
  return structuredClone(c.state);
}

export function checkpointBytes(c: Checkpoint): Uint8Array {
  const tensors = [...c.tensors].map(([name, data]) => ({ name, shape: [data.length], data }));
  return writeSafetensors(tensors, { format: 'rlhf-playground-checkpoint', state: JSON.stringify(c.state) });
}

export function checkpointFromBytes<S>(bytes: Uint8Array, file: string): Checkpoint<S> {
  const st = parseSafetensors(bytes, file);
  if (st.metadata.format !== 'rlhf-playground-checkpoint') throw new Error(`${file}: not a training checkpoint`);
  const tensors = new Map<string, Float32Array>();
  for (const name of st.tensors.keys()) tensors.set(name, readTensorF32(st, name));
  return { state: JSON.parse(st.metadata.state ?? 'null') as S, tensors };
}
