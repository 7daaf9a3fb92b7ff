// A linear layer y = x W (+ b) from matmuls, in the two weight layouts of the Hub:
//   'in_out': GPT-2's Conv1D, W is [in, out];  'out_in': torch.nn.Linear (Llama), W is [out, in].
// Backward: dx (= or +=) dy W^T, dW += x^T dy (in W's layout; skipped for frozen weights), db += column sums of dy.
// Output columns may be a slice of a wider activation (ldy), so q/k/v or gate/up can share one buffer.
// A frozen weight may be stored as f16 (wF16: the matmuls read it so, in f32 arithmetic); it has no dW.
import type { Call, Gpu, View } from '../gpu/runtime.ts';
import { biasBackward, matmul } from './matmul.ts';

export type WeightLayout = 'in_out' | 'out_in';

export interface LinearShape {
  N: number;
  In: number;
  Out: number;
  layout: WeightLayout;
  /** Row strides and column offsets of x and y when they are slices of wider activations. */
  ldx?: number;
  ldy?: number;
  xOff?: number;
  yOff?: number;
  maxFlops?: number;
  /** y = alpha * x W (LoRA's scale) */
  alpha?: number;
}

/** y (= or += when accum) alpha * x W + b */
export async function linearForward(gpu: Gpu, s: LinearShape, x: { y: View; x: View; w: View; wF16?: boolean; b?: View; accum?: boolean }): Promise<Call[]> {
  return matmul(gpu, {
    c: x.y,
    a: x.x,
    b: x.w,
    bF16: x.wF16,
    bias: x.b,
    M: s.N,
    N: s.Out,
    K: s.In,
    transB: s.layout === 'out_in',
    lda: s.ldx ?? s.In,
    ldc: s.ldy ?? s.Out,
    aOff: s.xOff,
    cOff: s.yOff,
    maxFlops: s.maxFlops,
    alpha: s.alpha,
    accum: x.accum,
  });
}

export async function linearBackward(
  gpu: Gpu,
  s: LinearShape,
  x: { dx?: View; dw?: View; db?: View; dy: View; x: View; w: View; wF16?: boolean; accumDx?: boolean },
): Promise<Call[]> {
  if (x.wF16 && x.dw) throw new Error('an f16 weight is frozen: it gets no gradient');
  const ldx = s.ldx ?? s.In;
  const ldy = s.ldy ?? s.Out;
  const calls: Call[] = [];
  // dW += alpha x^T dy ([in, out]) or alpha dy^T x ([out, in]); no dW for a frozen weight
  const alpha = s.alpha;
  if (x.dw && s.layout === 'in_out') {
    calls.push(
      ...(await matmul(gpu, {
        c: x.dw,
        a: x.x,
        b: x.dy,
        M: s.In,
        N: s.Out,
        K: s.N,
        transA: true,
        lda: ldx,
        ldb: ldy,
        aOff: s.xOff,
        bOff: s.yOff,
        accum: true,
        maxFlops: s.maxFlops,
        alpha,
      })),
    );
  } else if (x.dw) {
    calls.push(
      ...(await matmul(gpu, {
        c: x.dw,
        a: x.dy,
        b: x.x,
        M: s.Out,
        N: s.In,
        K: s.N,
        transA: true,
        lda: ldy,
        ldb: ldx,
        aOff: s.yOff,
        bOff: s.xOff,
        accum: true,
        maxFlops: s.maxFlops,
        alpha,
      })),
    );
  }
  if (x.db) calls.push(...(await biasBackward(gpu, { dbias: x.db, dy: x.dy, M: s.N, N: s.Out, ldy, dyOff: s.yOff })));
  // dx = dy W^T
  if (x.dx) {
    calls.push(
      ...(await matmul(gpu, {
        c: x.dx,
        a: x.dy,
        b: x.w,
        bF16: x.wF16,
        M: s.N,
        N: s.In,
        K: s.Out,
        transB: s.layout === 'in_out',
        lda: ldy,
        ldc: ldx,
        aOff: s.yOff,
        cOff: s.xOff,
        accum: !!x.accumDx,
        maxFlops: s.maxFlops,
        alpha,
      })),
    );
  }
  return calls;
}
