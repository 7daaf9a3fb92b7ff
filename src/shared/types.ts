// Records the engine produces and the page shows or stores, defined here so that the UI and the store
// need nothing from the engine's folders to name them.

/** The GPU adapter as the engine found it (src/gpu/device.ts: summarize). */
export interface AdapterSummary {
  name: string; // vendor / architecture / device / description, whatever the adapter tells
  features: string[];
  limits: Record<string, number>;
  /** The adapter says it is a fallback one (GPUAdapterInfo.isFallbackAdapter): a CPU implementation such as
   *  lavapipe or SwiftShader, where some kernels take a CPU-friendly shape (Gpu.matvecLanes). */
  fallback?: boolean;
}

/** One GRPO/RLOO rollout of a step with each reward function's score and its advantage (TRL's completions table). */
export interface CompletionRow {
  step: number;
  prompt: string;
  completion: string;
  rewards: Record<string, number | null>;
  reward: number;
  advantage: number;
}
