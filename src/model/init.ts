// Fresh weights for training from scratch (the built-in model, tests): GPT-2's scheme. Matrices and
// embeddings ~ N(0, 0.02), the projections that write into the residual stream scaled by 1/sqrt(2 L),
// norm gains 1, biases 0.
import { Rng } from '../shared/sampling.ts';
import type { Transformer } from './transformer.ts';

function normal(n: number, std: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rng.next(), 1e-12),
      v = rng.next();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

export function initWeights(model: Transformer, seed: number): void {
  const rng = new Rng(seed >>> 0);
  const residual = /(attn\.c_proj|mlp\.c_proj|o_proj|down_proj)\.weight$/;
  const std = 0.02;
  for (const e of model.params.entries) {
    let data: Float32Array;
    if (/(ln_\d|ln_f|layernorm|norm)\.weight$/.test(e.name)) data = new Float32Array(e.n).fill(1);
    else if (e.shape.length === 1) data = new Float32Array(e.n);
    else data = normal(e.n, residual.test(e.name) ? std / Math.sqrt(2 * model.cfg.layers) : std, rng);
    model.params.upload(e.name, data);
  }
}
