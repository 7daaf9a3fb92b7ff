// The layering rules (src/LAYERS.md) hold for every import in src/: the test reads the table there, parses
// each file's imports and re-exports (type-only ones included) and names every arrow the table forbids.
// No GPU, no browser: part of the unit project.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

interface Rule {
  layer: string;
  allows: Map<string, 'all' | 'types'>;
  line: number;
}

/** The table of src/LAYERS.md: `| \`layer\` | a, b (types), ... | what it is |`. */
function readRules(markdown: string): Map<string, Rule> {
  const rules = new Map<string, Rule>();
  markdown.split('\n').forEach((text, i) => {
    const m = /^\|\s*`([^`]+)`\s*\|([^|]*)\|/.exec(text);
    if (!m) return;
    const allows = new Map<string, 'all' | 'types'>();
    for (const item of m[2]!
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const t = /^(\S+)(\s+\(types\))?$/.exec(item);
      if (!t) throw new Error(`src/LAYERS.md:${i + 1}: cannot read "${item}"`);
      allows.set(t[1]!, t[2] ? 'types' : 'all');
    }
    rules.set(m[1]!, { layer: m[1]!, allows, line: i + 1 });
  });
  return rules;
}

interface Import {
  line: number;
  spec: string;
  typeOnly: boolean;
}

/** Every static import / export-from, side-effect import and dynamic import() of a module's text. */
function importsOf(text: string): Import[] {
  const out: Import[] = [];
  const lineAt = (i: number) => text.slice(0, i).split('\n').length;
  const fromRe = /^[ \t]*(import|export)\s+(type\s+)?([^;'"`]*?)\s*from\s*(['"])([^'"]+)\4/gm;
  for (const m of text.matchAll(fromRe)) {
    const clause = m[3]!.trim();
    // `import { type A, type B }`: type-only too (every name marked); `import type` / `export type` are
    const braces = /^\{([\s\S]*)\}$/.exec(clause);
    const names = braces
      ? braces[1]!
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
    const typeOnly = !!m[2] || (names.length > 0 && names.every((n) => n.startsWith('type ')));
    out.push({ line: lineAt(m.index!), spec: m[5]!, typeOnly });
  }
  for (const m of text.matchAll(/^[ \t]*import\s*(['"])([^'"]+)\1/gm)) out.push({ line: lineAt(m.index!), spec: m[2]!, typeOnly: false });
  for (const m of text.matchAll(/\bimport\(\s*(['"])([^'"]+)\1\s*\)/g)) out.push({ line: lineAt(m.index!), spec: m[2]!, typeOnly: false });
  return out.sort((a, b) => a.line - b.line);
}

/** The layer of a file (a path relative to the repository): a row's file, its folder under src/, `entry` for src/*.ts, else its top folder. */
function layerOf(path: string, rules: Map<string, Rule>): string {
  const parts = path.split(sep).join('/').split('/');
  if (parts[0] !== 'src') return parts[0]!;
  const inSrc = parts.slice(1).join('/');
  if (rules.has(inSrc)) return inSrc;
  return parts.length === 2 ? 'entry' : parts[1]!;
}

interface Violation {
  file: string;
  line: number;
  message: string;
}

/** The arrows of one file (its path relative to the repository, its text) that the rules forbid. */
function check(file: string, text: string, rules: Map<string, Rule>): Violation[] {
  const from = layerOf(file, rules);
  const rule = rules.get(from);
  const out: Violation[] = [];
  for (const imp of importsOf(text)) {
    if (!imp.spec.startsWith('.')) {
      if (from === 'shared')
        out.push({ file, line: imp.line, message: `shared imports the package "${imp.spec}" (src/LAYERS.md: shared imports nothing outside it)` });
      continue;
    }
    const target = relative(ROOT, resolve(ROOT, dirname(file), imp.spec));
    const to = layerOf(target, rules);
    // inside a layer; a folder's files may import its files that have rows of their own (worker -> worker/api.ts)
    if (to === from || (!from.includes('/') && to.split('/')[0] === from)) continue;
    if (!rule) {
      out.push({ file, line: imp.line, message: `layer "${from}" has no row in src/LAYERS.md` });
      continue;
    }
    const allowed = rule.allows.get(to) ?? rule.allows.get(to.split('/')[0]!);
    const where = `src/LAYERS.md:${rule.line} (${from} may import: ${[...rule.allows].map(([k, v]) => (v === 'types' ? `${k} (types)` : k)).join(', ') || 'nothing outside it'})`;
    if (!allowed) out.push({ file, line: imp.line, message: `${from} -> ${to} ("${imp.spec}") is not allowed by ${where}` });
    else if (allowed === 'types' && !imp.typeOnly)
      out.push({ file, line: imp.line, message: `${from} -> ${to} ("${imp.spec}") must be type-only by ${where}` });
  }
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
    });
}

const rules = readRules(readFileSync(join(SRC, 'LAYERS.md'), 'utf8'));

describe('layering (src/LAYERS.md)', () => {
  it('every import in src/ is allowed by the table', () => {
    const files = sources(SRC);
    expect(files.length).toBeGreaterThan(50);
    const bad = files.flatMap((f) => check(relative(ROOT, f), readFileSync(f, 'utf8'), rules));
    expect(bad.map((v) => `${v.file}:${v.line}: ${v.message}`)).toEqual([]);
  });

  it('every layer the files fall in has a row, and every row names layers that exist', () => {
    const layers = new Set(sources(SRC).map((f) => layerOf(relative(ROOT, f), rules)));
    for (const l of layers) expect(rules.has(l), `no row for ${l}`).toBe(true);
    for (const r of rules.values()) for (const a of r.allows.keys()) expect(rules.has(a) || a === 'scripts', `${r.layer} names ${a}`).toBe(true);
  });

  it('shared code touches no GPU, DOM or storage', () => {
    const globals = /\b(navigator|document|window|localStorage)\s*\.|\b(indexedDB|IDB[A-Z]\w+|GPU[A-Z]\w+|HTMLElement|customElements)\b/;
    const bad: string[] = [];
    for (const f of sources(join(SRC, 'shared'))) {
      const code = readFileSync(f, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/(^|[^:'"])\/\/.*$/gm, '$1');
      code.split('\n').forEach((l, i) => {
        if (globals.test(l)) bad.push(`${relative(ROOT, f)}:${i + 1}: ${l.trim()}`);
      });
    }
    expect(bad).toEqual([]);
  });

  it('names a forbidden arrow, a type-only one included, with the file, line and rule', () => {
    const text = [
      "import { html } from 'lit';",
      "import { isOnline } from '../shared/schema.ts';",
      "import type { Gpu } from '../gpu/runtime.ts';",
      'import {',
      '  type LoraSet,',
      "} from '../model/lora.ts';",
      "import { Engine } from '../worker/api.ts';",
      "import type { RunRecord } from '../store/db.ts';",
      "const m = await import('../train/stages.ts');",
      "export { x } from '../worker/engine.ts';",
    ].join('\n');
    const bad = check('src/ui/example.ts', text, rules);
    expect(bad.map((v) => v.line)).toEqual([3, 4, 7, 9, 10]);
    expect(bad[0]!.message).toMatch(
      /^ui -> gpu \("\.\.\/gpu\/runtime\.ts"\) is not allowed by src\/LAYERS\.md:\d+ \(ui may import: shared, io, store, worker\/api\.ts \(types\)\)$/,
    );
    expect(bad[2]!.message).toMatch(/ui -> worker\/api\.ts .* must be type-only/);
    expect(check('src/model/example.ts', "import type { Stage } from '../train/config.ts';", rules)).toHaveLength(1);
    expect(check('src/shared/example.ts', "import { Gpu } from '../gpu/runtime.ts';\nimport { openDB } from 'idb';", rules)).toHaveLength(2);
    expect(check('src/worker/engine.ts', "import type { Engine } from './api.ts';\nimport { Session } from './session.ts';", rules)).toEqual([]);
    expect(check('src/worker/api.ts', "import { Session } from './session.ts';", rules)).toHaveLength(1);
  });
});
