// A Hugging Face model folder as transformers writes it: config.json (the architecture's class,
// float32), generation_config.json, model.safetensors with provenance in its metadata, and the tokenizer
// files passed through; a reward model as *ForSequenceClassification with one label.
// Pure I/O on Uint8Arrays: works in browsers and in Node (no fs, no network).

import {
  checkExportName,
  ExportError,
  isPlainObject,
  jsonFile,
  provenanceMetadata,
  safetensorsOrThrow,
  type ExportTensor,
  type ProvenanceMeta,
} from './export.ts';

const q = JSON.stringify;

const ARCHITECTURES: ReadonlyMap<string, string> = new Map([
  ['gpt2', 'GPT2LMHeadModel'],
  ['llama', 'LlamaForCausalLM'],
  ['qwen2', 'Qwen2ForCausalLM'],
  ['qwen3', 'Qwen3ForCausalLM'],
]);
/** A reward model's class: the trunk and a `score` head ([num_labels, hidden], no bias) instead of the LM head. */
const SEQ_CLS_ARCHITECTURES: ReadonlyMap<string, string> = new Map([
  ['gpt2', 'GPT2ForSequenceClassification'],
  ['llama', 'LlamaForSequenceClassification'],
  ['qwen2', 'Qwen2ForSequenceClassification'],
  ['qwen3', 'Qwen3ForSequenceClassification'],
]);
/** Names the model folder writes itself, or that would make a loader pick other weights than ours. */
const RESERVED_MODEL_FILES = new Set([
  'config.json',
  'model.safetensors',
  'generation_config.json',
  'model.safetensors.index.json',
  'pytorch_model.bin',
  'pytorch_model.bin.index.json',
]);

export function hfModelFiles(x: {
  config: Record<string, unknown>;
  tensors: ExportTensor[];
  meta: ProvenanceMeta;
  tokenizerFiles?: Map<string, Uint8Array>;
  generationConfig?: Record<string, unknown>;
  /**
   * A reward model as transformers' *ForSequenceClassification with one label (the tensors then hold
   * `score.weight` and no LM head). `padTokenId` is written unless the config has a pad_token_id: the class
   * reads each row's score at its last token that is not the pad token. No generation_config.json (it
   * does not generate).
   */
  sequenceClassification?: { padTokenId: number };
}): Map<string, Uint8Array> {
  if (!isPlainObject(x.config)) throw new ExportError('config.json: the config must be a plain object');
  const modelType = x.config.model_type;
  const arch = typeof modelType === 'string' ? (x.sequenceClassification ? SEQ_CLS_ARCHITECTURES : ARCHITECTURES).get(modelType) : undefined;
  if (arch === undefined)
    throw new ExportError(`config.json: unsupported "model_type" ${q(modelType ?? null)} (supported: ${[...ARCHITECTURES.keys()].join(', ')})`);
  if (x.tensors.length === 0) throw new ExportError('model.safetensors: no tensors to write');

  const config: Record<string, unknown> = { ...x.config, architectures: [arch], torch_dtype: 'float32' };
  if (Object.hasOwn(config, 'dtype')) config.dtype = 'float32'; // newer transformers write "dtype" instead of "torch_dtype"
  if (x.sequenceClassification) {
    // one label, as transformers writes num_labels=1 (id2label keys are strings in JSON)
    Object.assign(config, { num_labels: 1, id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 } });
    if (typeof config.pad_token_id !== 'number') config.pad_token_id = x.sequenceClassification.padTokenId;
  }

  let generation: Record<string, unknown>;
  if (x.generationConfig !== undefined) {
    if (!isPlainObject(x.generationConfig)) throw new ExportError('generation_config.json: must be a plain object');
    generation = x.generationConfig;
  } else {
    generation = { _from_model_config: true };
    for (const key of ['bos_token_id', 'eos_token_id']) if (x.config[key] !== undefined && x.config[key] !== null) generation[key] = x.config[key];
  }

  const files = new Map<string, Uint8Array>();
  files.set('config.json', jsonFile(config, 'config.json', true));
  if (!x.sequenceClassification) files.set('generation_config.json', jsonFile(generation, 'generation_config.json', true));
  files.set('model.safetensors', safetensorsOrThrow(x.tensors, provenanceMetadata(x.meta, 'model.safetensors'), 'model.safetensors'));
  for (const [name, bytes] of x.tokenizerFiles ?? []) {
    checkExportName(name, 'tokenizer file');
    if (RESERVED_MODEL_FILES.has(name)) throw new ExportError(`tokenizer file ${q(name)}: name is reserved for the model itself`);
    if (!(bytes instanceof Uint8Array)) throw new ExportError(`tokenizer file ${q(name)}: contents must be a Uint8Array`);
    files.set(name, bytes); // passed through byte-for-byte
  }
  return files;
}
