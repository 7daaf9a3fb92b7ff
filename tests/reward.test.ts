// The reward model as the paper trains it: all pairs of a K-way ranking in one batch element, scores at
// the last token, ties dropped, held-out pair accuracy, a bias that centres the demonstrations at 0.
import { describe, expect, it } from 'vitest';
import { importJsonl } from '../src/io/datasets.ts';
import { readModelFolder } from '../src/io/folder.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';
import { loadModelFiles } from '../src/io/sources.ts';
import { Tok } from '../src/io/tokenizer.ts';
import { rewardBiasOf } from '../src/model/export.ts';
import { ScoreHead } from '../src/model/head.ts';
import { loadModel } from '../src/model/index.ts';
import { loadAdapterWithHead, LoraSet, LORA_DEFAULTS } from '../src/model/lora.ts';
import type { Transformer } from '../src/model/transformer.ts';
import { resolveConfig } from '../src/shared/config.ts';
import { buildStage } from '../src/train/stages.ts';
import { ADAMW_DEFAULTS } from '../src/train/adamw.ts';
import { pairwiseLoss, rankingPairs, RewardTrainer, type Ranking } from '../src/train/reward.ts';
import { layoutRows } from '../src/train/layout.ts';
import { Rng } from '../src/shared/sampling.ts';
import { dot, testGpu } from './helpers/gpu.ts';
import { randn } from './ref/ops.ts';

describe('pairwise ranking loss', () => {
  it('takes all K(K-1)/2 pairs, drops ties, and its gradient matches finite differences', () => {
    expect(rankingPairs(4).length).toBe(6);
    expect(rankingPairs(9).length).toBe(36);
    expect(rankingPairs(3, [0, 1, 1])).toEqual([
      [0, 1],
      [0, 2],
    ]); // the tie between 1 and 2 gives no pair
    expect(rankingPairs(2, [0, 0])).toEqual([]);
    const scores = [0.3, -1.2, 2.0, 0.7];
    const pairs = rankingPairs(4, [1, 0, 3, 2]);
    const { loss, dscores, correct } = pairwiseLoss(scores, pairs);
    expect(correct).toBe(pairs.filter(([w, l]) => scores[w]! > scores[l]!).length);
    for (let i = 0; i < 4; i++) {
      const e = 1e-6,
        up = [...scores],
        dn = [...scores];
      up[i]! += e;
      dn[i]! -= e;
      expect((pairwiseLoss(up, pairs).loss - pairwiseLoss(dn, pairs).loss) / (2 * e)).toBeCloseTo(dscores[i]!, 6);
    }
    expect(loss).toBeGreaterThan(0);
  });
});

/** Prompts of random tokens with K completions of random lengths, ranked longer-is-better (equal lengths tie). */
function lengthRankings(n: number, seed: number, V: number): Ranking[] {
  const rng = new Rng(seed);
  const tok = () => Math.floor(rng.next() * (V - 1));
  return Array.from({ length: n }, () => {
    const K = 2 + Math.floor(rng.next() * 3);
    const completions = Array.from({ length: K }, () => Array.from({ length: 1 + Math.floor(rng.next() * 14) }, tok));
    const lengths = completions.map((c) => c.length);
    const distinct = [...new Set(lengths)].sort((a, b) => b - a);
    return { prompt: Array.from({ length: 3 + Math.floor(rng.next() * 4) }, tok), completions, ranks: lengths.map((l) => distinct.indexOf(l)) };
  });
}

