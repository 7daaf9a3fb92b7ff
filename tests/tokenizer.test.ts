import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { Tok, TokenizerError, StreamDecoder, findStop, partialStopStart } from '../src/io/tokenizer.ts';
import { parseJsonStrict } from '../src/io/json-strict.ts';

const FIXTURES = ['gpt2-tiny', 'llama-tiny'];
const dir = (name: string) => new URL(`./fixtures/${name}/`, import.meta.url);
const readJson = (name: string, file: string): any => JSON.parse(readFileSync(new URL(file, dir(name)), 'utf8'));
const loadTok = (name: string, config?: unknown) => Tok.fromJson(readJson(name, 'tokenizer.json'), config, `${name}/tokenizer.json`);

const SMOL_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** The gpt2-tiny tokenizer.json with ChatML special tokens added (ids 377, 378). */
function chatJson(): any {
  const json = readJson('gpt2-tiny', 'tokenizer.json');
  const added = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  json.added_tokens.push(added(377, '<|im_start|>'), added(378, '<|im_end|>'));
  return json;
}

/** Streams ids one at a time; returns the chunks (flush last). */
function stream(tok: Tok, ids: number[], promptIds?: number[]): string[] {
  const sd = new StreamDecoder(tok, promptIds);
  const chunks = ids.map((id) => sd.push(id));
  chunks.push(sd.flush());
  expect(sd.text).toBe(chunks.join(''));
  return chunks;
}

function expectTokError(f: () => unknown, ...fragments: string[]): TokenizerError {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(TokenizerError);
  for (const s of fragments) expect((caught as Error).message).toContain(s);
  return caught as TokenizerError;
}

describe.each(FIXTURES)('%s tokenizer', (name) => {
  const tok = loadTok(name);
  const encodings: Record<string, number[]> = readJson(name, 'reference.json').encodings;

  it('encodes the reference texts to the reference ids and decodes them back', () => {
    expect(Object.keys(encodings).length).toBeGreaterThan(0);
    for (const [text, ids] of Object.entries(encodings)) {
      expect(tok.encode(text), text).toEqual(ids);
      expect(tok.encode(text, { addSpecialTokens: false }), text).toEqual(ids);
      expect(tok.decode(ids), text).toBe(text);
    }
  });

  it('works the same on JSON parsed strictly (null-prototype objects) and on JSON text', () => {
    const text = readFileSync(new URL('tokenizer.json', dir(name)), 'utf8');
    for (const t of [Tok.fromJson(parseJsonStrict(text)), Tok.fromJson(text)]) {
      for (const [s, ids] of Object.entries(encodings)) expect(t.encode(s)).toEqual(ids);
    }
  });

  it('knows its vocabulary and special tokens', () => {
    expect(tok.vocabSize).toBe(377);
    expect(tok.tokenId('<|endoftext|>')).toBe(376);
    expect(tok.tokenId('no such token')).toBeUndefined();
    expect(tok.eosTokenIds).toEqual([376]); // no tokenizer_config: known end-of-text special token
    expect(tok.hasChatTemplate).toBe(false);
    expect(tok.formatPrompt('Hi there')).toBe('Hi there');
    expect(tok.encodePrompt('Hi there')).toEqual(tok.encode('Hi there'));
  });

  it('handles special tokens, empty input and unknown ids in decode', () => {
    const ids = tok.encode('Hello<|endoftext|> world');
    expect(ids).toContain(376);
    expect(tok.decode(ids)).toBe('Hello<|endoftext|> world');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('Hello world');
    expect(tok.decode([])).toBe('');
    expect(tok.encode('')).toEqual([]);
    expect(tok.decode([72, 9999, -1, 101])).toBe('He'); // ids past the tokenizer's vocabulary decode to nothing
    expectTokError(() => tok.decode([1.5]), 'not an integer');
  });

  it('does not clean up spaces unless tokenizer_config asks for it', () => {
    const text = "a . b , c 's ?";
    expect(tok.decode(tok.encode(text))).toBe(text);
    const cleaning = loadTok(name, { clean_up_tokenization_spaces: true });
    expect(cleaning.decode(cleaning.encode(text))).toBe("a. b, c's?");
  });

  it('streams to exactly the full decode, one id at a time', () => {
    const texts = [...Object.keys(encodings), 'héllo 🙂 日本', "a . b , c 's", 'x<|endoftext|>y', ''];
    for (const text of texts) {
      const ids = tok.encode(text);
      const chunks = stream(tok, ids);
      expect(chunks.join(''), text).toBe(tok.decode(ids));
      for (const c of chunks) expect(c, text).not.toContain('\uFFFD');
    }
  });

  it('never emits half a multi-byte character', () => {
    const text = 'héllo 🙂 日本';
    const ids = tok.encode(text);
    expect(ids.length).toBeGreaterThan([...text].length); // byte tokens: é, 🙂 and the kanji span several ids
    const chunks = stream(tok, ids);
    expect(chunks.filter((c) => c === '').length).toBeGreaterThan(0); // some pushes held bytes back
    expect(chunks.join('')).toBe(text);
    // The emoji (4 bytes, 4 ids) comes out in one piece.
    expect(chunks).toContain('🙂');
  });

  it('continues a prompt', () => {
    const prompt = tok.encode('The teacher ranked');
    const gen = tok.encode(' the answers 日本!');
    const chunks = stream(tok, gen, prompt);
    expect(chunks.join('')).toBe(tok.decode([...prompt, ...gen]).slice(tok.decode(prompt).length));
    for (const c of chunks) expect(c).not.toContain('\uFFFD');
  });

  it('flushes an incomplete character at the end', () => {
    const ids = tok.encode('ab日');
    const cut = ids.slice(0, -1); // drops the last byte of 日
    const sd = new StreamDecoder(tok);
    const pushed = cut.map((id) => sd.push(id)).join('');
    expect(pushed).toBe('ab');
    expect(sd.flush()).toBe('\uFFFD');
    expect(sd.text).toBe(tok.decode(cut));
    expect(sd.flush()).toBe('');
  });
});

