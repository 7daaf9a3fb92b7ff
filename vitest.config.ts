import { defineConfig } from 'vitest/config';

// Three projects, so the tests that need neither a GPU nor a browser run alone in seconds:
//   npx vitest run --project unit      pure code: math, schema, formats, store (fake-indexeddb), UI logic
//   npx vitest run --project gpu       Dawn in Node (lavapipe on a machine without a GPU), the CLI included
//   npx vitest run --project browser   Chromium driving the page or its parts
// `npm test` runs all three, as one run with the same pool (maxWorkers) and timeouts as before.
// A file is in the project of its heaviest need; tests/projects.test.ts checks every tests/*.test.ts is in
// exactly one, and that the lists below say what each file uses (testGpu, the CLI, Chromium).

/** Tests that run WebGPU through Dawn: testGpu / tightGpu / createNodeGpu, or the CLI (which opens Dawn). */
export const GPU_TESTS = [
  'checkpoint-file',
  'cli',
  'default-model',
  'dpo',
  'experiment',
  'f16-weights',
  'generate',
  'grpo-builtin',
  'grpo-cli',
  'grpo',
  'loader',
  'lora',
  'malformed',
  'memory',
  'models',
  'ops',
  'plan-set',
  'ppo',
  'reward',
  'sampling-gpu',
  'sft',
  'train-cli',
  'worker-grpo',
  'worker',
].map((n) => `tests/${n}.test.ts`);

/** Tests that drive Chromium (tests/helpers/browser-env.ts, playwright-core). */
export const BROWSER_TESTS = [
  'app-e2e',
  'app-focus-e2e',
  'app-grpo-e2e',
  'app-labelling-e2e',
  'app-look-e2e',
  'app-recipe-e2e',
  'app-rlhf-e2e',
  'browser',
  'malformed-browser',
  'rank-view-browser',
  'share-browser',
  'store-crash-browser',
  'worker-browser',
].map((n) => `tests/${n}.test.ts`);

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One GPU device per worker; lavapipe uses the CPU cores itself, so keep workers few (for all projects together).
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit', include: ['tests/**/*.test.ts'], exclude: [...GPU_TESTS, ...BROWSER_TESTS] } },
      { extends: true, test: { name: 'gpu', include: GPU_TESTS } },
      { extends: true, test: { name: 'browser', include: BROWSER_TESTS, globalSetup: ['tests/helpers/build-app.ts'] } },
    ],
  },
});
