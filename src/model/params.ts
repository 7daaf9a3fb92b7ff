// The named parameter table: one layout shared by weights, gradients and the AdamW moments.
// Tensors are packed into a few large buffers ("arenas"), decayed and non-decayed apart so AdamW runs
// one pass per arena; each tensor starts on a 256-byte boundary so it can be bound on its own. A tensor
// larger than one buffer (Qwen's 151,936 x 896 embedding is 519 MiB; many adapters allow 256 MiB) is
// stored in row parts, each placed like a tensor of its own; kernels bind it in row chunks (rowChunks).
// A table of frozen weights (no gradients) may keep some tensors in f16 (opts.half: a model's linear weights
// where the device has 'shader-f16'), in arenas of their own: half the bytes on the GPU, read by the matmuls
// as f16 (weight()). Their f32 values stay on the host, so download() gives back exactly what was uploaded:
// a merge, an export or a copy of the weights loses nothing to f16; only the kernels see the rounded values.
import { ALIGN, alignUp, type Gpu, type View } from '../gpu/runtime.ts';
import { rowAlign } from '../shared/align.ts';
import { packHalf } from '../shared/half.ts';
import type { ParamSpec } from '../shared/model-config.ts';

/** Rows [r0, r0 + rows) of a tensor, `off` bytes into arena `arena`. */
export interface ParamPart {
  r0: number;
  rows: number;
  arena: number;
  off: number;
}

export interface ParamEntry extends ParamSpec {
  n: number;
  /** One part, or several when the tensor is larger than one buffer. */
  parts: ParamPart[];
  /** Stored as f16 on the GPU (2 bytes a value), its f32 values on the host. */
  f16?: boolean;
}

export interface Arena {
  decay: boolean;
  /** Holds f16 tensors only. */
  f16?: boolean;
  bytes: number;
  param: GPUBuffer;
  grad?: GPUBuffer;
  m?: GPUBuffer;
  v?: GPUBuffer;
}

export type Slot = 'param' | 'grad' | 'm' | 'v';

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export { rowAlign };

export class ParamTable {
  readonly entries: ParamEntry[] = [];
  readonly arenas: Arena[] = [];
  private byName = new Map<string, ParamEntry>();
  /** The f32 values of the f16 tensors, as uploaded (download gives them back). */
  private host = new Map<string, Float32Array>();

