// A training checkpoint as a file of the CLI's --out folder (checkpoint.safetensors), streamed both ways:
// written tensor by tensor as each is downloaded from the GPU, read back tensor by tensor into the GPU, so
// neither side holds more than one tensor (a GPT-2 full fine-tune's checkpoint is about 2 GB). Written
// beside the old one and renamed over it once whole: a crash or a full disk midway keeps the previous
// checkpoint, and a half-written file is never read.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { f32Bytes, headerLength, parseSafetensorsHeader, readTensorF32, safetensorsHeader } from '../io/safetensors.ts';
import type { ParamTable } from '../model/params.ts';
import { CHECKPOINT_FORMAT, checkpointLayout, restoreFrom, tensorsOf } from '../train/checkpoint.ts';

const MAX_HEADER = 100_000_000; // as the safetensors reader's limit: a longer header is refused by it

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
}

function readAt(fd: number, at: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let got = 0; got < length;) {
    const n = readSync(fd, out, got, length - got, at + got);
    if (n === 0) break;
    got += n;
  }
  return out;
}

/** Writes the tables (weights and AdamW moments) and the run's state to `path`, replacing it only once whole. */
export async function writeCheckpointFile(path: string, tables: Record<string, ParamTable>, state: unknown): Promise<void> {
  const layout = checkpointLayout(tables);
  const { header } = safetensorsHeader(
    layout.map(([name, n]) => ({ name, shape: [n] })),
    { format: CHECKPOINT_FORMAT, state: JSON.stringify(state) },
  );
  const partial = `${path}.partial`;
  const fd = openSync(partial, 'w');
  try {
    writeAll(fd, header);
    let i = 0;
    for await (const [name, data] of tensorsOf(tables)) {
      const [want, n] = layout[i++] ?? [];
      if (name !== want || data.length !== n) throw new Error(`${path}: tensor ${name} came where the header has ${want} (${n} floats)`);
      writeAll(fd, f32Bytes(data));
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(partial, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(partial, path);
}

/** Reads a checkpoint file back into the tables, tensor by tensor; returns the run state it was written with. */
export async function readCheckpointFile<S>(path: string, tables: Record<string, ParamTable>): Promise<S> {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const first = readAt(fd, 0, Math.min(8, size));
    const n = first.length === 8 ? headerLength(first) : 0n;
    const head = first.length === 8 ? readAt(fd, 0, Math.min(size, 8 + Number(n > BigInt(MAX_HEADER) ? 0n : n))) : first;
    const st = parseSafetensorsHeader(head, size, path);
    if (st.metadata.format !== CHECKPOINT_FORMAT) throw new Error(`${path}: not a training checkpoint (no "format": "${CHECKPOINT_FORMAT}" in its metadata)`);
    let state: S;
    try {
      state = JSON.parse(st.metadata.state ?? 'null') as S;
    } catch (e) {
      throw new Error(`${path}: its run state is not JSON (${(e as Error).message})`);
    }
    async function* tensors(): AsyncGenerator<[string, Float32Array]> {
      for (const t of st.tensors.values()) {
        const bytes = readAt(fd, st.dataOffset + t.begin, t.end - t.begin);
        const one = { file: path, metadata: st.metadata, dataOffset: 0, bytes, tensors: new Map([[t.name, { ...t, begin: 0, end: bytes.length }]]) };
        yield [t.name, readTensorF32(one, t.name)];
      }
    }
    await restoreFrom(tables, tensors(), path);
    return state;
  } finally {
    closeSync(fd);
  }
}
