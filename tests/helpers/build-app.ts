// Global setup of the browser project: builds the app once (what `npm run build` writes) for every test
// file that drives the built app, instead of once per file. Each file still serves it with its own preview
// server and Chromium (tests/helpers/browser-env.ts reads the folder with inject('builtApp')).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    builtApp: string;
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const { build } = await import('vite');
  const outDir = mkdtempSync(join(tmpdir(), 'rlhf-playground-dist-'));
  await build({ logLevel: 'silent', build: { outDir, emptyOutDir: true } });
  project.provide('builtApp', outDir);
  return () => rmSync(outDir, { recursive: true, force: true });
}
