// Outside text is checked, not repaired: src/io/text.ts against the platform's fatal UTF-8 decoder,
// on random and mutated bytes, and each refusal as one message naming the file, the line and the offset.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeText, firstInvalidUtf8, TextFileError } from '../src/io/text.ts';
import { importDataBundle } from '../src/ui/data-io.ts';
import { zipFiles } from '../src/io/zip.ts';

const fatal = (b: Uint8Array) => {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
};

describe('UTF-8 is checked, not repaired', () => {
  it('firstInvalidUtf8 agrees with the fatal decoder on random bytes and on mutated UTF-8', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => firstInvalidUtf8(b) < 0 === fatal(b)),
      { numRuns: 3000 },
    );
    const enc = new TextEncoder();
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (s, at, byte) => {
        const b = enc.encode(s);
        expect(firstInvalidUtf8(b)).toBe(-1);
        if (!b.length) return;
        const m = b.slice();
        m[at % m.length] = byte;
        expect(firstInvalidUtf8(m) < 0).toBe(fatal(m));
        // the reported offset is where it stops: everything before decodes
        const bad = firstInvalidUtf8(m);
        if (bad >= 0) expect(fatal(m.subarray(0, bad))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('says what is wrong with a file, once: empty, binary, not UTF-8 (line and byte offset)', () => {
    const latin1 = new Uint8Array([...new TextEncoder().encode('{"prompt": "a"}\n{"prompt": "caf'), 0xe9, ...new TextEncoder().encode('"}\n')]);
    const err = (b: Uint8Array) => {
      try {
        decodeText(b, 'data.jsonl');
      } catch (e) {
        expect(e).toBeInstanceOf(TextFileError);
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(err(latin1)).toBe('data.jsonl: not UTF-8 text (line 2, byte offset 31: 0xe9); save it as UTF-8');
    expect(err(new Uint8Array())).toBe('data.jsonl: the file is empty');
    expect(err(new Uint8Array([0x7b, 0x0a, 0x00, 0x01]))).toBe('data.jsonl: a binary file, not text (a NUL byte at line 2, byte offset 2)');
    expect(decodeText(new Uint8Array(), 'x', { allowEmpty: true })).toBe('');
    expect(decodeText(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]), 'x')).toBe('a'); // a byte-order mark is dropped
  });

  it('a data zip whose data.jsonl is not UTF-8 names the file inside it', () => {
    const zip = zipFiles(
      new Map([
        ['data.jsonl', new Uint8Array([0x7b, 0xff, 0x7d])],
        ['prompts.jsonl', new TextEncoder().encode('{"prompt": "hi"}\n')],
      ]),
      'rlhf-playground-data',
    );
    const got = importDataBundle(zip, 'mine.zip');
    expect(got.errors).toEqual(['mine.zip/data.jsonl: not UTF-8 text (line 1, byte offset 1: 0xff); save it as UTF-8']);
    expect(got.prompts.length).toBe(1);
  });
});
