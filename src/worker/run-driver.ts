// The run loop: drives one built stage (src/train/stages.ts) step by step in the background:
//   step -> metrics row to the store -> onMetrics, onProgress (awaited: a callback that calls pause()
//   stops the run right after this step) -> checkpoint every `checkpointEvery` steps.
// pause() and cancel() set a small shared state that the loop reads between steps. pause ends with a
// checkpoint; cancel leaves the last good one. The engine's resume() rebuilds the stage from the store
// (also in a fresh engine after a reload), restores the checkpoint and drives it again from there: the
// run continues bit for bit. One run trains at a time (one GPU): `idle` refuses what cannot share it.
// A lost GPU fails the run with a message saying how to go on, and the driver remembers it (takeLost).
import { GpuLostError } from '../gpu/runtime.ts';
import { tensorBytes, tensorsOf } from '../train/checkpoint.ts';
import { writeCheckpoint } from '../store/checkpoints.ts';
import * as db from '../store/db.ts';
import type { TrainConfig } from '../shared/config.ts';
import type { StageRun } from '../train/stages.ts';
import type { RunCallbacks } from './api.ts';
import { errText, notify, release, runOf } from './common.ts';

interface Live {
  runId: string;
  ctl: { pause: boolean; cancel: boolean };
  done: Promise<db.RunStatus>;
}

export class RunDriver {
  private live?: Live;
  /** The run the last GPU loss stopped: resumed after the engine reconnects. */
  private lost?: string;
  private readonly storeP: Promise<db.Store>;

  constructor(store: db.Store | Promise<db.Store>) {
    this.storeP = Promise.resolve(store);
  }

  /** The run training now, if any. */
  get training(): string | undefined {
    return this.live?.runId;
  }

  /** Throws while a run trains: `run <id> is training: <what>`. */
  idle(what = 'pause or cancel it first'): void {
    if (this.live) throw new Error(`run ${this.live.runId} is training: ${what}`);
  }

  /** Resolves once the run training now (if any) has stopped. */
  async settled(): Promise<void> {
    await this.live?.done;
  }

  /** The run the last GPU loss stopped, forgotten once told. */
  takeLost(): string | undefined {
    const id = this.lost;
    this.lost = undefined;
    return id;
  }

  /** Stops the run after its current step and writes a checkpoint; resolves with the status once stopped. */
  async pause(runId: string): Promise<db.RunStatus> {
    if (this.live?.runId === runId) {
      this.live.ctl.pause = true;
      return this.live.done;
    }
    return (await runOf(await this.storeP, runId)).status;
  }

  /** Stops the run for good (a run not training here is marked cancelled unless done). */
  async cancel(runId: string): Promise<db.RunStatus> {
    if (this.live?.runId === runId) {
      this.live.ctl.cancel = true;
      return this.live.done;
    }
    const run = await runOf(await this.storeP, runId);
    if (run.status === 'done') return run.status;
    return (await db.updateRun(await this.storeP, runId, { status: 'cancelled' })).status;
  }

  /** Resolves with the run's status once it stops training (at once when it is not training here). */
  async wait(runId: string): Promise<db.RunStatus> {
    if (this.live?.runId === runId) return this.live.done;
    return (await runOf(await this.storeP, runId)).status;
  }

  /** Cancels the run training now, if any, and waits for it to stop. */
  async stop(): Promise<void> {
    if (!this.live) return;
    this.live.ctl.cancel = true;
    await this.live.done;
  }

