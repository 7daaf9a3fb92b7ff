// The page's one set of sampling settings (transformers' GenerationConfig names): ranges, what is read back
// from storage, and the `generation_config` of an imported ranking line.
import { describe, expect, it } from 'vitest';
import {
  clampGeneration,
  engineSampling,
  GENERATION_DEFAULTS,
  generationConfigProblem,
  generationProblem,
  readGeneration,
} from '../src/io/generation-config.ts';

describe('generation settings', () => {
  it('checks each setting against its range', () => {
    expect(generationProblem('temperature', 0)).toBeUndefined(); // greedy
    expect(generationProblem('temperature', 2.5)).toBe('temperature must be at least 0 and at most 2, got 2.5');
    expect(generationProblem('top_p', 0)).toBe('top_p must be above 0 and at most 1, got 0'); // keeps no token
    expect(generationProblem('top_p', 1)).toBeUndefined();
    expect(generationProblem('top_k', 3.5)).toBe('top_k must be an integer, got 3.5');
    expect(generationProblem('max_new_tokens', 0)).toBe('max_new_tokens must be at least 1 and at most 1024, got 0');
    expect(generationProblem('max_new_tokens', '64')).toBe('max_new_tokens must be a number, got "64"');
    expect(generationProblem('temperature', Number.NaN)).toBe('temperature must be a number, got null');
  });

  it('brings a typed value into range, and keeps the current one for nonsense', () => {
    expect(clampGeneration('temperature', 7, 0.9)).toBe(2);
    expect(clampGeneration('max_new_tokens', 12.6, 64)).toBe(13);
    expect(clampGeneration('max_new_tokens', -3, 64)).toBe(1);
    expect(clampGeneration('top_p', 0, 0.95)).toBe(0.95);
    expect(clampGeneration('top_k', Number.NaN, 40)).toBe(40);
  });

  it('reads stored settings back, keeping each good value and defaulting the rest', () => {
    expect(readGeneration(undefined)).toEqual(GENERATION_DEFAULTS);
    expect(readGeneration('junk')).toEqual(GENERATION_DEFAULTS);
    expect(readGeneration({ temperature: 0.3, top_p: 7, top_k: 20, extra: 1 })).toEqual({ ...GENERATION_DEFAULTS, temperature: 0.3, top_k: 20 });
  });

  it('refuses a bad generation_config of an imported line, naming the key', () => {
    expect(generationConfigProblem({ temperature: 0.7 })).toBeUndefined(); // a file may name only what it set
    expect(generationConfigProblem([])).toMatch(/must be an object of temperature, top_p, top_k, max_new_tokens/);
    expect(generationConfigProblem({ do_sample: true })).toBe(
      '"generation_config" has an unknown key "do_sample" (allowed: temperature, top_p, top_k, max_new_tokens)',
    );
    expect(generationConfigProblem({ top_k: -1 })).toBe('"generation_config": top_k must be at least 0 and at most 1000, got -1');
  });

  it("maps to the engine's option names", () => {
    expect(engineSampling({ temperature: 0.5, top_p: 0.9, top_k: 10, max_new_tokens: 32 })).toEqual({
      temperature: 0.5,
      topP: 0.9,
      topK: 10,
      maxNewTokens: 32,
    });
  });
});
