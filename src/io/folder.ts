// A Hugging Face model folder read from disk (Node): config.json, model.safetensors or an index and its
// shards, and the tokenizer files, through the same loader as every other source (sources.ts).
// Works on a `git clone` of a Hub repo and on a huggingface_hub cache snapshot (symlinks are followed).
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModelFiles, ModelSourceError, type ModelFiles } from './sources.ts';

/** Bytes of `path` inside `dir`, or undefined when there is no such file (paths come checked by the loader). */
async function readIn(dir: string, path: string): Promise<Uint8Array | undefined> {
  const file = join(dir, path);
  try {
    const b = await readFile(file);
    return new Uint8Array(b.buffer, b.byteOffset, b.length); // a plain Uint8Array, not a Buffer
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EISDIR') throw new ModelSourceError(`${file}: not a file`);
    throw new ModelSourceError(`${file}: cannot read (${code ?? (e as Error).message})`);
  }
}

export async function readModelFolder(dir: string): Promise<ModelFiles> {
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch {
    throw new ModelSourceError(`${dir}: no such model folder`);
  }
  if (!isDir) throw new ModelSourceError(`${dir}: not a folder`);
  return loadModelFiles(
    {
      get: (path) => readIn(dir, path),
      exists: async (path) => (await stat(join(dir, path)).catch(() => undefined))?.isFile() === true,
      label: (path) => join(dir, path),
    },
    dir,
  );
}
