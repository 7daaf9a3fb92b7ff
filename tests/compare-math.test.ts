// The pure parts of the Compare and Data views, in Node without a DOM or a GPU: the Wilson interval
// and the blind-vote bookkeeping (compare-math.ts); the data import of records and prompt lines, the
// duplicate rules, stored rankings as JSONL lines, the counters and the export (data-io.ts).
import { describe, expect, it } from 'vitest';
import { importJsonl, MAX_LINE_CHARS, rankingToRecord, type Record as DataRecord } from '../src/io/datasets.ts';
import { winRate, type VoteRecord } from '../src/store/db.ts';
import { REFERENCE_MODEL, tally, tunedModelKey, tunedSide, verdict, wilson, winnerOf } from '../src/ui/compare-math.ts';
import { dataBundle, dataCounts, exportData, importData, importDataBundle, newItems, oneLine, plural, recordKey } from '../src/ui/data-io.ts';
import { unzipFiles, zipFiles } from '../src/io/zip.ts';

describe('wilson interval', () => {
  it('matches textbook values', () => {
    // 8 of 10: the Wilson 95% interval is [0.4902, 0.9433]
    const i = wilson(8, 10)!;
    expect(i.low).toBeCloseTo(0.49016, 4);
    expect(i.high).toBeCloseTo(0.94332, 4);
    // 0 of 10: [0, 0.2775], not the zero-width [0, 0] of the normal approximation
    const z = wilson(0, 10)!;
    expect(z.low).toBe(0);
    expect(z.high).toBeCloseTo(0.27753, 4);
    const all = wilson(10, 10)!;
    expect(all.low).toBeCloseTo(0.72247, 4);
    expect(all.high).toBe(1);
    // 50 of 100, z = 1.96 by hand: centre 0.5, half-width 1.96 * sqrt(0.25/100 + 1.96^2/40000) / (1 + 1.96^2/100)
    const h = wilson(50, 100, 1.96)!;
    const half = (1.96 * Math.sqrt(0.0025 + 1.96 ** 2 / 40000)) / (1 + 1.96 ** 2 / 100);
    expect(h.low).toBeCloseTo(0.5 - half, 12);
    expect(h.high).toBeCloseTo(0.5 + half, 12);
  });

  it('is symmetric, contains the estimate and narrows with more votes', () => {
    for (const n of [1, 3, 7, 20, 101]) {
      for (let w = 0; w <= n; w += 0.5) {
        const i = wilson(w, n)!,
          j = wilson(n - w, n)!;
        expect(i.low).toBeCloseTo(1 - j.high, 12);
        expect(i.low).toBeLessThanOrEqual(w / n + 1e-12);
        expect(i.high).toBeGreaterThanOrEqual(w / n - 1e-12);
        expect(i.low).toBeGreaterThanOrEqual(0);
        expect(i.high).toBeLessThanOrEqual(1);
      }
    }
    const widths = [10, 40, 160, 640].map((n) => {
      const i = wilson(0.6 * n, n)!;
      return i.high - i.low;
    });
    for (let k = 1; k < widths.length; k++) expect(widths[k]!).toBeLessThan(widths[k - 1]!);
    // four times the votes, about half the width
    expect(widths[3]! / widths[2]!).toBeCloseTo(0.5, 1);
  });

  it('has no interval without votes and refuses impossible counts', () => {
    expect(wilson(0, 0)).toBeUndefined();
    expect(() => wilson(11, 10)).toThrow(RangeError);
    expect(() => wilson(-1, 10)).toThrow(RangeError);
  });
});

