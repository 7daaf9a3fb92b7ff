// The linear layers of a plan's blocks: y = x W (+ b), and where the plan's LoRA adapter (lora.ts)
// targets the module, the adapter's low-rank update, with s = alpha / r:
//   forward   h = dropout(x) A^T,  y += s h B^T                (h, and dropout(x), kept for the backward)
//   backward  dB += s dy^T h,  dh = s dy B,  dA += dh^T dropout(x),  dx += dropout'(dh A)
// The base weight gets gradients only in a plan without an adapter: with one it is frozen.
import type { Call, Gpu, View } from '../gpu/runtime.ts';
import { dropoutBackward, dropoutForward } from '../ops/activation.ts';
import { linearBackward, linearForward, type LinearShape } from '../ops/linear.ts';
import { accumulate } from '../ops/residual.ts';
import type { LoraSet } from './lora.ts';
import type { ParamTable } from './params.ts';

export interface LinearLayersOptions {
  gpu: Gpu;
  params: ParamTable;
  /** rows of every input (the plan's B*T) */
  N: number;
  training: boolean;
  /** whether the base weights get gradients (training without an adapter) */
  trainBase: boolean;
  lora?: LoraSet;
  /** the plan's allocator */
  tensor: (n: number, label: string) => View;
}

/** The linear layers of one plan: they share its adapter's scratch and number its dropout masks. */
export class LinearLayers {
  /** Inference with an adapter: one h serves every module, nothing being kept for a backward. */
  private readonly sharedH?: View;
  /** The adapter's backward scratch, shared by every module: dh, and the dropped-out input's gradient. */
  private scratch?: { dh: View; dxd: View };
  private masks = 0;

  constructor(readonly opts: LinearLayersOptions) {
    if (opts.lora && !opts.training) this.sharedH = opts.tensor(opts.N * opts.lora.cfg.r, 'lora_h');
  }

  /** The layer whose weight is `${module}.weight` (and bias `${module}.bias`, where the model has one). */
  layer(module: string, shape: Omit<LinearShape, 'N'>): AdaptedLinear {
    return new AdaptedLinear(this, module, { N: this.opts.N, ...shape });
  }

  /** What the adapter keeps of a module's forward: h, the dropped-out input, and its dropout mask's salt. */
  adapterState(module: string, In: number): { h: View; xd?: View; salt: number } {
    const { N, lora, training, tensor } = this.opts;
    const dropout = training ? lora!.cfg.dropout : 0;
    return {
      h: this.sharedH ?? tensor(N * lora!.cfg.r, `${module}.lora_h`),
      xd: dropout > 0 ? tensor(N * In, `${module}.lora_xd`) : undefined,
      salt: ++this.masks,
    };
  }

  backwardScratch(): { dh: View; dxd: View } {
    const { N, lora, tensor } = this.opts;
    const c = lora!.model.cfg;
    // as wide as any linear's input (memory.ts counts the same)
    this.scratch ??= { dh: tensor(N * lora!.cfg.r, 'lora_dh'), dxd: tensor(N * Math.max(c.hidden, c.intermediate, c.heads * c.headDim), 'lora_dxd') };
    return this.scratch;
  }
}

export class AdaptedLinear {
  private saved?: { h: View; xd?: View; salt: number };

  constructor(
    private readonly layers: LinearLayers,
    readonly module: string,
    readonly shape: LinearShape,
  ) {}

  /** The base weight (f16 where the frozen model stores it so: the matmuls read it as such), bias and their gradients. */
  private get base(): { w: View; wF16: boolean; b?: View; dw?: View; db?: View } {
    const { params, trainBase } = this.layers.opts;
    const w = `${this.module}.weight`,
      b = `${this.module}.bias`,
      hasBias = params.has(b),
      weight = params.weight(w);
    return {
      w: weight.view,
      wF16: weight.f16,
      b: hasBias ? params.view(b) : undefined,
      dw: trainBase ? params.view(w, 'grad') : undefined,
      db: trainBase && hasBias ? params.view(b, 'grad') : undefined,
    };
  }

  async forward(io: { y: View; x: View }): Promise<Call[]> {
    const { gpu, lora } = this.layers.opts;
    const s = this.shape,
      base = this.base;
    const calls = await linearForward(gpu, s, { y: io.y, x: io.x, w: base.w, wF16: base.wF16, b: base.b });
    const m = lora?.modules.get(this.module);
    if (!lora || !m) return calls;
    const saved = (this.saved = this.layers.adapterState(this.module, m.In));
    const p = lora.cfg.dropout;
    if (saved.xd) calls.push(...(await dropoutForward(gpu, { y: saved.xd, x: io.x, seed: lora.seed, n: s.N * m.In, p, salt: saved.salt })));
    calls.push(
      ...(await linearForward(
        gpu,
        { N: s.N, In: m.In, Out: lora.cfg.r, layout: 'out_in' },
        { y: saved.h, x: saved.xd ?? io.x, w: lora.params.view(`${this.module}.lora_A.weight`) },
      )),
    );
    calls.push(
      ...(await linearForward(
        gpu,
        { N: s.N, In: lora.cfg.r, Out: m.Out, layout: 'out_in', ldy: s.ldy, yOff: s.yOff, alpha: lora.scale },
        { y: io.y, x: saved.h, w: lora.params.view(`${this.module}.lora_B.weight`), accum: true },
      )),
    );
    return calls;
  }

  /** dx (= or += when accumDx) from dy; the base's dW, db and the adapter's dA, dB accumulate. */
  async backward(io: { dx: View; dy: View; x: View; accumDx?: boolean }): Promise<Call[]> {
    const { gpu, lora } = this.layers.opts;
    const s = this.shape,
      base = this.base;
    const calls = await linearBackward(gpu, s, { dx: io.dx, dw: base.dw, db: base.db, dy: io.dy, x: io.x, w: base.w, wF16: base.wF16, accumDx: io.accumDx });
    const m = lora?.modules.get(this.module);
    if (!lora || !m) return calls;
    const saved = this.saved!;
    const { dh, dxd } = this.layers.backwardScratch();
    const A = `${this.module}.lora_A.weight`,
      B = `${this.module}.lora_B.weight`;
    calls.push(
      ...(await linearBackward(
        gpu,
        { N: s.N, In: lora.cfg.r, Out: m.Out, layout: 'out_in', ldy: s.ldy, yOff: s.yOff, alpha: lora.scale },
        { dx: dh, dw: lora.params.view(B, 'grad'), dy: io.dy, x: saved.h, w: lora.params.view(B) },
      )),
    );
    const aShape: LinearShape = { N: s.N, In: m.In, Out: lora.cfg.r, layout: 'out_in' };
    if (saved.xd) {
      calls.push(...(await linearBackward(gpu, aShape, { dx: dxd, dw: lora.params.view(A, 'grad'), dy: dh, x: saved.xd, w: lora.params.view(A) })));
      calls.push(...(await dropoutBackward(gpu, { d: dxd, seed: lora.seed, n: s.N * m.In, p: lora.cfg.dropout, salt: saved.salt })));
      calls.push(...(await accumulate(gpu, { acc: io.dx, src: dxd, n: s.N * m.In })));
    } else {
      calls.push(
        ...(await linearBackward(gpu, aShape, { dx: io.dx, dw: lora.params.view(A, 'grad'), dy: dh, x: io.x, w: lora.params.view(A), accumDx: true })),
      );
    }
    return calls;
  }
}
