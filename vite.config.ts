import { defineConfig, type Plugin } from 'vite';

// The built app's Content-Security-Policy: scripts and workers only from this origin, plus blob: for the
// reward-function sandbox (src/worker/reward-sandbox.ts runs the user's module from a Blob URL); no eval,
// no plugins, no <base> elsewhere. connect-src is https: rather than a list of Hub hosts: the Model tab
// takes any Hub mirror (and the Hub's downloads redirect to CDN and Xet hosts that change); plain http
// only to this machine (a local mirror). Inline styles are the page's own boot styles and Lit's.
const CSP = [
  "default-src 'self'",
  "script-src 'self' blob:",
  "worker-src 'self' blob:",
  "connect-src 'self' https: http://localhost:* http://127.0.0.1:*",
  "img-src 'self' data: blob:",
  "style-src 'self' 'unsafe-inline'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');

/** Puts the CSP into every built page (not the dev server's, whose client injects inline scripts). */
const csp = (): Plugin => ({
  name: 'rlhf-playground-csp',
  apply: 'build',
  transformIndexHtml: (html) => html.replace('<head>', `<head>\n    <meta http-equiv="Content-Security-Policy" content="${CSP}" />`),
});

export default defineConfig({
  // Shaders are imported as text (import.meta.glob with ?raw).
  // 'mpa': a file that is not there is a 404, not index.html: model folders have optional files
  // (tokenizer_config.json, the sharded index) whose absence the loaders must see.
  appType: 'mpa',
  plugins: [csp()],
  // the worker's dependencies, bundled up front: one found late makes the dev server reload the page
  optimizeDeps: {
    include: [
      'comlink',
      'idb',
      'fflate',
      '@huggingface/tokenizers',
      '@huggingface/jinja',
      '@huggingface/hub',
      'lit',
      'lit/directives/keyed.js',
      'lit/directives/style-map.js',
      'uplot',
    ],
  },
  // two pages: the playground (index.html) and the GPU self-test (selftest.html)
  build: { target: 'es2022', outDir: 'dist', rollupOptions: { input: { main: 'index.html', selftest: 'selftest.html' } } },
  worker: { format: 'es' },
  server: { host: 'localhost' },
});
