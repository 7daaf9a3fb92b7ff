// The engine's self-test, runnable wherever there is a Gpu (the page runs it on the visitor's GPU).
import type { Gpu } from './gpu/runtime.ts';
import { parseJsonStrict } from './io/json-strict.ts';
import { parseSafetensors } from './io/safetensors.ts';
import { loadModel } from './model/index.ts';
import { matmul } from './ops/matmul.ts';
import { GENERATE_DEFAULTS, Generator } from './train/generate.ts';

export interface SelfTestRow {
  name: string;
  pass: boolean;
  detail: string;
}

export async function selfTest(
  gpu: Gpu,
  fetchBytes: (path: string) => Promise<Uint8Array>,
  onRow: (r: SelfTestRow) => void = () => {},
): Promise<SelfTestRow[]> {
  const rows: SelfTestRow[] = [];
  const add = (r: SelfTestRow) => (rows.push(r), onRow(r));

  // 1. A matmul of odd size (not a multiple of the tile) against the CPU.
  const M = 97,
    N = 83,
    K = 71;
  const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
  const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));
  const av = gpu.tensor(M * K, 'selftest.a'),
    bv = gpu.tensor(K * N, 'selftest.b'),
    cv = gpu.tensor(M * N, 'selftest.c');
  gpu.write(av, a);
  gpu.write(bv, b);
  const calls = await matmul(gpu, { c: cv, a: av, b: bv, M, N, K });
  const t0 = performance.now();
  await gpu.check('self-test matmul', () => gpu.run(calls));
  const c = await gpu.read(cv);
  const ms = performance.now() - t0;
  let err = 0;
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k]! * b[k * N + j]!;
      err = Math.max(err, Math.abs(s - c[i * N + j]!));
    }
  add({ name: `matmul ${M}x${K} @ ${K}x${N}`, pass: err < 1e-3, detail: `max |GPU - CPU| = ${err.toExponential(2)} (${ms.toFixed(1)} ms)` });

  // 2. The tiny GPT-2 fixture's loss against PyTorch's.
  const dir = 'models/gpt2-tiny/';
  const dec = new TextDecoder();
  const expected = parseJsonStrict(dec.decode(await fetchBytes(dir + 'selftest.json'))) as unknown as { input_ids: number[][]; loss: number };
  const config = parseJsonStrict(dec.decode(await fetchBytes(dir + 'config.json')));
  const weights = [parseSafetensors(await fetchBytes(dir + 'model.safetensors'), dir + 'model.safetensors')];
  const { model } = loadModel(gpu, { config, weights, configFile: dir + 'config.json' });
  const B = expected.input_ids.length,
    T = expected.input_ids[0]!.length;
  const plan = await model.plan(B, T);
  plan.setBatch(expected.input_ids.flat());
  await gpu.check('self-test gpt2-tiny', () => gpu.run([...plan.forward, ...plan.loss]));
  const loss = await plan.readLoss();
  const rel = Math.abs(loss - expected.loss) / expected.loss;
  add({
    name: 'gpt2-tiny loss vs PyTorch',
    pass: rel < 1e-5,
    detail: `${loss.toFixed(6)} vs ${expected.loss.toFixed(6)} (relative error ${rel.toExponential(2)})`,
  });
  plan.destroy();
  model.destroy();

  // 3. The same model frozen, as the base under LoRA: its linear weights in f16 where the adapter has
  //    'shader-f16' (within f16's precision of PyTorch: tests/f16-weights.test.ts measured 3e-5), else f32 as above.
  const frozen = loadModel(gpu, { config, weights, configFile: dir + 'config.json' }, { frozenF16: true }).model;
  const fp = await frozen.plan(B, T);
  fp.setBatch(expected.input_ids.flat());
  await gpu.check('self-test frozen gpt2-tiny', () => gpu.run([...fp.forward, ...fp.loss]));
  const frel = Math.abs((await fp.readLoss()) - expected.loss) / expected.loss;
  const path = frozen.f16Weights ? 'f16 weights' : `f32 weights (${gpu.features.has('shader-f16') ? 'f16 turned off' : "the adapter has no 'shader-f16'"})`;
  add({ name: 'frozen gpt2-tiny loss vs PyTorch', pass: frel < (frozen.f16Weights ? 1e-4 : 1e-5), detail: `${path}: relative error ${frel.toExponential(2)}` });
  fp.destroy();
  frozen.destroy();

  // 4. Tokens drawn on the device (shaders/sampling.wgsl, what decoding a large vocabulary uses): greedy decoding of
  //    the same model with the draws on the device and on the CPU, the same tokens and entropies.
  const m4 = loadModel(gpu, { config, weights, configFile: dir + 'config.json' }).model;
  const gen = new Generator(m4);
  const prompt = expected.input_ids[0]!.slice(0, 4);
  const greedy = { ...GENERATE_DEFAULTS, temperature: 0, maxNewTokens: 8 };
  gen.deviceSampling = true;
  const onDevice = await gen.generate(prompt, greedy);
  gen.deviceSampling = false;
  const onCpu = await gen.generate(prompt, greedy);
  const entropyErr = Math.max(...onDevice.entropy[0]!.map((e, i) => Math.abs(e - onCpu.entropy[0]![i]!)));
  add({
    name: 'tokens drawn on the device',
    pass: gen.deviceDraws === 8 && onDevice.ids[0]!.join() === onCpu.ids[0]!.join() && entropyErr < 1e-4,
    detail: `${gen.deviceDraws} greedy tokens on the device: ${onDevice.ids[0]!.join(' ')}; on the CPU: ${onCpu.ids[0]!.join(' ')}; entropies within ${entropyErr.toExponential(1)}`,
  });
  gen.destroy();
  m4.destroy();
  for (const v of [av, bv, cv]) gpu.destroy(v.buf);
  return rows;
}
