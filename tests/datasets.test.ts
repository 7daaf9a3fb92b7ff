import { describe, it, expect } from 'vitest';
import {
  checkRecord,
  checkRecords,
  exportJsonl,
  importJsonl,
  MAX_FILE_BYTES,
  RecordError,
  MAX_LINE_CHARS,
  promptText,
  toPreferencePairs,
  toPrompts,
  toRankings,
  toSftRows,
  type Record,
} from '../src/io/datasets.ts';

/** Why `v` is not a record (checkRecord's message); undefined when it is one. */
function recordProblem(v: unknown): string | undefined {
  try {
    checkRecord(v);
    return undefined;
  } catch (e) {
    if (e instanceof RecordError) return e.message;
    throw e;
  }
}

const F = 'my-data.jsonl';

const samples: Record[] = [
  { kind: 'completion', prompt: 'Say hi.', completion: ' Hi!' },
  {
    kind: 'messages',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi?' },
      { role: 'assistant', content: 'Hello.' },
    ],
  },
  { kind: 'preference', prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' },
  { kind: 'ranking', prompt: 'Rank these', completions: ['best', 'middle', 'worst'] },
  { kind: 'ranking', prompt: 'With ties', completions: ['a', 'b', 'c', 'd'], ranks: [0, 0, 1, 2] },
  { kind: 'ranking', prompt: 'nine', completions: ['1', '2', '3', '4', '5', '6', '7', '8', '9'] },
  { kind: 'prompt', prompt: 'Write a haiku.' },
  {
    kind: 'prompt',
    prompt: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi?' },
    ],
  },
];

/** Plain objects, so toEqual does not trip over null-prototype objects or absent keys. */
const plain = (x: unknown) => JSON.parse(JSON.stringify(x)) as unknown;

describe('export / import round trip', () => {
  it.each(samples.map((r) => [r.kind, r] as const))('%s survives export then import', (_kind, r) => {
    const text = exportJsonl([r]);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(2);
    const back = importJsonl(text, F);
    expect(back.errors).toEqual([]);
    expect(plain(back.records)).toEqual(plain([r]));
    expect(exportJsonl(back.records)).toBe(text);
  });

  it('writes the TRL line formats', () => {
    const lines = exportJsonl(samples)
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as object);
    expect(lines[0]).toEqual({ prompt: 'Say hi.', completion: ' Hi!' });
    expect(Object.keys(lines[1]!)).toEqual(['messages']);
    expect(lines[2]).toEqual({ prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' });
    expect(lines[3]).toEqual({ prompt: 'Rank these', completions: ['best', 'middle', 'worst'] });
    expect(lines[4]).toEqual({ prompt: 'With ties', completions: ['a', 'b', 'c', 'd'], ranks: [0, 0, 1, 2] });
    expect(lines[6]).toEqual({ prompt: 'Write a haiku.' });
    expect(lines[7]).toEqual({
      prompt: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi?' },
      ],
    });
  });

  it('round trips a whole file and awkward strings', () => {
    const odd = 'line1\nline2\r\n\t"quoted" \\ back \u2028 \u0000 é 😀 \ud800';
    const recs: Record[] = [...samples, { kind: 'completion', prompt: odd, completion: '' }];
    const text = exportJsonl(recs);
    expect(text.split('\n')).toHaveLength(recs.length + 1);
    const back = importJsonl(text, F);
    expect(back.errors).toEqual([]);
    expect(back.records).toHaveLength(recs.length);
    expect(back.records.at(-1)).toMatchObject({ prompt: odd, completion: '' });
  });

  it('keeps HTML as literal text', () => {
    const xss = '<img src=x onerror=alert(1)>';
    const recs: Record[] = [
      { kind: 'completion', prompt: xss, completion: `</script>${xss}` },
      { kind: 'preference', prompt: 'p', chosen: xss, rejected: '<b>x</b>' },
    ];
    const back = importJsonl(exportJsonl(recs), F);
    expect(back.errors).toEqual([]);
    expect(back.records[0]).toMatchObject({ prompt: xss, completion: `</script>${xss}` });
    expect(back.records[1]).toMatchObject({ chosen: xss });
  });

  it('exports nothing as an empty string and refuses bad records', () => {
    expect(exportJsonl([])).toBe('');
    expect(() => exportJsonl([{ kind: 'ranking', prompt: 'p', completions: ['only one'] }])).toThrow(/record 0 .*2 to 9 completions/);
    expect(() => exportJsonl([samples[0]!, { kind: 'messages', messages: [{ role: 'tool' as 'user', content: 'x' }] }])).toThrow(/record 1 .*bad role/);
    expect(() => exportJsonl([{ kind: 'ranking', prompt: 'p', completions: ['a', 'b'], ranks: [0] }])).toThrow(/ranks/);
  });
});

