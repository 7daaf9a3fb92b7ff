// Getting a WebGPU device, in the browser (navigator.gpu) or in Node (Dawn, the `webgpu` package).
// We ask for the adapter's real limits and the optional features the engine can use; the
// defaults (16 KiB workgroup storage, 128 MiB per binding) are far below what GPUs offer.
import type { AdapterSummary } from '../shared/types.ts';

export const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

// The summary's type is shared with the page (src/shared/types.ts).
export type { AdapterSummary } from '../shared/types.ts';

export class NoWebGPUError extends Error {}

export function summarize(adapter: GPUAdapter): AdapterSummary {
  const i = adapter.info;
  const parts = [i?.vendor, i?.architecture, i?.device, i?.description].filter((s) => s && s.length > 0);
  const limits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) limits[k] = adapter.limits[k];
  const fallback = (i as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter === true;
  return { name: parts.join(' ') || 'unknown adapter', features: [...adapter.features].sort(), limits, fallback };
}

export async function requestDevice(gpu: GPU | undefined, label = 'rlhf-playground'): Promise<{ device: GPUDevice; adapter: AdapterSummary }> {
  if (!gpu) throw new NoWebGPUError('WebGPU is not available here (no navigator.gpu).');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new NoWebGPUError('WebGPU is present but no GPU adapter was found.');
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) requiredLimits[k] = adapter.limits[k];
  const device = await adapter.requestDevice({ label, requiredFeatures, requiredLimits });
  return { device, adapter: summarize(adapter) };
}
