// Moved to src/shared/rewards.ts (the shared layer: see tests/layering.test.ts); this re-export keeps the engine's
// own imports of src/train/rewards.ts working.
export * from '../shared/rewards.ts';
