// A model on the GPU back to Hugging Face files: weights under the names transformers writes
// (GPT2LMHeadModel prefixes `transformer.`; a tied head is not saved), plus config and tokenizer files.
// A reward model (a score head given) is written as transformers' *ForSequenceClassification: the trunk
// and `score.weight` [1, hidden], no LM head, and our bias (transformers' score layer has none) in the
// safetensors metadata as `reward_bias`, as the LoRA reward adapter carries it.
import type { ExportTensor, ProvenanceMeta } from '../io/export.ts';
import { hfModelFiles } from '../io/hf-folder.ts';
import { SCORE_TENSOR } from './load.ts';
import type { Transformer } from './transformer.ts';

/** The safetensors metadata key of a reward model's bias (full model and LoRA adapter alike). */
export const REWARD_BIAS_KEY = 'reward_bias';

/** A reward model's bias from safetensors metadata: 0 when absent; an unreadable value is an error naming `file`. */
export function rewardBiasOf(metadata: Record<string, string>, file: string): number {
  const v = metadata[REWARD_BIAS_KEY];
  if (v === undefined) return 0;
  const b = Number(v);
  if (v.trim() === '' || !Number.isFinite(b)) throw new Error(`${file}: metadata "${REWARD_BIAS_KEY}" is ${JSON.stringify(v)}, not a number`);
  return b;
}

export function hubName(model: Transformer, name: string): string {
  return model.cfg.arch === 'gpt2' && name !== 'lm_head.weight' ? `transformer.${name}` : name;
}

export async function exportTensors(model: Transformer): Promise<ExportTensor[]> {
  const out: ExportTensor[] = [];
  for (const e of model.params.entries) out.push({ name: hubName(model, e.name), shape: e.shape, data: await model.params.download(e.name) });
  return out;
}

export async function exportModelFiles(
  model: Transformer,
  x: {
    meta: ProvenanceMeta;
    tokenizerFiles?: Map<string, Uint8Array>;
    generationConfig?: Record<string, unknown>;
    /** A reward model: its score head ([hidden] values), bias, and the pad token id for config.json (if it has none). */
    score?: { weight: Float32Array; bias: number; padTokenId: number };
  },
): Promise<Map<string, Uint8Array>> {
  const tensors = await exportTensors(model);
  if (!x.score)
    return hfModelFiles({ config: { ...model.cfg.raw }, tensors, meta: x.meta, tokenizerFiles: x.tokenizerFiles, generationConfig: x.generationConfig });
  const C = model.cfg.hidden;
  if (x.score.weight.length !== C) throw new Error(`score head: ${x.score.weight.length} values for hidden size ${C}`);
  return hfModelFiles({
    config: { ...model.cfg.raw },
    tensors: [...tensors.filter((t) => t.name !== 'lm_head.weight'), { name: SCORE_TENSOR, shape: [1, C], data: x.score.weight }],
    meta: { ...x.meta, [REWARD_BIAS_KEY]: x.score.bias },
    tokenizerFiles: x.tokenizerFiles,
    sequenceClassification: { padTokenId: x.score.padTokenId },
  });
}
