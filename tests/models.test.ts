// GPT-2, Llama, Qwen2 and Qwen3 against PyTorch: logits, loss and every parameter gradient of the fixtures
// (tests/fixtures, copied from the reference set; computed in float64 by an independent implementation).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/io/folder.ts';
import { parseSafetensors, readTensorF32 } from '../src/io/safetensors.ts';
import { parseConfig } from '../src/shared/model-config.ts';
import { loadModel } from '../src/model/index.ts';
import { initWeights } from '../src/model/init.ts';
import { Transformer } from '../src/model/transformer.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import { relErr, testGpu, tightGpu } from './helpers/gpu.ts';

interface Reference {
  input_ids: number[][];
  logits: number[][][];
  loss: number;
}

for (const name of ['gpt2-tiny', 'llama-tiny', 'qwen2-tiny', 'qwen3-tiny']) {
  describe(name, () => {
    const dir = `tests/fixtures/${name}`;
    const ref = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as Reference;
    const B = ref.input_ids.length,
      T = ref.input_ids[0]!.length;

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

describe("Qwen's 151,936-token vocabulary on the device's own limits", () => {
  // the backward through vocabulary chunks is checked against PyTorch above (tightGpu); here the real limit
  it('a batch whose logits exceed one storage binding gives the logits and loss of the same sequences one at a time', async () => {
    const gpu = await testGpu();
    const cfg = parseConfig({
      model_type: 'qwen2',
      hidden_size: 32,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      intermediate_size: 64,
      vocab_size: 151936,
      max_position_embeddings: 256,
      rope_theta: 1000000.0,
      tie_word_embeddings: true,
      use_sliding_window: false,
    });
    const model = new Transformer(gpu, cfg);
    initWeights(model, 3);
    const T = 112,
      V = 151936,
      ids = Array.from({ length: 2 * T }, (_, i) => (i * 7919 + 13) % V);
    const w = 1 / (2 * (T - 1)); // the batch's mean over its 2 x 111 targets, in either split
    const weights = (n: number) => Array.from({ length: n * T }, (_, i) => (i % T === T - 1 ? 0 : w));
    const both = await model.plan(2, T);
    // 2 x 112 rows of 151,936 logits are 130 MiB: over lavapipe's 128 MiB binding (and many GPUs'), so in two chunks
    expect(2 * T * V * 4).toBeGreaterThan(gpu.maxBinding);
    expect(both.logitChunks.length).toBe(2);
    both.setBatch(ids, undefined, weights(2));
    await gpu.check('both', () => gpu.run([...both.forward, ...both.loss]));
    const loss = await both.readLoss(),
      logits = await both.readLogits();
    expect(await both.readLogits(T + 5, 2)).toEqual(logits.subarray((T + 5) * V, (T + 7) * V)); // a few rows, from both chunks
    both.destroy();
    expect(loss).toBeGreaterThan(Math.log(V) - 0.5); // about uniform at initialisation
    const one = await model.plan(1, T);
    expect(one.logitChunks.length).toBe(1);
    let sum = 0,
      maxDiff = 0;
    for (const b of [0, 1]) {
      one.setBatch(ids.slice(b * T, (b + 1) * T), undefined, weights(1));
      await gpu.check('one', () => gpu.run([...one.forward, ...one.loss]));
      sum += await one.readLoss();
      const part = await one.readLogits();
      for (let i = 0; i < part.length; i++) maxDiff = Math.max(maxDiff, Math.abs(part[i]! - logits[b * T * V + i]!));
    }
    expect(maxDiff).toBeLessThan(1e-6);
    expect(Math.abs(loss - sum) / sum).toBeLessThan(1e-6);
    one.destroy();
    model.params.destroy();
  });
});
