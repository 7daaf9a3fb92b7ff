// The engine's units apart (no GPU): api.ts is types only (the page imports no engine code through it), the
// generation queue orders and yields as the engine's generate relies on, and the run driver trains,
// pauses and resumes a stage it is handed, over a store of its own (fake-indexeddb).
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as api from '../src/worker/api.ts';
import { getMetrics, getRun, openStore, putRun, type RunStatus } from '../src/store/db.ts';
import { readCheckpoint } from '../src/store/checkpoints.ts';
import type { TrainConfig } from '../src/shared/config.ts';
import type { StageRun } from '../src/train/stages.ts';
import { GenerationQueue } from '../src/worker/generation.ts';
import { RunDriver } from '../src/worker/run-driver.ts';
import { Session } from '../src/worker/session.ts';

describe('api.ts, the contract', () => {
  it('has no runtime exports', () => {
    expect(Object.keys(api)).toEqual([]);
  });

  it('imports and exports types only', () => {
    const src = readFileSync(new URL('../src/worker/api.ts', import.meta.url), 'utf8');
    const statements = src.split('\n').filter((l) => /^(import|export)\b/.test(l));
    expect(statements.length).toBeGreaterThan(10);
    for (const l of statements) expect(l).toMatch(/^(import type |export type |export interface )/);
  });
});

describe('GenerationQueue', () => {
  const result = (text: string) => ({ texts: [text], finish: ['length' as const] });

  it('runs work one at a time in the order asked; an urgent generation goes before a background one that yields and starts over', async () => {
    const q = new GenerationQueue();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = q.exclusive(async () => {
      log.push('work');
      await gate;
    });
    let tries = 0;
    const bg = q.generate({ background: true, id: 'bg' }, undefined, async (_on, interrupt) => {
      tries++;
      log.push(`bg${tries}`);
      return interrupt() ? undefined : result('bg');
    });
    const urgent = q.generate({}, undefined, async () => {
      log.push('urgent');
      return result('urgent');
    });
    release();
    await first;
    expect(await urgent).toEqual(result('urgent'));
    expect(await bg).toEqual(result('bg'));
    // the background generation waited while the urgent one was queued, then ran
    expect(log).toEqual(['work', 'urgent', 'bg1']);
  });

  it('stops a named generation', async () => {
    const q = new GenerationQueue();
    const r = q.generate({ id: 'x' }, undefined, async (_on, interrupt) => {
      q.stop('x');
      return { texts: ['so far'], finish: [interrupt() ? ('interrupted' as const) : ('length' as const)] };
    });
    expect(await r).toEqual({ texts: ['so far'], finish: ['interrupted'] });
    expect(q.isStopped('x')).toBe(false); // forgotten with its generation
  });
});

describe('RunDriver', () => {
  /** A stage of `total` steps with nothing on the GPU: its loss is 1 / (step + 1). */
  const fakeStage = (total: number): StageRun => ({
    totalSteps: total,
    trainables: {},
    step: async (s) => ({ metrics: { loss: 1 / (s + 1) }, tokens: 10, skipped: false }),
    finish: async () => ({ done: 1 }),
    state: () => ({}),
    setState: () => {},
    exportFiles: async () => new Map(),
    planUse: () => ({ batches: 0, positions: 0, tokens: 0 }),
    destroy: () => {},
  });
  const cfg = { checkpointEvery: 2, onNonFinite: 'skip' } as unknown as TrainConfig;

  it('trains a stage it is handed, pauses after a step with a checkpoint, and goes on from it to the end', async () => {
    const store = await openStore('run-driver-test');
    await putRun(store, { id: 'r', stage: 'sft', config: {}, status: 'running', createdAt: 0, updatedAt: 0 });
    const d = new RunDriver(store);
    const statuses: RunStatus[] = [];
    d.drive('r', fakeStage(5), cfg, 0, {
      onStatus: (s) => void statuses.push(s.status),
      onProgress: (p) => {
        if (p.step === 3) void d.pause('r'); // not awaited: the loop awaits this callback, and pause resolves when the loop ends
      },
    });
    expect(d.training).toBe('r');
    expect(() => d.idle()).toThrow(/run r is training: pause or cancel it first/);
    expect(await d.wait('r')).toBe('paused');
    expect(d.training).toBeUndefined();
    expect((await readCheckpoint(store, 'r'))?.step).toBe(3);
    d.drive('r', fakeStage(5), cfg, 3, { onStatus: (s) => void statuses.push(s.status) });
    expect(await d.wait('r')).toBe('done');
    expect(statuses).toEqual(['running', 'paused', 'running', 'done']);
    expect((await getMetrics(store, 'r')).map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    expect(await getRun(store, 'r')).toMatchObject({ status: 'done', step: 5, checkpointStep: 5, result: { done: 1 } });
  });
});

describe('Session', () => {
  it('stands alone: without a model it says so', async () => {
    const s = new Session({ gpu: Promise.reject(new Error('no GPU here')), store: openStore('session-test') });
    expect(s.info).toBeUndefined();
    expect(s.policyInfo()).toBeUndefined();
    expect(() => s.need()).toThrow(/no model loaded/);
    await expect(s.gpuWorks()).resolves.toBe(false);
  });
});