describe('checkRecord: the one rule set, for a record in memory or in the store', () => {
  it('accepts every kind and returns a plain copy, keys in order; an option spelled undefined is absent', () => {
    for (const r of samples) {
      const got = checkRecord(r);
      expect(got).toEqual(r);
      expect(got).not.toBe(r);
    }
    const pref = { rejected: 'b', chosen: 'a', prompt: 'p', kind: 'preference', rationale: undefined, selection: { margin: 0.5, method: 'uncertain' } };
    expect(Object.keys(checkRecord(pref))).toEqual(['kind', 'prompt', 'chosen', 'rejected', 'selection']);
    // what the JSONL line reads back is what checkRecord says of the object
    expect(importJsonl(exportJsonl(samples), F).records.map((r) => checkRecord(r))).toEqual(samples.map((r) => checkRecord(r)));
  });

  it('refuses what a line would be refused for, and what only an object can get wrong (its kind, keys a line cannot name)', () => {
    expect(recordProblem({ kind: 'completion', prompt: 'p', completion: '' })).toBeUndefined(); // an empty completion is a completion
    expect(recordProblem({ kind: 'prompt', prompt: ' ' })).toBe('"prompt" is empty');
    expect(recordProblem({ kind: 'prompt', prompt: 'p', completion: '' })).toBe('unknown key "completion" in a prompt-only record (allowed: kind, prompt)');
    expect(recordProblem({ prompt: 'p', completion: 'c' })).toBe(
      '"kind" must be one of "prompt", "completion", "messages", "preference", "ranking", got nothing',
    );
    expect(recordProblem('text')).toBe('a record must be an object, got a string');
    expect(recordProblem({ kind: 'ranking', prompt: 'p', completions: ['a', 'b'], verdict: 'tie' })).toMatch(
      /a "verdict" belongs to a pair whose two completions tie/,
    );
    expect(recordProblem({ kind: 'messages', messages: [{ role: 'user', content: 'hi', name: 'x' }] })).toMatch(/unknown key "name" in messages\[0\]/);
    expect(() => checkRecords([samples[0], { kind: 'completion', prompt: 1, completion: 'c' }], 'my list')).toThrow(
      new RecordError('my list, record 2 of 2: "prompt" must be a string, got a number'),
    );
  });
});

