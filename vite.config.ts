import { defineConfig } from 'vite';

export default defineConfig({
  // Shaders are imported as text (import.meta.glob with ?raw); nothing else is special.
  build: { target: 'es2022', outDir: 'dist' },
  worker: { format: 'es' },
  server: { host: 'localhost' },
});
