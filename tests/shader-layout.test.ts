// The GPU boundary read from the WGSL (src/gpu/runtime.ts: entryLayout, packParams): each entry point's
// binding kinds and its uniform struct come from the shader text, so the launchers pass params by name and
// declare no layout of their own. No GPU: the shaders are read from disk.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { entryLayout, packParams } from '../src/gpu/runtime.ts';

const shader = (f: string) => readFileSync(`shaders/${f}.wgsl`, 'utf8');

// the layouts the launchers used to declare by hand (a trailing slot no entry uses is no longer bound)
const LAYOUTS: [string, string, string][] = [
  ['activation', 'gelu_forward', 'urw'], ['activation', 'gelu_backward', 'urw'], ['activation', 'swiglu_forward', 'urw'],
  ['activation', 'swiglu_backward', 'urrw'], ['activation', 'dropout_forward', 'urwr'], ['activation', 'dropout_backward', 'uwrr'],
  ['attention', 'forward', 'urww'], ['attention', 'backward_dsum', 'urrw'], ['attention', 'backward_dq', 'urrrrw'],
  ['attention', 'backward_dkv', 'urrrrw'], ['attention', 'kv_append', 'urrww'], ['attention', 'decode', 'urrrrw'],
  ['crossentropy', 'chunk_stats', 'uwrrw'], ['crossentropy', 'finalize', 'uwrrww'], ['crossentropy', 'grad', 'uwrrw'],
  ['embedding', 'forward', 'urrrrw'], ['embedding', 'backward_tokens', 'urrw'], ['embedding', 'backward_positions', 'urrw'],
  ['matmul', 'gemv_nt', 'urrrw'], ['matmul', 'gemv_nn', 'urrrw'], ['matmul', 'main', 'urrrw'], ['matmul', 'bias_backward', 'urrrw'],
  ['norm', 'forward', 'urrrww'], ['norm', 'backward_input', 'urrrrw'], ['norm', 'backward_params', 'urrrww'],
  ['optim', 'sumsq', 'urw'], ['optim', 'finalize', 'urw'], ['optim', 'adamw', 'uwrwwr'],
  ['residual', 'add', 'urrw'], ['residual', 'accumulate', 'uwr'], ['residual', 'zero', 'uw'], ['rope', 'main', 'urrw'],
];

describe('shader layouts from the WGSL', () => {
  it('every entry point binds what its launcher binds', () => {
    for (const [f, entry, kinds] of LAYOUTS) expect(entryLayout(shader(f), entry).kinds.join(''), `${f}.${entry}`).toBe(kinds);
  });

  it('an entry point\'s uniform struct is the one it reads, field by field', () => {
    expect(entryLayout(shader('activation'), 'dropout_forward').params).toEqual([
      { name: 'n', type: 'u32' }, { name: 'salt', type: 'u32' }, { name: 'p', type: 'f32' }, { name: '_a', type: 'u32' },
    ]);
    expect(entryLayout(shader('optim'), 'adamw').params.map((f) => f.type)).toEqual(['u32', ...new Array(7).fill('f32')]);
    expect(entryLayout(shader('optim'), 'sumsq').params.map((f) => f.name)).toEqual(['n', 'pofs', 'maxnorm', '_a']);
  });

  it('packs params by name into the bytes the positional arrays made', () => {
    const k = { name: 'matmul.main', params: entryLayout(shader('matmul'), 'main').params };
    const buf = packParams(k, { M: 3, N: 4, K: 5, lda: 5, ldb: 4, ldc: 4, row0: 0, aoff: 0, boff: 0, coff: 0, alpha: 0.5 });
    const u = new Uint32Array(buf), f = new Float32Array(buf);
    expect(buf.byteLength).toBe(48);
    expect([...u.slice(0, 10)]).toEqual([3, 4, 5, 5, 4, 4, 0, 0, 0, 0]);
    expect(f[10]).toBe(0.5);
    expect(u[11]).toBe(0);
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
    expect(entryLayout(code, 'main')).toEqual({ kinds: ['u', 'r', 'w'], params: [{ name: 'n', type: 'u32' }, { name: 'x', type: 'f32' }] });
    expect(() => entryLayout(code, 'nope')).toThrow(/no function nope/);
  });
});
