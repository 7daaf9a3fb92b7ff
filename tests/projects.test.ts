// The test projects (vitest.config.ts): every tests/*.test.ts file is in exactly one, and in the one its
// heaviest need says: Chromium -> browser, else Dawn (a GPU device, or the CLI, which opens one) -> gpu,
// else unit. A new GPU or browser test that is not listed lands in unit and fails here, by name.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BROWSER_TESTS, GPU_TESTS } from '../vitest.config.ts';

const ROOT = resolve(import.meta.dirname, '..');
const FILES = readdirSync(join(ROOT, 'tests'))
  .filter((n) => n.endsWith('.test.ts'))
  .map((n) => `tests/${n}`)
  .sort();

/** What a test file uses, from its text. */
function needOf(text: string): 'browser' | 'gpu' | 'unit' {
  if (/from '\.\/helpers\/(browser-env|app)\.ts'|from 'playwright-core'/.test(text)) return 'browser';
  if (/\b(testGpu|tightGpu|createNodeGpu)\(|src\/gpu\/node\.ts'|from '\.\/helpers\/cli\.ts'/.test(text)) return 'gpu';
  return 'unit';
}

describe('test projects (vitest.config.ts)', () => {
  it('every test file is in exactly one project, and every listed file exists', () => {
    for (const f of [...GPU_TESTS, ...BROWSER_TESTS]) expect(FILES, `${f} is listed in vitest.config.ts`).toContain(f);
    const both = GPU_TESTS.filter((f) => BROWSER_TESTS.includes(f));
    expect(both).toEqual([]);
    expect(new Set(GPU_TESTS).size).toBe(GPU_TESTS.length);
    expect(new Set(BROWSER_TESTS).size).toBe(BROWSER_TESTS.length);
  });

  it('each file is in the project of its heaviest need', () => {
    const wrong = FILES.flatMap((f) => {
      const listed = BROWSER_TESTS.includes(f) ? 'browser' : GPU_TESTS.includes(f) ? 'gpu' : 'unit';
      const need = f === 'tests/projects.test.ts' ? 'unit' : needOf(readFileSync(join(ROOT, f), 'utf8')); // its patterns name what it looks for
      return listed === need ? [] : [`${f}: in ${listed}, uses ${need === 'unit' ? 'neither a GPU nor a browser' : need}`];
    });
    expect(wrong).toEqual([]);
  });
});