describe('importJsonl errors', () => {
  it('reports malformed lines as file:line and keeps the others', () => {
    const text = [
      '{"prompt":"a","completion":"b"}', // 1 ok
      '{"prompt":"a","completion":', // 2 bad JSON
      '{"prompt":1,"completion":"b"}', // 3 wrong type
      '{"prompt":"a","completion":"b","extra":true}', // 4 unknown key
      '', // 5 blank: skipped
      '{"prompt":"a","completions":["only"]}', // 6 one completion
      '{"messages":[{"role":"tool","content":"x"}]}', // 7 bad role
      '   ', // 8 blank
      '{"prompt":"p","chosen":"c","rejected":"r"}', // 9 ok
      '[1,2]', // 10 not an object
      '{"prompt":"a","prompt":"b","completion":"c"}', // 11 duplicate key
      '{"hello":"world"}', // 12 unknown shape
      '{"messages":[{"role":"user","content":5}]}', // 13 content not a string
      '{"prompt":"p","completions":["a","b"],"ranks":[0,1]}', // 14 ok
    ].join('\n');
    const r = importJsonl(text, F);
    expect(r.records.map((x) => x.kind)).toEqual(['completion', 'preference', 'ranking']);
    expect(r.errors.map((e) => e.line)).toEqual([2, 3, 4, 6, 7, 10, 11, 12, 13]);
    for (const e of r.errors) expect(e.message.startsWith(`${F}:${e.line}: `)).toBe(true);
    const msg = (line: number) => r.errors.find((e) => e.line === line)!.message;
    expect(msg(2)).toMatch(/invalid JSON/);
    expect(msg(3)).toMatch(/"prompt" must be a string, got a number/);
    expect(msg(4)).toMatch(/unknown key "extra"/);
    expect(msg(6)).toMatch(/2 to 9 completions, got 1/);
    expect(msg(7)).toMatch(/bad role "tool"/);
    expect(msg(10)).toMatch(/JSON object, got an array/);
    expect(msg(11)).toMatch(/duplicate key "prompt"/);
    expect(msg(12)).toMatch(/not a known record shape .*"hello"/);
    expect(msg(13)).toMatch(/"content" in messages\[0\] must be a string/);
  });

  it('checks rankings: size, ranks length, integers >= 0, best first', () => {
    const ten = JSON.stringify({ prompt: 'p', completions: Array.from({ length: 10 }, (_, i) => `c${i}`) });
    const lines = [
      ten,
      '{"prompt":"p","completions":["a","b"],"ranks":[0]}',
      '{"prompt":"p","completions":["a","b"],"ranks":[0,-1]}',
      '{"prompt":"p","completions":["a","b"],"ranks":[0,1.5]}',
      '{"prompt":"p","completions":["a","b","c"],"ranks":[0,2,1]}',
      '{"prompt":"p","completions":["a",2]}',
      '{"prompt":"p","completions":"ab"}',
      '{"completions":["a","b"]}',
    ];
    const r = importJsonl(lines.join('\n'), F);
    expect(r.records).toEqual([]);
    expect(r.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/:1: .*got 10/),
      expect.stringMatching(/:2: "ranks" has 1 entries but there are 2/),
      expect.stringMatching(/:3: ranks\[1\] must be an integer >= 0/),
      expect.stringMatching(/:4: ranks\[1\] must be an integer >= 0/),
      expect.stringMatching(/:5: ranks must not decrease/),
      expect.stringMatching(/:6: completions\[1\] must be a string/),
      expect.stringMatching(/:7: "completions" must be an array/),
      expect.stringMatching(/:8: missing "prompt"/),
    ]);
  });

  it("checks a ranking's scores (1-7 or null) and flags (names per completion)", () => {
    const base = '"prompt":"p","completions":["a","b"]';
    const lines = [
      `{${base},"scores":[7,null],"flags":[["harmful-advice"],[]]}`,
      `{${base},"scores":[7]}`,
      `{${base},"scores":[0,1]}`,
      `{${base},"scores":[3,4.5]}`,
      `{${base},"scores":"7"}`,
      `{${base},"flags":[[],[],[]]}`,
      `{${base},"flags":[["opinion","opinion"],[]]}`,
      `{${base},"flags":[["<img src=x>"],[]]}`,
      `{${base},"flags":["opinion",[]]}`,
    ];
    const r = importJsonl(lines.join('\n'), F);
    expect(r.records).toEqual([{ kind: 'ranking', prompt: 'p', completions: ['a', 'b'], scores: [7, null], flags: [['harmful-advice'], []] }]);
    expect(r.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/:2: "scores" has 1 entries but there are 2 completions/),
      expect.stringMatching(/:3: scores\[0\] must be an integer 1-7 or null, got 0/),
      expect.stringMatching(/:4: scores\[1\] must be an integer 1-7 or null/),
      expect.stringMatching(/:5: "scores" must be an array/),
      expect.stringMatching(/:6: "flags" has 3 entries but there are 2 completions/),
      expect.stringMatching(/:7: flags\[0\] names "opinion" twice/),
      expect.stringMatching(/:8: flags\[0\]\[0\] must be a flag name/),
      expect.stringMatching(/:9: flags\[0\] must be an array of flag names/),
    ]);
    expect(importJsonl(exportJsonl(r.records), F)).toEqual({ records: r.records, errors: [] });
  });

  it('handles CRLF line ends, a byte order mark and trailing blank lines', () => {
    const text = '\ufeff{"prompt":"a","completion":"b"}\r\n\r\n{"prompt":"c","completion":"d"}\r\n\r\n';
    const r = importJsonl(text, F);
    expect(r.errors).toEqual([]);
    expect(plain(r.records)).toEqual([
      { kind: 'completion', prompt: 'a', completion: 'b' },
      { kind: 'completion', prompt: 'c', completion: 'd' },
    ]);
    const bad = importJsonl('{"prompt":"a","completion":"b"}\r\n{oops}\r\n', F);
    expect(bad.errors).toEqual([{ line: 2, message: expect.stringMatching(/^my-data\.jsonl:2: invalid JSON/) }]);
  });

  it('treats "__proto__" as an unknown key, not a prototype', () => {
    const r = importJsonl('{"prompt":"a","completion":"b","__proto__":{"x":1}}', F);
    expect(r.records).toEqual([]);
    expect(r.errors[0]!.message).toMatch(/unknown key "__proto__"/);
  });

  it('refuses lines over 1,000,000 characters and keeps the rest', () => {
    const long = JSON.stringify({ prompt: 'x'.repeat(MAX_LINE_CHARS), completion: 'y' });
    const r = importJsonl(`${long}\n{"prompt":"a","completion":"b"}\n`, F);
    expect(r.records).toHaveLength(1);
    expect(r.errors).toEqual([{ line: 1, message: expect.stringMatching(/^my-data\.jsonl:1: line is \d+ characters long \(limit 1000000\)/) }]);
  });

  it('refuses files over 200 MB', () => {
    const r = importJsonl(' '.repeat(MAX_FILE_BYTES + 1), F);
    expect(r.records).toEqual([]);
    expect(r.errors).toEqual([{ line: 0, message: expect.stringMatching(/^my-data\.jsonl: file is larger than 200 MB/) }]);
    // Measured in UTF-8 bytes: 70M three-byte characters are 210 MB.
    const wide = importJsonl('\u4e00'.repeat(70 * 1024 * 1024), F);
    expect(wide.errors[0]!.message).toMatch(/larger than 200 MB/);
  });
});

