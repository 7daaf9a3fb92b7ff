// What a block recipe is made of, llm.c style: a layer is a list of steps in forward order, each step's
// forward and backward side by side; a plan records the forwards in order and the backwards in reverse.
// Parameter gradients accumulate (+=); activation gradients overwrite, except the residual stream's
// `dres`, which every branch adds into (so a residual add has no backward step).
import type { Call, Gpu, View } from '../../gpu/runtime.ts';
import { attentionBackward, attentionCached, attentionForward, kvAppend, type AttentionShape } from '../../ops/attention.ts';
import type { LinearShape } from '../../ops/linear.ts';
import { normBackward, normForward, type NormShape } from '../../ops/norm.ts';
import { add } from '../../ops/residual.ts';
import type { LinearLayers } from '../adapted-linear.ts';
import type { ModelConfig } from '../../shared/model-config.ts';
import type { ParamTable } from '../params.ts';
import type { KVCache } from '../transformer.ts';

/** One op of a layer: its forward, and its backward given the backward's gradient buffers. */
export interface Step<G> {
  forward(): Promise<Call[]>;
  backward?(g: G): Promise<Call[]>;
}

/** Steps whose backwards run in forward order too: projections of one input, whose dx sum in that order. */
export function group<G>(...steps: Step<G>[]): Step<G> {
  const inOrder = async (f: (s: Step<G>) => Promise<Call[]> | undefined) => {
    const calls: Call[] = [];
    for (const s of steps) calls.push(...((await f(s)) ?? []));
    return calls;
  };
  return { forward: () => inOrder((s) => s.forward()), backward: (g) => inOrder((s) => s.backward?.(g)) };
}

/** The gradient buffers of every block, each [B*T, hidden]: the residual stream's, and a branch input's. */
export interface BlockGrads {
  dres: View;
  dC: View;
}

/** A pre-norm residual block: its activations, its backward's buffers, and its steps. */
export interface Block<A extends { out: View }, G extends BlockGrads> {
  /** Weights outside the layers: token embedding, learned positions (GPT-2), final norm (without `.weight`). */
  embed: string;
  positions?: string;
  finalNorm: string;
  /** RMSNorm rather than LayerNorm */
  rms: boolean;
  /** What one layer keeps for the backward (labelled `l${label}.*`); `out` is the residual stream after it. */
  activations(env: BlockEnv, label: number | string): A;
  /** The backward's gradient buffers, shared by every layer. */
  gradients(env: BlockEnv): G;
  /** Layer l's steps in forward order, from the residual stream x to a.out. */
  layer(env: BlockEnv, l: number, x: View, a: A): Step<G>[];
}

export interface BlockEnvOptions {
  gpu: Gpu;
  cfg: ModelConfig;
  B: number;
  T: number;
  params: ParamTable;
  /** whether the base weights get gradients (training without an adapter) */
  trainBase: boolean;
  linears: LinearLayers;
  /** the plan's allocator */
  tensor: (n: number, label: string) => View;
  /** token positions [B*T] (RoPE) */
  pos: View;
  ropeTable?: View;
  cache?: KVCache;
  /** a branch's output before it joins the residual stream [B*T, hidden], shared by every layer */
  branch: View;
}

/** What a plan gives its block recipe: the shape, the allocator, and the steps blocks share. */
export class BlockEnv {
  readonly gpu: Gpu;
  readonly cfg: ModelConfig;
  readonly B: number;
  readonly T: number;
  readonly BT: number;
  readonly pos: View;
  readonly ropeTable?: View;
  readonly branch: View;

  constructor(private readonly opts: BlockEnvOptions) {
    this.gpu = opts.gpu;
    this.cfg = opts.cfg;
    this.B = opts.B;
    this.T = opts.T;
    this.BT = opts.B * opts.T;
    this.pos = opts.pos;
    this.ropeTable = opts.ropeTable;
    this.branch = opts.branch;
  }

  tensor(n: number, label: string): View {
    return this.opts.tensor(n, label);
  }

  /** The plan's buffers of a list (src/shared/plan-buffers.ts: layerActivations, blockGradients) by name, labelled `${prefix}${name}`. */
  buffers(list: readonly [string, number][], prefix = ''): Record<string, View> {
    return Object.fromEntries(list.map(([name, n]) => [name, this.tensor(n, prefix + name)]));
  }

  param(name: string): View {
    return this.opts.params.view(name);
  }

  /** The gradient of a base weight; none where the base is frozen (inference, or an adapter trains). */
  grad(name: string): View | undefined {
    return this.opts.trainBase ? this.opts.params.view(name, 'grad') : undefined;
  }

  private has(name: string): boolean {
    return this.opts.params.has(name);
  }

  /** A norm with weight `${name}.weight` (and bias `${name}.bias` where the model has one). */
  norm<G>(name: string, shape: NormShape, io: { x: View; y: View; stats: View }, grads: (g: G) => { dx: View; dy: View; accum: boolean }): Step<G> {
    const w = `${name}.weight`,
      b = `${name}.bias`,
      bias = this.has(b);
    return {
      forward: () => normForward(this.gpu, shape, { ...io, w: this.param(w), b: bias ? this.param(b) : undefined }),
      backward: (g) =>
        normBackward(this.gpu, shape, { ...grads(g), dw: this.grad(w), db: bias ? this.grad(b) : undefined, x: io.x, w: this.param(w), stats: io.stats }),
    };
  }

  /** A linear layer over all B*T rows, adapted where the plan's LoRA adapter targets `module`. */
  linear<G>(module: string, shape: Omit<LinearShape, 'N'>, io: { x: View; y: View }, grads: (g: G) => { dx: View; dy: View; accumDx?: boolean }): Step<G> {
    const layer = this.opts.linears.layer(module, shape);
    return { forward: () => layer.forward(io), backward: (g) => layer.backward({ ...grads(g), x: io.x }) };
  }

  /** Causal attention over the heads in qkv's rows; with a KV cache, the new keys and values join layer l's. */
  attention<G>(l: number, io: { qkv: View; out: View; lse: View }, grads: (g: G) => { dqkv: View; dsum: View; dout: View }): Step<G> {
    const { gpu, B, T, cfg } = this,
      cache = this.opts.cache?.layers[l];
    const shape: AttentionShape = { B, T, Hq: cfg.heads, Hkv: cfg.kvHeads, D: cfg.headDim };
    return {
      forward: async () =>
        cache
          ? [...(await kvAppend(gpu, shape, { qkv: io.qkv, cache })), ...(await attentionCached(gpu, shape, { out: io.out, qkv: io.qkv, cache }))]
          : attentionForward(gpu, shape, io),
      backward: (g) => attentionBackward(gpu, shape, { ...grads(g), out: io.out, lse: io.lse, qkv: io.qkv }),
    };
  }

  /** y = a + b, joining a branch to the residual stream: dres carries the gradient to both. */
  residual<G>(io: { y: View; a: View; b: View }): Step<G> {
    return { forward: () => add(this.gpu, { ...io, n: this.BT * this.cfg.hidden }) };
  }
}
