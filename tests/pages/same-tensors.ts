// For the test pages: whether two runs' last checkpoints in the store hold the same tensors, bit for bit.
import { readCheckpointAll } from '../../src/store/checkpoints.ts';
import type { Store } from '../../src/store/db.ts';

export async function sameTensors(db: Store, a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([a, b].map(async (id) => (await readCheckpointAll(db, id))!.tensors));
  const bits = (t: Float32Array) => new Uint32Array(t.buffer, t.byteOffset, t.length);
  return (
    x!.size === y!.size &&
    [...x!].every(([name, t]) => {
      const u = y!.get(name);
      if (!u || u.length !== t.length) return false;
      const [p, q] = [bits(t), bits(u)];
      return p.every((v, i) => v === q[i]);
    })
  );
}
