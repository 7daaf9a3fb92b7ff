// LoRA: the adapted model equals the base with merged weights W + (alpha/r) B A, in logits and in
// gradients; dropout's backward matches finite differences; the base stays frozen; PEFT files round trip.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/io/folder.ts';
import { loadModel } from '../src/model/index.ts';
import { exportModelFiles } from '../src/model/export.ts';
import { exportAdapterFiles, LORA_DEFAULTS, loadAdapter, LoraSet, mergeLora, restoreWeights } from '../src/model/lora.ts';
import type { Transformer } from '../src/model/transformer.ts';
import { AdamW, ADAMW_DEFAULTS } from '../src/train/adamw.ts';
import { readPeftAdapter } from '../src/io/peft.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';
import { dot, relErr, testGpu } from './helpers/gpu.ts';
import { randn } from './ref/ops.ts';

const ids = (name: string) => (JSON.parse(readFileSync(`tests/fixtures/${name}/reference.json`, 'utf8')) as { input_ids: number[][] }).input_ids;

async function lossAndLogits(model: Transformer, batch: number[][], lora?: LoraSet, grads = false) {
  const gpu = model.gpu;
  const plan = await model.plan(batch.length, batch[0]!.length, { training: grads, lora });
  plan.setBatch(batch.flat());
  await gpu.check('run', () => gpu.run(grads ? [...plan.zeroGrads, ...plan.forward, ...plan.lossFused, ...plan.backward] : [...plan.forward, ...plan.loss]));
  const loss = await plan.readLoss();
  const logits = grads ? undefined : await plan.readLogits();
  plan.destroy();
  return { loss, logits };
}

