// Token (+ position) embedding and its deterministic backward (shaders/embedding.wgsl).
import type { Call, Gpu, View } from '../gpu/runtime.ts';

export interface EmbeddingShape { B: number; T: number; C: number; V: number }

/** Row chunks [v0, v0 + vn) of a [V, C] table so each fits one storage binding (offsets stay 256-byte aligned). */
export function rowChunks(gpu: Gpu, V: number, C: number): { v0: number; vn: number }[] {
  const per = Math.max(64, Math.floor(gpu.maxBinding / (C * 4) / 64) * 64);
  const out: { v0: number; vn: number }[] = [];
  for (let v0 = 0; v0 < V; v0 += per) out.push({ v0, vn: Math.min(per, V - v0) });
  return out;
}

export function rowsOf(t: View, C: number, v0: number, vn: number): View {
  return { buf: t.buf, off: t.off + v0 * C * 4, n: vn * C };
}

export async function embeddingForward(
  gpu: Gpu, s: EmbeddingShape, x: { out: View; ids: View; pos: View; wte: View; wpe?: View },
): Promise<Call[]> {
  const k = await gpu.kernel('embedding.wgsl', 'forward', ['u', 'r', 'r', 'r', 'r', 'w'], { HAS_POS: !!x.wpe });
  const BT = s.B * s.T;
  return rowChunks(gpu, s.V, s.C).map(({ v0, vn }) =>
    gpu.call(k, [gpu.uniform([BT, s.C, s.T, s.B, v0, vn], k.name), x.ids, x.pos, rowsOf(x.wte, s.C, v0, vn), x.wpe ?? gpu.none, x.out],
      gpu.grid(Math.ceil((BT * s.C) / 256))));
}

/** Length of the bucket buffer the token backward reads: [U, uniq[BT], start[BT+1], order[BT]]. */
export const bucketLength = (BT: number) => 3 * BT + 2;

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

export async function embeddingBackward(
  gpu: Gpu, s: EmbeddingShape, x: { dwte: View; dwpe?: View; dout: View; buckets: View },
): Promise<Call[]> {
  const BT = s.B * s.T;
  const kt = await gpu.kernel('embedding.wgsl', 'backward_tokens', ['u', 'r', 'r', 'w'], { HAS_POS: false });
  const calls = rowChunks(gpu, s.V, s.C).map(({ v0, vn }) =>
    gpu.call(kt, [gpu.uniform([BT, s.C, s.T, s.B, v0, vn], kt.name), x.dout, x.buckets, rowsOf(x.dwte, s.C, v0, vn)],
      gpu.grid(Math.ceil((BT * s.C) / 256))));
  if (x.dwpe) {
    const kp = await gpu.kernel('embedding.wgsl', 'backward_positions', ['u', 'r', 'r', 'w'], { HAS_POS: true });
    calls.push(gpu.call(kp, [gpu.uniform([BT, s.C, s.T, s.B, 0, 0], kp.name), x.dout, gpu.none, x.dwpe], gpu.grid(Math.ceil((s.T * s.C) / 256))));
  }
  return calls;
}
