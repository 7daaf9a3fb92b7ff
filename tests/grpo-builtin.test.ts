// GRPO and RLOO on the built-in model through the stage builder (as the page and the CLI run them),
// with a verifiable reward: "answer in at most 8 words" (max_words:8, graded to 0 at 16 words). The
// built-in model's answers to its own prompts run about 20 tokens at first; a working trainer shortens
// them within a CI-sized run while the KL to the starting model is reported.
import { describe, expect, it } from 'vitest';
import { builtinPrompts } from '../src/experiment/prompts.ts';
import { readModelFolder } from '../src/io/folder.ts';
import { Tok } from '../src/io/tokenizer.ts';
import { loadModel } from '../src/model/index.ts';
import { resolveConfig } from '../src/shared/config.ts';
import { builtinReward } from '../src/shared/rewards.ts';
import { buildStage } from '../src/train/stages.ts';
import { testGpu } from './helpers/gpu.ts';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('GRPO and RLOO on the built-in model', () => {
  for (const stage of ['grpo', 'rloo'] as const) {
    it(`${stage} raises a verifiable reward (at most 8 words) with the defaults, KL reported`, async () => {
      const gpu = await testGpu();
      const files = await readModelFolder('public/models/default');
      const tok = Tok.fromJson(files.tokenizer!, files.tokenizerConfig, 'tokenizer.json');
      const { model: base } = loadModel(gpu, { ...files, configFile: `${files.source}/config.json` });
      const prompts = builtinPrompts({ ppoPrompts: 32 }).ppo(1);
      // the defaults but for the length of the run, the completions' length, the KL term (GRPO's default
      // beta is 0) and RLOO's batch (4 prompts x 2, not 8 x 2: CI's time)
      const c = resolveConfig(
        stage,
        { loraRank: 8, steps: 8, maxNewTokens: 24, rewardFuncs: ['max_words'], ...(stage === 'grpo' ? { beta: 0.04 } : { batchSize: 4 }) },
        base.cfg,
      );
      const run = await buildStage({ gpu, files, tok, base, rewardFunctions: [builtinReward('max_words:8')] }, stage, c, prompts);
      const steps = [];
      for (let s = 0; s < run.totalSteps; s++) steps.push(await run.step(s));
      const trace = steps
        .map((s) => `${s.metrics.reward!.toFixed(2)}/${s.metrics.kl!.toFixed(3)}/${s.metrics['completions/mean_length']!.toFixed(1)}`)
        .join(' ');
      console.log(stage, 'reward/kl/length per step:', trace);
      expect(mean(steps.slice(-3).map((s) => s.metrics.reward!)), trace).toBeGreaterThan(mean(steps.slice(0, 3).map((s) => s.metrics.reward!)) + 0.1);
      expect(steps[0]!.metrics.kl!).toBeLessThan(1e-3); // the adapter starts at zero: the policy is the reference
      expect(steps.at(-1)!.metrics.kl!).toBeGreaterThan(0);
      const table = steps.at(-1)!.completions!;
      expect(table).toHaveLength(c.batchSize * c.numSamples);
      expect(table[0]).toMatchObject({ step: 8, prompt: expect.any(String), completion: expect.any(String), rewards: { max_words: expect.any(Number) } });
      run.destroy();
      base.params.destroy();
    }, 600_000);
  }
});
