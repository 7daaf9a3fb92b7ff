import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseSafetensors, readTensorF32, writeSafetensors, SafetensorsError } from '../src/io/safetensors.ts';
import { halfValue } from '../src/shared/half.ts';
import { parseJsonStrict, JsonSyntaxError } from '../src/io/json-strict.ts';

const F = 'model.safetensors';

/** Builds a file by hand: u64 LE length + header (string or raw bytes) + data. */
function build(header: string | Uint8Array, data: Uint8Array | number = 0, headerLen?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}
const entry = (dtype: string, shape: number[], begin: number, end: number) => JSON.stringify({ dtype, shape, data_offsets: [begin, end] });
const u16s = (...v: number[]) => new Uint8Array(new Uint16Array(v).buffer);

/** Asserts parse fails with a SafetensorsError whose message contains all fragments. */
function expectError(bytes: Uint8Array, ...fragments: string[]): SafetensorsError {
  let caught: unknown;
  try {
    parseSafetensors(bytes, F);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(SafetensorsError);
  const e = caught as SafetensorsError;
  expect(e.message.startsWith(`${F}: `)).toBe(true);
  for (const f of fragments) expect(e.message).toContain(f);
  return e;
}

describe('writeSafetensors / parseSafetensors round trip', () => {
  const tensors = [
    { name: 'b.weight', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, -0, 1e-30]) },
    { name: 'a.bias', shape: [3], data: Float32Array.from([Infinity, -Infinity, NaN]) },
    { name: 'scalar', shape: [], data: Float32Array.from([42]) },
    { name: 'empty', shape: [0, 5], data: new Float32Array(0) },
    { name: 'last', shape: [1], data: Float32Array.from([7]) },
  ];

  it('writes a padded header, keeps order, and reads back exactly', () => {
    const bytes = writeSafetensors(tensors, { format: 'pt', note: 'ü "quoted"' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(headerText.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(headerText.slice(headerText.trimEnd().length))).toBe(true);

    const st = parseSafetensors(bytes, F);
    expect(st.dataOffset).toBe(8 + n);
    expect(st.bytes).toBe(bytes); // no copy
    expect({ ...st.metadata }).toEqual({ format: 'pt', note: 'ü "quoted"' });
    expect([...st.tensors.keys()]).toEqual(tensors.map((t) => t.name));
    for (const t of tensors) {
      const info = st.tensors.get(t.name)!;
      expect(info.dtype).toBe('F32');
      expect(info.shape).toEqual(t.shape);
      expect(info.end - info.begin).toBe(t.data.byteLength);
      const back = readTensorF32(st, t.name);
      expect(back).not.toBe(t.data);
      expect(Array.from(back).map((v) => (Object.is(v, -0) ? '-0' : v))).toEqual(Array.from(t.data).map((v) => (Object.is(v, -0) ? '-0' : v)));
    }
  });

  it('reads F32 at an unaligned byte offset', () => {
    const bytes = writeSafetensors(tensors);
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 1);
    const st = parseSafetensors(big.subarray(1, 1 + bytes.length), F);
    expect(Array.from(readTensorF32(st, 'b.weight'))).toEqual([1, -2, 3.5, 0, -0, Math.fround(1e-30)]);
    expect(Object.keys(st.metadata)).toEqual([]);
  });

  it('writes and reads an empty file and odd names', () => {
    const empty = writeSafetensors([]);
    expect(empty.length).toBe(16);
    expect(parseSafetensors(empty, F).tensors.size).toBe(0);
    const odd = [
      { name: '__proto__', shape: [1], data: Float32Array.from([1]) },
      { name: '0', shape: [1], data: Float32Array.from([2]) },
    ];
    const st = parseSafetensors(writeSafetensors(odd), F);
    expect([...st.tensors.keys()]).toEqual(['__proto__', '0']);
    expect(readTensorF32(st, '__proto__')[0]).toBe(1);
  });

  it('rejects bad writer input, naming the tensor', () => {
    const d = Float32Array.from([1, 2]);
    expect(() => writeSafetensors([{ name: 'x', shape: [3], data: d }])).toThrow(/tensor "x": shape \[3\] has 3 elements but data has 2/);
    expect(() =>
      writeSafetensors([
        { name: 'x', shape: [2], data: d },
        { name: 'x', shape: [2], data: d },
      ]),
    ).toThrow(/tensor "x": duplicate/);
    expect(() => writeSafetensors([{ name: '__metadata__', shape: [2], data: d }])).toThrow(/reserved/);
    expect(() => writeSafetensors([{ name: 'x', shape: [-2], data: d }])).toThrow(/tensor "x": invalid shape/);
    expect(() => writeSafetensors([], { a: 1 as unknown as string })).toThrow(/metadata value for key "a"/);
  });
});

