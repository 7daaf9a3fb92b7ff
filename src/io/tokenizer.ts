// Tokenizer for the playground: a thin, checked wrapper over @huggingface/tokenizers (tokenizer.json)
// and @huggingface/jinja (chat templates of tokenizer_config.json), plus streaming detokenization and
// stop strings. No file system access here: callers read the JSON (fs in Node, fetch in the browser).
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { parseJsonStrict } from './json-strict.ts';

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const errMsg = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** A special token in tokenizer_config.json is a string or an AddedToken object `{content, ...}`. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObj(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

// Used only when tokenizer_config.json names no (known) eos_token: special tokens that end text or a turn.
const KNOWN_EOS = ['<|endoftext|>', '</s>', '<|end_of_text|>', '<eos>', '<|im_end|>', '<|eot_id|>', '<end_of_turn>', '<|end|>'];
// End-of-turn markers: also stop generation when the chat template emits them.
const KNOWN_EOT = ['<|im_end|>', '<|eot_id|>', '<end_of_turn>', '<|end|>', '<|eom_id|>'];
const KNOWN_BOS = ['<s>', '<|begin_of_text|>', '<bos>'];
const KNOWN_PAD = ['<pad>', '[PAD]', '<|pad|>'];

/** Name of the tokenizer_config.json that sits beside `file` (for error messages). */
function configFileFor(file: string): string {
  return /tokenizer\.json$/.test(file) ? file.replace(/tokenizer\.json$/, 'tokenizer_config.json') : `${file} (tokenizer_config)`;
}

/** The chat template source: a string, or the list form [{name, template}] of which "default" is used. */
function resolveChatTemplate(v: unknown, cfgFile: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    for (const t of v) {
      if (!isObj(t) || typeof t.name !== 'string' || typeof t.template !== 'string') {
        throw new TokenizerError(`${cfgFile}: chat_template: list entries must be {name, template} strings`);
      }
    }
    return (v as { name: string; template: string }[]).find((t) => t.name === 'default')?.template;
  }
  throw new TokenizerError(`${cfgFile}: chat_template must be a string or a list of {name, template}`);
}

export class Tok {
  readonly vocabSize: number;
  readonly eosTokenIds: number[];
  readonly bosTokenId?: number;
  readonly padTokenId?: number;
  readonly hasChatTemplate: boolean;
  /** Strings of the special tokens, keyed as in tokenizer_config.json (`bos_token`, `eos_token`, ...). */
  readonly specialTokens: Readonly<Record<string, string>>;

  private readonly tk: Tokenizer;
  private readonly file: string;
  private readonly cfgFile: string;
  private readonly templateSource?: string;
  private template?: Template;
  private readonly additionalSpecial: string[];
  private readonly cleanUpSpaces: boolean;
  private readonly maxId: number;

