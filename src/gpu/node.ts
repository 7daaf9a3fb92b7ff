// Node entry to the GPU runtime: Dawn through the `webgpu` package, shaders read from disk.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { requestDevice } from './device.ts';
import { Gpu, type GpuOptions } from './runtime.ts';

const SHADER_DIR = fileURLToPath(new URL('../../shaders/', import.meta.url));

export function nodeShaderSource(name: string): string {
  return readFileSync(SHADER_DIR + name, 'utf8');
}

let dawn: GPU | undefined;

export async function createNodeGpu(opts: GpuOptions = {}): Promise<Gpu> {
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  // lavapipe (the CPU Vulkan driver of tests and CI) runs matmuls about 2x faster with 8 worker threads
  // than with its default of one per core on small machines; real GPUs ignore this.
  if (!process.env.LP_NUM_THREADS) process.env.LP_NUM_THREADS = '8';
  if (!dawn) {
    const webgpu = await import('webgpu');
    Object.assign(globalThis, webgpu.globals);
    dawn = webgpu.create([]) as unknown as GPU;
  }
  const { device, adapter } = await requestDevice(dawn, 'rlhf-playground-node');
  return new Gpu(device, adapter, nodeShaderSource, opts);
}
