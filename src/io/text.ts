// Text from outside (datasets, prompt files, configs, tokenizers) is checked, not repaired: a file
// that is not UTF-8 is refused with where it stops being UTF-8, instead of being decoded with
// replacement characters and trained on. Browser- and Node-safe.

/** `message` is "FILE: problem"; `problem` the part after the file's name. */
export class TextFileError extends Error {
  override name = 'TextFileError';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/**
 * Offset of the first byte that does not belong to a well-formed UTF-8 sequence (overlong forms,
 * surrogates and code points above U+10FFFF included), or -1 when all of `b` is UTF-8.
 */
export function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length;) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number,
      lo = 0x80,
      hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const x = b[i + k];
      if (x === undefined || x < (k === 1 ? lo : 0x80) || x > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return -1;
}

/**
 * The text of file `file`, or one TextFileError naming it and the problem: empty (when `allowEmpty` is
 * not set), binary (a NUL byte: no text format we read has one), or not UTF-8, with the line and the
 * byte offset where it stops being UTF-8. A leading byte-order mark is dropped.
 */
export function decodeText(bytes: Uint8Array, file: string, opts: { allowEmpty?: boolean } = {}): string {
  if (!bytes.length) {
    if (opts.allowEmpty) return '';
    throw new TextFileError(file, 'the file is empty');
  }
  const lineAt = (at: number) => {
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    return line;
  };
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new TextFileError(file, `a binary file, not text (a NUL byte at line ${lineAt(nul)}, byte offset ${nul})`);
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0)
    throw new TextFileError(file, `not UTF-8 text (line ${lineAt(bad)}, byte offset ${bad}: 0x${bytes[bad]!.toString(16).padStart(2, '0')}); save it as UTF-8`);
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}
