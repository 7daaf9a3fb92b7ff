// The GPU boundary read from the WGSL (src/gpu/runtime.ts: entryLayout, packParams): each entry point's
// binding kinds and its uniform struct come from the shader text, so the launchers pass params by name and
// declare no layout of their own. No GPU: the shaders are read from disk. Also the prelude the runtime prepends
// to every shader (shaders/prelude.wgsl: composeShader), and attention's one name per binding slot.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  composeShader,
  entryLayout,
  packParams,
  pathText,
  PRELUDE,
  preludeFor,
  subgroupHelpers,
  type Defines,
  type ReductionPath,
} from '../src/gpu/runtime.ts';

const shader = (f: string) => readFileSync(`shaders/${f}.wgsl`, 'utf8');
const prelude = readFileSync(`shaders/${PRELUDE}`, 'utf8');
const SHADERS = readdirSync('shaders')
  .filter((f) => f.endsWith('.wgsl') && f !== PRELUDE)
  .map((f) => f.replace(/\.wgsl$/, ''));
/** Defines each shader needs to compile (one combination; tests/ops.test.ts compiles them all on the GPU). */
const DEFINES: Record<string, Defines> = {
  attention: { HD: 16, GQ: 1 },
  embedding: { HAS_POS: true },
  norm: { RMS: false, ACCUM: false },
  matmul: { TRANS_A: false, TRANS_B: false, GR: 8 },
};
/** The shader as the runtime compiles it: directives, defines, the prelude, the file. */
const composed = (f: string) => composeShader(`${f}.wgsl`, shader(f), prelude, DEFINES[f]).code;
const stripComments = (code: string) => code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
/** The names a prelude text declares at module scope (its lines that start a declaration), once each. */
const namesOf = (text: string) => [
  ...new Set([...stripComments(text).matchAll(/^(?:fn|const|override|alias|struct|var(?:<[^>]*>)?)\s+(\w+)/gm)].map((m) => m[1]!)),
];
const PRELUDE_NAMES = namesOf(prelude);
/** The shaders that reduce across a workgroup: with the prelude's wg_reduce, or (matmul's gemv_nt) a `//#if subgroups`
 *  part of their own. On the subgroup path they take the subgroup versions; every other shader compiles as on the other. */
const REDUCING = ['attention', 'crossentropy', 'matmul', 'norm', 'optim', 'sampling'];
const PATHS: ReductionPath[] = ['workgroup', 'subgroups'];

// the layouts the launchers used to declare by hand (a trailing slot no entry uses is no longer bound)
const LAYOUTS: [string, string, string][] = [
  ['activation', 'gelu_forward', 'urw'],
  ['activation', 'gelu_backward', 'urw'],
  ['activation', 'swiglu_forward', 'urw'],
  ['activation', 'swiglu_backward', 'urrw'],
  ['activation', 'dropout_forward', 'urwr'],
  ['activation', 'dropout_backward', 'uwrr'],
  ['attention', 'forward', 'urww'],
  ['attention', 'backward_dsum', 'urrw'],
  ['attention', 'backward_dq', 'urrrrw'],
  ['attention', 'backward_dkv', 'urrrrw'],
  ['attention', 'kv_append', 'urrww'],
  ['attention', 'decode', 'urrrrw'],
  ['crossentropy', 'chunk_stats', 'uwrrw'],
  ['crossentropy', 'finalize', 'uwrrww'],
  ['crossentropy', 'grad', 'uwrrw'],
  ['embedding', 'forward', 'urrrrw'],
  ['embedding', 'backward_tokens', 'urrw'],
  ['embedding', 'backward_positions', 'urrw'],
  ['matmul', 'gemv_nt', 'urrrw'],
  ['matmul', 'gemv_nn', 'urrrw'],
  ['matmul', 'gemv4_nt', 'urrrw'],
  ['matmul', 'gemv4_nn', 'urrrw'],
  ['matmul', 'main', 'urrrw'],
  ['matmul', 'bias_backward', 'urrrw'],
  ['norm', 'forward', 'urrrww'],
  ['norm', 'backward_input', 'urrrrw'],
  ['norm', 'backward_params', 'urrrww'],
  ['optim', 'sumsq', 'urw'],
  ['optim', 'finalize', 'urw'],
  ['optim', 'adamw', 'uwrwwr'],
  ['residual', 'add', 'urrw'],
  ['residual', 'accumulate', 'uwr'],
  ['residual', 'zero', 'uw'],
  ['rope', 'main', 'urrw'],
  ['sampling', 'chunk_max', 'urrw'],
  ['sampling', 'chunk_mass', 'urrww'],
  ['sampling', 'pick', 'urrwww'],
  ['sampling', 'walk', 'urrwww'],
];

