// bench/gpu/: the bench packed for a bare NVIDIA machine (README, Benchmarks). Builds the bundle as pack.sh
// does (bench/gpu/build.mjs, esbuild) and checks that its rewrites applied, so that the bundle finds dawn.node
// and the shaders outside node_modules and the source tree; and that the scripts parse. pack.sh's downloads
// and compression, and run.sh on a GPU, are not run here.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

describe('bench/gpu packing', () => {
  it('bundles the bench and both peers, loading dawn.node and the shaders from where run.sh puts them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpu-bench-'));
    try {
      const out = execFileSync(process.execPath, [join(ROOT, 'bench/gpu/build.mjs'), dir], { cwd: ROOT, encoding: 'utf8' });
      expect(out).toMatch(/tfjs in it, jax-js [\d.]+ in it/);
      const js = readFileSync(join(dir, 'bench.mjs'), 'utf8');
      expect(js).toContain('process.env.RLHF_DAWN_NODE||');
      expect(js).toContain('process.env.RLHF_SHADER_DIR?');
      expect(js).toContain('process.env.BENCH_COMMIT||');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('pack.sh and run.sh parse', () => {
    for (const f of ['pack.sh', 'run.sh']) execFileSync('bash', ['-n', join(ROOT, 'bench/gpu', f)]);
  });
});