describe('conversational preference rows (TRL form)', () => {
  const user = { role: 'user', content: 'What color is the sky?' };
  it('maps single-turn rows, implicit and explicit prompt, to preference records', () => {
    const implicit = { chosen: [user, { role: 'assistant', content: 'Blue.' }], rejected: [user, { role: 'assistant', content: 'Green.' }] };
    const explicit = { prompt: [user], chosen: [{ role: 'assistant', content: 'Blue.' }], rejected: [{ role: 'assistant', content: 'Green.' }] };
    const r = importJsonl(`${JSON.stringify(implicit)}\n${JSON.stringify(explicit)}`, F);
    expect(r.errors).toEqual([]);
    const want = { kind: 'preference', prompt: 'What color is the sky?', chosen: 'Blue.', rejected: 'Green.' };
    expect(plain(r.records)).toEqual([want, want]);
  });

  it('reports rows it cannot map without losing context', () => {
    const sys = { role: 'system', content: 'Be nice.' };
    const a = (c: string) => ({ role: 'assistant', content: c });
    const rows = [
      { chosen: [sys, user, a('Blue.')], rejected: [sys, user, a('Green.')] }, // system prompt
      { chosen: [user, a('Blue.')], rejected: [{ role: 'user', content: 'Other?' }, a('Green.')] }, // different prompts
      { chosen: [a('Blue.'), user], rejected: [a('Blue.'), user] }, // final turn not assistant
      { prompt: 'text', chosen: [a('Blue.')], rejected: [a('Green.')] }, // prompt type mismatch
    ];
    const r = importJsonl(rows.map((x) => JSON.stringify(x)).join('\n'), F);
    expect(r.records).toEqual([]);
    expect(r.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/:1: only single-turn/),
      expect.stringMatching(/:2: .*do not share/),
      expect.stringMatching(/:3: the final "chosen" turn must be an assistant/),
      expect.stringMatching(/:4: "prompt" must be an array of messages/),
    ]);
  });
});

