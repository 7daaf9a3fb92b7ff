// How a trained model becomes files to share, for the stages (stages.ts: one run's policy) and the worker's
// engine (src/worker/engine.ts: the loaded model, or a run over merged runs with its starting model beside
// it): the tokenizer files a folder carries, the provenance metadata, and the layout.
//
// A policy is a PEFT adapter (LoRA) or a Hugging Face folder (full fine-tuning); a reward model's adds its
// score head and bias. An adapter over merged runs is written as the whole model (PEFT could not rebuild
// that base from a Hub id); an adapter whose base PEFT cannot fetch (merged runs, or a small model that is
// not on the Hub) carries it: starting-model/ beside adapter/.
import type { ProvenanceMeta } from '../io/export.ts';
import { baseRefOf } from '../io/hub.ts';
import { hubIdOf } from '../io/model-card.ts';
import type { ModelFiles } from '../io/sources.ts';
import { exportModelFiles } from '../model/export.ts';
import { exportAdapterFiles, mergeLora, restoreWeights, type LoraSet } from '../model/lora.ts';
import type { ParamTable } from '../model/params.ts';
import type { Transformer } from '../model/transformer.ts';
import type { StageRun } from './stages.ts';

/** A run merged into the loaded weights (the engine's adoptRun), oldest first. */
export interface MergedRun {
  runId: string;
  stage: string;
  step: number;
}

/** Runs `f` where no generation reads the weights it changes (the engine's generation queue); at once by default. */
export type Between = <R>(f: () => Promise<R>) => Promise<R>;

/** The tokenizer's files of a loaded model, which every export carries beside the weights. */
export function tokenizerFilesOf(files: ModelFiles): Map<string, Uint8Array> {
  return new Map([...files.raw].filter(([k]) => k.startsWith('tokenizer') || k === 'special_tokens_map.json'));
}

/** The provenance written into the safetensors metadata: the stages trained (merged runs first), on which base. */
export function exportMeta(stage: string, steps: number, baseModel: string, merged: readonly MergedRun[] = []): ProvenanceMeta {
  return {
    producer: 'rlhf-playground',
    stage: [...merged.map((x) => x.stage), stage].join('+'),
    steps,
    baseModel,
    date: new Date().toISOString(),
    ...(merged.length ? { merged_runs: merged.map((x) => `${x.stage}:${x.runId}@${x.step}`).join(',') } : {}),
  };
}

/**
 * A stage's policy as files: its adapter (PEFT loads base_model_name_or_path with from_pretrained: a Hub
 * model's bare id, its revision apart), else the whole model with the tokenizer. `score`: a reward model's
 * head and bias (a fully fine-tuned one is a *ForSequenceClassification folder, the bias in its metadata).
 */
export async function packagePolicy(
  policy: { model: Transformer; lora?: LoraSet },
  x: {
    meta: ProvenanceMeta;
    source: string;
    tokenizerFiles: Map<string, Uint8Array>;
    score?: { head: ParamTable; bias: number; padTokenId: number };
  },
): Promise<Map<string, Uint8Array>> {
  if (policy.lora) {
    const ref = baseRefOf(x.source);
    return exportAdapterFiles(policy.lora, {
      baseModel: ref.name,
      baseRevision: ref.revision,
      meta: { ...x.meta, ...(x.score ? { reward_bias: x.score.bias } : {}) },
      head: x.score?.head,
    });
  }
  const score = x.score ? { weight: await x.score.head.download('score.weight'), bias: x.score.bias, padTokenId: x.score.padTokenId } : undefined;
  return exportModelFiles(policy.model, { meta: x.meta, tokenizerFiles: x.tokenizerFiles, score });
}

/** Whether a run's adapter (not over merged runs' LoRA) carries its base: merged runs always; `small`, a model off the Hub of <= 64 MiB. */
export function carriesBase(root: { source: string; params: number }, merged: readonly MergedRun[], small = true): boolean {
  const offHub = small && hubIdOf(root.source) === undefined && root.params * 4 <= 64 * 2 ** 20;
  return merged.length > 0 || offHub;
}

/** The loaded model itself (no run): its weights with the merged runs in, and the tokenizer. */
export function packageModel(
  base: Transformer,
  files: ModelFiles,
  merged: readonly MergedRun[],
  between: Between = (f) => f(),
): Promise<Map<string, Uint8Array>> {
  const last = merged.at(-1);
  return between(() =>
    exportModelFiles(base, { meta: exportMeta(last?.stage ?? 'base', last?.step ?? 0, files.source, merged), tokenizerFiles: tokenizerFilesOf(files) }),
  );
}

/**
 * A run's export: `stage` is the run's, trained on `base` (the loaded `files` with `merged` in). Over merged
 * runs a LoRA policy is merged into a copy of the weights for the moment of the export and written whole;
 * an adapter gets the tokenizer and, when carriesBase says so, the starting model beside it.
 */
export async function packageRun(x: {
  stage: Pick<StageRun, 'exportFiles' | 'policy'>;
  runStage: string;
  step: number;
  base: Transformer;
  files: ModelFiles;
  root: { source: string; params: number };
  merged: readonly MergedRun[];
  bundleBase: boolean;
  between?: Between;
}): Promise<Map<string, Uint8Array>> {
  const { base, merged } = x,
    between = x.between ?? ((f) => f());
  const tokenizerFiles = tokenizerFilesOf(x.files);
  const lora = x.stage.policy?.lora;
  if (merged.length && lora) {
    return between(async () => {
      const saved = await mergeLora(lora);
      try {
        return await exportModelFiles(base, { meta: exportMeta(x.runStage, x.step, x.root.source, merged), tokenizerFiles });
      } finally {
        restoreWeights(base, saved);
      }
    });
  }
  const files = await x.stage.exportFiles(x.step);
  if (!files.has('adapter_config.json')) return files;
  for (const [k, v] of tokenizerFiles) if (!files.has(k)) files.set(k, v); // the adapter's tokenizer, as PEFT repos carry it
  if (!carriesBase(x.root, merged, x.bundleBase)) return files;
  const last = merged.at(-1);
  const start = await between(() =>
    exportModelFiles(base, { meta: exportMeta(last?.stage ?? 'base', last?.step ?? 0, x.root.source, merged), tokenizerFiles }),
  );
  const cfg = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json'))) as Record<string, unknown>;
  cfg.base_model_name_or_path = 'starting-model'; // PEFT reads it relative to where it is loaded from: unzip, load from that folder
  cfg.revision = null; // a folder has no revision
  return new Map<string, Uint8Array>([
    ...[...start].map(([k, v]) => [`starting-model/${k}`, v] as const),
    ...[...files].map(([k, v]) => [`adapter/${k}`, k === 'adapter_config.json' ? new TextEncoder().encode(JSON.stringify(cfg, null, 2)) : v] as const),
  ]);
}