describe('blind votes', () => {
  it('puts the tuned answer on a side by a coin and maps choices to winners', () => {
    expect(tunedSide(() => 0)).toBe('A');
    expect(tunedSide(() => 0.4999)).toBe('A');
    expect(tunedSide(() => 0.5)).toBe('B');
    expect(tunedSide(() => 0.99)).toBe('B');
    expect(winnerOf('A', 'A')).toBe('tuned');
    expect(winnerOf('B', 'A')).toBe('reference');
    expect(winnerOf('A', 'B')).toBe('reference');
    expect(winnerOf('B', 'B')).toBe('tuned');
    expect(winnerOf('tie', 'A')).toBe('tie');
    expect(winnerOf('tie', 'B')).toBe('tie');
  });

  it('names the tuned model as db.ts does, and nothing for the base', () => {
    expect(tunedModelKey(undefined)).toBeUndefined();
    expect(tunedModelKey({ kind: 'base', name: 'public/models/default' })).toBeUndefined();
    expect(tunedModelKey({ kind: 'run', name: 'run 1234abcd', runId: '1234abcd-0000' })).toBe('run:1234abcd-0000');
    expect(tunedModelKey({ kind: 'adapter', name: 'polite-lora.zip' })).toBe('polite-lora.zip');
  });

  it('tallies only the current tuned model against the reference, ties counting half', () => {
    const v = (tunedModel: string, winner: VoteRecord['winner'], referenceModel = REFERENCE_MODEL) => ({ tunedModel, referenceModel, winner });
    const votes = [
      v('run:a', 'tuned'),
      v('run:a', 'tuned'),
      v('run:a', 'reference'),
      v('run:a', 'tie'),
      v('run:b', 'reference'),
      v('run:b', 'reference'),
      v('run:a', 'tuned', 'run:sft'),
    ];
    const t = tally(votes, 'run:a');
    expect(t).toMatchObject({ wins: 2, losses: 1, ties: 1, n: 4, rate: 2.5 / 4 });
    expect(t.rate).toBe(winRate(votes.slice(0, 4)).rate);
    expect(t.interval).toEqual(wilson(2.5, 4));
    expect(tally(votes, 'run:b')).toMatchObject({ wins: 0, losses: 2, ties: 0, n: 2, rate: 0 });
    const none = tally(votes, 'run:c');
    expect(none).toMatchObject({ n: 0, rate: null });
    expect(none.interval).toBeUndefined();
    expect(verdict(none)).toBe('none');
  });

  it('calls a difference only when the interval excludes one half', () => {
    const of = (wins: number, losses: number, ties = 0) =>
      tally(
        [...Array(wins).fill('tuned'), ...Array(losses).fill('reference'), ...Array(ties).fill('tie')].map((winner) => ({
          winner,
          tunedModel: 'm',
          referenceModel: REFERENCE_MODEL,
        })),
        'm',
      );
    expect(verdict(of(7, 3))).toBe('unclear'); // 70% of 10 is not enough
    expect(verdict(of(16, 4))).toBe('better');
    expect(verdict(of(2, 18))).toBe('worse');
    expect(verdict(of(0, 0, 30))).toBe('unclear');
  });
});

