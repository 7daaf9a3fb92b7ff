// Trains the built-in model that ships in public/models/default/ with this project's own SFT trainer,
// on the instruction corpus that scripts/default-model/corpus.ts generates (text the project wrote, free
// to ship). Rerun: `npm run train:default -- [--steps N] [--seed S]` (about an hour on 2 CPU cores with
// lavapipe; minutes on a GPU).
//
// Recipe: a 4-layer Llama (RMSNorm, RoPE, grouped-query attention, SwiGLU; ~1M parameters), a 2048-token
// byte-level BPE learned from the corpus (bpe.ts), prompts formatted "User: ...\nAssistant:" by the chat
// template, loss on the completion tokens and the end-of-text token. Responses in the corpus come in six styles
// (helpful, detailed, cheerful, curt, off-topic, rambling), so the model's samples for one prompt
// differ in ways a person can rank.
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { Tok } from '../../src/io/tokenizer.ts';
import { parseConfig } from '../../src/shared/model-config.ts';
import { exportModelFiles } from '../../src/model/export.ts';
import { initWeights } from '../../src/model/init.ts';
import { Transformer } from '../../src/model/transformer.ts';
import { GENERATE_DEFAULTS, Generator } from '../../src/train/generate.ts';
import { SftTrainer, sftBatch, type Example } from '../../src/train/sft.ts';
import { learnBpe, tokenizerJson as tokenizerJsonOf } from './bpe.ts';
import { demoPrompts, generateCorpus } from './corpus.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '2000' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: 'public/models/default' },
  },
});
const STEPS = Number(values.steps),
  SEED = Number(values.seed),
  OUT = values.out!;

const CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n' }}" +
  "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token + '\\n' }}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";
// The tokenizer: byte-level BPE merges learned from (a separate draw of) the corpus.
const EOT = '<|endoftext|>';
const bpeTexts = generateCorpus(20000, SEED + 7).map((e) => `User: ${e.prompt}\nAssistant: ${e.completion}`);
const { vocab, merges } = learnBpe(bpeTexts, 2048, [EOT]);
const tokenizerJson = new TextEncoder().encode(JSON.stringify(tokenizerJsonOf(vocab, merges, [EOT])));
const tokenizerConfig = { eos_token: EOT, bos_token: EOT, model_max_length: 256, chat_template: CHAT_TEMPLATE, clean_up_tokenization_spaces: false };
const tok = Tok.fromJson(JSON.parse(new TextDecoder().decode(tokenizerJson)), tokenizerConfig);
const EOS = tok.eosTokenIds[0]!;

const config = {
  model_type: 'llama',
  architectures: ['LlamaForCausalLM'],
  vocab_size: vocab.size,
  hidden_size: 128,
  intermediate_size: 352,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 32,
  hidden_act: 'silu',
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  attention_bias: false,
  mlp_bias: false,
  bos_token_id: EOS,
  eos_token_id: EOS,
};
const B = 16,
  T = 96;
const hyper = {
  lr: 3e-3,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  maxGradNorm: 1.0,
  warmupSteps: 60,
  totalSteps: STEPS,
  minLrRatio: 0.05,
  batchSize: B,
  seqLen: T,
  accumulation: 1,
};

const encodeExample = (prompt: string, completion: string): Example => ({
  prompt: tok.encode(tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }), { addSpecialTokens: false }),
  completion: [...tok.encode(' ' + completion, { addSpecialTokens: false }), EOS],
});

const gpu = await createNodeGpu();
console.log(`adapter: ${gpu.adapter.name}`);
const model = new Transformer(gpu, parseConfig(config), { optimizer: true });
initWeights(model, SEED);
const trainer = await SftTrainer.create(model, hyper);
const corpus = generateCorpus(STEPS * B, SEED).map((e) => encodeExample(e.prompt, e.completion));
const heldOut = generateCorpus(4 * B, SEED + 1000).map((e) => encodeExample(e.prompt, e.completion));
const evalBatches = [0, 1, 2, 3].map((i) => sftBatch(heldOut.slice(i * B, (i + 1) * B), B, T, EOS));
const t0 = performance.now();
let tokens = 0;
const log: { step: number; loss: number; lr: number }[] = [];
for (let s = 0; s < STEPS; s++) {
  const r = await trainer.trainStep([sftBatch(corpus.slice(s * B, (s + 1) * B), B, T, EOS)]);
  tokens += r.tokens;
  if (s % 25 === 0 || s === STEPS - 1) {
    const secs = (performance.now() - t0) / 1000;
    log.push({ step: r.step, loss: r.loss, lr: r.lr });
    console.log(
      `step ${r.step}/${STEPS} loss ${r.loss.toFixed(3)} lr ${r.lr.toExponential(2)} |g| ${r.gradNorm.toFixed(2)} ${(tokens / secs).toFixed(0)} tok/s`,
    );
  }
}
const evalLoss = await trainer.evaluate(evalBatches);
console.log(`held-out loss ${evalLoss.toFixed(3)}`);

// Samples for a few demo prompts, kept in the model folder as a record of what it does.
const gen = new Generator(model);
const samples: { prompt: string; samples: string[] }[] = [];
for (const { prompt } of demoPrompts().slice(0, 6)) {
  const ids = tok.encode(tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }), { addSpecialTokens: false });
  const g = await gen.generate(ids, {
    ...GENERATE_DEFAULTS,
    numSamples: 4,
    maxNewTokens: 80,
    temperature: 0.9,
    topK: 0,
    topP: 0.95,
    seed: 7,
    stopTokenIds: [EOS],
  });
  samples.push({ prompt, samples: g.ids.map((x) => tok.decode(x, { skipSpecialTokens: true }).trim()) });
}
console.log(JSON.stringify(samples, null, 1));

const files = await exportModelFiles(model, {
  meta: {
    producer: 'rlhf-playground',
    stage: 'sft',
    steps: trainer.step,
    baseModel: 'scratch',
    date: new Date().toISOString(),
    corpus: 'scripts/default-model/corpus.ts',
    seed: SEED,
  },
  tokenizerFiles: new Map([
    ['tokenizer.json', new Uint8Array(tokenizerJson)],
    ['tokenizer_config.json', new TextEncoder().encode(JSON.stringify(tokenizerConfig, null, 2) + '\n')],
  ]),
  generationConfig: { bos_token_id: EOS, eos_token_id: EOS, do_sample: true, temperature: 0.9, top_p: 0.95, max_new_tokens: 80 },
});
mkdirSync(OUT, { recursive: true });
for (const [name, bytes] of files) writeFileSync(`${OUT}/${name}`, bytes);
writeFileSync(
  `${OUT}/training.json`,
  JSON.stringify(
    {
      recipe: 'scripts/default-model/train.ts',
      adapter: gpu.adapter.name,
      steps: trainer.step,
      seed: SEED,
      batch: [B, T],
      hyper,
      tokens,
      seconds: Math.round((performance.now() - t0) / 1000),
      heldOutLoss: evalLoss,
      log,
      samples,
    },
    null,
    2,
  ) + '\n',
);
console.log(`wrote ${OUT}`);
process.exit(0);
