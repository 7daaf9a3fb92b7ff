// The built-in model's files (public/models/default), for the page to load it without probing for the
// optional files it lacks (tests/default-model.test.ts keeps the list true). No imports: the UI reads it.
export const BUILTIN_MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
  'training.json',
] as const;
