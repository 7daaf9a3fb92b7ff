// The built-in model on the page: load it from public/models/default (offline, no download from the
// Hub), pick a bundled demo prompt and stream K samples into the given elements as text.
import type { Gpu } from './gpu/runtime.ts';
import { loadModelFiles } from './io/sources.ts';
import { StreamDecoder, Tok } from './io/tokenizer.ts';
import { loadModel } from './model/index.ts';
import { GENERATE_DEFAULTS, Generator } from './train/generate.ts';

export async function demoSamples(
  gpu: Gpu,
  base: string,
  K: number,
  onPrompt: (prompt: string) => void,
  onText: (sample: number, text: string) => void,
  /** Fixes the prompt (the seed-th, round the list) and the sampling, where a page or a test asks for the same samples every time; absent: a random prompt and seed. */
  seed?: number,
): Promise<{ prompt: string; texts: string[] }> {
  const get = async (path: string) => {
    const r = await fetch(base + path);
    // a dev server answers a missing file with its index.html: that is a miss, not a file
    const html = (r.headers.get('content-type') ?? '').includes('text/html');
    return r.ok && !html ? new Uint8Array(await r.arrayBuffer()) : undefined;
  };
  const files = await loadModelFiles(get, base);
  const tok = Tok.fromJson(files.tokenizer, files.tokenizerConfig, base + 'tokenizer.json');
  const prompts = new TextDecoder()
    .decode(await get('../../prompts/demo.jsonl'))
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { prompt: string }).prompt);
  const prompt = prompts[seed === undefined ? Math.floor(Math.random() * prompts.length) : seed % prompts.length]!;
  onPrompt(prompt);
  const { model } = loadModel(gpu, files);
  const gen = new Generator(model);
  const streams = Array.from({ length: K }, () => new StreamDecoder(tok));
  const texts = Array<string>(K).fill('');
  await gen.generate(
    tok.encodePrompt(prompt),
    { ...GENERATE_DEFAULTS, numSamples: K, maxNewTokens: 96, temperature: 0.9, topP: 0.95, seed: seed ?? Date.now() % 1e6, stopTokenIds: tok.eosTokenIds },
    (k, id) => {
      if (tok.eosTokenIds.includes(id)) return;
      texts[k] += streams[k]!.push(id);
      onText(k, texts[k]!);
    },
  );
  gen.destroy();
  model.destroy();
  return { prompt, texts };
}