  /** `half`: which tensors to store as f16 (a table without gradients only: those are frozen weights). */
  constructor(
    readonly gpu: Gpu,
    specs: ParamSpec[],
    opts: { grads?: boolean; optimizer?: boolean; half?: (s: ParamSpec) => boolean } = {},
  ) {
    if (opts.half && (opts.grads || opts.optimizer)) throw new Error('a parameter table with gradients trains its weights: none can be stored as f16');
    const cap = Math.min(gpu.maxBuffer, 2 ** 30);
    const layout: { decay: boolean; f16?: boolean; bytes: number }[] = [];
    const half = opts.half ?? (() => false);
    // the f32 tensors by decay (as without `half`), then the f16 ones
    const groups = [
      { decay: true, f16: false, specs: specs.filter((x) => x.decay && !half(x)) },
      { decay: false, f16: false, specs: specs.filter((x) => !x.decay && !half(x)) },
      { decay: true, f16: true, specs: specs.filter((x) => half(x)) },
    ];
    for (const { decay, f16, specs: group } of groups) {
      let cur = -1;
      const eb = f16 ? 2 : 4; // bytes a value
      for (const s of group) {
        const n = numel(s.shape);
        const R = s.shape[0] ?? 1,
          width = n / R;
        // rows per part: the whole tensor when it fits one buffer, else as many aligned rows as fit
        const g = rowAlign(width);
        const per = alignUp(n * eb, ALIGN) <= cap ? R : Math.floor(cap / (width * eb) / g) * g;
        if (per < 1) throw new Error(`parameter ${s.name} (${n * eb} bytes) exceeds this adapter's maxBufferSize (${gpu.maxBuffer})`);
        const parts: ParamPart[] = [];
        for (let r0 = 0; r0 < R; r0 += per) {
          const rows = Math.min(per, R - r0),
            bytes = alignUp(rows * width * eb, ALIGN);
          if (cur < 0 || layout[cur]!.bytes + bytes > cap) (layout.push({ decay, ...(f16 ? { f16 } : {}), bytes: 0 }), (cur = layout.length - 1));
          parts.push({ r0, rows, arena: cur, off: layout[cur]!.bytes });
          layout[cur]!.bytes += bytes;
        }
        const e: ParamEntry = { ...s, n, parts, ...(f16 ? { f16 } : {}) };
        this.entries.push(e);
        this.byName.set(s.name, e);
      }
    }
    // entries in the order of a table without f16 ones (decayed first), wherever their bytes are: exports,
    // checkpoints and copies list the tensors the same way whatever the storage
    const order = new Map([...specs.filter((x) => x.decay), ...specs.filter((x) => !x.decay)].map((x, i) => [x.name, i]));
    this.entries.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
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

  /** The whole tensor as one view of f32 values; a tensor stored in parts is bound in row chunks instead
   *  (rowChunks, rows), one stored as f16 through weight(). */
  view(name: string, slot: Slot = 'param'): View {
    const e = this.entry(name);
    if (e.f16) throw new Error(`parameter ${name} is stored as f16: bind it with weight(), for a kernel that reads f16`);
    return this.whole(e, slot);
  }

  /** A linear layer's weight as the matmuls bind it: one view, and whether it holds f16 values (two a 32-bit
   *  word: the view's n counts words, rounded up) or f32. */
  weight(name: string): { view: View; f16: boolean } {
    const e = this.entry(name);
    return { view: this.whole(e, 'param'), f16: !!e.f16 };
  }

  /** Whether any tensor of the table is stored as f16. */
  get hasF16(): boolean {
    return this.entries.some((e) => e.f16);
  }

  private whole(e: ParamEntry, slot: Slot): View {
    if (e.parts.length > 1) throw new Error(`parameter ${e.name} is stored in ${e.parts.length} buffers (larger than one); bind it in row chunks`);
    return this.partView(e, e.parts[0]!, slot);
  }

  private partView(e: ParamEntry, p: ParamPart, slot: Slot): View {
    const buf = this.arenas[p.arena]![slot];
    if (!buf) throw new Error(`parameter table has no ${slot} buffers`);
    const values = (p.rows * e.n) / (e.shape[0] ?? 1);
    return { buf, off: p.off, n: e.f16 ? Math.ceil(values / 2) : values };
  }

  /**
   * Row chunks [v0, v0 + vn) of a [rows, width] tensor for kernels that bind it piece by piece (the
   * embedding and the LM head over the vocabulary): each lies in one part, fits one storage binding, holds at
   * most `maxRows` rows (the LM head's logits of a chunk must fit one binding too) and starts aligned.
   */
  rowChunks(name: string, maxRows = Infinity): { v0: number; vn: number }[] {
    const e = this.entry(name);
    if (e.f16) throw new Error(`parameter ${name} is stored as f16: no row chunks of it`);
    const width = e.n / (e.shape[0] ?? 1),
      g = rowAlign(width);
    const per = Math.floor(Math.min(this.gpu.maxBinding / (width * 4), maxRows) / g) * g;
    if (per < 1)
      throw new Error(
        `parameter ${name}: ${g} rows of ${width} values do not fit one storage binding of ${this.gpu.maxBinding} bytes${maxRows < Infinity ? ` with ${maxRows} rows at most` : ''}`,
      );
    const out: { v0: number; vn: number }[] = [];
    for (const p of e.parts) for (let v0 = p.r0; v0 < p.r0 + p.rows; v0 += per) out.push({ v0, vn: Math.min(per, p.r0 + p.rows - v0) });
    return out;
  }

  /** Rows [v0, v0 + vn) of a tensor as one view; they must lie in one part (as rowChunks' chunks do). */
  rows(name: string, v0: number, vn: number, slot: Slot = 'param'): View {
    const e = this.entry(name);
    if (e.f16) throw new Error(`parameter ${name} is stored as f16: no rows of it`);
    const p = e.parts.find((q) => v0 >= q.r0 && v0 + vn <= q.r0 + q.rows);
    if (!p) throw new Error(`parameter ${name}: rows ${v0}..${v0 + vn} are not in one of its buffers`);
    const width = e.n / (e.shape[0] ?? 1),
      v = this.partView(e, p, slot);
    return { buf: v.buf, off: v.off + (v0 - p.r0) * width * 4, n: vn * width };
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
    const width = e.n / (e.shape[0] ?? 1);
    if (e.f16) {
      // each part's values start on a word (a part's rows are 256-byte aligned, so an even count precedes it)
      for (const p of e.parts) {
        const { words, overflow } = packHalf(data.subarray(p.r0 * width, (p.r0 + p.rows) * width));
        if (overflow >= 0)
          throw new Error(
            `parameter ${name}: value ${data[p.r0 * width + overflow]} at ${p.r0 * width + overflow} is past f16's range (65504): load the model with f16 weights off (GpuOptions.f16Weights: false)`,
          );
        this.gpu.write(this.partView(e, p, slot), words);
      }
      this.host.set(name, data.slice());
      return;
    }
    for (const p of e.parts) this.gpu.write(this.partView(e, p, slot), data.subarray(p.r0 * width, (p.r0 + p.rows) * width));
  }

  /** A tensor's values: read back from the GPU, or for an f16 tensor the f32 values it was uploaded from. */
  async download(name: string, slot: Slot = 'param'): Promise<Float32Array> {
    const e = this.entry(name);
    if (e.f16) return (this.host.get(name) ?? new Float32Array(e.n)).slice();
    return this.gpu.readAll(e.parts.map((p) => this.partView(e, p, slot)));
  }

  private destroyed = false;

  /** Frees its buffers (once: a second call does nothing). */
  destroy(): void {
    this.host.clear();
    if (this.destroyed) return;
    this.destroyed = true;
    for (const a of this.arenas) for (const b of [a.param, a.grad, a.m, a.v]) if (b) this.gpu.destroy(b);
  }
}
