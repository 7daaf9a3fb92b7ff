// IEEE half precision (binary16) on the CPU: what a frozen weight becomes when the GPU stores it in f16
// (src/model/params.ts), and which weights those are. Pure code: the memory estimate counts the same tensors.
import type { ParamSpec } from './model-config.ts';

/**
 * The weights a frozen model keeps in f16 where the device has 'shader-f16': the linear layers' 2-D weights
 * (attention and MLP projections), which the matmuls read (their B operand). Not the vocabulary tables (the
 * embedding's gather and the LM head's logits bind them in row chunks; the head's logits feed the loss, the KL
 * and sampling directly), GPT-2's position table, norms or biases (a few thousand values each).
 */
export const isHalfWeight = (s: Pick<ParamSpec, 'name' | 'shape'>): boolean =>
  s.shape.length === 2 && s.name.endsWith('.weight') && !/wte|wpe|embed_tokens|lm_head/.test(s.name);

const f = new Float32Array(1),
  u = new Uint32Array(f.buffer);

/** The binary16 bits of x, rounded to nearest, ties to even (subnormals kept; past 65504 infinity). */
export function halfBits(x: number): number {
  f[0] = x;
  const b = u[0]!,
    sign = (b >>> 16) & 0x8000,
    exp = (b >>> 23) & 0xff,
    man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0); // infinity, NaN
  const e = exp - 112; // the exponent re-biased for 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal: the value in units of 2^-24, from the 24-bit significand shifted right by 14 - e
    const s = 14 - e;
    if (s > 24) return sign;
    const M = man | 0x800000,
      half = 1 << (s - 1),
      rem = M & ((1 << s) - 1);
    let m = M >>> s;
    if (rem > half || (rem === half && m & 1)) m++;
    return sign | m; // m = 0x400 is the smallest normal, correctly encoded
  }
  let h = (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry rounds into the exponent (up to infinity)
  return sign | h;
}

/** The value of binary16 bits h (exact: every f16 value, subnormals included, is a double; -0 kept). Also what
 *  the safetensors reader decodes F16 tensors with. */
export function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1,
    exp = (h >>> 10) & 0x1f,
    man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24; // zero / subnormal
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  return sign * (1024 + man) * 2 ** (exp - 25);
}

/**
 * Values as the 32-bit words of an f16 array (two values a word, the first in the low half, as WGSL's
 * array<f16> reads them on a little-endian device), the last word padded with 0. The index of the first value
 * that does not fit f16 (finite, rounding to infinity), or -1, with it: such a weight cannot be stored so.
 */
export function packHalf(data: Float32Array): { words: Uint32Array; overflow: number } {
  const words = new Uint32Array(Math.ceil(data.length / 2)),
    halves = new Uint16Array(words.buffer);
  let overflow = -1;
  for (let i = 0; i < data.length; i++) {
    const h = halfBits(data[i]!);
    if (overflow < 0 && (h & 0x7fff) === 0x7c00 && Number.isFinite(data[i]!)) overflow = i;
    halves[i] = h;
  }
  return { words, overflow };
}
