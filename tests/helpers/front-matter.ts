// A strict reader for the front matter src/io/model-card.ts writes, for the tests: `---`, then lines
// `key: "double-quoted"` or `key:` followed by `- "double-quoted"` items, then `---`. Double-quoted
// scalars are decoded with every escape YAML 1.1 and 1.2 define; anything else (a raw line break inside
// a value, an unknown escape, a plain scalar, a stray line) throws, so a test fails instead of reading
// something a real YAML parser would read differently.

const ESCAPES: Record<string, string> = {
  '0': '\0',
  a: '\x07',
  b: '\b',
  t: '\t',
  '\t': '\t',
  n: '\n',
  v: '\v',
  f: '\f',
  r: '\r',
  e: '\x1b',
  ' ': ' ',
  '"': '"',
  '/': '/',
  '\\': '\\',
  N: '\u0085',
  _: '\u00a0',
  L: '\u2028',
  P: '\u2029',
};
const HEX: Record<string, number> = { x: 2, u: 4, U: 8 };

export function yamlDoubleQuoted(s: string): string {
  if (!s.startsWith('"') || !s.endsWith('"') || s.length < 2) throw new Error(`not a double-quoted scalar: ${s}`);
  let out = '';
  for (let i = 1; i < s.length - 1; i++) {
    const c = s[i]!;
    if (c === '"') throw new Error(`unescaped quote inside ${s}`);
    if (c === '\n' || c === '\r') throw new Error('raw line break inside a quoted scalar');
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = s[++i]!;
    if (e in ESCAPES) out += ESCAPES[e];
    else if (e in HEX) {
      const hex = s.slice(i + 1, i + 1 + HEX[e]!);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== HEX[e]) throw new Error(`bad \\${e} escape in ${s}`);
      out += String.fromCodePoint(parseInt(hex, 16));
      i += HEX[e]!;
    } else throw new Error(`unknown escape \\${e} in ${s}`);
  }
  return out;
}

/** The front matter of a Markdown file as key -> string | string[], and the body after it. */
export function readFrontMatter(md: string): { meta: Map<string, string | string[]>; body: string } {
  if (!md.startsWith('---\n')) throw new Error('no front matter: the file must start with ---');
  const end = md.indexOf('\n---\n', 3);
  if (end < 0) throw new Error('the front matter never ends');
  const meta = new Map<string, string | string[]>();
  let list: string[] | undefined;
  for (const line of md.slice(4, end).split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^([a-z_]+):$/.exec(line))) {
      if (meta.has(m[1]!)) throw new Error(`duplicate key ${m[1]}`);
      meta.set(m[1]!, (list = []));
    } else if ((m = /^([a-z_]+): (".*")$/.exec(line))) {
      if (meta.has(m[1]!)) throw new Error(`duplicate key ${m[1]}`);
      meta.set(m[1]!, yamlDoubleQuoted(m[2]!));
      list = undefined;
    } else if (list && (m = /^- (".*")$/.exec(line))) list.push(yamlDoubleQuoted(m[1]!));
    else throw new Error(`unexpected front-matter line ${JSON.stringify(line)}`);
  }
  return { meta, body: md.slice(end + 5) };
}
