// Building a model on the GPU from Hub files: config -> parameter table -> weights.
import type { Gpu } from '../gpu/runtime.ts';
import type { SafetensorsFile } from '../io/safetensors.ts';
import { parseConfig } from '../shared/model-config.ts';
import { loadWeights, scoreWeight } from './load.ts';
import { Transformer, type ModelOptions } from './transformer.ts';

export interface LoadedModel {
  model: Transformer;
  /** canonical parameter name -> name in the checkpoint file */
  fileNames: Map<string, string>;
  /** A *ForSequenceClassification folder (a reward model): its score head `score.weight`, [num_labels, hidden]. */
  score?: { file: string; shape: number[]; data: Float32Array };
}

export function loadModel(gpu: Gpu, files: { config: unknown; weights: SafetensorsFile[]; configFile?: string }, opts: ModelOptions = {}): LoadedModel {
  const cfg = parseConfig(files.config, files.configFile);
  const model = new Transformer(gpu, cfg, opts);
  try {
    const fileNames = loadWeights(model, files.weights);
    const score = cfg.sequenceClassification ? scoreWeight(files.weights) : undefined;
    return { model, fileNames, ...(score ? { score } : {}) };
  } catch (e) {
    model.destroy();
    throw e;
  }
}