describe('data import', () => {
  it('takes prompt-only lines strictly, by the rule importJsonl applies everywhere', () => {
    const one = (line: string) => {
      const r = importData(line, 'f.jsonl');
      return r.errors.length ? { error: r.errors[0]!.replace(/^f\.jsonl:1: /, '') } : r.prompts.length ? r.prompts[0] : r.records[0];
    };
    expect(one('{"prompt":"Say hi."}')).toBe('Say hi.');
    expect(one('{"prompt":"Greet Kofi.","task":"greeting","id":7,"ok":true,"x":null}')).toBe('Greet Kofi.');
    expect(one('{"prompt":5}')).toEqual({ error: '"prompt" must be a string or a list of messages, got a number' });
    expect(one('{"prompt":null}')).toEqual({ error: '"prompt" must be a string or a list of messages, got null' });
    expect(one('{"prompt":" \\n"}')).toEqual({ error: '"prompt" is empty' });
    expect(one('{"prompt":"x","meta":{"a":1}}')).toEqual({ error: expect.stringMatching(/^"meta" must be a string, number, boolean or null/) });
    // TRL's conversational prompt: one user message is kept as its text (it encodes the same); the
    // store keeps prompts as text, so a system or multi-turn prompt is refused on its line
    expect(one('{"prompt":[{"role":"user","content":"Hi there."}]}')).toBe('Hi there.');
    expect(one('{"prompt":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi."}]}')).toEqual({
      error: expect.stringMatching(/system or multi-turn conversational prompt cannot be kept here/),
    });
    expect(one('{"prompt":[{"role":"user","content":"Hi."},{"role":"assistant","content":"Hello."}]}')).toEqual({
      error: 'a conversational prompt must end with a user turn, got role "assistant"',
    });
    // other kinds keep their own rules and messages
    expect(one('{"prompt":"x","completion":5}')).toEqual({ error: '"completion" must be a string, got a number' });
    expect(one('{"prompt":"x","chosen":"y"}')).toEqual({ error: 'missing "rejected"' });
    expect(one('{"prompt":"x","ranks":[0,1]}')).toEqual({ error: expect.stringMatching(/^not a known record shape/) });
    expect(one('{"text":"x"}')).toEqual({ error: expect.stringMatching(/^not a known record shape/) });
    expect(one('{"prompt":"a","prompt":"b"}')).toEqual({ error: expect.stringMatching(/duplicate key "prompt"/) });
    // keys that mean something to other code are plain data (strict parser, null prototype)
    expect(one('{"prompt":"p","__proto__":"x","constructor":"y"}')).toBe('p');
  });

  it('adds every good line, reports each bad one as file:line: problem, keeps strings verbatim', () => {
    const xss = '<img src=x onerror="document.body.dataset.xss=1">';
    const text =
      '\ufeff' +
      [
        JSON.stringify({ prompt: 'Say hi.', completion: 'Hi!' }), // 1
        JSON.stringify({ prompt: xss, task: 'greeting' }), // 2
        '{"prompt": "broken"', // 3
        '', // 4
        JSON.stringify({ prompt: 42 }), // 5
        JSON.stringify({ prompt: 'Rank these.', completions: ['good', 'bad'] }) + '\r', // 6
        JSON.stringify({ prompt: '  spaced  ' }) + '\r', // 7
        JSON.stringify({ prompt: 'x', completion: 1 }), // 8
        '{"prompt":"a","prompt":"b"}', // 9
        JSON.stringify({
          messages: [
            { role: 'user', content: xss },
            { role: 'assistant', content: 'ok' },
          ],
        }), // 10
      ].join('\n') +
      '\n';
    const r = importData(text, 'mine.jsonl');
    expect(r.records).toEqual<DataRecord[]>([
      { kind: 'completion', prompt: 'Say hi.', completion: 'Hi!' },
      { kind: 'ranking', prompt: 'Rank these.', completions: ['good', 'bad'] },
      {
        kind: 'messages',
        messages: [
          { role: 'user', content: xss },
          { role: 'assistant', content: 'ok' },
        ],
      },
    ]);
    expect(r.prompts).toEqual([xss, '  spaced  ']);
    expect(r.errors).toHaveLength(4);
    expect(r.errors[0]).toMatch(/^mine\.jsonl:3: invalid JSON/);
    expect(r.errors[1]).toBe('mine.jsonl:5: "prompt" must be a string or a list of messages, got a number');
    expect(r.errors[2]).toBe('mine.jsonl:8: "completion" must be a string, got a number');
    expect(r.errors[3]).toMatch(/^mine\.jsonl:9: invalid JSON: duplicate key "prompt"/);
  });

  it('reads the bundled demo prompts file shape and refuses an over-long prompt line', () => {
    const demo = '{"prompt":"Write a short greeting for Priya.","task":"greeting"}\n{"prompt":"Say hello to Kofi.","task":"greeting"}\n';
    expect(importData(demo, 'demo.jsonl')).toEqual({ records: [], prompts: ['Write a short greeting for Priya.', 'Say hello to Kofi.'], errors: [] });
    const long = JSON.stringify({ prompt: 'a'.repeat(MAX_LINE_CHARS) });
    const r = importData(`${long}\n{"prompt":"ok"}`, 'big.jsonl');
    expect(r.prompts).toEqual(['ok']);
    expect(r.errors).toEqual([expect.stringMatching(/^big\.jsonl:1: line is \d+ characters long/)]);
  });

  it('skips what is already there, in the store or earlier in the file', () => {
    const a: DataRecord = { kind: 'completion', prompt: 'p', completion: 'c' };
    const sameA = JSON.parse('{"completion":"c","prompt":"p","kind":"completion"}') as DataRecord; // other key order, as a store may give
    expect(recordKey(sameA)).toBe(recordKey(a));
    const r3: DataRecord = { kind: 'ranking', prompt: 'p', completions: ['x', 'y', 'z'] };
    expect(recordKey({ ...r3, ranks: [0, 1, 2] })).toBe(recordKey(r3));
    expect(recordKey({ ...r3, ranks: [0, 0, 1] })).not.toBe(recordKey(r3));
    const b: DataRecord = { kind: 'preference', prompt: 'p', chosen: 'c', rejected: 'r' };
    const got = newItems([recordKey(a)], [sameA, b, b, r3], recordKey);
    expect(got).toEqual({ added: [b, r3], duplicates: 2 });
    expect(newItems(['x'], ['x', 'y', 'y'], (s) => s)).toEqual({ added: ['y'], duplicates: 2 });
  });
});