describe('real fixtures', () => {
  it('parses gpt2-tiny', () => {
    const st = parseSafetensors(new Uint8Array(readFileSync('tests/fixtures/gpt2-tiny/model.safetensors')), 'gpt2-tiny/model.safetensors');
    expect(st.metadata.format).toBe('pt');
    expect(st.tensors.get('transformer.wte.weight')?.shape).toEqual([377, 48]);
    expect(st.tensors.get('transformer.wpe.weight')?.shape).toEqual([64, 48]);
    expect(st.tensors.get('transformer.h.0.attn.c_attn.weight')?.shape).toEqual([48, 144]);
    expect(st.tensors.get('transformer.ln_f.bias')?.shape).toEqual([48]);
    const wte = readTensorF32(st, 'transformer.wte.weight');
    expect(wte.length).toBe(377 * 48);
    expect(wte.every(Number.isFinite)).toBe(true);
    expect(wte.some((v) => v !== 0)).toBe(true);
  });

  it('parses llama-tiny', () => {
    const st = parseSafetensors(new Uint8Array(readFileSync('tests/fixtures/llama-tiny/model.safetensors')), 'llama-tiny/model.safetensors');
    expect(st.tensors.get('model.embed_tokens.weight')?.shape).toEqual([377, 64]);
    expect(st.tensors.get('model.layers.0.self_attn.k_proj.weight')?.shape).toEqual([32, 64]);
    expect(st.tensors.get('model.layers.1.mlp.down_proj.weight')?.shape).toEqual([64, 160]);
    expect(st.tensors.get('lm_head.weight')?.shape).toEqual([377, 64]);
    const norm = readTensorF32(st, 'model.norm.weight');
    expect(norm.length).toBe(64);
    expect(norm.every(Number.isFinite)).toBe(true);
  });
});

describe('F16 / BF16 conversion', () => {
  const f16Cases: [number, number][] = [
    [0x0000, 0],
    [0x8000, -0],
    [0x3c00, 1],
    [0xc000, -2],
    [0x3555, 0.333251953125],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x8001, -(2 ** -24)],
    [0x0400, 2 ** -14],
    [0x7bff, 65504],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
    [0x7e00, NaN],
    [0xfc01, NaN],
  ];
  const bf16Cases: [number, number][] = [
    [0x0000, 0],
    [0x8000, -0],
    [0x3f80, 1],
    [0xc000, -2],
    [0x4049, 3.140625],
    [0x0001, 2 ** -133],
    [0x8080, -(2 ** -126)],
    [0x7f7f, 3.3895313892515355e38],
    [0x7f80, Infinity],
    [0xff80, -Infinity],
    [0x7fc0, NaN],
  ];

  it("F16 values decode exactly, every special case (halfValue, the reader's decoder)", () => {
    for (const [bits, want] of f16Cases) expect(halfValue(bits)).toBe(want); // toBe uses Object.is: -0 and NaN exact
  });

  for (const [dtype, cases] of [
    ['F16', f16Cases],
    ['BF16', bf16Cases],
  ] as const) {
    it(`reads ${dtype} tensors (aligned and unaligned)`, () => {
      const data = u16s(...cases.map((c) => c[0]));
      const bytes = build(`{"t":${entry(dtype, [cases.length], 0, data.length)}}`, data);
      for (const shift of [0, 1]) {
        const big = new Uint8Array(bytes.length + shift);
        big.set(bytes, shift);
        const st = parseSafetensors(big.subarray(shift), F);
        expect(st.tensors.get('t')!.dtype).toBe(dtype);
        const out = readTensorF32(st, 't');
        expect(out).toBeInstanceOf(Float32Array);
        cases.forEach(([, want], i) => expect(out[i]).toBe(want));
      }
    });
  }

  it('keeps BF16 NaN payload bits', () => {
    const bytes = build(`{"t":${entry('BF16', [1], 0, 2)}}`, u16s(0x7fc1));
    const out = readTensorF32(parseSafetensors(bytes, F), 't');
    expect(new Uint32Array(out.buffer)[0]).toBe(0x7fc10000);
  });

  it('reads mixed dtypes in one file', () => {
    const f32 = new Uint8Array(Float32Array.from([1.5]).buffer);
    const data = new Uint8Array([...f32, ...u16s(0x3c00), ...u16s(0x3f80)]);
    const st = parseSafetensors(build(`{"a":${entry('F32', [], 0, 4)},"b":${entry('F16', [1], 4, 6)},"c":${entry('BF16', [1, 1], 6, 8)}}`, data), F);
    expect([readTensorF32(st, 'a')[0], readTensorF32(st, 'b')[0], readTensorF32(st, 'c')[0]]).toEqual([1.5, 1, 1]);
  });
});