describe('shader layouts from the WGSL', () => {
  it('every entry point binds what its launcher binds, read from the file or from the shader as compiled (with the prelude)', () => {
    for (const [f, entry, kinds] of LAYOUTS) {
      expect(entryLayout(shader(f), entry).kinds.join(''), `${f}.${entry}`).toBe(kinds);
      expect(entryLayout(composed(f), entry), `${f}.${entry} with the prelude`).toEqual(entryLayout(shader(f), entry));
    }
    expect(new Set(LAYOUTS.map(([f]) => f))).toEqual(new Set(SHADERS)); // every shader file is listed
  });

  it("an entry point's uniform struct is the one it reads, field by field", () => {
    expect(entryLayout(shader('activation'), 'dropout_forward').params).toEqual([
      { name: 'n', type: 'u32' },
      { name: 'salt', type: 'u32' },
      { name: 'p', type: 'f32' },
      { name: '_a', type: 'u32' },
    ]);
    expect(entryLayout(shader('optim'), 'adamw').params.map((f) => f.type)).toEqual(['u32', ...new Array(7).fill('f32')]);
    expect(entryLayout(shader('optim'), 'sumsq').params.map((f) => f.name)).toEqual(['n', 'pofs', 'maxnorm', '_a']);
  });

  it('packs params by name into the bytes the positional arrays made', () => {
    const k = { name: 'matmul.main', params: entryLayout(shader('matmul'), 'main').params };
    const buf = packParams(k, { M: 3, N: 4, K: 5, lda: 5, ldb: 4, ldc: 4, row0: 0, aoff: 0, boff: 0, coff: 0, alpha: 0.5, flags: 2 });
    const u = new Uint32Array(buf),
      f = new Float32Array(buf);
    expect(buf.byteLength).toBe(48);
    expect([...u.slice(0, 10)]).toEqual([3, 4, 5, 5, 4, 4, 0, 0, 0, 0]);
    expect(f[10]).toBe(0.5);
    expect(u[11]).toBe(2);
    const rope = { name: 'rope.main', params: entryLayout(shader('rope'), 'main').params };
    expect(new Float32Array(packParams(rope, { BT: 1, S: 2, H: 3, D: 4, sign: -1 }))[4]).toBe(-1);
    expect(packParams({ name: 'residual.add', params: entryLayout(shader('residual'), 'add').params }, { n: 7 }).byteLength).toBe(16);
    expect(() => packParams(k, { M: 1 })).toThrow(/matmul\.main: param N is missing/);
    expect(() => packParams(k, { M: 1, typo: 2 })).toThrow(/matmul\.main: its params have no field typo/);
  });

  it('follows the functions an entry point calls, and ignores member names', () => {
    const code = `struct P { n: u32, x: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> unused: array<f32>;
fn helper(i: u32) -> f32 { return a[i] * p.x; } // reads a
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x < p.n) { b[g.x] = helper(g.x); } }`;
    expect(entryLayout(code, 'main')).toEqual({
      kinds: ['u', 'r', 'w'],
      names: ['p', 'a', 'b'],
      params: [
        { name: 'n', type: 'u32' },
        { name: 'x', type: 'f32' },
      ],
    });
    expect(() => entryLayout(code, 'nope')).toThrow(/no function nope/);
  });

  it('a name a function declares is its own, not a global; two globals at one slot of an entry point are an error', () => {
    const code = `struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;
fn twice(v: f32) -> f32 { let w = 2.0 * v; return w; } // parameter v and local w shadow the globals
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) { b[g.x] = twice(a[g.x]); }
@compute @workgroup_size(64)
fn both(@builtin(global_invocation_id) g: vec3<u32>) { b[g.x] = v[g.x] + w[g.x]; }`;
    expect(entryLayout(code, 'main')).toMatchObject({ kinds: ['u', 'r', 'r', 'w'], names: ['', 'a', '', 'b'] }); // 0 and 2: placeholders
    expect(() => entryLayout(code, 'both')).toThrow(/both: two globals at binding 2, v and w/);
  });
});

