// Moved to src/shared/config.ts (the shared layer: see tests/layering.test.ts); this re-export keeps the engine's
// own imports of src/train/config.ts working.
export * from '../shared/config.ts';
