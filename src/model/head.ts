// The scalar head of reward and value models: score[t] = h_t . w for every position, as Hugging Face's
// *ForSequenceClassification heads (`score.weight`, [1, hidden], no bias). A reward model reads it at the
// last token of each sequence; PPO's value model at every response token.
import { ParamTable } from './params.ts';
import { Rng } from '../shared/sampling.ts';
import type { Transformer } from './transformer.ts';

export class ScoreHead {
  readonly params: ParamTable;

  constructor(
    readonly model: Transformer,
    opts: { optimizer?: boolean } = {},
  ) {
    this.params = new ParamTable(model.gpu, [{ name: 'score.weight', shape: [1, model.cfg.hidden], decay: true }], {
      optimizer: opts.optimizer,
      grads: opts.optimizer,
    });
  }

  /** N(0, 1/hidden): a fresh head gives scores of order 1 from normalized hidden states. */
  init(seed: number): void {
    const rng = new Rng(seed >>> 0);
    const C = this.model.cfg.hidden;
    this.params.upload(
      'score.weight',
      Float32Array.from({ length: C }, () => {
        const u = Math.max(rng.next(), 1e-12),
          v = rng.next();
        return (Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)) / Math.sqrt(C);
      }),
    );
  }

  get trainable(): boolean {
    return this.params.arenas[0]!.grad !== undefined;
  }

  destroy(): void {
    this.params.destroy();
  }
}