describe('reward model training', () => {
  it('the gradient through the score head and trunk matches finite differences of the ranking loss', async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'), { optimizer: true });
    const head = new ScoreHead(model, { optimizer: true });
    head.init(1);
    const cfg = {
      ...ADAMW_DEFAULTS,
      lr: 0,
      weightDecay: 0,
      maxGradNorm: 0,
      warmupSteps: 0,
      totalSteps: 1,
      minLrRatio: 1,
      promptsPerStep: 2,
      maxK: 4,
      seqLen: 24,
      epochs: 1,
      padId: 376,
    };
    const rm = await RewardTrainer.create(model, head, cfg);
    const batch = lengthRankings(2, 5, 377);
    const loss0 = (await rm.trainStep(batch)).loss; // lr 0: computes gradients, leaves weights
    const name = 'model.layers.1.self_attn.v_proj.weight';
    const w0 = await model.params.download(name);
    const g = await model.params.download(name, 'grad');
    const u = randn(w0.length, 3);
    const n = Math.sqrt(dot(u, u)),
      eps = 1e-2;
    const lossAt = async (s: number) => {
      model.params.upload(
        name,
        Float32Array.from(w0, (v, i) => v + (s * eps * u[i]!) / n),
      );
      return (await rm.trainStep(batch)).loss;
    };
    const num = ((await lossAt(1)) - (await lossAt(-1))) / (2 * eps);
    expect(Math.abs(num - dot(g, u) / n)).toBeLessThan(3e-3 * Math.max(1, Math.abs(num)));
    expect(loss0).toBeGreaterThan(0);
    rm.destroy();
    head.destroy();
    model.params.destroy();
  });

  it('learns "longer is better" to >= 90% held-out pair accuracy in one epoch, then centres the demonstrations', async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/gpt2-tiny'), { optimizer: true });
    const head = new ScoreHead(model, { optimizer: true });
    head.init(2);
    const train = lengthRankings(160, 11, 377),
      heldOut = lengthRankings(40, 12, 377);
    const cfg = {
      ...ADAMW_DEFAULTS,
      lr: 2e-3,
      weightDecay: 0,
      warmupSteps: 4,
      totalSteps: 40,
      minLrRatio: 0.1,
      promptsPerStep: 4,
      maxK: 4,
      seqLen: 24,
      epochs: 1,
      padId: 376,
    };
    const rm = await RewardTrainer.create(model, head, cfg);
    const before = await rm.evaluate(heldOut);
    for (let i = 0; i < train.length; i += 4) await rm.trainStep(train.slice(i, i + 4));
    const after = await rm.evaluate(heldOut);
    expect(after.accuracy, `held-out pair accuracy ${after.accuracy} (before: ${before.accuracy})`).toBeGreaterThanOrEqual(0.9);
    const demos = train.slice(0, 20).map((r) => ({ prompt: r.prompt, completion: r.completions[0]! }));
    // normalised: the ranked samples' scores have standard deviation 1, the demonstrations mean 0, the order unchanged
    const samples = train.slice(0, 30).flatMap((r) => r.completions.map((completion) => ({ prompt: r.prompt, completion })));
    const { gain } = await rm.normalize(samples, demos);
    expect(gain).not.toBeCloseTo(1, 1);
    const ns = await rm.score(samples),
      mean = ns.reduce((a, b) => a + b, 0) / ns.length;
    expect(Math.sqrt(ns.reduce((a, x) => a + (x - mean) ** 2, 0) / (ns.length - 1))).toBeCloseTo(1, 4);
    const nd = await rm.score(demos);
    expect(Math.abs(nd.reduce((a, b) => a + b, 0) / nd.length)).toBeLessThan(1e-4);
    expect((await rm.evaluate(heldOut)).accuracy).toBe(after.accuracy);
    expect((await rm.normalize(samples, demos)).gain).toBeCloseTo(1, 4); // a second time changes nothing
    rm.destroy();
    head.destroy();
    model.params.destroy();
  });
});

