// The malformed corpus (tests/helpers/malformed.ts) through the command line: every case ends the command with a
// non-zero exit and exactly one line on stderr that names the file and says what is wrong. Model folders
// go to `generate --model DIR`, zipped ones to `generate --model FILE.zip`, datasets to `sft --data`, and reward
// adapters to `ppo --reward` (their valid base written by `rm` first). Real Dawn; no GPU mock.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zipFiles } from '../src/io/zip.ts';
import { cli } from './helpers/cli.ts';
import {
  ADAPTER_CASES,
  ALL_CASES,
  DATA_CASES,
  MODEL_CASES,
  MODEL_DIR,
  modelBase,
  rewardAdapterBase,
  ZIP_CASES,
  type Case,
  type Files,
} from './helpers/malformed.ts';

/** What reads every file of a model folder: the weights (a forward pass), the tokenizer and the chat template. */
const GENERATE = ['generate', '--prompt', 'Hi', '--max-new-tokens', '2', '--temperature', '0'];
const tmp = mkdtempSync(join(tmpdir(), 'malformed-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function writeFolder(dir: string, files: Files): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
  return dir;
}

/** The command fails with one line on stderr that names the case's file and matches its words. */
async function refused(c: Case, args: string[]): Promise<void> {
  const r = await cli(args, { timeoutMs: 120_000 });
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.length > 0);
  const said = `${c.id} (${c.rule}): exit ${r.code}, stderr ${JSON.stringify(r.stderr)}`;
  expect(r.code, said).not.toBe(0);
  expect(lines.length, said).toBe(1);
  expect(lines[0], said).toContain(c.file);
  expect(lines[0], said).toMatch(c.match);
}

/** Runs the cases a few at a time (each is a process start and a GPU start: mostly waiting). */
async function inBatches<T>(items: readonly T[], f: (x: T) => Promise<void>, width = 4): Promise<void> {
  const failures: unknown[] = [];
  for (let i = 0; i < items.length; i += width) {
    const done = await Promise.allSettled(items.slice(i, i + width).map(f));
    for (const d of done) if (d.status === 'rejected') failures.push(d.reason);
  }
  if (failures.length) throw new Error(failures.map((e) => (e as Error).message).join('\n\n'));
}

describe('the malformed corpus, on the command line', () => {
  it('has at least 40 cases, each breaking its own rule', () => {
    expect(ALL_CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(ALL_CASES.map((c) => c.id)).size).toBe(ALL_CASES.length);
    expect(new Set(ALL_CASES.map((c) => c.rule)).size).toBe(ALL_CASES.length);
  });

  it('the valid bases are read: the model generates, its zip the same', async () => {
    const ok = await cli([...GENERATE, '--model', MODEL_DIR]);
    expect(ok.code, ok.stderr).toBe(0);
    const zip = join(tmp, 'model.zip');
    writeFileSync(zip, zipFiles(modelBase()));
    const zipped = await cli([...GENERATE, '--model', zip]);
    expect(zipped.code, zipped.stderr).toBe(0);
    expect(JSON.parse(zipped.stdout)).toEqual(JSON.parse(ok.stdout));
  });

  it('model folders: generate --model DIR', async () => {
    const base = modelBase();
    await inBatches(MODEL_CASES, (c) => refused(c, [...GENERATE, '--model', writeFolder(join(tmp, c.id), c.make(base))]));
  }, 600_000);

  it('zipped model folders: generate --model FILE.zip', async () => {
    const base = modelBase();
    await inBatches(ZIP_CASES, (c) => {
      const dir = join(tmp, c.id);
      mkdirSync(dir);
      const zip = join(dir, c.file);
      writeFileSync(zip, c.make(base));
      return refused(c, [...GENERATE, '--model', zip]);
    });
  }, 300_000);

  it('datasets: sft --data FILE', async () => {
    await inBatches(DATA_CASES, (c) => {
      const dir = join(tmp, c.id);
      mkdirSync(dir);
      const file = join(dir, c.file);
      writeFileSync(file, c.bytes);
      return refused(c, ['sft', '--model', MODEL_DIR, '--data', file, '--out', join(dir, 'out'), '--max-steps', '1']);
    });
  }, 600_000);

  describe('reward adapters: ppo --reward DIR', () => {
    let base: Files, prompts: string;
    beforeAll(async () => {
      ({ files: base, prompts } = await rewardAdapterBase(tmp));
    }, 300_000);

    it('each refused with one line naming the adapter file', async () => {
      await inBatches(ADAPTER_CASES, (c) => {
        const dir = writeFolder(join(tmp, c.id), c.make(base));
        return refused(c, ['ppo', '--model', MODEL_DIR, '--prompts', prompts, '--reward', dir, '--out', join(tmp, `${c.id}-out`), '--max-steps', '1']);
      });
    }, 600_000);
  });
});
