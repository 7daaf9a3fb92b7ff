// `node bench/gpu/adapter.mjs`: which adapter Dawn gives the bench (the same request as src/gpu/device.ts:
// create([]), high-performance). Loads dawn.node from $RLHF_DAWN_NODE (bench/gpu/run.sh sets it), prints the
// adapter on one line and exits 0 for an NVIDIA GPU; 2 for a CPU driver (llvmpipe/lavapipe, SwiftShader) or
// another vendor, unless GPU_BENCH_ALLOW_CPU=1 (local tests of the packing only); 3 when there is no adapter.
import { createRequire } from 'node:module';

const path = process.env.RLHF_DAWN_NODE;
if (!path) {
  console.error('adapter.mjs: set RLHF_DAWN_NODE to the dawn.node to load');
  process.exit(3);
}
if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
const { create, globals } = createRequire(import.meta.url)(path);
Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
if (!adapter) {
  console.error('adapter: NONE: Dawn found no WebGPU adapter (no Vulkan driver? check VK_DRIVER_FILES and that libvulkan.so.1 loads)');
  process.exit(3);
}
const i = adapter.info ?? {};
const name = [i.vendor, i.architecture, i.device, i.description].filter((s) => s && s.length > 0).join(' ') || 'unknown adapter';
const limits = {
  maxBufferSize: adapter.limits.maxBufferSize,
  maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
};
console.log(`adapter: ${name}`);
console.log(`adapter features: ${[...adapter.features].sort().join(', ')}`);
console.log(`adapter limits: ${JSON.stringify(limits)}`);
const cpu = /llvmpipe|lavapipe|swiftshader|software/i.test(name);
const nvidia = /nvidia/i.test(name) || i.vendor === '0x10de';
if (!nvidia || cpu) {
  const what = cpu ? 'a CPU driver, not the GPU' : 'not an NVIDIA GPU';
  if (process.env.GPU_BENCH_ALLOW_CPU === '1') console.log(`adapter check: ${what}; accepted because GPU_BENCH_ALLOW_CPU=1 (a local test, not a GPU figure)`);
  else {
    console.error(
      `adapter check FAILED: "${name}" is ${what}. Is the NVIDIA Vulkan ICD found (VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json) and its library (libGLX_nvidia.so.0) on the library path?`,
    );
    process.exit(2);
  }
} else console.log('adapter check: NVIDIA GPU');
process.exit(0);