describe("the score head's learning rate", () => {
  it("headLrRatio scales the head's step alone: one AdamW step moves the head r times as far, the trunk the same", async () => {
    const gpu = await testGpu();
    const step = async (ratio: number) => {
      const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/llama-tiny'), { optimizer: true });
      const head = new ScoreHead(model, { optimizer: true });
      head.init(1);
      const cfg = {
        ...ADAMW_DEFAULTS,
        lr: 1e-3,
        weightDecay: 0,
        maxGradNorm: 0,
        warmupSteps: 0,
        totalSteps: 1,
        minLrRatio: 1,
        promptsPerStep: 2,
        maxK: 4,
        seqLen: 24,
        epochs: 1,
        padId: 376,
        headLrRatio: ratio,
      };
      const rm = await RewardTrainer.create(model, head, cfg);
      const name = 'model.layers.1.self_attn.v_proj.weight';
      const h0 = await head.params.download('score.weight'),
        w0 = await model.params.download(name);
      await rm.trainStep(lengthRankings(2, 5, 377));
      const h1 = await head.params.download('score.weight'),
        w1 = await model.params.download(name);
      rm.destroy();
      head.destroy();
      model.params.destroy();
      const moved = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0));
      return { head: moved(h1, h0), trunk: moved(w1, w0) };
    };
    const one = await step(1),
      ten = await step(10);
    expect(one.head).toBeGreaterThan(0);
    expect(ten.head / one.head).toBeCloseTo(10, 2);
    expect(ten.trunk).toBeCloseTo(one.trunk, 6);
    expect(() => resolveConfig('rm', { headLrRatio: 0 }, { maxPositions: 64, hidden: 64 })).toThrow('config.headLrRatio');
  });
});

describe('scoring with the training plan', () => {
  it("LoRA dropout is off when the reward model scores (held-out accuracy, normalisation): the scores do not depend on the step's mask", async () => {
    const gpu = await testGpu();
    const { model } = loadModel(gpu, await readModelFolder('tests/fixtures/gpt2-tiny'));
    const lora = new LoraSet(model, { ...LORA_DEFAULTS.gpt2, dropout: 0.5 }, { optimizer: true });
    lora.init(3);
    const head = new ScoreHead(model, { optimizer: true });
    head.init(4);
    const cfg = {
      ...ADAMW_DEFAULTS,
      lr: 1e-2,
      weightDecay: 0,
      warmupSteps: 0,
      totalSteps: 4,
      minLrRatio: 1,
      promptsPerStep: 4,
      maxK: 4,
      seqLen: 24,
      epochs: 1,
      padId: 376,
    };
    const rm = await RewardTrainer.create(model, head, cfg, lora);
    const train = lengthRankings(16, 21, 377);
    for (let i = 0; i < train.length; i += 4) await rm.trainStep(train.slice(i, i + 4)); // B moves off 0: the adapter (and its dropout) now counts
    const seqs = lengthRankings(4, 22, 377).flatMap((r) => r.completions.map((completion) => ({ prompt: r.prompt, completion })));
    const a = await rm.score(seqs);
    lora.setStep(97); // another mask: a pass with dropout on would score differently
    const b = await rm.score(seqs);
    expect(b).toEqual(a);
    // and the same pass with dropout on does depend on the mask, so the check above has teeth
    const raw = async (step: number) => {
      lora.setStep(step);
      const { ids } = layoutRows(seqs, rm.rows, 24, 376);
      rm.plans.full.setBatch(ids);
      await gpu.run(rm.plans.full.forward, 'rm');
      return [...(await gpu.read(rm.plans.full.scores!))];
    };
    expect(await raw(1)).not.toEqual(await raw(2));
    rm.destroy();
    head.destroy();
    lora.destroy();
    model.params.destroy();
  });
});

