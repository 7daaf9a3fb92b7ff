#!/usr/bin/env node
// The command line: the same TypeScript engine (src/cli/main.ts), run on Dawn through tsx's loader.
// It runs as a child process so that Dawn's native start-up notices on stderr (limits it clamps for
// itself, e.g. "maxDynamicUniformBuffersPerPipelineLayout artificially reduced") can be filtered out:
// a failing command then prints exactly one line that names the problem.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const child = spawn(process.execPath, ['--import', 'tsx', main, ...process.argv.slice(2)], {
  stdio: ['inherit', 'inherit', 'pipe'],
  env: { XDG_RUNTIME_DIR: '/tmp', ...process.env },
});
const DAWN_NOISE = /^Warning: \w+ artificially reduced from \d+ to \d+/;
createInterface({ input: child.stderr }).on('line', (line) => {
  if (!DAWN_NOISE.test(line)) process.stderr.write(line + '\n');
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
