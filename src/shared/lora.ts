// The LoRA adapters' default shape per architecture: one table for the engine (src/model/lora.ts re-exports
// it) and the page (a shared dataset's card names the modules our adapters use), without the adapters' GPU code.

export interface LoraConfig {
  r: number; // rank
  alpha: number; // scale numerator: the update is scaled by alpha / r
  dropout: number; // on the adapter's input, training only
  targets: string[]; // module short names: c_attn, c_proj, c_fc (GPT-2); q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj (Llama)
}

export const LORA_DEFAULTS: Record<'gpt2' | 'llama', LoraConfig> = {
  gpt2: { r: 8, alpha: 16, dropout: 0.05, targets: ['c_attn', 'c_proj', 'c_fc'] },
  llama: { r: 8, alpha: 16, dropout: 0.05, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
};
