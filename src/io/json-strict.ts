// Strict RFC 8259 JSON parser for untrusted input.
// Differences from JSON.parse: duplicate keys (at any depth) are an error, objects have a
// null prototype (so "__proto__", "constructor", ... are plain data), nesting depth is bounded,
// and errors carry the path of the value being parsed.

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export class JsonSyntaxError extends Error {
  /** Keys / indices leading to the offending value (for a duplicate key: its container's path plus the key). */
  readonly path: (string | number)[];
  constructor(
    message: string,
    readonly offset: number,
    path: (string | number)[],
  ) {
    super(`${message} at offset ${offset}`);
    this.name = 'JsonSyntaxError';
    this.path = path;
  }
}

export const isJsonObject = (v: JsonValue | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const PLAIN = /[^"\\\u0000-\u001f]*/y; // run of string characters needing no escape handling
const HEX4 = /^[0-9a-fA-F]{4}$/;
const ESCAPES: ReadonlyMap<string, string> = new Map([
  ['"', '"'],
  ['\\', '\\'],
  ['/', '/'],
  ['b', '\b'],
  ['f', '\f'],
  ['n', '\n'],
  ['r', '\r'],
  ['t', '\t'],
]);

export function parseJsonStrict(text: string, maxDepth = 128): JsonValue {
  let i = 0;
  const path: (string | number)[] = [];
  const fail = (msg: string, at = i, p = path): never => {
    throw new JsonSyntaxError(msg, at, [...p]);
  };
  const unexpected = (): never => fail(i >= text.length ? 'unexpected end of input' : `unexpected character ${JSON.stringify(text[i])}`);

  const ws = () => {
    for (let c = text.charCodeAt(i); c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d; c = text.charCodeAt(++i));
  };
  const expect = (ch: string) => {
    ws();
    if (text[i] !== ch) unexpected();
    i++;
  };

  function string(): string {
    i++; // opening quote
    let out = '';
    for (;;) {
      PLAIN.lastIndex = i;
      PLAIN.exec(text);
      out += text.slice(i, PLAIN.lastIndex);
      i = PLAIN.lastIndex;
      const c = text[i];
      if (c === '"') return (i++, out);
      if (c !== '\\') return unexpected(); // end of input or raw control character
      const e = text[i + 1];
      const simple = e === undefined ? undefined : ESCAPES.get(e);
      if (simple !== undefined) {
        out += simple;
        i += 2;
      } else if (e === 'u' && HEX4.test(text.slice(i + 2, i + 6))) {
        out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16)); // lone surrogates allowed, as JSON.parse does
        i += 6;
      } else {
        fail('invalid escape sequence');
      }
    }
  }

  function value(depth: number): JsonValue {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      return c === '{' ? object(depth + 1) : array(depth + 1);
    }
    if (c === '"') return string();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) return ((i += word.length), v);
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return unexpected();
    i = NUMBER.lastIndex;
    return Number(m[0]);
  }

  function object(depth: number): JsonObject {
    const obj: JsonObject = Object.create(null);
    i++; // '{'
    ws();
    if (text[i] === '}') return (i++, obj);
    for (;;) {
      ws();
      if (text[i] !== '"') unexpected();
      const at = i;
      const key = string();
      if (Object.hasOwn(obj, key)) fail(`duplicate key ${JSON.stringify(key)}`, at, [...path, key]);
      expect(':');
      path.push(key);
      obj[key] = value(depth); // null prototype: "__proto__" becomes an own property
      path.pop();
      ws();
      if (text[i] === '}') return (i++, obj);
      if (text[i] !== ',') unexpected();
      i++;
    }
  }

  function array(depth: number): JsonValue[] {
    const arr: JsonValue[] = [];
    i++; // '['
    ws();
    if (text[i] === ']') return (i++, arr);
    for (;;) {
      path.push(arr.length);
      arr.push(value(depth));
      path.pop();
      ws();
      if (text[i] === ']') return (i++, arr);
      if (text[i] !== ',') unexpected();
      i++;
    }
  }

  const result = value(0);
  ws();
  if (i < text.length) unexpected();
  return result;
}
