// rewardScores' reward model (the Rank tab's active selection): a finished LoRA reward-model run as a scorer
// on the loaded model (src/train/stages.ts's rewardModelRole), kept between calls with a plan as large as
// the largest call so far, until another run is asked for or the model changes. The session owns one and
// drops it with the stage; its GPU memory is freed between generations (`between`).
import type { Gpu } from '../gpu/runtime.ts';
import type { ModelFiles } from '../io/sources.ts';
import type { Transformer } from '../model/transformer.ts';
import type { Checkpoint } from '../train/checkpoint.ts';
import type { TrainConfig } from '../shared/config.ts';
import { ModelReward } from '../train/grpo.ts';
import type { Rollout } from '../train/rollouts.ts';
import type { Between } from '../train/package.ts';
import { rewardModelRole } from '../train/stages.ts';

/** The run's reward model, the model it sits on, its positions, and a plan of `rows` x `T` (made on first use). */
interface Cache {
  runId: string;
  base: Transformer;
  seqLen: number;
  role: ReturnType<typeof rewardModelRole>;
  plan?: ModelReward;
  rows: number;
  T: number;
}

export class RewardScores {
  private cache?: Cache;

  constructor(private readonly between: Between = (f) => f()) {}

  /** The run whose reward model is kept, if any. */
  get runId(): string | undefined {
    return this.cache?.runId;
  }

  /** Forgets the reward model; its GPU memory is freed between generations. */
  drop(): void {
    const sc = this.cache;
    this.cache = undefined;
    if (sc) void this.between(async () => free(sc));
  }

  /**
   * Run `runId`'s scores of `seqs` (encoded as its stage encodes them; cut to the positions it was trained with), its reward model made on
   * `base` (the loaded model when the call was made) unless kept. Call between generations: it frees and
   * makes GPU memory. `now` is the loaded model now, `gpu` the device now, `load` the run's config and checkpoint.
   */
  async score(x: {
    runId: string;
    base: Transformer;
    seqs: Rollout[];
    pad: number;
    gpu: () => Promise<Gpu>;
    now: () => { base: Transformer; files: ModelFiles };
    load: () => Promise<{ config: TrainConfig; checkpoint: Checkpoint }>;
  }): Promise<number[]> {
    const { base, seqs } = x;
    let sc = this.cache;
    if (sc && (sc.runId !== x.runId || sc.base !== x.now().base)) {
      free(sc);
      sc = this.cache = undefined;
    }
    if (!sc) {
      const rw = await x.load();
      if (x.now().base !== base) throw new Error('the loaded model changed while the reward model was loading');
      sc = this.cache = {
        runId: x.runId,
        base,
        seqLen: rw.config.seqLen,
        role: rewardModelRole({ gpu: await x.gpu(), files: x.now().files, base }, rw),
        rows: 0,
        T: 0,
      };
    }
    const rows = Math.min(seqs.length, 16);
    const longest = Math.max(...seqs.map((s) => s.prompt.length + s.response.length));
    const T = Math.max(8, Math.min(sc.seqLen, Math.ceil(longest / 16) * 16));
    if (!sc.plan || sc.rows < rows || sc.T < T) {
      // a plan as large as the largest call so far
      sc.plan?.destroy();
      sc.plan = undefined;
      const want = { rows: Math.max(sc.rows, rows), T: Math.max(sc.T, T) };
      sc.plan = await ModelReward.create('reward_model', sc.role.role, want.rows, want.T, sc.role.bias, x.pad);
      // the size is kept once it exists: a size the GPU refused is not asked again by every later, smaller call
      Object.assign(sc, want);
    }
    return sc.plan.score(seqs);
  }
}

function free(sc: Cache): void {
  sc.plan?.destroy();
  sc.role.destroy();
}