/** A tiny SentencePiece-style (Llama 2) tokenizer: Metaspace via normalizer, byte fallback, BOS post-processor. */
function sentencePieceJson(): any {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  ['▁', 'h', 'i', 'e', 'l', 'o', '▁h', '▁hi', 'll', '▁he', '▁hell', '▁hello'].forEach((t, i) => (vocab[t] = 259 + i));
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      unk_token: '<unk>',
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges: ['▁ h', '▁h i', 'l l', '▁h e', '▁he ll', '▁hell o'],
    },
  };
}

describe('SentencePiece-style tokenizer (byte fallback, leading-space strip)', () => {
  const tok = Tok.fromJson(sentencePieceJson(), { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });

  it('encodes with BOS and byte fallback and decodes back', () => {
    const ids = tok.encode('hi hello hé🙂');
    expect(ids[0]).toBe(1);
    expect(ids).toContain(3 + 0xc3); // é as bytes
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('hi hello hé🙂');
    expect(tok.encode('hi', { addSpecialTokens: false })).toEqual([266]);
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.bosTokenId).toBe(1);
  });

  it('streams to exactly the full decode', () => {
    for (const text of ['hi hello hé🙂 x', ' hi', 'hello', '日本']) {
      for (const skipSpecialTokens of [false, true]) {
        const ids = tok.encode(text);
        const sd = new StreamDecoder(tok, [], { skipSpecialTokens });
        const chunks = ids.map((id) => sd.push(id));
        chunks.push(sd.flush());
        expect(chunks.join(''), text).toBe(tok.decode(ids, { skipSpecialTokens }));
        for (const c of chunks) expect(c).not.toContain('\uFFFD');
      }
    }
  });

  it('keeps the space of the first generated word after a prompt', () => {
    const prompt = tok.encode('hi');
    const gen = tok.encode('hello hi', { addSpecialTokens: false });
    expect(stream(tok, gen, prompt).join('')).toBe(' hello hi');
    expect(stream(tok, gen).join('')).toBe('hello hi');
  });
});