  private constructor(tk: Tokenizer, config: Obj, file: string) {
    this.tk = tk;
    this.file = file;
    this.cfgFile = configFileFor(file);

    let maxId = -1;
    for (const id of tk.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.maxId = maxId;
    this.vocabSize = maxId + 1;

    const special: Record<string, string> = {};
    for (const [k, v] of Object.entries(config)) {
      const s = k.endsWith('_token') ? tokenContent(v) : undefined;
      if (s !== undefined) special[k] = s;
    }
    this.specialTokens = special;
    const ast = config.additional_special_tokens;
    this.additionalSpecial = Array.isArray(ast) ? ast.map(tokenContent).filter((s): s is string => s !== undefined) : [];
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;

    this.templateSource = resolveChatTemplate(config.chat_template, this.cfgFile);
    this.hasChatTemplate = this.templateSource !== undefined;

    const specialAdded = new Set<string>();
    for (const t of tk.get_added_tokens_decoder().values()) if (t.special) specialAdded.add(t.content);
    const knownIds = (names: string[], filter: (n: string) => boolean = () => true): number[] =>
      names.filter((n) => specialAdded.has(n) && filter(n)).map((n) => this.tokenId(n)!);
    const idOf = (key: string): number | undefined => (special[key] === undefined ? undefined : this.tokenId(special[key]));

    const eos: number[] = [];
    const cfgEos = idOf('eos_token');
    if (cfgEos !== undefined) eos.push(cfgEos);
    else eos.push(...knownIds(KNOWN_EOS));
    const tpl = this.templateSource;
    if (tpl !== undefined) eos.push(...knownIds(KNOWN_EOT, (n) => tpl.includes(n)));
    this.eosTokenIds = [...new Set(eos)];
    this.bosTokenId = idOf('bos_token') ?? (special.bos_token === undefined ? knownIds(KNOWN_BOS)[0] : undefined);
    this.padTokenId = idOf('pad_token') ?? (special.pad_token === undefined ? knownIds(KNOWN_PAD)[0] : undefined);
  }

  /**
   * Builds a tokenizer from parsed tokenizer.json (and optionally tokenizer_config.json) contents.
   * Either may also be given as JSON text. `file` names tokenizer.json in errors; the config is named
   * as the tokenizer_config.json beside it.
   */
  static fromJson(tokenizerJson: unknown, tokenizerConfig?: unknown, file = 'tokenizer.json'): Tok {
    const cfgFile = configFileFor(file);
    const parse = (text: string, name: string): unknown => {
      try {
        return parseJsonStrict(text);
      } catch (e) {
        throw new TokenizerError(`${name}: invalid JSON (${errMsg(e)})`);
      }
    };
    if (typeof tokenizerJson === 'string') tokenizerJson = parse(tokenizerJson, file);
    if (typeof tokenizerConfig === 'string') tokenizerConfig = parse(tokenizerConfig, cfgFile);
    if (!isObj(tokenizerJson)) throw new TokenizerError(`${file}: expected a JSON object`);
    const model = tokenizerJson.model;
    if (!isObj(model)) throw new TokenizerError(`${file}: no "model" object`);
    // The library falls back to a "legacy" model for any unknown type and takes a missing vocabulary
    // as an empty one; both would encode text to nothing or to undefined ids, so reject them here.
    const type = model.type ?? (Array.isArray(model.vocab) ? 'Unigram' : 'BPE');
    if (type !== 'BPE' && type !== 'WordPiece' && type !== 'Unigram') {
      throw new TokenizerError(`${file}: unsupported model type ${JSON.stringify(model.type)} (BPE, WordPiece or Unigram)`);
    }
    const vocab = model.vocab;
    const vocabOk = type === 'Unigram' ? Array.isArray(vocab) && vocab.length > 0 : isObj(vocab) && Object.keys(vocab).length > 0;
    if (!vocabOk) throw new TokenizerError(`${file}: model.vocab must be a non-empty ${type === 'Unigram' ? 'list' : 'object'}`);
    if (type === 'BPE') {
      const merges = model.merges;
      if (!Array.isArray(merges)) throw new TokenizerError(`${file}: model.merges must be a list`);
      const bad = merges.findIndex((m: unknown) =>
        typeof m === 'string' ? !m.includes(' ') : !(Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string'),
      );
      if (bad >= 0) throw new TokenizerError(`${file}: model.merges[${bad}] must be "a b" or ["a", "b"]`);
    }
    const addedTokens = tokenizerJson.added_tokens ?? [];
    if (!Array.isArray(addedTokens)) throw new TokenizerError(`${file}: "added_tokens" must be a list`);
    addedTokens.forEach((t: unknown, i) => {
      if (!isObj(t) || typeof t.content !== 'string' || !Number.isSafeInteger(t.id) || (t.id as number) < 0) {
        throw new TokenizerError(`${file}: added_tokens[${i}] must have a string "content" and a non-negative integer "id"`);
      }
    });
    if (tokenizerConfig !== undefined && tokenizerConfig !== null && !isObj(tokenizerConfig)) {
      throw new TokenizerError(`${cfgFile}: expected a JSON object`);
    }
    const config: Obj = isObj(tokenizerConfig) ? tokenizerConfig : {};

    // The library wants all component keys present (null when absent) and uses special tokens of the
    // config as plain strings; hand it normalised shallow copies, never the caller's objects.
    const json: Obj = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...tokenizerJson, added_tokens: addedTokens };
    const libConfig: Obj = {};
    for (const [k, v] of Object.entries(config)) {
      if (k === 'chat_template') continue;
      if (k.endsWith('_token')) {
        const s = tokenContent(v);
        if (s !== undefined) libConfig[k] = s;
      } else if (k === 'additional_special_tokens') {
        if (Array.isArray(v)) libConfig[k] = v.map(tokenContent).filter((s) => s !== undefined);
      } else libConfig[k] = v;
    }
    let tk: Tokenizer;
    try {
      tk = new Tokenizer(json, libConfig);
    } catch (e) {
      throw new TokenizerError(`${file}: not a usable tokenizer (${errMsg(e)})`);
    }
    return new Tok(tk, config, file);
  }

  /** Token ids of `text`. addSpecialTokens (default true, as in transformers) runs the post-processor (e.g. a BOS). */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    let enc: { ids: number[]; tokens: string[] };
    try {
      enc = this.tk.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true });
    } catch (e) {
      throw new TokenizerError(`${this.file}: cannot encode text (${errMsg(e)})`);
    }
    const bad = enc.ids.findIndex((id) => !Number.isInteger(id));
    if (bad >= 0) throw new TokenizerError(`${this.file}: token ${JSON.stringify(enc.tokens[bad])} is not in the vocabulary and there is no unk_token`);
    return enc.ids;
  }

  /**
   * Text of `ids`. Ids outside the vocabulary decode to nothing (a model's embedding may be larger than
   * its tokenizer). Spaces are cleaned up ("a ." -> "a.") only where tokenizer_config asks for it.
   */
  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    const known: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id)) throw new TokenizerError(`${this.file}: cannot decode ${String(id)}: not an integer token id`);
      if (id >= 0 && id <= this.maxId && this.tk.id_to_token(id) !== undefined) known.push(id);
    }
    if (known.length === 0) return '';
    try {
      return this.tk.decode(known, {
        skip_special_tokens: opts.skipSpecialTokens ?? false,
        clean_up_tokenization_spaces: this.cleanUpSpaces,
      });
    } catch (e) {
      throw new TokenizerError(`${this.file}: cannot decode ids (${errMsg(e)})`);
    }
  }

  tokenId(token: string): number | undefined {
    return this.tk.token_to_id(token);
  }

  /** The token string of an id (byte-level tokens appear in their mapped form, e.g. "Ġthe"). */
  idToken(id: number): string | undefined {
    return this.tk.id_to_token(id);
  }

  /**
   * Renders the chat template with `messages`, `add_generation_prompt`, and the special tokens of
   * tokenizer_config.json (bos_token, eos_token, pad_token, unk_token, ..., additional_special_tokens).
   * `enableThinking` is passed as `enable_thinking`, as transformers' apply_chat_template passes its extra
   * keyword arguments (Qwen3's switch: false writes an empty <think></think> after the generation prompt);
   * left out, it is undefined, the template's default (Qwen3 thinks). Templates that do not read it ignore it.
   */
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean; enableThinking?: boolean } = {}): string {
    if (this.templateSource === undefined) throw new TokenizerError(`${this.cfgFile}: no chat_template`);
    if (this.template === undefined) {
      try {
        this.template = new Template(this.templateSource);
      } catch (e) {
        throw new TokenizerError(`${this.cfgFile}: chat_template does not parse: ${errMsg(e)}`);
      }
    }
    const ctx: Record<string, unknown> = {
      ...this.specialTokens,
      additional_special_tokens: this.additionalSpecial,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      ...(opts.enableThinking === undefined ? {} : { enable_thinking: opts.enableThinking }),
    };
    try {
      return this.template.render(ctx);
    } catch (e) {
      throw new TokenizerError(`${this.cfgFile}: chat_template failed: ${errMsg(e)}`);
    }
  }

  /** Prompt formatting used by the playground: a one-user-turn chat with the generation prompt when the
   * tokenizer has a chat template, else the plain prompt text. A conversation (TRL's conversational
   * prompt) goes through the template with the generation prompt; without a template only a single user
   * message can be formatted, as its plain text (the same rule as for a text prompt).
   * Thinking is off unless asked for: the playground samples short answers (a few dozen tokens) to rank,
   * score and train on, and a Qwen3 left in its default thinking mode spends them on a <think> block, so
   * the samples would be cut-off reasoning and the reward would judge thoughts instead of answers. */
  formatPrompt(prompt: string | ChatMessage[], opts: { enableThinking?: boolean } = {}): string {
    const chat = { addGenerationPrompt: true, enableThinking: opts.enableThinking ?? false };
    if (typeof prompt !== 'string') {
      if (this.hasChatTemplate) return this.applyChatTemplate(prompt, chat);
      if (prompt.length === 1 && prompt[0]!.role === 'user') return prompt[0]!.content;
      throw new TokenizerError(`${this.cfgFile}: no chat_template, so a system or multi-turn conversational prompt cannot be formatted`);
    }
    return this.hasChatTemplate ? this.applyChatTemplate([{ role: 'user', content: prompt }], chat) : prompt;
  }

  /** Ids of formatPrompt(prompt). A chat template writes its own special tokens (e.g. bos_token), so the
   * post-processor's are only added to plain prompts; no BOS is doubled. */
  encodePrompt(prompt: string | ChatMessage[]): number[] {
    return this.encode(this.formatPrompt(prompt), { addSpecialTokens: !this.hasChatTemplate });
  }
}