  /** Trains `stage` (run `runId`, steps `from`..end) in the background; `wait` resolves with its final status. */
  drive(runId: string, stage: StageRun, cfg: TrainConfig, from: number, cb: RunCallbacks): void {
    const ctl = { pause: false, cancel: false };
    const total = stage.totalSteps;
    let done = from;
    const status = async (s: db.RunStatus, patch: Partial<db.RunRecord> = {}) => {
      await db.updateRun(await this.storeP, runId, { status: s, step: done, ...patch });
      await notify(() => cb.onStatus?.({ runId, status: s, step: done, total, ...(patch.error ? { error: patch.error } : {}) }));
      return s;
    };
    const checkpoint = async (step: number) => {
      // tensor by tensor from the GPU into the store: never the whole checkpoint in one array
      await writeCheckpoint(await this.storeP, runId, {
        step,
        state: { step, ...stage.state() },
        tensors: tensorsOf(stage.trainables),
        bytes: tensorBytes(stage.trainables),
      });
      await db.updateRun(await this.storeP, runId, { checkpointStep: step });
    };
    const loop = async (): Promise<db.RunStatus> => {
      const store = await this.storeP;
      await status('running', { error: undefined });
      const t0 = performance.now();
      let tokens = 0;
      for (let s = from; s < total; s++) {
        if (ctl.pause || ctl.cancel) break;
        let told = 0,
          last = '';
        const out = await stage.step(
          s,
          cb.onPhase &&
            ((ph) => {
              // each new phase at once; within one, at most four times a second (every call crosses to the page)
              const now = performance.now();
              if (ph.phase === last && now - told < 250) return;
              told = now;
              last = ph.phase;
              void notify(() => cb.onPhase?.({ runId, step: s + 1, ...ph }));
            }),
        );
        const values = out.skipped ? { ...out.metrics, skipped: 1 } : out.metrics;
        const row: db.MetricRecord = { runId, step: s + 1, time: Date.now(), values };
        await db.appendMetrics(store, [row]);
        if (out.skipped && cfg.onNonFinite === 'stop') {
          const ck = await db.checkpointManifest(store, runId);
          return status('failed', {
            error:
              `step ${s + 1}: the gradient is NaN or infinite (loss ${values.loss ?? values['loss/policy_avg']}); the step was skipped and the run stopped (onNonFinite: 'stop'). ` +
              (ck ? `The checkpoint of step ${ck.step} is intact; ` : '') +
              'try a lower learning rate or check the data.',
          });
        }
        done = s + 1;
        tokens += out.tokens;
        const secs = (performance.now() - t0) / 1000;
        await notify(() => cb.onMetrics?.(row));
        if (out.samples) {
          await db.saveRollouts(store, { runId, step: done, samples: out.samples, ...(out.completions ? { completions: out.completions } : {}) });
          await notify(() => cb.onSamples?.(done, out.samples!, runId, out.completions));
        }
        await notify(() =>
          cb.onProgress?.({ runId, step: done, total, tokensPerSec: tokens / Math.max(secs, 1e-9), secondsLeft: (secs / (done - from)) * (total - done) }),
        );
        if (cfg.checkpointEvery && done % cfg.checkpointEvery === 0 && done < total) {
          await checkpoint(done);
          await db.updateRun(store, runId, { step: done });
        }
      }
      if (ctl.cancel) return status('cancelled');
      if (done < total) {
        await checkpoint(done);
        return status('paused');
      }
      const result = await stage.finish();
      await checkpoint(total);
      return status('done', { result });
    };
    const live: Live = {
      runId,
      ctl,
      done: loop()
        .catch(async (e) => {
          let error = errText(e);
          if (e instanceof GpuLostError) {
            const at = (await db.getRun(await this.storeP, runId).catch(() => undefined))?.checkpointStep; // the step, not the checkpoint's bytes
            error += `. Reconnect the GPU (or reload the page), then resume the run: it goes on from ${at ? `its checkpoint of step ${at}` : 'the start'}.`;
            this.lost = runId;
          }
          return status('failed', { error }).catch(() => 'failed' as const);
        })
        .finally(() => {
          if (this.live === live) this.live = undefined;
          // callbacks that came through comlink are proxies to the page: let them go with the run
          for (const f of Object.values(cb)) release(f);
        }),
    };
    this.live = live;
  }
}