describe('valid edge cases', () => {
  it('accepts an empty header with no data', () => {
    const st = parseSafetensors(build('{}'), F);
    expect(st.tensors.size).toBe(0);
    expect(st.dataOffset).toBe(10);
  });

  it('accepts zero-byte tensors, including several at the same offset', () => {
    const h = `{"z1":${entry('F32', [0], 0, 0)},"a":${entry('F16', [2], 0, 4)},"z2":${entry('BF16', [3, 0], 4, 4)},"z3":${entry('F32', [0], 4, 4)},"b":${entry('F32', [1], 4, 8)}}`;
    const st = parseSafetensors(build(h, 8), F);
    expect(st.tensors.size).toBe(5);
    expect(readTensorF32(st, 'z2').length).toBe(0);
    expect(readTensorF32(st, 'b').length).toBe(1);
  });

  it('treats __proto__ / constructor / toString as plain tensor and metadata names', () => {
    const h = `{"__metadata__":{"__proto__":"x","constructor":"y"},"__proto__":${entry('F32', [1], 0, 4)},"constructor":${entry('F32', [1], 4, 8)},"toString":${entry('F32', [], 8, 12)}}`;
    const st = parseSafetensors(build(h, new Uint8Array(Float32Array.from([1, 2, 3]).buffer)), F);
    expect([...st.tensors.keys()]).toEqual(['__proto__', 'constructor', 'toString']);
    expect(readTensorF32(st, 'toString')[0]).toBe(3);
    expect(Object.getPrototypeOf(st.metadata)).toBe(null);
    expect(Object.keys(st.metadata)).toEqual(['__proto__', 'constructor']);
    expect(st.metadata['__proto__']).toBe('x');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('x');
  });

  it('errors on a missing tensor name without hitting the prototype', () => {
    const st = parseSafetensors(build('{}'), F);
    expect(() => readTensorF32(st, 'toString')).toThrow(`${F}: tensor "toString": no such tensor`);
    expect(() => readTensorF32(st, '__proto__')).toThrow(SafetensorsError);
  });
});

describe('header length and encoding violations', () => {
  it('rejects a file shorter than 8 bytes', () => {
    expectError(new Uint8Array(0), 'shorter than');
    expectError(new Uint8Array(7), '7 bytes');
  });
  it('rejects header length 0', () => expectError(build('', 0), 'header length is 0'));
  it('rejects a header length over the limit', () => {
    expectError(build('{}', 0, 100_000_001n), '100000001', 'exceeds');
    expectError(build('{}', 0, 2n ** 64n - 1n), '18446744073709551615', 'exceeds');
  });
  it('rejects a header length past EOF', () => expectError(build('{}', 0, 3n), 'header length 3 runs past the end of the file (10 bytes)'));
  it('rejects invalid UTF-8 in the header', () => {
    expectError(build(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x7b, 0x7d, 0x7d])), 'not valid UTF-8');
    expectError(build(new Uint8Array([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x7b, 0x7d, 0x7d])), 'not valid UTF-8'); // encoded surrogate
    expectError(build(new Uint8Array([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x7b, 0x7d, 0x7d])), 'not valid UTF-8'); // overlong
  });
  it('rejects a UTF-8 BOM before the JSON', () => expectError(build('\ufeff{}'), 'invalid header JSON'));
  it('rejects malformed JSON', () => {
    for (const h of ['{', '{"a":1,}', "{'a':1}", '{} x', '{"a":NaN}', '{"a":01}', '{"a":"\u0001"}', '{/*c*/}']) expectError(build(h), 'invalid header JSON');
  });
  it('rejects a non-object top level', () => {
    for (const [h, k] of [
      ['[]', 'array'],
      ['null', 'null'],
      ['"x"', 'string'],
      ['8', 'number'],
    ])
      expectError(build(h!), `must be an object, got ${k}`);
  });
});

