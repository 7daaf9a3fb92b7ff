// Moved to src/shared/sampling.ts (the shared layer: see tests/layering.test.ts); this re-export keeps the engine's
// own imports of src/train/sampling.ts working.
export * from '../shared/sampling.ts';
