// YAML scalars written by hand for the files we export (TRL configs, model cards): every string goes out
// double-quoted with escapes, so no user text can end a document, add a key or change a type, and both
// PyYAML (YAML 1.1) and YAML 1.2 parsers read back exactly the string written.

/** Lone surrogates (which UTF-8 cannot encode) become U+FFFD. */
export function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** A double-quoted YAML scalar that PyYAML (1.1) and YAML 1.2 parsers read back as exactly `s`. */
export function yamlQuote(s: string): string {
  let out = '"';
  for (const ch of wellFormed(s)) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c === 0x2028 || c === 0x2029 || c === 0xfeff || c === 0xfffe || c === 0xffff) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}