describe('prompt-only rows (TRL form)', () => {
  it('reads standard and conversational prompts; flat metadata beside them is ignored', () => {
    const lines = [
      '{"prompt":"Greet Kofi.","task":"greeting","id":7,"ok":true,"x":null}',
      '{"prompt":[{"role":"user","content":"What color is the sky?"}]}',
      '{"prompt":[{"role":"system","content":"Answer in French."},{"role":"user","content":"Hi."}],"source":"web"}',
    ];
    const r = importJsonl(lines.join('\n'), F);
    expect(r.errors).toEqual([]);
    expect(plain(r.records)).toEqual([
      { kind: 'prompt', prompt: 'Greet Kofi.' },
      { kind: 'prompt', prompt: [{ role: 'user', content: 'What color is the sky?' }] },
      {
        kind: 'prompt',
        prompt: [
          { role: 'system', content: 'Answer in French.' },
          { role: 'user', content: 'Hi.' },
        ],
      },
    ]);
    // the metadata is not data: the export writes the prompt alone
    expect(exportJsonl(r.records).split('\n')[0]).toBe('{"prompt":"Greet Kofi."}');
  });

  it('reports bad prompt-only rows by line', () => {
    const lines = [
      '{"prompt":""}',
      '{"prompt":7}',
      '{"prompt":[]}',
      '{"prompt":[{"role":"user","content":"Hi."},{"role":"assistant","content":"Hello."}]}',
      '{"prompt":[{"role":"tool","content":"x"}]}',
      '{"prompt":"p","meta":{"a":1}}',
      '{"prompt":"p","ranks":[0,1]}',
    ];
    const r = importJsonl(lines.join('\n'), F);
    expect(r.records).toEqual([]);
    expect(r.errors.map((e) => e.message)).toEqual([
      `${F}:1: "prompt" is empty`,
      `${F}:2: "prompt" must be a string or a list of messages, got a number`,
      `${F}:3: "prompt" must hold at least one message`,
      `${F}:4: a conversational prompt must end with a user turn, got role "assistant"`,
      expect.stringMatching(/:5: bad role "tool" in prompt\[0\]/),
      expect.stringMatching(/:6: "meta" must be a string, number, boolean or null/),
      expect.stringMatching(/:7: not a known record shape/),
    ]);
  });

  it("a caller's refuse() turns a record it cannot keep into its line's error", () => {
    const text = '{"prompt":"a","completion":"b"}\n{"prompt":"p"}\n';
    const r = importJsonl(text, F, { refuse: (x) => (x.kind === 'prompt' ? 'no prompts here' : undefined) });
    expect(r.records.map((x) => x.kind)).toEqual(['completion']);
    expect(r.errors).toEqual([{ line: 2, message: `${F}:2: no prompts here` }]);
  });

  it("toPrompts: PPO's prompts from every kind but chat messages; promptText: the one-user-turn text", () => {
    expect(plain(toPrompts(samples))).toEqual([
      'Say hi.',
      'The sky is',
      'Rank these',
      'With ties',
      'nine',
      'Write a haiku.',
      plain((samples[7] as { prompt: unknown }).prompt),
    ]);
    expect(promptText('x')).toBe('x');
    expect(promptText([{ role: 'user', content: 'Hi.' }])).toBe('Hi.');
    expect(
      promptText([
        { role: 'system', content: 'S' },
        { role: 'user', content: 'Hi.' },
      ]),
    ).toBeUndefined();
  });
});

describe('TRL views', () => {
  it('toPreferencePairs: K(K-1)/2 pairs per ranking, best as chosen', () => {
    for (let k = 2; k <= 9; k++) {
      const completions = Array.from({ length: k }, (_, i) => `c${i}`);
      const pairs = toPreferencePairs([{ kind: 'ranking', prompt: 'p', completions }]);
      expect(pairs).toHaveLength((k * (k - 1)) / 2);
      for (const p of pairs) expect(Number(p.chosen.slice(1))).toBeLessThan(Number(p.rejected.slice(1)));
    }
  });

  it('toPreferencePairs drops tied pairs', () => {
    // ranks [0,0,1,1,2]: 10 pairs, 2 of them ties.
    const r: Record = { kind: 'ranking', prompt: 'p', completions: ['a', 'b', 'c', 'd', 'e'], ranks: [0, 0, 1, 1, 2] };
    const pairs = toPreferencePairs([r]);
    expect(pairs).toHaveLength(10 - 2);
    const key = (p: { chosen: string; rejected: string }) => p.chosen + '>' + p.rejected;
    expect(pairs.map(key).sort()).toEqual(['a>c', 'a>d', 'a>e', 'b>c', 'b>d', 'b>e', 'c>e', 'd>e']);
    // All tied: no pairs.
    expect(toPreferencePairs([{ kind: 'ranking', prompt: 'p', completions: ['x', 'y', 'z'], ranks: [0, 0, 0] }])).toEqual([]);
    // Ties survive the file round trip.
    const back = importJsonl(exportJsonl([r]), F).records;
    expect(toPreferencePairs(back)).toEqual(pairs);
  });

  it('toPreferencePairs passes preferences through and skips SFT records', () => {
    const pairs = toPreferencePairs(samples);
    // preference 1 + ranking(3) 3 + ranking(4, one tie) 5 + ranking(9) 36
    expect(pairs).toHaveLength(1 + 3 + 5 + 36);
    expect(pairs[0]).toEqual({ prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' });
  });

  it('toSftRows and toRankings pick their kinds', () => {
    expect(toSftRows(samples)).toEqual([
      { prompt: 'Say hi.', completion: ' Hi!' },
      { messages: (samples[1] as Extract<Record, { kind: 'messages' }>).messages },
    ]);
    expect(toRankings(samples)).toHaveLength(3);
  });
});
