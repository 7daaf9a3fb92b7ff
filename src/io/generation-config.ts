// The sampling settings of the page, under the names of transformers' GenerationConfig (what TRL's
// configs use too): one set for every place that draws samples for the user (Rank, Compare), kept
// across reloads, and recorded with every ranking and vote made from those samples, so a file of
// rankings says how its completions were drawn. Pure: runs in browsers and in Node.
//
//   temperature      0 = greedy; the logits are divided by it
//   top_p            nucleus sampling: the smallest set of tokens whose probability reaches top_p; 1 = off
//   top_k            only the k most likely tokens; 0 = off (as in transformers)
//   max_new_tokens   tokens written at most per completion

export interface GenerationConfig {
  temperature: number;
  top_p: number;
  top_k: number;
  max_new_tokens: number;
}

export type GenerationKey = keyof GenerationConfig;

export const GENERATION_KEYS: readonly GenerationKey[] = ['temperature', 'top_p', 'top_k', 'max_new_tokens'];

export const GENERATION_DEFAULTS: Readonly<GenerationConfig> = { temperature: 0.9, top_p: 0.95, top_k: 0, max_new_tokens: 64 };

/** The range of each setting; `min` is exclusive where `open` (a top_p of 0 keeps no token). */
export const GENERATION_LIMITS: { readonly [K in GenerationKey]: { min: number; max: number; int: boolean; open?: boolean } } = {
  temperature: { min: 0, max: 2, int: false },
  top_p: { min: 0, max: 1, int: false, open: true },
  top_k: { min: 0, max: 1000, int: true },
  max_new_tokens: { min: 1, max: 1024, int: true },
};

/** Why `v` is not a value of setting `key`; undefined when it is. */
export function generationProblem(key: GenerationKey, v: unknown): string | undefined {
  const l = GENERATION_LIMITS[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) return `${key} must be a number, got ${JSON.stringify(v) ?? String(v)}`;
  if (l.int && !Number.isInteger(v)) return `${key} must be an integer, got ${v}`;
  if (v > l.max || (l.open ? v <= l.min : v < l.min)) return `${key} must be ${l.open ? `above ${l.min}` : `at least ${l.min}`} and at most ${l.max}, got ${v}`;
  return undefined;
}

/** A typed value brought into range (a field's input): rounded for integers, clamped, NaN gives the current value. */
export function clampGeneration(key: GenerationKey, v: number, current: number): number {
  const l = GENERATION_LIMITS[key];
  if (!Number.isFinite(v)) return current;
  const x = Math.min(l.max, Math.max(l.min, l.int ? Math.round(v) : v));
  return l.open && x <= l.min ? current : x;
}

/** Settings read back (e.g. from localStorage): every good value kept, anything else the default. */
export function readGeneration(v: unknown): GenerationConfig {
  const o = (v && typeof v === 'object' ? v : {}) as { [k: string]: unknown };
  const out = { ...GENERATION_DEFAULTS };
  for (const k of GENERATION_KEYS) if (generationProblem(k, o[k]) === undefined) out[k] = o[k] as number;
  return out;
}

/**
 * A `generation_config` of an imported line: an object of some of the four settings (a file may name only
 * the ones it set), each in range. Returns the problem, or undefined.
 */
export function generationConfigProblem(v: unknown): string | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return `"generation_config" must be an object of ${GENERATION_KEYS.join(', ')}`;
  for (const k of Object.keys(v)) {
    if (!(GENERATION_KEYS as readonly string[]).includes(k))
      return `"generation_config" has an unknown key ${JSON.stringify(k)} (allowed: ${GENERATION_KEYS.join(', ')})`;
    const p = generationProblem(k as GenerationKey, (v as { [k: string]: unknown })[k]);
    if (p) return `"generation_config": ${p}`;
  }
  return undefined;
}

/** The engine's names for the same settings (GenerateOptions). */
export function engineSampling(g: GenerationConfig): { temperature: number; topP: number; topK: number; maxNewTokens: number } {
  return { temperature: g.temperature, topP: g.top_p, topK: g.top_k, maxNewTokens: g.max_new_tokens };
}
