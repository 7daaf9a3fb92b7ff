// Moved to src/shared/schema.ts (the shared layer: see tests/layering.test.ts); this re-export keeps the engine's
// own imports of src/train/schema.ts working.
export * from '../shared/schema.ts';
