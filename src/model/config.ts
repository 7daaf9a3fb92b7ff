// Moved to src/shared/model-config.ts (the shared layer: see tests/layering.test.ts); this re-export keeps the engine's
// own imports of src/model/config.ts working.
export * from '../shared/model-config.ts';
