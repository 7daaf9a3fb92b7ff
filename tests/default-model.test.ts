// The built-in model in public/models/default: small enough to ship, loads offline with its tokenizer
// and chat template, and gives varied, readable samples for the bundled demo prompts.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readModelFolder } from '../src/io/folder.ts';
import { Tok } from '../src/io/tokenizer.ts';
import { loadModel } from '../src/model/index.ts';
import { GENERATE_DEFAULTS, Generator } from '../src/train/generate.ts';
import { testGpu } from './helpers/gpu.ts';
import { BUILTIN_MODEL_FILES } from '../src/shared/builtin-model.ts';

const DIR = 'public/models/default';
const demo = readFileSync('public/prompts/demo.jsonl', 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { prompt: string; task: string });

describe('built-in model', () => {
  it('ships at most 10 MB with a tokenizer, a chat template and its training record', () => {
    let total = 0;
    // the page loads it requesting these files and no others
    expect(readdirSync(DIR).sort()).toEqual([...BUILTIN_MODEL_FILES].sort());
    for (const f of BUILTIN_MODEL_FILES) total += statSync(`${DIR}/${f}`).size;
    expect(total).toBeLessThan(10 * 2 ** 20);
    const training = JSON.parse(readFileSync(`${DIR}/training.json`, 'utf8')) as { recipe: string; steps: number; heldOutLoss: number };
    expect(training.recipe).toBe('scripts/default-model/train.ts');
    expect(training.heldOutLoss).toBeLessThan(2.5);
  });

  it('gives varied, readable samples for the demo prompts', async () => {
    const gpu = await testGpu();
    const files = await readModelFolder(DIR);
    expect(files.weights[0]!.metadata.stage).toBe('sft');
    const tok = Tok.fromJson(files.tokenizer, files.tokenizerConfig, `${DIR}/tokenizer.json`);
    expect(tok.hasChatTemplate).toBe(true);
    const { model } = loadModel(gpu, files);
    const gen = new Generator(model);
    let finished = 0,
      total = 0,
      readable = 0;
    const prompts = demo.filter((_, i) => i % 9 === 0).slice(0, 6);
    for (const [i, { prompt }] of prompts.entries()) {
      const r = await gen.generate(tok.encodePrompt(prompt), {
        ...GENERATE_DEFAULTS,
        numSamples: 4,
        maxNewTokens: 96,
        temperature: 0.9,
        topP: 0.95,
        seed: i,
        stopTokenIds: tok.eosTokenIds,
      });
      const texts = r.ids.map((ids) => tok.decode(ids, { skipSpecialTokens: true }).trim());
      expect(new Set(texts).size, `samples for "${prompt}" are all the same`).toBeGreaterThan(1);
      for (const t of texts) {
        total++;
        const words = t.split(/\s+/).filter(Boolean);
        // readable: plain ASCII sentences of real-looking words
        if (/^[\x20-\x7e]+$/.test(t) && words.length >= 2 && words.every((w) => /^[A-Za-z',.!?;:\-"()0-9]+$/.test(w) && w.length <= 16)) readable++;
      }
      finished += r.finish.filter((f) => f === 'eos').length;
    }
    expect(readable / total).toBeGreaterThan(0.8);
    expect(finished / total).toBeGreaterThan(0.8); // the model learned to stop
    gen.destroy();
    model.params.destroy();
  });
});