describe('a trained reward model exported as Hugging Face loads it, and read back', () => {
  const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'dog', 'ran', 'far', 'away', 'big', 'red'];
  let x = 11;
  const say = (n: number) => Array.from({ length: n }, () => words[(x = (x * 1103515245 + 12345) % 2 ** 31) % words.length]).join(' ');
  const lines = [
    ...Array.from({ length: 12 }, () => ({ prompt: say(3), completions: [say(8), say(5), say(2)] })),
    ...Array.from({ length: 4 }, () => ({ prompt: say(3), completion: say(6) })), // demonstrations: the bias fit
  ];
  const records = importJsonl(lines.map((l) => JSON.stringify(l)).join('\n'), 'rm.jsonl').records;
  const T = 24;

  async function train(dir: string, loraRank: number) {
    const gpu = await testGpu();
    const files = await readModelFolder(dir);
    const tok = Tok.fromJson(files.tokenizer, files.tokenizerConfig, `${dir}/tokenizer.json`);
    const { model: base } = loadModel(gpu, files);
    const cfg = resolveConfig('rm', { seed: 1, steps: 3, batchSize: 4, seqLen: T, lr: 1e-3, loraRank }, base.cfg);
    const run = await buildStage({ gpu, files, tok, base }, 'rm', cfg, records);
    for (let s = 0; s < run.totalSteps; s++) await run.step(s);
    const result = await run.finish();
    const out = await run.exportFiles(run.totalSteps);
    const eos = tok.eosTokenIds[0]!;
    const demos = lines.flatMap((l) =>
      'completion' in l ? [[...tok.encodePrompt(l.prompt), ...tok.encode(l.completion, { addSpecialTokens: false }), eos]] : [],
    );
    return { gpu, files, base, cfg, run, result, out, demos, eos, tok };
  }

  /** Each sequence's score at its last token (what RewardTrainer.score reads, before the bias). */
  async function scores(model: Transformer, headWeight: Float32Array, seqs: number[][], pad: number, lora?: LoraSet): Promise<number[]> {
    const head = new ScoreHead(model);
    head.params.upload('score.weight', headWeight);
    const plan = await model.plan(seqs.length, T, { score: head, lora });
    const ids = new Int32Array(seqs.length * T).fill(pad);
    seqs.forEach((s, r) => s.slice(0, T).forEach((id, t) => (ids[r * T + t] = id)));
    plan.setBatch(ids);
    await model.gpu.check('scores', () => model.gpu.run(plan.forward));
    const all = await model.gpu.read(plan.scores!);
    plan.destroy();
    head.destroy();
    return seqs.map((s, r) => all[r * T + Math.min(T, s.length) - 1]!);
  }

  const json = (b: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;
  const folderOf = (files: Map<string, Uint8Array>, name: string) => loadModelFiles(async (p) => files.get(p), name);

  it('fully fine-tuned: a LlamaForSequenceClassification folder (model.* + score.weight, no lm_head) scoring as trained, bias included', async () => {
    const { gpu, files, base, run, result, out, demos, eos, tok } = await train('tests/fixtures/llama-tiny', 0);
    expect(base.cfg.tiedEmbeddings).toBe(false); // the case where dropping lm_head matters
    expect([...out.keys()].sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    const config = json(out.get('config.json'));
    expect(config).toMatchObject({
      architectures: ['LlamaForSequenceClassification'],
      model_type: 'llama',
      num_labels: 1,
      id2label: { 0: 'LABEL_0' },
      label2id: { LABEL_0: 0 },
      pad_token_id: eos,
    });
    const st = parseSafetensors(out.get('model.safetensors')!, 'model.safetensors');
    const names = [...st.tensors.keys()];
    expect(names).toContain('score.weight');
    expect(names).not.toContain('lm_head.weight');
    expect(names.filter((n) => n !== 'score.weight').every((n) => n.startsWith('model.'))).toBe(true);
    expect(names.length).toBe(base.params.entries.length); // the trunk (every parameter but lm_head) and the score head
    expect(st.tensors.get('score.weight')!.shape).toEqual([1, base.cfg.hidden]);
    const bias = run.state().bias!;
    expect(bias).not.toBe(0);
    expect(result.reward_bias).toBe(bias);
    expect(Number(st.metadata.reward_bias)).toBe(bias);

    // reference: the run's own weights, head and bias
    const { model: ref } = loadModel(gpu, files);
    for (const e of ref.params.entries) ref.params.upload(e.name, await run.trainables.weights!.download(e.name));
    const headW = await run.trainables.head!.download('score.weight');
    const want = (await scores(ref, headW, demos, eos)).map((s) => s + bias);
    // read back from the files alone
    const back = loadModel(gpu, await folderOf(out, 'rm'));
    expect(back.model.cfg.sequenceClassification).toBe(true);
    const got = (await scores(back.model, back.score!.data, demos, eos)).map((s) => s + rewardBiasOf(st.metadata, 'rm'));
    expect(got).toEqual(want);
    expect(Math.abs(got.reduce((a, b) => a + b, 0) / got.length)).toBeLessThan(1e-4); // the bias centres the demonstrations
    // and the head's scale puts the ranked samples at standard deviation 1 (in the exported weight itself)
    const ranked = lines.flatMap((l) =>
      'completions' in l ? l.completions.map((c) => [...tok.encodePrompt(l.prompt), ...tok.encode(c, { addSpecialTokens: false }), eos]) : [],
    );
    const rs = await scores(back.model, back.score!.data, ranked, eos),
      rmean = rs.reduce((a, b) => a + b, 0) / rs.length;
    expect(Math.sqrt(rs.reduce((a, v) => a + (v - rmean) ** 2, 0) / (rs.length - 1))).toBeCloseTo(1, 4);
    expect(result.reward_gain).toBeGreaterThan(0);
    expect(run.epochs).toBeUndefined(); // steps: 3 overrides the epochs
    for (const m of [ref, back.model]) m.params.destroy();
    run.destroy();
    base.params.destroy();
  });

  it('LoRA: a PEFT SEQ_CLS adapter with modules_to_save ["score"], scoring as trained, bias included', async () => {
    const { base, cfg, run, out, demos, eos } = await train('tests/fixtures/gpt2-tiny', 4);
    const ac = json(out.get('adapter_config.json'));
    expect(ac).toMatchObject({ task_type: 'SEQ_CLS', modules_to_save: ['score'], peft_type: 'LORA', r: 4 });
    const st = parseSafetensors(out.get('adapter_model.safetensors')!, 'adapter_model.safetensors');
    expect(st.tensors.get('base_model.model.score.weight')!.shape).toEqual([1, base.cfg.hidden]);
    expect(
      [...st.tensors.keys()]
        .filter((k) => k !== 'base_model.model.score.weight')
        .every((k) => /^base_model\.model\.transformer\.h\.\d+\..*\.lora_[AB]\.weight$/.test(k)),
    ).toBe(true);
    const bias = run.state().bias!;
    expect(Number(st.metadata.reward_bias)).toBe(bias);

    const refLora = new LoraSet(base, { ...LORA_DEFAULTS.gpt2, r: cfg.loraRank, alpha: cfg.loraAlpha, dropout: cfg.loraDropout });
    for (const e of refLora.params.entries) refLora.params.upload(e.name, await run.trainables.weights!.download(e.name));
    const want = (await scores(base, await run.trainables.head!.download('score.weight'), demos, eos, refLora)).map((s) => s + bias);
    const back = loadAdapterWithHead(base, out, 'rm-adapter');
    const got = (await scores(base, back.score!, demos, eos, back.lora)).map((s) => s + rewardBiasOf(back.metadata, 'rm-adapter'));
    expect(got).toEqual(want);
    refLora.destroy();
    back.lora.destroy();
    run.destroy();
    base.params.destroy();
  });
  it('a run records the epochs it makes: auto (0) resolved, none when the step count overrides them', async () => {
    const gpu = await testGpu();
    const dir = 'tests/fixtures/gpt2-tiny';
    const files = await readModelFolder(dir);
    const tok = Tok.fromJson(files.tokenizer, files.tokenizerConfig, `${dir}/tokenizer.json`);
    const { model: base } = loadModel(gpu, files);
    for (const [input, epochs, totalSteps] of [
      [{ epochs: 0 }, 8, 24],
      [{ epochs: 3 }, 3, 9],
      [{ epochs: 3, steps: 5 }, undefined, 5],
    ] as const) {
      // 12 rankings, one held out: 11 at 4 per step = 3 steps a pass; auto = enough passes for 32 steps, at most 8
      const run = await buildStage(
        { gpu, files, tok, base },
        'rm',
        resolveConfig('rm', { seed: 1, batchSize: 4, seqLen: T, loraRank: 4, ...input }, base.cfg),
        records,
      );
      expect([run.epochs, run.totalSteps], JSON.stringify(input)).toEqual([epochs, totalSteps]);
      run.destroy();
    }
    base.params.destroy();
  });
});