for (const name of ['gpt2-tiny', 'llama-tiny', 'qwen2-tiny', 'qwen3-tiny']) {
  describe(`LoRA on ${name}`, () => {
    it('equals the merged model in logits and gradients (every target module)', async () => {
      const gpu = await testGpu();
      const files = await readModelFolder(`tests/fixtures/${name}`);
      const base = loadModel(gpu, files).model;
      const gpt2 = base.cfg.arch === 'gpt2';
      const lora = new LoraSet(
        base,
        {
          r: 3,
          alpha: 6,
          dropout: 0,
          targets: gpt2 ? ['c_attn', 'c_proj', 'c_fc'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
        },
        { optimizer: true },
      );
      expect(lora.modules.size).toBe(gpt2 ? 8 : 14);
      lora.init(3);
      const batch = ids(name);
      expect((await lossAndLogits(base, batch, lora)).logits).toEqual((await lossAndLogits(base, batch)).logits); // B = 0: no change

      // random B so the update is not zero; merge W' = W + s B A into a full model
      const merged = loadModel(gpu, files, { grads: true }).model;
      const s = lora.scale,
        r = 3;
      const AB = new Map<string, { A: Float64Array; B: Float64Array }>();
      let seed = 10;
      for (const m of lora.modules.values()) {
        const A = Float64Array.from(await lora.params.download(`${m.module}.lora_A.weight`));
        const B = randn(m.Out * r, seed++, 0.05);
        lora.params.upload(`${m.module}.lora_B.weight`, Float32Array.from(B));
        AB.set(m.module, { A, B });
        const W = await base.params.download(`${m.module}.weight`);
        const Wm = new Float32Array(W.length);
        for (let o = 0; o < m.Out; o++)
          for (let i = 0; i < m.In; i++) {
            let u = 0;
            for (let k = 0; k < r; k++) u += B[o * r + k]! * A[k * m.In + i]!;
            const at = gpt2 ? i * m.Out + o : o * m.In + i;
            Wm[at] = W[at]! + s * u;
          }
        merged.params.upload(`${m.module}.weight`, Wm);
      }
      const a = await lossAndLogits(base, batch, lora),
        b = await lossAndLogits(merged, batch);
      expect(relErr(a.logits!, b.logits!)).toBeLessThan(1e-5);

      await lossAndLogits(base, batch, lora, true);
      await lossAndLogits(merged, batch, undefined, true);
      for (const m of lora.modules.values()) {
        const { A, B } = AB.get(m.module)!;
        const dW = await merged.params.download(`${m.module}.weight`, 'grad');
        const dWeff = (o: number, i: number) => dW[gpt2 ? i * m.Out + o : o * m.In + i]!;
        const wantB = new Float64Array(m.Out * r),
          wantA = new Float64Array(r * m.In);
        for (let o = 0; o < m.Out; o++)
          for (let i = 0; i < m.In; i++) {
            const g = dWeff(o, i);
            for (let k = 0; k < r; k++) {
              wantB[o * r + k] += s * g * A[k * m.In + i]!;
              wantA[k * m.In + i] += s * B[o * r + k]! * g;
            }
          }
        expect(relErr(await lora.params.download(`${m.module}.lora_B.weight`, 'grad'), wantB), `${m.module} dB`).toBeLessThan(1e-3);
        expect(relErr(await lora.params.download(`${m.module}.lora_A.weight`, 'grad'), wantA), `${m.module} dA`).toBeLessThan(1e-3);
      }

      // mergeLora folds the same update into the base itself; restoreWeights undoes it exactly
      const before = (await lossAndLogits(base, batch)).logits!;
      const saved = await mergeLora(lora);
      expect(relErr((await lossAndLogits(base, batch)).logits!, a.logits!)).toBeLessThan(1e-5);
      for (const m of lora.modules.values()) {
        expect(relErr(await base.params.download(`${m.module}.weight`), await merged.params.download(`${m.module}.weight`)), m.module).toBeLessThan(1e-6);
      }
      restoreWeights(base, saved);
      expect((await lossAndLogits(base, batch)).logits).toEqual(before);
      lora.destroy();
      base.params.destroy();
      merged.params.destroy();
    });
  });
}

describe('LoRA training', () => {
  it('dropout: the adapter gradient matches finite differences of the same masked loss', async () => {
    const gpu = await testGpu();
    const base = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny')).model;
    const lora = new LoraSet(base, { r: 4, alpha: 8, dropout: 0.3, targets: ['q_proj', 'v_proj', 'down_proj'] }, { optimizer: true });
    lora.init(5);
    for (const m of lora.modules.values()) lora.params.upload(`${m.module}.lora_B.weight`, Float32Array.from(randn(m.Out * 4, 77, 0.1)));
    lora.setStep(42);
    const batch = ids('llama-tiny');
    const name = 'model.layers.1.mlp.down_proj.lora_A.weight';
    const A0 = Float64Array.from(await lora.params.download(name));
    await lossAndLogits(base, batch, lora, true);
    const grad = await lora.params.download(name, 'grad');
    const u = randn(A0.length, 8);
    const norm = Math.sqrt(dot(u, u));
    const eps = 1e-2;
    const at = async (sign: number) => {
      lora.params.upload(
        name,
        Float32Array.from(A0, (v, i) => v + (sign * eps * u[i]!) / norm),
      );
      return (await lossAndLogits(base, batch, lora, true)).loss;
    };
    const num = ((await at(1)) - (await at(-1))) / (2 * eps);
    expect(Math.abs(num - dot(grad, u) / norm)).toBeLessThan(2e-3 * Math.max(1, Math.abs(num)));
    // a different step draws a different mask
    lora.params.upload(name, Float32Array.from(A0));
    const l42 = (await lossAndLogits(base, batch, lora, true)).loss;
    lora.setStep(43);
    expect((await lossAndLogits(base, batch, lora, true)).loss).not.toBe(l42);
    lora.destroy();
    base.params.destroy();
  });

  it('trains the adapter with AdamW while the base stays frozen, and round-trips through PEFT files', async () => {
    const gpu = await testGpu();
    const base = loadModel(gpu, await readModelFolder('tests/fixtures/gpt2-tiny')).model;
    const lora = new LoraSet(base, { r: 4, alpha: 16, dropout: 0, targets: ['c_attn', 'c_fc'] }, { optimizer: true });
    lora.init(1);
    const batch = ids('gpt2-tiny');
    const plan = await base.plan(2, batch[0]!.length, { training: true, lora });
    const opt = await AdamW.create(gpu, lora.params, { ...ADAMW_DEFAULTS, lr: 1e-2, weightDecay: 0 });
    const before = await base.params.download('h.0.attn.c_attn.weight');
    plan.setBatch(batch.flat());
    const losses: number[] = [];
    for (let step = 1; step <= 8; step++) {
      opt.prepare(step, 1e-2);
      await gpu.check('lora step', () => gpu.run([...plan.zeroGrads, ...plan.forward, ...plan.lossFused, ...plan.backward, ...opt.calls]));
      losses.push(await plan.readLoss());
    }
    expect(losses[7]!).toBeLessThan(losses[0]! - 0.2);
    expect(await base.params.download('h.0.attn.c_attn.weight')).toEqual(before);
    plan.destroy();

    const files = await exportAdapterFiles(lora, {
      baseModel: 'gpt2-tiny',
      meta: { producer: 'rlhf-playground', stage: 'sft', steps: 8, baseModel: 'gpt2-tiny', date: '2026-11-25T00:00:00Z' },
    });
    const peft = readPeftAdapter(files, 'adapter');
    expect(peft.loras.map((l) => l.module)).toContain('transformer.h.1.mlp.c_fc');
    expect(peft.config.fanInFanOut).toBe(true);
    const cfg = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')!)) as Record<string, unknown>;
    expect(cfg.peft_type).toBe('LORA');
    expect(cfg.r).toBe(4);
    const again = loadAdapter(base, files, 'adapter');
    const x = await lossAndLogits(base, batch, lora),
      y = await lossAndLogits(base, batch, again);
    expect(y.logits).toEqual(x.logits);
    const llama = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny')).model;
    expect(() => loadAdapter(llama, files, 'adapter')).toThrow(/no module of this llama model matches the LoRA targets c_attn, c_fc/);
    llama.params.destroy();
    again.destroy();
    lora.destroy();
    base.params.destroy();
  });
});

for (const name of ['qwen2-tiny', 'qwen3-tiny']) {
  it(`LoRA on ${name}: biases and q/k norms stay frozen while every projection trains; PEFT round trip; the merged export loads back`, async () => {
    const gpu = await testGpu();
    const base = loadModel(gpu, await readModelFolder(`tests/fixtures/${name}`)).model;
    const lora = new LoraSet(base, { ...LORA_DEFAULTS.llama, r: 4, dropout: 0 }, { optimizer: true });
    expect([...lora.modules.keys()].filter((m) => m.startsWith('model.layers.0.')).map((m) => m.split('.').pop())).toEqual([
      'q_proj',
      'k_proj',
      'v_proj',
      'o_proj',
      'gate_proj',
      'up_proj',
      'down_proj',
    ]);
    lora.init(2);
    const frozen = base.params.entries.map((e) => e.name).filter((n) => /_proj\.bias$|_norm\.weight$/.test(n));
    expect(frozen.length).toBe(name === 'qwen2-tiny' ? 6 : 4); // q/k/v biases of 2 layers; q_norm, k_norm of 2 layers
    const before = new Map(await Promise.all(frozen.map(async (n) => [n, await base.params.download(n)] as const)));
    const batch = ids(name);
    const plan = await base.plan(2, batch[0]!.length, { training: true, lora });
    const opt = await AdamW.create(gpu, lora.params, { ...ADAMW_DEFAULTS, lr: 1e-2, weightDecay: 0 });
    plan.setBatch(batch.flat());
    const losses: number[] = [];
    for (let step = 1; step <= 6; step++) {
      opt.prepare(step, 1e-2);
      await gpu.check('lora step', () => gpu.run([...plan.zeroGrads, ...plan.forward, ...plan.lossFused, ...plan.backward, ...opt.calls]));
      losses.push(await plan.readLoss());
    }
    plan.destroy();
    expect(losses[5]!).toBeLessThan(losses[0]! - 0.1);
    for (const [n, w] of before) expect(await base.params.download(n), n).toEqual(w);

    const meta = { producer: 'rlhf-playground', stage: 'sft', steps: 6, baseModel: name, date: '2026-12-04T00:00:00Z' };
    const files = await exportAdapterFiles(lora, { baseModel: name, meta });
    const peft = readPeftAdapter(files, 'adapter');
    expect(peft.loras.map((l) => l.module)).toContain('model.layers.1.self_attn.q_proj'); // under base_model.model., as PEFT names Qwen2ForCausalLM's modules
    expect(peft.config.fanInFanOut).toBe(false);
    const again = loadAdapter(base, files, 'adapter');
    const adapted = (await lossAndLogits(base, batch, lora)).logits!;
    expect((await lossAndLogits(base, batch, again)).logits).toEqual(adapted);

    // merged into the base and exported as a Hugging Face folder, it loads back as the same model
    const saved = await mergeLora(lora);
    const folder = await exportModelFiles(base, { meta });
    const merged = loadModel(gpu, {
      config: JSON.parse(new TextDecoder().decode(folder.get('config.json')!)),
      weights: [parseSafetensors(folder.get('model.safetensors')!, 'model.safetensors')],
    }).model;
    expect(merged.cfg.raw.architectures).toEqual([name === 'qwen2-tiny' ? 'Qwen2ForCausalLM' : 'Qwen3ForCausalLM']);
    expect(relErr((await lossAndLogits(merged, batch)).logits!, adapted)).toBeLessThan(1e-5);
    restoreWeights(base, saved);
    for (const x of [again, lora]) x.destroy();
    for (const m of [base, merged]) m.params.destroy();
  });
}