describe('the prelude (shaders/prelude.wgsl)', () => {
  it('is prepended exactly once to every shader, after its directives and the defines, on either reduction path', () => {
    expect(PRELUDE_NAMES).toEqual(expect.arrayContaining(['flat', 'group_index', 'wg_reduce']));
    for (const path of PATHS) {
      for (const f of SHADERS) {
        const c = composeShader(`${f}.wgsl`, shader(f), prelude, DEFINES[f], path);
        // a shader that reduces takes the subgroup parts (and the directive) on the subgroup path; any other the tree's
        expect(c.subgroups, `${f} on ${path}`).toBe(path === 'subgroups' && REDUCING.includes(f));
        const pre = preludeFor(prelude, c.subgroups).trimEnd();
        expect(c.code.split(pre).length - 1, f).toBe(1);
        for (const name of namesOf(pre)) expect(c.code.match(new RegExp(`^(?:fn|var<[^>]*>)\\s+${name}\\b`, 'gm'))?.length, `${f}: ${name}`).toBe(1);
        expect(c.code.match(/^enable subgroups;$/gm)?.length ?? 0, `${f} on ${path}: enable subgroups`).toBe(c.subgroups ? 1 : 0);
        expect(/\bsubgroup[A-Z]\w*\s*\(/.test(stripComments(c.code)), `${f} on ${path}: a subgroup builtin`).toBe(c.subgroups);
      }
    }
    const c = composeShader('x.wgsl', 'enable f16;\n// body\nfn main() {}\n', prelude, { HD: 16, RMS: true, eps: 0.5 });
    const tree = preludeFor(prelude, false).trimEnd();
    const lines = c.code.split('\n'),
      n = tree.split('\n').length;
    expect(lines.slice(0, 4)).toEqual(['enable f16;', 'const HD = 16u;', 'const RMS = true;', 'const eps = 0.5f;']);
    expect(lines.slice(4, 4 + n).join('\n')).toBe(tree);
    expect(lines.slice(4 + n)).toEqual(['// body', 'fn main() {}', '']);
    // compiler messages point into the file they came from
    expect([1, 2, 5, 4 + n, 5 + n, 6 + n].map(c.where)).toEqual(['x.wgsl:1', 'defines', 'prelude.wgsl:1', `prelude.wgsl:${n}`, 'x.wgsl:2', 'x.wgsl:3']);
    expect(composeShader('y.wgsl', 'fn main() {}', prelude).code).toBe(`${tree}\nfn main() {}`);
    expect(composeShader('y.wgsl', 'fn main() {}', prelude, {}, 'subgroups').code, 'no reduction, no subgroups').toBe(`${tree}\nfn main() {}`);
    expect(() => composeShader(PRELUDE, prelude, prelude)).toThrow(/no shader of its own/);
    // on the subgroup path a shader that calls wg_reduce gets the directive after its own, and the subgroup parts
    const s = composeShader(
      'x.wgsl',
      'enable f16;\n// calls wg_reduce(\nfn main() { _ = wg_reduce(1.0, 0u, 64u, false); }\n',
      prelude,
      { HD: 16 },
      'subgroups',
    );
    const sub = preludeFor(prelude, true).trimEnd(),
      m = sub.split('\n').length;
    expect(s.code.split('\n').slice(0, 3)).toEqual(['enable f16;', 'enable subgroups;', 'const HD = 16u;']);
    expect(
      s.code
        .split('\n')
        .slice(3, 3 + m)
        .join('\n'),
    ).toBe(sub);
    expect([1, 2, 3, 4, 3 + m, 4 + m].map(s.where)).toEqual(['x.wgsl:1', 'directives', 'defines', 'prelude.wgsl:1', `prelude.wgsl:${m}`, 'x.wgsl:2']);
  });

  it('keeps one of the two versions of wg_reduce, line for line where the file has it', () => {
    const lines = prelude.split('\n'),
      marker = /^\/\/#(if subgroups|else|endif)$/;
    expect(lines.filter((l) => marker.test(l)).map((l) => l.slice(3))).toEqual(['if subgroups', 'else', 'endif']);
    const [i, e, z] = ['//#if subgroups', '//#else', '//#endif'].map((m) => lines.indexOf(m));
    for (const sg of [true, false]) {
      const kept = preludeFor(prelude, sg).split('\n');
      expect(kept.length).toBe(lines.length);
      kept.forEach((line, k) => {
        const inBranch = k > i! && k < e! ? sg : k > e! && k < z! ? !sg : k !== i && k !== e && k !== z;
        expect(line, `line ${k + 1} (subgroups ${sg})`).toBe(inBranch ? lines[k] : '');
      });
    }
    // both versions declare the same names (one reduction, its workgroup array), the subgroup one also its bank
    expect(namesOf(preludeFor(prelude, true)).sort()).toEqual([...namesOf(preludeFor(prelude, false)), 'wg_bank'].sort());
    expect(subgroupHelpers(prelude)).toEqual(['wg_reduce']);
    // subgroup builtins only in the subgroup part: WGSL refuses them anywhere without `enable subgroups;`
    expect(stripComments(preludeFor(prelude, false))).not.toMatch(/subgroup/i);
    expect(stripComments(preludeFor(prelude, true))).toMatch(/\bsubgroupAdd\(/);
    expect(() => preludeFor('//#if subgroups\nfn a() {}\n', true)).toThrow(/without \/\/#endif/);
    expect(() => preludeFor('//#else\n', true)).toThrow(/without \/\/#if/);
    expect(() => preludeFor('//#ifdef X\n', true)).toThrow(/unknown marker/);
  });

  it('no shader declares a prelude name, or keeps a copy of its helpers, and every helper is used', () => {
    for (const f of SHADERS) {
      const src = stripComments(shader(f));
      for (const name of PRELUDE_NAMES) {
        expect(src, `${f}.wgsl declares ${name}`).not.toMatch(new RegExp(`\\b(?:fn|let|const|override|alias|struct|var(?:<[^>]*>)?)\\s+${name}\\b`));
      }
      expect(src, `${f}.wgsl: the 2-D workgroup index is the prelude's group_index`).not.toMatch(/wid\.y\s*\*\s*nwg\.x/);
      // a tree reduction over one workgroup array is the prelude's wg_reduce (matmul's gemv_nt sums GM rows at once)
      expect(src.match(/\bs\s*>>=\s*1u/g)?.length ?? 0, `${f}.wgsl: a tree reduction of its own`).toBe(f === 'matmul' ? 1 : 0);
      // subgroup operations only in `//#if subgroups` parts (the runtime enables them only where they are on)
      expect(stripComments(pathText(shader(f), false, `${f}.wgsl`)), `${f}.wgsl: subgroup operations outside //#if subgroups`).not.toMatch(
        /\bsubgroup[A-Z]\w*\s*\(|enable\s+subgroups/,
      );
      expect(shader(f).includes('//#if subgroups') || /\bwg_reduce\s*\(/.test(src), `${f}.wgsl reduces`).toBe(REDUCING.includes(f));
    }
    const all = SHADERS.map((f) => stripComments(shader(f))).join('\n');
    for (const name of PRELUDE_NAMES.filter((x) => !['wg_red', 'wg_bank'].includes(x)))
      expect(all, `no shader uses ${name}`).toMatch(new RegExp(`\\b${name}\\s*\\(`));
  });

  it("holds helpers only (no directive, binding, struct or entry point), and its locals never read as a shader's bindings", () => {
    const src = stripComments(prelude);
    expect(src).not.toMatch(/^\s*(enable|requires|diagnostic)\b|@group|@binding|@compute|\bstruct\b|\boverride\b|\bconst\b/m);
    // a shader whose bindings are named like every parameter and local of the prelude's functions
    const ids = [...new Set([...src.matchAll(/[(,]\s*(\w+)\s*:|\b(?:let|var)\s+(\w+)/g)].map((m) => m[1] ?? m[2]!))];
    expect(ids.sort()).toEqual(['base', 'c', 'i', 'is_max', 'k', 'lid', 'n', 'nwg', 'r', 's', 't', 'v', 'wid']);
    const decoys = ids.map((id, i) => `@group(0) @binding(${i + 2}) var<storage, read> ${id}: array<f32>;`).join('\n');
    for (const path of PATHS) {
      const c = composeShader(
        'decoy.wgsl',
        `struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
${decoys}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) c: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  o[group_index(w, c) + p.n] = wg_reduce(f32(flat(w, c, l)), l, 256u, false);
}`,
        prelude,
        {},
        path,
      );
      expect(c.subgroups).toBe(path === 'subgroups');
      expect(entryLayout(c.code, 'main'), path).toEqual({ kinds: ['u', 'w'], names: ['p', 'o'], params: [{ name: 'n', type: 'u32' }] });
    }
  });
});

describe('attention binds one name per tensor and slot', () => {
  it("each entry point binds the names of the table in the shader's header, and no name means two things", () => {
    const src = shader('attention');
    const table = src
      .slice(src.indexOf('//   entry point'), src.indexOf('// (o_decode'))
      .split('\n')
      .slice(1)
      .filter(Boolean)
      .map((line) => line.replace(/^\/\/\s+/, '').split(/\s+/));
    expect(table.map((r) => r[0])).toEqual(['forward', 'backward_dsum', 'backward_dq', 'backward_dkv', 'kv_append', 'decode']);
    const slotOf = new Map<string, number>();
    for (const [entry, ...names] of table) {
      const layout = entryLayout(src, entry!);
      expect(layout.names, entry).toEqual(['p', ...names]);
      names.forEach((name, i) => {
        expect(slotOf.get(name) ?? i + 1, `${name} at two slots`).toBe(i + 1);
        slotOf.set(name, i + 1);
      });
    }
    // every binding declared in the file is in the table, and a read-only twin (`_in`) sits beside what writes it
    const declared = [...stripComments(src).matchAll(/@binding\((\d+)\)\s*var<([^>]*)>\s*(\w+)/g)];
    expect(new Set(declared.map((m) => m[3]))).toEqual(new Set(['p', ...slotOf.keys()]));
    for (const [, , space, name] of declared) {
      if (name!.endsWith('_in')) expect(space!.replace(/\s/g, ''), name).toBe('storage,read');
    }
  });
});
