// Learning-rate schedule: linear warmup, then cosine decay to a floor (InstructGPT's SFT used cosine decay).

export interface ScheduleConfig {
  lr: number; // peak
  warmupSteps: number;
  totalSteps: number;
  minLrRatio: number; // floor as a fraction of the peak (0.1)
}

/** Learning rate at optimizer step `step` (1-based). */
export function learningRate(step: number, s: ScheduleConfig): number {
  if (s.warmupSteps > 0 && step <= s.warmupSteps) return (s.lr * step) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, Math.max(0, (step - s.warmupSteps) / span));
  const floor = s.lr * s.minLrRatio;
  return floor + 0.5 * (s.lr - floor) * (1 + Math.cos(Math.PI * progress));
}
