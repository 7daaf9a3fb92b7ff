// Browser entry to the GPU runtime: navigator.gpu, shaders bundled as text by Vite.
import { requestDevice } from './device.ts';
import { Gpu } from './runtime.ts';

const sources = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

export function browserShaderSource(name: string): string {
  const src = sources[`../../shaders/${name}`];
  if (src === undefined) throw new Error(`shader ${name} is not bundled`);
  return src;
}

export async function createBrowserGpu(): Promise<Gpu> {
  const { device, adapter } = await requestDevice(navigator.gpu);
  return new Gpu(device, adapter, browserShaderSource);
}
