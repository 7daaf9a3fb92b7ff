// The CLI's checkpoint.safetensors, streamed both ways (src/cli/checkpoint-file.ts), on real WebGPU (fails
// without an adapter): a checkpoint of over 500 MB (weights and both AdamW moments) goes to a file and back
// into fresh tables float for float; a write that fails midway keeps the previous checkpoint whole and leaves
// no partial file; a cut-short or foreign file is refused naming it.
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpointFile, writeCheckpointFile } from '../src/cli/checkpoint-file.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { ParamTable } from '../src/model/params.ts';
import { testGpu } from './helpers/gpu.ts';

const fill = (n: number, k: number) => {
  const t = new Float32Array(n);
  for (let i = 0; i < n; i += 997) t[i] = k + i / 7;
  t[n - 1] = -k;
  return t;
};

describe('checkpoint files (CLI)', () => {
  it('a checkpoint of over 500 MB round-trips through a file, tensor by tensor', async () => {
    const gpu = await testGpu();
    // 3 slots (param, m, v) x 44 Mi floats = 528 MiB
    const specs = [
      { name: 'wte', shape: [8192, 4096], decay: true },
      { name: 'h.0.w', shape: [3072, 4096], decay: true },
      { name: 'ln', shape: [4096], decay: false },
    ];
    const a = new ParamTable(gpu, specs, { optimizer: true, grads: false });
    const b = new ParamTable(gpu, specs, { optimizer: true, grads: false });
    const dir = mkdtempSync(join(tmpdir(), 'ckfile-'));
    try {
      let k = 0;
      for (const e of a.entries) for (const slot of ['param', 'm', 'v'] as const) a.upload(e.name, fill(e.n, ++k), slot);
      const path = join(dir, 'checkpoint.safetensors');
      await writeCheckpointFile(path, { weights: a }, { step: 7, stage: 'sft', state: { cursor: 3 } });
      expect(statSync(path).size).toBeGreaterThan(500e6);
      expect(readdirSync(dir)).toEqual(['checkpoint.safetensors']);
      const state = await readCheckpointFile<{ step: number; state: unknown }>(path, { weights: b });
      expect(state).toEqual({ step: 7, stage: 'sft', state: { cursor: 3 } });
      k = 0;
      for (const e of b.entries) {
        for (const slot of ['param', 'm', 'v'] as const) {
          const got = await b.download(e.name, slot),
            want = fill(e.n, ++k);
          expect(got.length).toBe(want.length);
          let diff = 0;
          for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) diff++;
          expect(diff, `${e.name} ${slot}`).toBe(0);
        }
      }
    } finally {
      a.destroy();
      b.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('a write that fails midway keeps the previous checkpoint and leaves no partial file; bad files are refused by name', async () => {
    const gpu = await testGpu();
    const specs = [
      { name: 'w', shape: [4, 8], decay: true },
      { name: 'b', shape: [8], decay: false },
    ];
    const t = new ParamTable(gpu, specs, { optimizer: true, grads: false });
    const dir = mkdtempSync(join(tmpdir(), 'ckfile-'));
    try {
      t.upload('w', fill(32, 1));
      const path = join(dir, 'checkpoint.safetensors');
      await writeCheckpointFile(path, { weights: t }, { step: 1 });
      const before = statSync(path).size;
      // the GPU read of the second tensor fails (as a lost device does): the write stops there
      const download = t.download.bind(t);
      let calls = 0;
      t.download = async (name, slot) => (++calls === 2 ? Promise.reject(new Error('device lost')) : download(name, slot));
      await expect(writeCheckpointFile(path, { weights: t }, { step: 2 })).rejects.toThrow('device lost');
      t.download = download;
      expect(readdirSync(dir)).toEqual(['checkpoint.safetensors']);
      expect(statSync(path).size).toBe(before);
      expect(await readCheckpointFile(path, { weights: t })).toEqual({ step: 1 });
      expect([...(await t.download('w')).slice(0, 2)]).toEqual([1, 0]);

      const cut = join(dir, 'cut.safetensors');
      writeFileSync(cut, new Uint8Array(0));
      await expect(readCheckpointFile(cut, { weights: t })).rejects.toThrow(`${cut}: file is 0 bytes, shorter than the 8-byte header length`);
      await writeCheckpointFile(cut, { weights: t }, { step: 1 });
      truncateSync(cut, statSync(cut).size - 4);
      await expect(readCheckpointFile(cut, { weights: t })).rejects.toThrow(`${cut}: tensor`);
      const model = join(dir, 'model.safetensors');
      writeFileSync(model, writeSafetensors([{ name: 'w', shape: [32], data: fill(32, 1) }]));
      await expect(readCheckpointFile(model, { weights: t })).rejects.toThrow(`${model}: not a training checkpoint`);
      const other = join(dir, 'other.safetensors');
      writeFileSync(other, writeSafetensors([{ name: 'x', shape: [1], data: new Float32Array(1) }], { format: 'rlhf-playground-checkpoint', state: '{}' }));
      await expect(readCheckpointFile(other, { weights: t })).rejects.toThrow(`${other}: has no tensor "weights/param/w"`);
      expect(existsSync(`${path}.partial`)).toBe(false);
    } finally {
      t.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
