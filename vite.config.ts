import { defineConfig } from 'vite';

export default defineConfig({
  // Shaders are imported as text (import.meta.glob with ?raw).
  // 'mpa': a file that is not there is a 404, not index.html: model folders have optional files
  // (tokenizer_config.json, the sharded index) whose absence the loaders must see.
  appType: 'mpa',
  // the worker's dependencies, bundled up front: one found late makes the dev server reload the page
  optimizeDeps: { include: ['comlink', 'idb', 'fflate', '@huggingface/tokenizers', '@huggingface/jinja', '@huggingface/hub', 'lit', 'lit/directives/keyed.js', 'lit/directives/style-map.js', 'uplot'] },
  // two pages: the playground (index.html) and the GPU self-test (selftest.html)
  build: { target: 'es2022', outDir: 'dist', rollupOptions: { input: { main: 'index.html', selftest: 'selftest.html' } } },
  worker: { format: 'es' },
  server: { host: 'localhost' },
});