const REPLACEMENT = '\uFFFD';
const PROMPT_CONTEXT = 5; // prompt tokens decoded before the first generated one, for spacing context

/**
 * Incremental detokenizer for streaming: push ids as they are generated, get the new text that is safe
 * to show (never a broken UTF-8 character or partial byte-level token: text ending in U+FFFD is held back
 * until the next token completes it, or until flush()).
 *
 * It decodes a short window: the tokens of the last emitted chunk (context, so e.g. a SentencePiece
 * leading space is kept or stripped as in a full decode) plus the pending ones, and emits what the
 * window's text adds to the context's text. With `promptIds`, the text continues the prompt; the
 * concatenated output then equals decode(prompt + generated) minus decode(prompt); without, decode(generated).
 */
export class StreamDecoder {
  private window: number[];
  private prefix: string;
  private readIndex: number; // window[0, readIndex) is context; window[readIndex, ...) is not yet emitted
  private emitted = '';
  private readonly skip: boolean;
  private readonly tok: Tok;

  constructor(tok: Tok, promptIds: number[] = [], opts: { skipSpecialTokens?: boolean } = {}) {
    this.tok = tok;
    this.skip = opts.skipSpecialTokens ?? false;
    this.window = promptIds.slice(-PROMPT_CONTEXT);
    this.prefix = this.decode(this.window);
    // A prompt ending in an incomplete character gives no usable context.
    if (this.prefix.endsWith(REPLACEMENT)) ((this.window = []), (this.prefix = ''));
    this.readIndex = this.window.length;
  }

