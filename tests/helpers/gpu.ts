// Shared test plumbing: one real WebGPU device (Dawn) per test file, upload/download, and comparisons
// that print the first mismatches. There is no mock: without an adapter, createNodeGpu throws and the
// tests fail.
import { expect } from 'vitest';
import { createNodeGpu } from '../../src/gpu/node.ts';
import type { Call, Gpu, View } from '../../src/gpu/runtime.ts';
import type { ModelConfig } from '../../src/shared/model-config.ts';
import { estimateMemory } from '../../src/shared/memory.ts';

let gpu: Promise<Gpu> | undefined;
export function testGpu(): Promise<Gpu> {
  gpu ??= createNodeGpu();
  return gpu;
}

const tight = new Map<number, Promise<Gpu>>();
/**
 * A device that allows no larger buffer or storage binding than the memory estimate says a B x T training
 * step of `cfg` needs: the vocabulary tables, larger than that, are stored over several buffers and bound
 * in row chunks, and the logits come in vocabulary chunks (Qwen's 151,936-token vocabulary on a 128 MiB
 * binding, in miniature).
 */
export function tightGpu(cfg: ModelConfig, B: number, T: number): Promise<Gpu> {
  const limit = estimateMemory(cfg, 'full', { batch: B, seqLen: T }).largestBinding;
  let g = tight.get(limit);
  if (!g) tight.set(limit, (g = createNodeGpu({ maxBinding: limit, maxBuffer: limit })));
  return g;
}

export function upload(g: Gpu, data: ArrayLike<number>, label = 'test', kind: 'f32' | 'u32' | 'i32' = 'f32'): View {
  const v = g.tensor(Math.max(1, data.length), label);
  const arr = kind === 'f32' ? Float32Array.from(data) : kind === 'u32' ? Uint32Array.from(data) : Int32Array.from(data);
  if (data.length) g.write(v, arr);
  return v;
}

export async function run(g: Gpu, calls: Call[] | Promise<Call[]>, label = 'test'): Promise<void> {
  const c = await calls;
  await g.check(label, () => g.run(c, label));
}

/** |got - ref| <= atol + rtol * |ref| everywhere; prints the worst and first mismatches. */
export function expectClose(got: ArrayLike<number>, ref: ArrayLike<number>, atol: number, rtol: number, label: string): void {
  expect(got.length, `${label}: length`).toBe(ref.length);
  let maxErr = 0;
  const bad: string[] = [];
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(got[i]! - ref[i]!);
    if (!(e <= atol + rtol * Math.abs(ref[i]!))) {
      if (bad.length < 5) bad.push(`[${i}] got ${got[i]} want ${ref[i]}`);
      maxErr = Math.max(maxErr, Number.isFinite(e) ? e : Infinity);
    }
  }
  if (bad.length) throw new Error(`${label}: mismatch (max err ${maxErr}): ${bad.join(', ')}`);
}

/** max |got - ref| / max |ref|: the fixtures' gradient tolerance. */
export function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(got[i]! - ref[i]!));
    m = Math.max(m, Math.abs(ref[i]!));
  }
  return m === 0 ? d : d / m;
}

export const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
