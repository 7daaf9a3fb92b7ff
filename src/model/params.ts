// The named parameter table: one layout shared by weights, gradients and the AdamW moments.
// Tensors are packed into a few large buffers ("arenas"), decayed and non-decayed apart so AdamW runs
// one pass per arena; each tensor starts on a 256-byte boundary so it can be bound on its own.
import { ALIGN, alignUp, type Gpu, type View } from '../gpu/runtime.ts';
import type { ParamSpec } from './config.ts';

export interface ParamEntry extends ParamSpec {
  n: number;
  arena: number;
  off: number; // bytes into the arena
}

export interface Arena {
  decay: boolean;
  bytes: number;
  param: GPUBuffer;
  grad?: GPUBuffer;
  m?: GPUBuffer;
  v?: GPUBuffer;
}

export type Slot = 'param' | 'grad' | 'm' | 'v';

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export class ParamTable {
  readonly entries: ParamEntry[] = [];
  readonly arenas: Arena[] = [];
  private byName = new Map<string, ParamEntry>();

  constructor(readonly gpu: Gpu, specs: ParamSpec[], opts: { grads?: boolean; optimizer?: boolean } = {}) {
    const cap = Math.min(gpu.limits.maxBufferSize, 2 ** 30);
    const layout: { decay: boolean; bytes: number }[] = [];
    for (const decay of [true, false]) {
      let cur = -1;
      for (const s of specs.filter((x) => x.decay === decay)) {
        const n = numel(s.shape);
        const bytes = alignUp(n * 4, ALIGN);
        if (bytes > gpu.limits.maxBufferSize) throw new Error(`parameter ${s.name} (${bytes} bytes) exceeds this adapter's maxBufferSize (${gpu.limits.maxBufferSize})`);
        if (cur < 0 || layout[cur]!.bytes + bytes > cap) layout.push({ decay, bytes: 0 }), (cur = layout.length - 1);
        const e: ParamEntry = { ...s, n, arena: cur, off: layout[cur]!.bytes };
        layout[cur]!.bytes += bytes;
        this.entries.push(e);
        this.byName.set(s.name, e);
      }
    }
    layout.forEach((a, i) => {
      const mk = (what: string) => gpu.buffer(a.bytes, `${what}[${i}]`);
      this.arenas.push({
        ...a,
        param: mk('params'),
        grad: opts.grads || opts.optimizer ? mk('grads') : undefined,
        m: opts.optimizer ? mk('adam_m') : undefined,
        v: opts.optimizer ? mk('adam_v') : undefined,
      });
    });
  }

  get count(): number {
    return this.entries.reduce((s, e) => s + e.n, 0);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): ParamEntry {
    const e = this.byName.get(name);
    if (!e) throw new Error(`no parameter named ${name}`);
    return e;
  }

  view(name: string, slot: Slot = 'param'): View {
    const e = this.entry(name);
    const buf = this.arenas[e.arena]![slot];
    if (!buf) throw new Error(`parameter table has no ${slot} buffers`);
    return { buf, off: e.off, n: e.n };
  }

  /** Whole arenas of one slot, for passes over every parameter (zeroing, norms, AdamW). */
  arenaViews(slot: Slot): { view: View; decay: boolean }[] {
    return this.arenas.map((a) => {
      const buf = a[slot];
      if (!buf) throw new Error(`parameter table has no ${slot} buffers`);
      return { view: { buf, off: 0, n: a.bytes / 4 }, decay: a.decay };
    });
  }

  upload(name: string, data: Float32Array, slot: Slot = 'param'): void {
    const e = this.entry(name);
    if (data.length !== e.n) throw new Error(`parameter ${name}: ${data.length} values for shape [${e.shape}]`);
    this.gpu.write(this.view(name, slot), data);
  }

  async download(name: string, slot: Slot = 'param'): Promise<Float32Array> {
    return this.gpu.read(this.view(name, slot));
  }

  destroy(): void {
    for (const a of this.arenas) for (const b of [a.param, a.grad, a.m, a.v]) if (b) this.gpu.destroy(b);
  }
}