describe('special tokens from tokenizer_config', () => {
  it('reads eos/bos/pad as strings or {content} objects', () => {
    const t = Tok.fromJson(chatJson(), {
      eos_token: { content: '<|im_end|>', special: true },
      bos_token: '<|im_start|>',
      pad_token: '<|endoftext|>',
    });
    expect(t.eosTokenIds).toEqual([378]);
    expect(t.bosTokenId).toBe(377);
    expect(t.padTokenId).toBe(376);
    expect(t.vocabSize).toBe(379);
    expect(t.tokenId('<|im_end|>')).toBe(378);
  });

  it('adds the end-of-turn token of the chat template to eos', () => {
    const t = Tok.fromJson(chatJson(), { eos_token: '<|endoftext|>', chat_template: SMOL_TEMPLATE });
    expect(t.eosTokenIds).toEqual([376, 378]);
    const plain = Tok.fromJson(chatJson(), { eos_token: '<|endoftext|>' });
    expect(plain.eosTokenIds).toEqual([376]);
    expect(plain.bosTokenId).toBeUndefined();
    expect(plain.padTokenId).toBeUndefined();
  });
});

describe('chat templates', () => {
  const messages = [{ role: 'user' as const, content: 'Hi!' }];
  const tok = Tok.fromJson(chatJson(), { eos_token: '<|im_end|>', bos_token: '<|im_start|>', chat_template: SMOL_TEMPLATE }, 'smol/tokenizer.json');

  it('renders the SmolLM2 ChatML template', () => {
    expect(tok.hasChatTemplate).toBe(true);
    const system = '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n';
    expect(tok.applyChatTemplate(messages)).toBe(`${system}<|im_start|>user\nHi!<|im_end|>\n`);
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true })).toBe(`${system}<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n`);
    expect(
      tok.applyChatTemplate([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi!' },
        { role: 'assistant', content: 'Hello.' },
      ]),
    ).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n');
    expect(tok.formatPrompt('Hi!')).toBe(tok.applyChatTemplate(messages, { addGenerationPrompt: true }));
  });

  it('encodes the rendered special tokens as single ids', () => {
    const ids = tok.encodePrompt('Hi!');
    expect(ids[0]).toBe(377);
    expect(ids.filter((id) => id === 378).length).toBe(2);
    expect(tok.decode(ids)).toBe(tok.formatPrompt('Hi!'));
    // The assistant's end of turn stops generation and can be hidden from the output.
    expect(tok.eosTokenIds).toContain(378);
    expect(tok.decode([...tok.encode('Hello.'), 378], { skipSpecialTokens: true })).toBe('Hello.');
  });

  it("formats TRL's conversational prompts with the generation prompt; one user message as a text prompt", () => {
    const conversation = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'Hi!' },
    ];
    expect(tok.formatPrompt(conversation)).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n');
    expect(tok.encodePrompt(conversation)).toEqual(tok.encode(tok.formatPrompt(conversation), { addSpecialTokens: false }));
    expect(tok.encodePrompt(messages)).toEqual(tok.encodePrompt('Hi!'));
    // without a template a single user message is its plain text, as a text prompt is; anything more cannot be formatted
    const plain = loadTok('gpt2-tiny');
    expect(plain.encodePrompt([{ role: 'user', content: 'Hi there' }])).toEqual(plain.encodePrompt('Hi there'));
    expectTokError(() => plain.formatPrompt(conversation), 'no chat_template', 'system or multi-turn');
  });

  it('passes the special tokens and uses "default" of the list form', () => {
    const t = Tok.fromJson(chatJson(), {
      bos_token: '<|im_start|>',
      eos_token: { content: '<|im_end|>' },
      pad_token: '<|endoftext|>',
      additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
      chat_template: [
        { name: 'tool_use', template: 'TOOLS' },
        {
          name: 'default',
          template: '{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}{{ pad_token }}{{ additional_special_tokens | length }}',
        },
      ],
    });
    expect(t.applyChatTemplate(messages)).toBe('<|im_start|>Hi!<|im_end|><|endoftext|>2');
    const noDefault = Tok.fromJson(chatJson(), { chat_template: [{ name: 'tool_use', template: 'TOOLS' }] });
    expect(noDefault.hasChatTemplate).toBe(false);
  });

  it('reports template errors as TokenizerError', () => {
    const raising = Tok.fromJson(chatJson(), { chat_template: "{{ raise_exception('bad') }}" }, 'm/tokenizer.json');
    const e = expectTokError(() => raising.applyChatTemplate(messages), 'm/tokenizer_config.json', 'chat_template', 'bad');
    expect(e.name).toBe('TokenizerError');
    expectTokError(() => raising.formatPrompt('x'), 'bad');
    const unparsable = Tok.fromJson(chatJson(), { chat_template: '{% for m in messages %}{{ m.content }' });
    expectTokError(() => unparsable.applyChatTemplate(messages), 'tokenizer_config.json', 'chat_template does not parse');
    const none = loadTok('gpt2-tiny');
    expectTokError(() => none.applyChatTemplate(messages), 'no chat_template');
    expectTokError(() => Tok.fromJson(chatJson(), { chat_template: 42 }), 'chat_template must be');
  });
});

