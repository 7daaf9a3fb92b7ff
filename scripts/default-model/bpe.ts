// Learns byte-level BPE merges for the built-in model's tokenizer from its corpus, and writes them as a
// standard Hugging Face tokenizer.json (ByteLevel pre-tokenizer and decoder, BPE model). This is only the
// training of a vocabulary, done once by the build script; encoding and decoding always go through
// @huggingface/tokenizers (src/io/tokenizer.ts).
//
// Merges are learned the classic way (Sennrich et al. 2016, GPT-2's byte-level variant): split text with
// GPT-2's pre-tokenization pattern, map bytes to printable characters, then repeatedly merge the most
// frequent adjacent pair (ties broken by the pair's text) until the vocabulary is full. All 256 byte
// symbols are in the vocabulary, so any text can be encoded.

/** GPT-2's reversible byte -> printable character map. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) (bs.push(b), cs.push(256 + n++));
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
}

const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export function learnBpe(texts: string[], vocabSize: number, specials: string[]): { vocab: Map<string, number>; merges: [string, string][] } {
  const b2u = bytesToUnicode();
  const enc = new TextEncoder();
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of t.match(PRETOKENIZE) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1);
  const words = [...counts].map(([w, c]) => ({ syms: [...enc.encode(w)].map((b) => b2u[b]!), c }));
  const vocab = new Map<string, number>();
  for (const ch of [...b2u].sort()) vocab.set(ch, vocab.size);
  const merges: [string, string][] = [];
  while (vocab.size + specials.length < vocabSize) {
    const pairs = new Map<string, number>();
    for (const { syms, c } of words)
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = syms[i] + '\u0000' + syms[i + 1];
        pairs.set(k, (pairs.get(k) ?? 0) + c);
      }
    let best: string | undefined,
      bestC = 1;
    for (const [k, c] of pairs) if (c > bestC || (c === bestC && best !== undefined && k < best)) ((best = k), (bestC = c));
    if (best === undefined) break; // nothing occurs twice any more
    const [a, b] = best.split('\u0000') as [string, string];
    merges.push([a, b]);
    vocab.set(a + b, vocab.size);
    for (const w of words) {
      for (let i = 0; i + 1 < w.syms.length; i++) {
        if (w.syms[i] === a && w.syms[i + 1] === b) w.syms.splice(i, 2, a + b);
      }
    }
  }
  for (const s of specials) vocab.set(s, vocab.size);
  return { vocab, merges };
}

export function tokenizerJson(vocab: Map<string, number>, merges: [string, string][], specials: string[]): Record<string, unknown> {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s) => ({ id: vocab.get(s)!, content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
}
