// Buffer alignment arithmetic: one definition for the GPU code (src/gpu/runtime.ts and src/model/params.ts
// re-export it) and the memory estimate (./memory.ts), so both count the same padded bytes.

export const ALIGN = 256; // minStorageBufferOffsetAlignment is at most 256 on every adapter

export function alignUp(x: number, a = ALIGN): number {
  return Math.ceil(x / a) * a;
}

const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);

/** Rows whose bytes are a multiple of the 256-byte offset alignment, for rows of `width` f32s: a row chunk
 *  may start at any multiple of this many rows. */
export const rowAlign = (width: number) => ALIGN / 4 / gcd(width, ALIGN / 4);