describe('Qwen chat templates (tokenizer_config.json of Qwen/Qwen2.5-0.5B-Instruct and Qwen/Qwen3-0.6B, in tests/fixtures/chat-templates)', () => {
  const qwen = (file: string) =>
    Tok.fromJson(
      chatJson(),
      {
        bos_token: null,
        eos_token: '<|im_end|>',
        pad_token: '<|endoftext|>',
        chat_template: readFileSync(new URL(`./fixtures/chat-templates/${file}`, import.meta.url), 'utf8'),
      },
      `${file}/tokenizer.json`,
    );
  const turns = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'Hi!' },
    { role: 'assistant' as const, content: 'Hello.' },
  ];

  it('Qwen2.5: its default system prompt unless one is given, ChatML turns, the generation prompt; <|im_end|> ends a turn', () => {
    const tok = qwen('qwen2.5.jinja');
    const system = '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n';
    expect(tok.formatPrompt('Hi!')).toBe(`${system}<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n`);
    expect(tok.applyChatTemplate(turns)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n',
    );
    const ids = tok.encodePrompt('Hi!');
    expect(ids.filter((id) => id === 377).length).toBe(3); // <|im_start|> of system, user and assistant, one id each
    expect(tok.decode(ids)).toBe(tok.formatPrompt('Hi!'));
    expect(tok.eosTokenIds).toEqual([378]);
    expect(tok.padTokenId).toBe(376);
    expect(tok.bosTokenId).toBeUndefined();
  });

  it('Qwen3: no default system prompt; thinking kept only in the turn after the last user message; the generation prompt leaves thinking on', () => {
    const tok = qwen('qwen3.jinja');
    expect(tok.applyChatTemplate([{ role: 'user', content: 'Hi!' }], { addGenerationPrompt: true })).toBe(
      '<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(tok.applyChatTemplate(turns)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello.<|im_end|>\n',
    );
    const thought = [
      { role: 'user' as const, content: 'Hi!' },
      { role: 'assistant' as const, content: '<think>\nA greeting.\n</think>\n\nHello.' },
      { role: 'user' as const, content: 'Again.' },
    ];
    expect(tok.applyChatTemplate(thought, { addGenerationPrompt: true })).toBe(
      '<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nAgain.<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(tok.applyChatTemplate(thought.slice(0, 2))).toBe(
      '<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n<think>\nA greeting.\n</think>\n\nHello.<|im_end|>\n',
    );
    expect(tok.decode(tok.encodePrompt(thought))).toBe(tok.formatPrompt(thought));
  });

  it("Qwen3's enable_thinking as transformers passes it: false closes an empty <think> after the generation prompt, true is the default; the playground formats prompts with thinking off", () => {
    const tok = qwen('qwen3.jinja');
    const hi = [{ role: 'user' as const, content: 'Hi!' }];
    const on = '<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n';
    const off = `${on}<think>\n\n</think>\n\n`;
    expect(tok.applyChatTemplate(hi, { addGenerationPrompt: true, enableThinking: true })).toBe(on);
    expect(tok.applyChatTemplate(hi, { addGenerationPrompt: true, enableThinking: false })).toBe(off);
    // without the generation prompt the switch changes nothing: the history renders as it is
    expect(tok.applyChatTemplate(turns, { enableThinking: false })).toBe(tok.applyChatTemplate(turns));
    expect(tok.formatPrompt('Hi!')).toBe(off);
    expect(tok.formatPrompt(hi)).toBe(off);
    expect(tok.formatPrompt('Hi!', { enableThinking: true })).toBe(on);
    expect(tok.decode(tok.encodePrompt('Hi!'))).toBe(off);
    // Qwen2.5's template has no such switch: its prompts are the same either way
    const q25 = qwen('qwen2.5.jinja');
    expect(q25.formatPrompt('Hi!')).toBe(q25.formatPrompt('Hi!', { enableThinking: true }));
    expect(q25.formatPrompt('Hi!')).toBe(q25.applyChatTemplate(hi, { addGenerationPrompt: true }));
  });
});

