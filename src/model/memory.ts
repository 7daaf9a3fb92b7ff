// Moved to src/shared/memory.ts (the shared layer: see tests/layering.test.ts); this re-export keeps the engine's
// own imports of src/model/memory.ts working.
export * from '../shared/memory.ts';
