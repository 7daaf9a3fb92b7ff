// The Llama block (Llama, SmolLM2, Qwen2, Qwen3): RMSNorm before each branch, separate q/k/v projections
// into one row of q|k|v (grouped-query: fewer k/v heads), RoPE, a SwiGLU MLP, weights in torch.nn.Linear's
// [out, in] layout. Forward in order, backward in reverse (block.ts).
// Qwen runs as this block rather than one of its own: Qwen2 only adds q/k/v biases (any linear here takes
// the bias the checkpoint has) and Qwen3 only adds RMSNorms over each q and k head before RoPE (`qkNorm`),
// so a Qwen file would repeat every other step.
import type { View } from '../../gpu/runtime.ts';
import { swigluBackward, swigluForward } from '../../ops/activation.ts';
import type { LinearShape } from '../../ops/linear.ts';
import { rope } from '../../ops/rope.ts';
import { blockGradients, layerActivations } from '../../shared/plan-buffers.ts';
import { group, type Block, type BlockGrads, type Step } from './block.ts';

export interface LlamaActs {
  n1: View;
  s1: View;
  qkv: View;
  att: View;
  lse: View;
  res2: View;
  n2: View;
  s2: View;
  mid: View; // gate | up
  act: View; // silu(gate) * up
  out: View;
  /** Qwen3: q and k before their per-head norms, in qkv's row layout (its v columns unused), and the norms' stats. */
  qk?: View;
  sq?: View;
  sk?: View;
}

export interface LlamaGrads extends BlockGrads {
  dI: View;
  dqkv: View;
  dsum: View;
  /** Qwen3: q and k's gradient before their norms */
  dqk?: View;
  /** the attention output's gradient [B*T, heads * headDim] (dC where that is the hidden size) */
  dA: View;
  /** gate | up's gradient */
  dGU: View;
}

/** y (in the columns [yOff, yOff + Out) of rows ldy wide) = x W^T */
const linear = (In: number, Out: number, cols: { ldy?: number; yOff?: number } = {}): Omit<LinearShape, 'N'> => ({ In, Out, layout: 'out_in', ...cols });

export const llamaBlock: Block<LlamaActs, LlamaGrads> = {
  embed: 'model.embed_tokens.weight',
  finalNorm: 'model.norm',
  rms: true,

  // the buffers' names and sizes: src/shared/plan-buffers.ts, the list the memory estimate sums
  activations: (env, l) => env.buffers(layerActivations(env.cfg, env.B, env.T), `l${l}.`) as unknown as LlamaActs,

  gradients(env) {
    const g = env.buffers(blockGradients(env.cfg, env.B, env.T));
    return { dres: g.dres!, dC: g.dC!, dI: g.dI!, dqkv: g.dqkv!, dsum: g.dsum!, dqk: g.dqk, dA: g.dA ?? g.dC!, dGU: g.dgu! };
  },

  layer(env, l, x, a) {
    const { gpu, BT, branch } = env;
    const { hidden: C, heads: Hq, kvHeads: Hkv, headDim: D, intermediate: I, eps, qkNorm } = env.cfg;
    const S = (Hq + 2 * Hkv) * D;
    const h = `model.layers.${l}.`,
      attn = h + 'self_attn.',
      mlp = h + 'mlp.';
    const rms = { N: BT, C, eps, rms: true };
    // q, k and v side by side in each row of qkv; with q/k norms, q and k land in a.qk and their norms
    // write them into a.qkv (a norm cannot run in place)
    const qkvProj = (
      [
        ['q', 0, Hq * D],
        ['k', Hq * D, Hkv * D],
        ['v', (Hq + Hkv) * D, Hkv * D],
      ] as const
    ).map(([name, off, rows], i) => {
      const normed = qkNorm && name !== 'v';
      return env.linear<LlamaGrads>(attn + `${name}_proj`, linear(C, rows, { ldy: S, yOff: off }), { x: a.n1, y: normed ? a.qk! : a.qkv }, (g) => ({
        dx: g.dC,
        dy: normed ? g.dqk! : g.dqkv,
        accumDx: i > 0,
      }));
    });
    // Qwen3's q_norm / k_norm: RMSNorm over each head's D values, read from and written to the q|k|v rows
    const qkNorms: Step<LlamaGrads>[] = qkNorm
      ? [
          group(
            env.norm(attn + 'q_norm', { N: BT * Hq, C: D, eps, rms: true, rows: { group: Hq, ld: S, off: 0 } }, { x: a.qk!, y: a.qkv, stats: a.sq! }, (g) => ({
              dx: g.dqk!,
              dy: g.dqkv,
              accum: false,
            })),
            env.norm(
              attn + 'k_norm',
              { N: BT * Hkv, C: D, eps, rms: true, rows: { group: Hkv, ld: S, off: Hq * D } },
              { x: a.qk!, y: a.qkv, stats: a.sk! },
              (g) => ({ dx: g.dqk!, dy: g.dqkv, accum: false }),
            ),
          ),
        ]
      : [];
    const ropeShape = { BT, Hq, Hkv, D },
      positions = { pos: env.pos, table: env.ropeTable! };
    return [
      env.norm(h + 'input_layernorm', rms, { x, y: a.n1, stats: a.s1 }, (g) => ({ dx: g.dres, dy: g.dC, accum: true })),
      group(...qkvProj),
      ...qkNorms,
      {
        forward: () => rope(gpu, ropeShape, { qkv: a.qkv, ...positions, backward: false }),
        backward: (g) => rope(gpu, ropeShape, { qkv: g.dqkv, ...positions, backward: true }),
      },
      env.attention(l, { qkv: a.qkv, out: a.att, lse: a.lse }, (g) => ({ dqkv: g.dqkv, dsum: g.dsum, dout: g.dA })),
      env.linear(attn + 'o_proj', linear(Hq * D, C), { x: a.att, y: branch }, (g) => ({ dx: g.dA, dy: g.dres })),
      env.residual({ y: a.res2, a: x, b: branch }),
      env.norm(h + 'post_attention_layernorm', rms, { x: a.res2, y: a.n2, stats: a.s2 }, (g) => ({ dx: g.dres, dy: g.dC, accum: true })),
      group(
        env.linear(mlp + 'gate_proj', linear(C, I, { ldy: 2 * I, yOff: 0 }), { x: a.n2, y: a.mid }, (g) => ({ dx: g.dC, dy: g.dGU })),
        env.linear(mlp + 'up_proj', linear(C, I, { ldy: 2 * I, yOff: I }), { x: a.n2, y: a.mid }, (g) => ({ dx: g.dC, dy: g.dGU, accumDx: true })),
      ),
      {
        forward: () => swigluForward(gpu, { h: a.act, gu: a.mid, N: BT, I }),
        backward: (g) => swigluBackward(gpu, { dgu: g.dGU, dh: g.dI, gu: a.mid, N: BT, I }),
      },
      env.linear(mlp + 'down_proj', linear(I, C), { x: a.act, y: branch }, (g) => ({ dx: g.dI, dy: g.dres })),
      env.residual({ y: a.out, a: a.res2, b: branch }),
    ];
  },
};
