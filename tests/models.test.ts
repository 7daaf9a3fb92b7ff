// GPT-2, Llama, Qwen2 and Qwen3 against PyTorch: logits, loss and every parameter gradient of the fixtures
// (tests/fixtures, copied from the reference set; computed in float64 by an independent implementation).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/io/folder.ts';
import { parseSafetensors, readTensorF32 } from '../src/io/safetensors.ts';
import { loadModel } from '../src/model/index.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { relErr, testGpu, tightGpu } from './helpers.ts';

interface Reference { input_ids: number[][]; logits: number[][][]; loss: number }

for (const name of ['gpt2-tiny', 'llama-tiny', 'qwen2-tiny', 'qwen3-tiny']) {
  describe(name, () => {
    const dir = `tests/fixtures/${name}`;
    const ref = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as Reference;
    const B = ref.input_ids.length, T = ref.input_ids[0]!.length;

    const check = async (gpu: Gpu) => {
      const { model, fileNames } = loadModel(gpu, await readModelFolder(dir), { grads: true });
      const plan = await model.plan(B, T, { training: true });
      plan.setBatch(ref.input_ids.flat());
      await gpu.check(name, () => gpu.run([...plan.zeroGrads, ...plan.forward, ...plan.loss]));
      const logits = await plan.readLogits();
      const want = ref.logits.flat(2);
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(logits[i]! - want[i]!));
      expect(maxDiff, 'max |logit - reference|').toBeLessThan(1e-4);
      const loss = await plan.readLoss();
      expect(Math.abs(loss - ref.loss) / ref.loss, `loss ${loss} vs ${ref.loss}`).toBeLessThan(1e-5);

      await gpu.check(name, () => gpu.run([...plan.lossFused, ...plan.backward]));
      const grads = parseSafetensors(readFileSync(`${dir}/grads.safetensors`), 'grads.safetensors');
      expect(grads.tensors.size).toBe(model.params.entries.length);
      const worst: string[] = [];
      for (const e of model.params.entries) {
        const fileName = fileNames.get(e.name)!;
        const got = await model.params.download(e.name, 'grad');
        const err = relErr(got, readTensorF32(grads, fileName));
        if (!(err < 1e-3)) worst.push(`${fileName}: ${err}`);
      }
      expect(worst, 'gradient tensors off by more than 1e-3 relative').toEqual([]);
      const split = { chunks: plan.logitChunks.length, parts: model.params.entry(model.embedName).parts.length };
      plan.destroy();
      model.params.destroy();
      return split;
    };

    it('logits within 1e-4, loss within 1e-5 relative, every gradient within 1e-3 relative', async () => {
      expect(await check(await testGpu())).toEqual({ chunks: 1, parts: 1 });
    });

    it('the same with the vocabulary tables over several buffers and the logits in vocabulary chunks', async () => {
      const { model } = loadModel(await testGpu(), await readModelFolder(dir));
      const cfg = model.cfg;
      model.params.destroy();
      const split = await check(await tightGpu(cfg, B, T));
      // GPT-2's position table and MLP leave room for two chunks of its 377 x 48 embedding; the others split in three
      expect(split.chunks).toBeGreaterThanOrEqual(name === 'gpt2-tiny' ? 2 : 3);
      expect(split.parts).toBe(split.chunks);
    });
  });
}
