// Running the command line as a user does (node bin/rlhf-playground.mjs ...), for the CLI tests.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The command's exit code, stdout and stderr; a command that outlives `timeoutMs` fails the test as hung. */
export async function cli(args: string[], o: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const timeoutMs = o.timeoutMs ?? 300_000;
  try {
    const r = await run(process.execPath, ['bin/rlhf-playground.mjs', ...args], { timeout: timeoutMs, maxBuffer: 64 << 20, ...(o.env ? { env: o.env } : {}) });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string; killed?: boolean };
    if (x.killed) throw new Error(`rlhf-playground ${args.join(' ')} hung (over ${timeoutMs / 1000} s)`);
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}
