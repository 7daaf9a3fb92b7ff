// The Model tab's suggestions in Node: each model's config as its Hub repository has it (the published
// parameter counts), what sampling, LoRA and full fine-tuning need, and what an adapter's limits refuse, with the numbers.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AdapterSummary } from '../src/shared/types.ts';
import { parseConfig } from '../src/shared/model-config.ts';
import { ARCHITECTURE_NAMES, fitsOn, SUGGESTIONS, suggestionText } from '../src/ui/model-suggestions.ts';

const adapter = (buffer: number, binding: number): AdapterSummary => ({
  name: 'test adapter',
  features: [],
  limits: { maxBufferSize: buffer * 2 ** 20, maxStorageBufferBindingSize: binding * 2 ** 20 },
});
const webgpuDefaults = adapter(256, 128);
const byId = (id: string) => SUGGESTIONS.find((s) => s.id === id)!;

describe('suggested models', () => {
  it('SmolLM2 and the Qwen instruct models, with the parameter counts transformers gives their checkpoints', () => {
    const counts = Object.fromEntries(SUGGESTIONS.map((s) => [s.id, fitsOn(s.cfg, undefined).parameters]));
    expect(counts).toEqual({
      'HuggingFaceTB/SmolLM2-135M-Instruct': 134515008,
      'HuggingFaceTB/SmolLM2-360M-Instruct': 361821120,
      'Qwen/Qwen2.5-0.5B-Instruct': 494032768,
      'Qwen/Qwen3-0.6B': 596049920,
    });
    expect(SUGGESTIONS.map((s) => ARCHITECTURE_NAMES[s.cfg.modelType])).toEqual(['Llama', 'Llama', 'Qwen2', 'Qwen3']);
  });

  it("Qwen2.5-0.5B-Instruct and Qwen3-0.6B on WebGPU's default limits: every use fits, its memory shown", () => {
    const q25 = suggestionText(byId('Qwen/Qwen2.5-0.5B-Instruct'), webgpuDefaults);
    expect(q25).toBe('494.0M parameters · sampling (4 × 256): 1.96 GiB · LoRA (8 × 256, r=8): 6.98 GiB · full fine-tuning (8 × 256): 12.39 GiB');
    const q3 = suggestionText(byId('Qwen/Qwen3-0.6B'), webgpuDefaults);
    expect(q3).toMatch(
      /^596\.0M parameters · sampling \(4 × 256\): 2\.\d\d GiB · LoRA \(8 × 256, r=8\): \d+\.\d\d GiB · full fine-tuning \(8 × 256\): \d+\.\d\d GiB$/,
    );
    expect(q3).not.toContain('does not fit');
    // before the adapter is known the same numbers, nothing refused
    expect(suggestionText(byId('Qwen/Qwen2.5-0.5B-Instruct'), undefined)).toBe(q25);
  });

  it('an adapter with smaller bindings refuses what does not fit, saying what it needs', () => {
    const small = fitsOn(byId('Qwen/Qwen2.5-0.5B-Instruct').cfg, adapter(256, 64));
    expect(small.uses[0]!.refused).toBeUndefined(); // sampling still loads
    expect(small.uses[1]!.refused).toBe("lora: needs 76 MiB in one storage binding, over this adapter's 64 MiB: use a smaller batch or sequence length");
    expect(suggestionText(byId('Qwen/Qwen2.5-0.5B-Instruct'), adapter(256, 64))).toContain(
      'LoRA (8 × 256, r=8): 6.98 GiB, does not fit this GPU (lora: needs 76 MiB in one storage binding',
    );
    const tiny = fitsOn(byId('Qwen/Qwen2.5-0.5B-Instruct').cfg, adapter(16, 16));
    expect(tiny.uses.map((u) => u.refused)).toEqual([
      "inference: needs a 38 MiB buffer, over this adapter's maxBufferSize of 16 MiB",
      "lora: needs a 76 MiB buffer, over this adapter's maxBufferSize of 16 MiB",
      "full: needs a 76 MiB buffer, over this adapter's maxBufferSize of 16 MiB",
    ]);
    // SmolLM2-135M samples within the same limits
    expect(fitsOn(byId('HuggingFaceTB/SmolLM2-135M-Instruct').cfg, adapter(16, 16)).uses[0]!.refused).toBeUndefined();
  });

  it('a loaded Qwen is named by its model_type while the engine runs it as the Llama block', () => {
    for (const [name, shown] of [
      ['qwen2-tiny', 'Qwen2'],
      ['qwen3-tiny', 'Qwen3'],
      ['llama-tiny', 'Llama'],
      ['gpt2-tiny', 'GPT-2'],
    ] as const) {
      const cfg = parseConfig(JSON.parse(readFileSync(`tests/fixtures/${name}/config.json`, 'utf8')));
      expect([ARCHITECTURE_NAMES[cfg.modelType], cfg.arch]).toEqual([shown, name === 'gpt2-tiny' ? 'gpt2' : 'llama']);
    }
  });
});
