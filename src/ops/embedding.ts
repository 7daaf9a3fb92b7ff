// Token (+ position) embedding and its deterministic backward (shaders/embedding.wgsl).
import type { Call, Gpu, View } from '../gpu/runtime.ts';
import { bucketLength } from '../shared/plan-buffers.ts';

export interface EmbeddingShape {
  B: number;
  T: number;
  C: number;
  V: number;
}

/** The token table bound piece by piece: rows [v0, v0 + vn) in `view` (ParamTable.rowChunks), so a table
 *  larger than one storage binding or one buffer works. */
export interface RowChunk {
  v0: number;
  vn: number;
  view: View;
}

export async function embeddingForward(gpu: Gpu, s: EmbeddingShape, x: { out: View; ids: View; pos: View; wte: RowChunk[]; wpe?: View }): Promise<Call[]> {
  const k = await gpu.kernel('embedding.wgsl', 'forward', { HAS_POS: !!x.wpe });
  const BT = s.B * s.T;
  return x.wte.map(({ v0, vn, view }) =>
    gpu.call(k, [gpu.params(k, { BT, C: s.C, T: s.T, B: s.B, v0, vn }), x.ids, x.pos, view, x.wpe ?? gpu.none, x.out], gpu.grid(Math.ceil((BT * s.C) / 256))),
  );
}

/** Length of the bucket buffer the token backward reads: [U, uniq[BT], start[BT+1], order[BT]] (in the plan's buffer list). */
export { bucketLength };

/** Groups token positions by id on the host (ids are known there when a batch is built). */
export function buildBuckets(ids: ArrayLike<number>, out = new Uint32Array(bucketLength(ids.length))): Uint32Array {
  const BT = ids.length;
  const order = Array.from({ length: BT }, (_, i) => i).sort((a, b) => ids[a]! - ids[b]! || a - b);
  let U = 0;
  const starts = 1 + BT;
  const ord = starts + BT + 1;
  for (let k = 0; k < BT; k++) {
    const i = order[k]!;
    if (k === 0 || ids[i] !== ids[order[k - 1]!]) {
      out[1 + U] = ids[i]!;
      out[starts + U] = k;
      U++;
    }
    out[ord + k] = i;
  }
  out[starts + U] = BT;
  out[0] = U;
  return out;
}

export async function embeddingBackward(gpu: Gpu, s: EmbeddingShape, x: { dwte: RowChunk[]; dwpe?: View; dout: View; buckets: View }): Promise<Call[]> {
  const BT = s.B * s.T;
  const kt = await gpu.kernel('embedding.wgsl', 'backward_tokens', { HAS_POS: false });
  const calls = x.dwte.map(({ v0, vn, view }) =>
    gpu.call(kt, [gpu.params(kt, { BT, C: s.C, T: s.T, B: s.B, v0, vn }), x.dout, x.buckets, view], gpu.grid(Math.ceil((BT * s.C) / 256))),
  );
  if (x.dwpe) {
    const kp = await gpu.kernel('embedding.wgsl', 'backward_positions', { HAS_POS: true });
    calls.push(gpu.call(kp, [gpu.params(kp, { BT, C: s.C, T: s.T, B: s.B, v0: 0, vn: 0 }), x.dout, gpu.none, x.dwpe], gpu.grid(Math.ceil((s.T * s.C) / 256))));
  }
  return calls;
}