describe('malformed input', () => {
  const F = 'models/x/tokenizer.json';
  it('gives a TokenizerError naming the file', () => {
    const good = readJson('gpt2-tiny', 'tokenizer.json');
    const cases: unknown[] = [
      null,
      [],
      'not json',
      '{"model": {}, "model": {}}',
      {},
      { ...good, model: 'BPE' },
      { ...good, model: { type: 'Nope', vocab: {} } },
      { ...good, model: { ...good.model, merges: 5 } },
      { ...good, model: { ...good.model, vocab: 5 } },
      { ...good, model: { ...good.model, vocab: {} } },
      { ...good, model: { ...good.model, type: 'Unigram' } },
      { ...good, model: { ...good.model, merges: [['a']] } },
      { ...good, model: { ...good.model, merges: ['ab'] } },
      { ...good, added_tokens: {} },
      { ...good, added_tokens: [{ id: 'x', content: 'y' }] },
      { ...good, pre_tokenizer: { type: 'Nope' } },
      { ...good, decoder: { type: 'Nope' } },
    ];
    cases.forEach((c, i) => {
      const e = expectTokError(() => Tok.fromJson(c, undefined, F), `${F}: `);
      expect(e.message, `case ${i}`).toMatch(/^models\/x\/tokenizer\.json: /);
    });
    expectTokError(() => Tok.fromJson(good, 'nope', F), 'models/x/tokenizer_config.json: invalid JSON');
    expectTokError(() => Tok.fromJson(good, [1], F), 'models/x/tokenizer_config.json: expected a JSON object');
  });

  it('accepts a tokenizer.json without the optional component keys', () => {
    const good = readJson('gpt2-tiny', 'tokenizer.json');
    const { normalizer: _n, post_processor: _p, added_tokens: _a, ...rest } = good;
    const t = Tok.fromJson(rest);
    expect(t.encode("Hello world! It's 2026.")).toEqual(readJson('gpt2-tiny', 'reference.json').encodings["Hello world! It's 2026."]);
  });
});

describe('stop strings', () => {
  it('findStop returns the first occurrence of any stop', () => {
    expect(findStop('hello world', ['world', 'lo'])).toBe(3);
    expect(findStop('hello world', ['xyz'])).toBe(-1);
    expect(findStop('hello', [])).toBe(-1);
    expect(findStop('hello', [''])).toBe(-1);
    expect(findStop('a\n\nUser: hi', ['\nUser:', '\n\n'])).toBe(1);
    expect(findStop('<|im_end|>', ['<|im_end|>'])).toBe(0);
  });

  it('partialStopStart finds a trailing prefix of a stop', () => {
    expect(partialStopStart('hello wor', ['world'])).toBe(6);
    expect(partialStopStart('hello', ['world'])).toBe(5);
    expect(partialStopStart('abc\nUs', ['\nUser:', 'c\nX'])).toBe(3);
    expect(partialStopStart('ab', ['b', 'abc'])).toBe(0);
  });
});