describe('duplicate keys', () => {
  it('rejects a duplicate tensor name', () => {
    const e = expectError(build(`{"a":${entry('F32', [1], 0, 4)},"a":${entry('F32', [1], 4, 8)}}`, 8), 'tensor "a"', 'duplicate key "a"');
    expect(e.tensor).toBe('a');
  });
  it('rejects a duplicate key inside a tensor entry', () => {
    expectError(build(`{"w":{"dtype":"F32","shape":[1],"dtype":"F16","data_offsets":[0,4]}}`, 4), 'tensor "w"', 'duplicate key "dtype"');
  });
  it('rejects a duplicate __proto__ key', () => {
    expectError(build(`{"__proto__":${entry('F32', [1], 0, 4)},"__proto__":${entry('F32', [1], 4, 8)}}`, 8), 'tensor "__proto__"', 'duplicate key "__proto__"');
  });
  it('rejects a duplicate key in __metadata__', () => {
    const e = expectError(build('{"__metadata__":{"k":"1","k":"2"}}'), 'duplicate key "k"');
    expect(e.tensor).toBeUndefined();
  });
  it('rejects duplicates at any depth (json-strict)', () => {
    expect(() => parseJsonStrict('{"x":[1,{"y":{"k":1,"k":2}}]}')).toThrow(JsonSyntaxError);
    try {
      parseJsonStrict('{"x":[1,{"y":{"k":1,"k":2}}]}');
    } catch (e) {
      expect((e as JsonSyntaxError).path).toEqual(['x', 1, 'y', 'k']);
    }
    // Keys that differ only by escape spelling are the same key.
    expect(() => parseJsonStrict('{"a":1,"\\u0061":2}')).toThrow(/duplicate key "a"/);
  });
});

