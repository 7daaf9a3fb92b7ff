// The shared layer's copies of what GPU code still defines itself (src/gpu/runtime.ts, src/model/params.ts,
// src/model/lora.ts are being reworked; they can import src/shared/ later): equal, so the memory estimate
// and the page's LoRA targets say what the engine does. Importing the engine's modules needs no device.
import { describe, expect, it } from 'vitest';
import * as runtime from '../src/gpu/runtime.ts';
import { LORA_DEFAULTS } from '../src/model/lora.ts';
import { rowAlign } from '../src/model/params.ts';
import * as align from '../src/shared/align.ts';
import { LORA_DEFAULTS as SHARED_LORA } from '../src/shared/lora.ts';

describe('shared copies', () => {
  it('alignment: ALIGN, alignUp and rowAlign equal the GPU code\'s', () => {
    expect(align.ALIGN).toBe(runtime.ALIGN);
    for (const x of [0, 1, 4, 255, 256, 257, 1000, 65_536, 1e9 + 7]) {
      expect(align.alignUp(x)).toBe(runtime.alignUp(x));
      expect(align.alignUp(x, 16)).toBe(runtime.alignUp(x, 16));
    }
    for (let w = 1; w <= 4096; w++) expect(align.rowAlign(w)).toBe(rowAlign(w));
    expect(align.rowAlign(151_936)).toBe(rowAlign(151_936));
  });

  it('LoRA defaults equal the adapters\'', () => {
    expect(SHARED_LORA).toEqual(LORA_DEFAULTS);
  });
});
