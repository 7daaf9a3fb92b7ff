// The models the Model tab suggests, with what each needs on the user's GPU before anything is
// downloaded: the instruct models people fine-tune in 2026 (SmolLM2, Qwen2.5, Qwen3), their config.json
// fields as the Hub serves them, through the same estimate (and refusal) as a loaded model.
import type { AdapterSummary } from '../shared/types.ts';
import { parseConfig, type ModelConfig, type ModelType } from '../shared/model-config.ts';
import { checkFits, playgroundMemory, type MemoryEstimate } from '../shared/memory.ts';
import { fmtBytes, fmtCount } from './context.ts';

/** How the Model tab names an architecture: config.json's model_type (Qwen2.5 checkpoints say qwen2). */
export const ARCHITECTURE_NAMES: Record<ModelType, string> = { gpt2: 'GPT-2', llama: 'Llama', qwen2: 'Qwen2', qwen3: 'Qwen3' };

export interface Suggestion {
  /** Hub id */
  id: string;
  /** what it is, in a few words */
  about: string;
  cfg: ModelConfig;
}

// The fields of each repository's config.json that the estimate reads (the rest changes nothing here).
const smol = (hidden: number, layers: number, heads: number, kvHeads: number, intermediate: number) => ({
  model_type: 'llama',
  hidden_size: hidden,
  num_hidden_layers: layers,
  num_attention_heads: heads,
  num_key_value_heads: kvHeads,
  intermediate_size: intermediate,
  vocab_size: 49152,
  max_position_embeddings: 8192,
  rope_theta: 100000,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: true,
});

export const SUGGESTIONS: Suggestion[] = [
  { id: 'HuggingFaceTB/SmolLM2-135M-Instruct', about: 'Llama, 135M', cfg: parseConfig(smol(576, 30, 9, 3, 1536)) },
  { id: 'HuggingFaceTB/SmolLM2-360M-Instruct', about: 'Llama, 362M', cfg: parseConfig(smol(960, 32, 15, 5, 2560)) },
  {
    id: 'Qwen/Qwen2.5-0.5B-Instruct',
    about: 'Qwen2.5, 494M, a 151,936-token vocabulary',
    cfg: parseConfig({
      model_type: 'qwen2',
      hidden_size: 896,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      intermediate_size: 4864,
      vocab_size: 151936,
      max_position_embeddings: 32768,
      rope_theta: 1000000.0,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      use_sliding_window: false,
    }),
  },
  {
    id: 'Qwen/Qwen3-0.6B',
    about: 'Qwen3, 596M, thinking off in the playground',
    cfg: parseConfig({
      model_type: 'qwen3',
      hidden_size: 1024,
      head_dim: 128,
      num_hidden_layers: 28,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      intermediate_size: 3072,
      vocab_size: 151936,
      max_position_embeddings: 40960,
      rope_theta: 1000000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      attention_bias: false,
    }),
  },
];

export interface UseFit {
  use: 'sampling' | 'LoRA' | 'full fine-tuning';
  bytes: number;
  /** why this adapter cannot run it (checkFits' message), when it cannot */
  refused?: string;
}

/** What sampling, LoRA r=8 and full fine-tuning of `cfg` need (the shapes a loaded model is shown with), each
 *  checked against the adapter's buffer and binding limits; no adapter yet: nothing refused. WebGPU does not
 *  tell a page how much GPU memory there is, so the totals are shown, not compared. */
export function fitsOn(cfg: ModelConfig, adapter: AdapterSummary | undefined): { parameters: number; seqLen: number; uses: UseFit[] } {
  const m = playgroundMemory(cfg);
  const fit = (use: UseFit['use'], e: MemoryEstimate): UseFit => {
    if (!adapter) return { use, bytes: e.bytes.total };
    try {
      checkFits(e, { maxBufferSize: adapter.limits.maxBufferSize ?? 0, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize ?? 0 });
      return { use, bytes: e.bytes.total };
    } catch (err) {
      return { use, bytes: e.bytes.total, refused: (err as Error).message };
    }
  };
  return { parameters: m.inference.parameters, seqLen: m.seqLen, uses: [fit('sampling', m.inference), fit('LoRA', m.lora), fit('full fine-tuning', m.full)] };
}

/** One line per suggestion: its size, then each use's memory, or why this GPU refuses it. */
export function suggestionText(s: Suggestion, adapter: AdapterSummary | undefined): string {
  const { parameters, seqLen, uses } = fitsOn(s.cfg, adapter);
  const shape = (u: UseFit) => (u.use === 'sampling' ? `4 × ${seqLen}` : `8 × ${seqLen}${u.use === 'LoRA' ? ', r=8' : ''}`);
  return `${fmtCount(parameters)} parameters · ${uses.map((u) => `${u.use} (${shape(u)}): ${fmtBytes(u.bytes)}${u.refused ? `, does not fit this GPU (${u.refused})` : ''}`).join(' · ')}`;
}