describe('json-strict', () => {
  it('matches JSON.parse on valid input', () => {
    for (const s of ['{"a":[1,-2.5e3,0.1,true,false,null,"\\n\\u00e9\\/\\"\\\\"],"b":{}}', ' [ ] ', '"x"', '-0', '1E+2', '{"\\ud83d\\ude00":"\\ud800"}']) {
      expect(parseJsonStrict(s)).toEqual(JSON.parse(s));
    }
  });
  it('returns null-prototype objects and never pollutes Object.prototype', () => {
    const v = parseJsonStrict('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"toString":3}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(null);
    expect(Object.getPrototypeOf(v['__proto__'])).toBe(null);
    expect(Object.keys(v)).toEqual(['__proto__', 'constructor', 'toString']);
    expect(v.toString).toBe(3);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(parseJsonStrict('{}')).not.toHaveProperty('hasOwnProperty');
  });
  it('rejects invalid input and excessive depth', () => {
    for (const s of ['', '{"a" 1}', '[1,]', '[1 2]', '"\\x"', '"\\u12"', '"abc', 'tru', '.5', '1.', '+1', '\t\v1', 'Infinity']) {
      expect(() => parseJsonStrict(s), s).toThrow(JsonSyntaxError);
    }
    expect(() => parseJsonStrict('['.repeat(129) + ']'.repeat(129))).toThrow(/nesting deeper than 128/);
    expect(parseJsonStrict('['.repeat(128) + ']'.repeat(128))).toBeInstanceOf(Array);
    expect(() => parseJsonStrict('['.repeat(200_000))).toThrow(JsonSyntaxError); // no stack overflow
  });
});

describe('entry violations', () => {
  const one = (e: string, data = 4) => build(`{"t":${e}}`, data);

  it('rejects a non-object __metadata__', () => expectError(build('{"__metadata__":["a"]}'), '__metadata__ must be an object, got array'));
  it('rejects non-string metadata values', () => {
    for (const [v, k] of [
      ['1', 'number'],
      ['null', 'null'],
      ['{"x":"y"}', 'object'],
      ['["s"]', 'array'],
      ['true', 'boolean'],
    ]) {
      expectError(build(`{"__metadata__":{"ok":"1","bad":${v}}}`), '__metadata__ value for key "bad" must be a string', `got ${k}`);
    }
  });
  it('rejects a non-object tensor entry', () => expectError(build('{"t":[1,2]}'), 'tensor "t"', 'entry must be an object, got array'));
  it('rejects unknown keys in an entry', () => {
    expectError(one('{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}'), 'tensor "t"', 'unknown key "extra"');
    expectError(one('{"dtype":"F32","shape":[1],"data_offsets":[0,4],"__proto__":{}}'), 'tensor "t"', 'unknown key "__proto__"');
  });
  it('rejects missing keys in an entry', () => {
    expectError(one('{"dtype":"F32","data_offsets":[0,4]}'), 'tensor "t"', 'missing key "shape"');
  });
  it('rejects unsupported dtypes, naming the dtype', () => {
    for (const d of ['I64', 'F64', 'U8', 'f32', 'toString', '__proto__']) expectError(one(entry(d, [1], 0, 4)), 'tensor "t"', `unsupported dtype "${d}"`);
    expectError(one('{"dtype":32,"shape":[1],"data_offsets":[0,4]}'), 'tensor "t"', 'unsupported dtype 32');
  });
  it('rejects bad shapes', () => {
    for (const s of ['[-1]', '[1.5]', '[9007199254740992]', '["4"]', '4', 'null', '[[1]]', '[1e400]']) {
      expectError(one(`{"dtype":"F32","shape":${s},"data_offsets":[0,4]}`), 'tensor "t"', 'shape must be an array of non-negative integers');
    }
  });
  it('rejects bad data_offsets', () => {
    for (const o of ['[0]', '[0,4,8]', '[4,0]', '[-4,0]', '[0,4.5]', '[0,9007199254740992]', '"0,4"', '{"0":0,"1":4}']) {
      expectError(one(`{"dtype":"F32","shape":[1],"data_offsets":${o}}`), 'tensor "t"', 'data_offsets must be [begin, end]');
    }
  });
  it('rejects a shape / byte-size mismatch with a precise message', () => {
    const name = 'h.0.attn.c_attn.weight';
    const e = expectError(build(`{"${name}":${entry('F32', [48, 144], 0, 27600)}}`, 27600));
    expect(e.message).toBe(`${F}: tensor "${name}": dtype F32 x shape [48,144] needs 27648 bytes but its range holds 27600`);
    expectError(one(entry('F16', [], 0, 4)), 'tensor "t"', 'dtype F16 x shape [] needs 2 bytes but its range holds 4');
    // Products beyond 2^53 must not wrap or round into a match.
    expectError(one(entry('F32', [2 ** 26, 2 ** 26, 2 ** 26], 0, 4)), 'tensor "t"', `needs ${2n ** 80n} bytes`);
  });
  it('rejects a range past the data section', () => expectError(one(entry('F32', [2], 0, 8)), 'tensor "t"', 'run past the data section (4 bytes)'));
});

describe('layout violations', () => {
  const f32 = (name: string, begin: number, end: number) => `"${name}":${entry('F32', [(end - begin) / 4], begin, end)}`;

  it('rejects a gap at the start', () => expectError(build(`{${f32('a', 4, 8)}}`, 8), 'tensor "a"', 'gap', 'begins at 4'));
  it('rejects a gap between tensors', () => {
    expectError(build(`{${f32('a', 0, 4)},${f32('b', 8, 12)}}`, 12), 'tensor "b"', 'gap', 'tensor "a" ends at 4');
  });
  it('rejects overlapping tensors', () => {
    expectError(build(`{${f32('a', 0, 8)},${f32('b', 4, 12)}}`, 12), 'tensor "b"', 'overlap', 'tensor "a" ends at 8');
  });
  it('rejects identical ranges (aliasing)', () => {
    expectError(build(`{${f32('a', 0, 4)},${f32('b', 0, 4)}}`, 4), 'overlap', 'ends at 4');
  });
  it('rejects trailing bytes after the last tensor', () => {
    expectError(build(`{${f32('a', 0, 4)},${f32('b', 4, 8)}}`, 9), 'tensor "b"', '1 trailing bytes');
    expectError(build('{}', 8), '8 trailing bytes');
  });
});
