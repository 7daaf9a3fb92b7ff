// Weights from a parsed safetensors file into the parameter table, by Hub name. Accepts names with or
// without the `transformer.` / `model.` prefixes; skips buffers that are not parameters (GPT-2's causal
// mask `attn.bias` / `attn.masked_bias`, rotary `inv_freq`) and a saved copy of a tied LM head.
// A *ForSequenceClassification checkpoint (a reward model) loads its trunk: its `score.weight` is not a
// parameter (scoreWeight reads it) and it has no LM head (an untied one stays zero: nothing to generate with).
// Anything else that does not fit is an error naming the file and the tensor.
import { readTensorF32, type SafetensorsFile } from '../io/safetensors.ts';
import type { Transformer } from './transformer.ts';

export class WeightsError extends Error {}

const BUFFERS = [/\.attn\.bias$/, /\.attn\.masked_bias$/, /\.rotary_emb\.inv_freq$/];
/** The score head of transformers' *ForSequenceClassification classes (GPT-2 and Llama name it so). */
export const SCORE_TENSOR = 'score.weight';

/** Canonical parameter name for a tensor name in a file, or undefined if it is not one of ours. */
function canonical(name: string, arch: string, known: (n: string) => boolean): string | undefined {
  const tries = [name];
  if (arch === 'gpt2' && name.startsWith('transformer.')) tries.push(name.slice('transformer.'.length));
  if (arch === 'llama' && !name.startsWith('model.') && name !== 'lm_head.weight') tries.push('model.' + name);
  return tries.find(known);
}

/**
 * Uploads every parameter from `files` (one or more shards). Returns each parameter's name as written in
 * the file, so gradients and exports can use the same names.
 */
export function loadWeights(model: Transformer, files: SafetensorsFile[]): Map<string, string> {
  const params = model.params;
  const seen = new Map<string, string>();
  for (const st of files) {
    for (const [name, info] of st.tensors) {
      if (BUFFERS.some((re) => re.test(name))) continue;
      if (model.cfg.sequenceClassification && name === SCORE_TENSOR) continue; // the head, read by scoreWeight
      const c = canonical(name, model.cfg.arch, (n) => params.has(n));
      if (c === undefined) {
        if (model.cfg.tiedEmbeddings && name === 'lm_head.weight') continue; // tied: the embedding is the head
        throw new WeightsError(`${st.file}: tensor "${name}" is not a parameter of this ${model.cfg.arch} config`);
      }
      if (seen.has(c)) throw new WeightsError(`${st.file}: tensor "${name}" appears twice (as "${seen.get(c)}" too)`);
      const e = params.entry(c);
      if (info.shape.length !== e.shape.length || info.shape.some((d, i) => d !== e.shape[i])) {
        throw new WeightsError(`${st.file}: tensor "${name}" has shape [${info.shape}], the config implies [${e.shape}]`);
      }
      params.upload(c, readTensorF32(st, name));
      seen.set(c, name);
    }
  }
  const missing = params.entries.filter((e) => !seen.has(e.name) && !(model.cfg.sequenceClassification && e.name === 'lm_head.weight'));
  if (missing.length) {
    throw new WeightsError(
      `${files.map((f) => f.file).join(', ')}: missing tensor${missing.length > 1 ? 's' : ''} ${missing
        .slice(0, 5)
        .map((e) => `"${e.name}"`)
        .join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`,
    );
  }
  return seen;
}

/** A *ForSequenceClassification checkpoint's `score.weight` ([num_labels, hidden]), or undefined when no file holds one. */
export function scoreWeight(files: SafetensorsFile[]): { file: string; shape: number[]; data: Float32Array } | undefined {
  const st = files.find((f) => f.tensors.has(SCORE_TENSOR));
  return st ? { file: st.file, shape: st.tensors.get(SCORE_TENSOR)!.shape, data: readTensorF32(st, SCORE_TENSOR) } : undefined;
}