describe('stored rankings, counters and export', () => {
  it('writes a stored ranking best first with dense ranks, ranks only for ties', () => {
    expect(rankingToRecord({ prompt: 'p', completions: ['x', 'y', 'z'], ranks: [0, 1, 2] })).toEqual({
      kind: 'ranking',
      prompt: 'p',
      completions: ['x', 'y', 'z'],
    });
    expect(rankingToRecord({ prompt: 'p', completions: ['x', 'y', 'z'], ranks: [2, 0, 1] })).toEqual({
      kind: 'ranking',
      prompt: 'p',
      completions: ['y', 'z', 'x'],
    });
    expect(rankingToRecord({ prompt: 'p', completions: ['a', 'b', 'c', 'd'], ranks: [1, 0, 1, 3] })).toEqual({
      kind: 'ranking',
      prompt: 'p',
      completions: ['b', 'a', 'c', 'd'],
      ranks: [0, 1, 1, 2],
    });
    expect(rankingToRecord({ prompt: 'p', completions: ['a', 'b'], ranks: [5, 3] })).toEqual({ kind: 'ranking', prompt: 'p', completions: ['b', 'a'] });
    expect(rankingToRecord({ prompt: 'p', completions: ['a', 'b'], ranks: [0, 0] })).toEqual({
      kind: 'ranking',
      prompt: 'p',
      completions: ['a', 'b'],
      ranks: [0, 0],
    });
  });

  it('bundles everything in one zip (data, prompts, votes, spot checks) whose data and prompts import back', () => {
    const records: DataRecord[] = [{ kind: 'completion', prompt: 'p', completion: 'c' }];
    const rankings = [{ prompt: 'q', completions: ['worst', 'best'], ranks: [1, 0], scores: [2, 7], flags: [['hallucination'], []] }];
    const prompts = [{ text: 'Say hi.' }];
    const votes = [
      {
        id: 3,
        prompt: 'v',
        tuned: 't',
        reference: 'r',
        tunedModel: 'run:a',
        referenceModel: 'base',
        tunedShownAs: 'B' as const,
        winner: 'tuned' as const,
        seed: 9,
        createdAt: 5,
      },
    ];
    const spotChecks = [{ id: 1, runId: 'a', step: 2, prompt: 'p', response: 'x', reward: 0.5, score: 6, createdAt: 6 }];
    const zip = dataBundle({ records, rankings, prompts, votes, spotChecks })!;
    const files = unzipFiles(zip, 'rlhf-playground-data.zip');
    expect([...files.keys()].sort()).toEqual(['data.jsonl', 'prompts.jsonl', 'spot-checks.jsonl', 'votes.jsonl']); // (unzipFiles drops the one folder)
    const text = (f: string) => new TextDecoder().decode(files.get(f));
    expect(JSON.parse(text('votes.jsonl'))).toEqual({ ...votes[0], id: undefined }); // the store's key is not data
    expect(JSON.parse(text('spot-checks.jsonl'))).toMatchObject({ runId: 'a', score: 6, reward: 0.5 });
    const back = importDataBundle(zip, 'rlhf-playground-data.zip');
    expect(back).toEqual({
      records: [...records, { kind: 'ranking', prompt: 'q', completions: ['best', 'worst'], scores: [7, 2], flags: [[], ['hallucination']] }],
      prompts: ['Say hi.'],
      errors: [],
      kept: ['votes.jsonl', 'spot-checks.jsonl'],
    });
    expect(dataBundle({ records: [], rankings: [], prompts: [], votes: [], spotChecks: [] })).toBeUndefined();
    // a bad line is named by zip, entry and line; a zip without the data files says what it lacks
    const enc = new TextEncoder();
    const bad = zipFiles(new Map([['data.jsonl', enc.encode('{"prompt":"p","completion":"c"}\n{"prompt":3}\n')]]));
    expect(importDataBundle(bad, 'mine.zip')).toMatchObject({
      records: [records[0]],
      errors: ['mine.zip/data.jsonl:2: "prompt" must be a string or a list of messages, got a number'],
    });
    expect(() => importDataBundle(zipFiles(new Map([['notes.txt', enc.encode('hi')]])), 'other.zip')).toThrow(
      /^other\.zip: holds no data\.jsonl or prompts\.jsonl/,
    );
  });

  it('keeps the 1-7 scores and Table 3 flags, in the best-first order, and they import back', () => {
    const stored = {
      prompt: 'p',
      completions: ['x', 'y', 'z'],
      ranks: [2, 0, 1],
      scores: [2, 6, null],
      flags: [['hallucination', 'opinion'], [], ['fails-instruction']],
    };
    const rec = rankingToRecord(stored);
    expect(rec).toEqual({
      kind: 'ranking',
      prompt: 'p',
      completions: ['y', 'z', 'x'],
      scores: [6, null, 2],
      flags: [[], ['fails-instruction'], ['hallucination', 'opinion']],
    });
    // nothing set: no empty labels in the file
    expect(rankingToRecord({ ...stored, scores: [null, null, null], flags: [[], [], []] })).toEqual({
      kind: 'ranking',
      prompt: 'p',
      completions: ['y', 'z', 'x'],
    });
    const out = exportData([], [stored], []);
    expect(out.data).toBe('{"prompt":"p","completions":["y","z","x"],"scores":[6,null,2],"flags":[[],["fails-instruction"],["hallucination","opinion"]]}\n');
    expect(importJsonl(out.data, 'rlhf-data.jsonl')).toEqual({ records: [rec], errors: [] });
    // the same ranking with other labels is not a duplicate of it
    expect(recordKey(rec)).not.toBe(recordKey({ ...rec, scores: [5, null, 2] } as typeof rec));
  });

  it('keeps the rationale and the sampling settings, and they import back', () => {
    const g = { temperature: 0.9, top_p: 0.95, top_k: 0, max_new_tokens: 64 };
    const stored = { prompt: 'p', completions: ['x', 'y'], ranks: [1, 0], rationale: 'y answers it', generation_config: g };
    const rec = rankingToRecord(stored);
    expect(rec).toEqual({ kind: 'ranking', prompt: 'p', completions: ['y', 'x'], rationale: 'y answers it', generation_config: g });
    const out = exportData([], [stored], []);
    expect(out.data).toBe(
      '{"prompt":"p","completions":["y","x"],"rationale":"y answers it","generation_config":{"temperature":0.9,"top_p":0.95,"top_k":0,"max_new_tokens":64}}\n',
    );
    expect(importJsonl(out.data, 'rlhf-data.jsonl')).toEqual({ records: [rec], errors: [] });
    // a blank rationale is not written; a bad setting in a file is refused by line
    expect(rankingToRecord({ ...stored, rationale: '  ', generation_config: undefined })).toEqual({ kind: 'ranking', prompt: 'p', completions: ['y', 'x'] });
    expect(importJsonl('{"prompt":"p","completions":["a","b"],"generation_config":{"top_p":0}}\n', 'r.jsonl').errors).toEqual([
      { line: 1, message: 'r.jsonl:1: "generation_config": top_p must be above 0 and at most 1, got 0' },
    ]);
    expect(importJsonl('{"prompt":"p","completions":["a","b"],"rationale":3}\n', 'r.jsonl').errors[0]!.message).toMatch(/"rationale" must be a string/);
  });

  it('counts prompts, demonstrations, rankings and the pairs they give', () => {
    const records: DataRecord[] = [
      { kind: 'completion', prompt: 'p', completion: 'c' },
      {
        kind: 'messages',
        messages: [
          { role: 'user', content: 'u' },
          { role: 'assistant', content: 'a' },
        ],
      },
      { kind: 'preference', prompt: 'p', chosen: 'c', rejected: 'r' }, // 1 pair
      { kind: 'ranking', prompt: 'p', completions: ['a', 'b', 'c'], ranks: [0, 0, 1] }, // 3 pairs - 1 tie
    ];
    const rankings = [
      { prompt: 'q', completions: ['a', 'b', 'c', 'd'], ranks: [0, 1, 2, 3] }, // 6
      { prompt: 'q', completions: ['a', 'b'], ranks: [0, 0] }, // 0
    ];
    expect(dataCounts({ prompts: ['a', 'b', 'c', 'd', 'e'], rankings, records })).toEqual({
      prompts: 5,
      demonstrations: 2,
      rankings: 4,
      comparisons: 1 + 2 + 6,
    });
    expect(dataCounts({ prompts: [], rankings: [], records: [] })).toEqual({ prompts: 0, demonstrations: 0, rankings: 0, comparisons: 0 });
  });

  it('exports what import reads back, and a second import adds nothing', () => {
    const xss = '<img src=x onerror=alert(1)>';
    const records: DataRecord[] = [
      { kind: 'completion', prompt: xss, completion: 'line one\nline two "quoted"' },
      { kind: 'preference', prompt: 'p', chosen: 'c', rejected: 'r' },
    ];
    const rankings = [{ prompt: 'q', completions: ['worst', 'best', 'mid'], ranks: [2, 0, 1] }];
    const prompts = [{ text: 'Say hi.' }, { text: `${xss}\nsecond line` }];
    const out = exportData(records, rankings, prompts);
    expect(out.data.split('\n')).toHaveLength(4); // three lines and the final newline
    const back = importJsonl(out.data, 'rlhf-data.jsonl');
    expect(back.errors).toEqual([]);
    expect(back.records).toEqual([...records, { kind: 'ranking', prompt: 'q', completions: ['best', 'mid', 'worst'] }]);
    const ps = importData(out.prompts, 'rlhf-prompts.jsonl');
    expect(ps).toEqual({ records: [], prompts: prompts.map((p) => p.text), errors: [] });
    // importing the export again: every record and prompt is a duplicate
    const have = [...records, ...rankings.map(rankingToRecord)].map(recordKey);
    expect(newItems(have, importData(out.data, 'again').records, recordKey).added).toEqual([]);
    expect(
      newItems(
        prompts.map((p) => p.text),
        ps.prompts,
        (t) => t,
      ).added,
    ).toEqual([]);
    expect(exportData([], [], [])).toEqual({ data: '', prompts: '' });
  });

  it('cuts one-line summaries and counts in words', () => {
    expect(oneLine('short')).toBe('short');
    expect(oneLine('first\nsecond')).toBe('first…');
    expect(oneLine('x'.repeat(10), 4)).toBe('xxxx…');
    expect([plural(1, 'win'), plural(0, 'win'), plural(1, 'loss', 'losses'), plural(3, 'loss', 'losses')]).toEqual(['1 win', '0 wins', '1 loss', '3 losses']);
  });
});
