// A model on the GPU back to Hugging Face files: weights under the names transformers writes
// (GPT2LMHeadModel prefixes `transformer.`; a tied head is not saved), plus config and tokenizer files.
import { hfModelFiles, type ExportTensor, type ProvenanceMeta } from '../io/export.ts';
import type { Transformer } from './transformer.ts';

export function hubName(model: Transformer, name: string): string {
  return model.cfg.arch === 'gpt2' && name !== 'lm_head.weight' ? `transformer.${name}` : name;
}

export async function exportTensors(model: Transformer): Promise<ExportTensor[]> {
  const out: ExportTensor[] = [];
  for (const e of model.params.entries) out.push({ name: hubName(model, e.name), shape: e.shape, data: await model.params.download(e.name) });
  return out;
}

export async function exportModelFiles(
  model: Transformer, x: { meta: ProvenanceMeta; tokenizerFiles?: Map<string, Uint8Array>; generationConfig?: Record<string, unknown> },
): Promise<Map<string, Uint8Array>> {
  return hfModelFiles({ config: { ...model.cfg.raw }, tensors: await exportTensors(model), meta: x.meta, tokenizerFiles: x.tokenizerFiles, generationConfig: x.generationConfig });
}
