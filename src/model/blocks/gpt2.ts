// GPT-2's block: LayerNorm before each branch, fused q|k|v, gelu_new MLP, every linear with a bias and
// its weight in Conv1D's [in, out] layout. Forward in order, backward in reverse (block.ts).
import type { View } from '../../gpu/runtime.ts';
import { geluBackward, geluForward } from '../../ops/activation.ts';
import type { LinearShape } from '../../ops/linear.ts';
import { blockGradients, layerActivations } from '../../shared/plan-buffers.ts';
import type { Block, BlockGrads } from './block.ts';

export interface Gpt2Acts {
  n1: View;
  s1: View;
  qkv: View;
  att: View;
  lse: View;
  res2: View;
  n2: View;
  s2: View;
  mid: View; // c_fc output (pre-gelu)
  act: View; // gelu output
  out: View;
}

export interface Gpt2Grads extends BlockGrads {
  dI: View;
  dqkv: View;
  dsum: View;
}

const conv1d = (In: number, Out: number): Omit<LinearShape, 'N'> => ({ In, Out, layout: 'in_out' });

export const gpt2Block: Block<Gpt2Acts, Gpt2Grads> = {
  embed: 'wte.weight',
  positions: 'wpe.weight',
  finalNorm: 'ln_f',
  rms: false,

  // the buffers' names and sizes: src/shared/plan-buffers.ts, the list the memory estimate sums
  activations: (env, l) => env.buffers(layerActivations(env.cfg, env.B, env.T), `l${l}.`) as unknown as Gpt2Acts,

  gradients(env) {
    const g = env.buffers(blockGradients(env.cfg, env.B, env.T));
    return { dres: g.dres!, dC: g.dC!, dI: g.dI!, dqkv: g.dqkv!, dsum: g.dsum! };
  },

  layer(env, l, x, a) {
    const { gpu, BT, branch } = env,
      { hidden: C, intermediate: I } = env.cfg;
    const h = `h.${l}.`;
    const ln = { N: BT, C, eps: env.cfg.eps, rms: false };
    return [
      env.norm(h + 'ln_1', ln, { x, y: a.n1, stats: a.s1 }, (g) => ({ dx: g.dres, dy: g.dC, accum: true })),
      env.linear(h + 'attn.c_attn', conv1d(C, 3 * C), { x: a.n1, y: a.qkv }, (g) => ({ dx: g.dC, dy: g.dqkv })),
      env.attention(l, { qkv: a.qkv, out: a.att, lse: a.lse }, (g) => ({ dqkv: g.dqkv, dsum: g.dsum, dout: g.dC })),
      env.linear(h + 'attn.c_proj', conv1d(C, C), { x: a.att, y: branch }, (g) => ({ dx: g.dC, dy: g.dres })),
      env.residual({ y: a.res2, a: x, b: branch }),
      env.norm(h + 'ln_2', ln, { x: a.res2, y: a.n2, stats: a.s2 }, (g) => ({ dx: g.dres, dy: g.dC, accum: true })),
      env.linear(h + 'mlp.c_fc', conv1d(C, I), { x: a.n2, y: a.mid }, (g) => ({ dx: g.dC, dy: g.dI })),
      {
        forward: () => geluForward(gpu, { y: a.act, x: a.mid, n: BT * I }),
        backward: (g) => geluBackward(gpu, { d: g.dI, x: a.mid, n: BT * I }), // in place: d(act) -> d(mid)
      },
      env.linear(h + 'mlp.c_proj', conv1d(I, C), { x: a.act, y: branch }, (g) => ({ dx: g.dI, dy: g.dres })),
      env.residual({ y: a.out, a: a.res2, b: branch }),
    ];
  },
};