  /** Everything emitted so far. */
  get text(): string {
    return this.emitted;
  }

  push(id: number): string {
    this.window.push(id);
    const text = this.decode(this.window);
    if (text.length <= this.prefix.length || text.endsWith(REPLACEMENT)) return '';
    return this.emit(text);
  }

  /** Emits whatever is held back (e.g. an incomplete character at the end of generation). */
  flush(): string {
    const text = this.decode(this.window);
    return text.length > this.prefix.length ? this.emit(text) : '';
  }

  private emit(text: string): string {
    // For a decoder whose text of earlier tokens changes with later ones (not the case for byte-level,
    // SentencePiece or WordPiece decoders), text may not start with prefix: emit past its length anyway.
    const out = text.slice(this.prefix.length);
    // The emitted chunk becomes the context of the next one.
    this.window = this.window.slice(this.readIndex);
    this.readIndex = this.window.length;
    this.prefix = this.decode(this.window);
    this.emitted += out;
    return out;
  }

  private decode(ids: number[]): string {
    return this.tok.decode(ids, { skipSpecialTokens: this.skip });
  }
}

/** Index in `text` where any of `stops` first occurs, or -1. Empty stop strings are ignored. */
export function findStop(text: string, stops: string[]): number {
  let best = -1;
  for (const s of stops) {
    if (s.length === 0) continue;
    const i = text.indexOf(s);
    if (i !== -1 && (best === -1 || i < best)) best = i;
  }
  return best;
}

/**
 * Index from which `text` ends with the beginning of some stop string (text that a streaming UI should
 * hold back until the next chunk shows whether the stop completes), or text.length when none.
 */
export function partialStopStart(text: string, stops: string[]): number {
  let start = text.length;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > 0; n--) {
      if (text.length - n < start && text.endsWith(s.slice(0, n))) {
        start = text.length - n;
        break;
      }
    }
  }
  return start;
}
