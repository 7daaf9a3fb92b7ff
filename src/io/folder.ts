// A Hugging Face model folder read from disk (Node): config.json + model.safetensors.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseJsonStrict, JsonSyntaxError } from './json-strict.ts';
import { parseSafetensors, type SafetensorsFile } from './safetensors.ts';
import { parseConfig } from '../model/config.ts';

export class ModelFolderError extends Error {}

export interface ModelFiles {
  dir: string;
  config: unknown;
  weights: SafetensorsFile[];
}

function readFile(path: string, what: string): Uint8Array {
  try {
    if (!statSync(path).isFile()) throw new ModelFolderError(`${path}: not a file`);
    return readFileSync(path);
  } catch (e) {
    if (e instanceof ModelFolderError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelFolderError(code === 'ENOENT' ? `${path}: no ${what} there` : `${path}: cannot read (${code ?? (e as Error).message})`);
  }
}

export function readModelFolder(dir: string): ModelFiles {
  try {
    if (!statSync(dir).isDirectory()) throw new ModelFolderError(`${dir}: not a folder`);
  } catch (e) {
    if (e instanceof ModelFolderError) throw e;
    throw new ModelFolderError(`${dir}: no such model folder`);
  }
  const cfgPath = join(dir, 'config.json');
  const text = new TextDecoder().decode(readFile(cfgPath, 'config.json'));
  let config: unknown;
  try {
    config = parseJsonStrict(text);
  } catch (e) {
    throw new ModelFolderError(`${cfgPath}: invalid JSON (${e instanceof JsonSyntaxError ? e.message : String(e)})`);
  }
  parseConfig(config, cfgPath); // an unsupported architecture is reported before the weights are read
  const stPath = join(dir, 'model.safetensors');
  const weights = [parseSafetensors(readFile(stPath, 'model.safetensors'), stPath)];
  return { dir, config, weights };
}
