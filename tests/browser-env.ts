// One place for the browser tests' setup: Vite's dev server (what `npm run dev` serves) and Debian's
// Chromium with WebGPU (SwiftShader on machines without a GPU), launched as the workplace requires.
import { chromium, type Browser } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll } from 'vitest';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface BrowserEnv { server: ViteDevServer; browser: Browser; url: string; close(): Promise<void> }

export async function startBrowserEnv(): Promise<BrowserEnv> {
  // the rest of the server's settings (404s for missing files, pre-bundled deps) come from vite.config.ts
  const server = await createServer({ logLevel: 'silent', server: { port: 0, host: 'localhost' } });
  await server.listen();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return { server, browser, url: server.resolvedUrls!.local[0]!, close: async () => { await browser.close(); await server.close(); } };
}

/** Registers the file's beforeAll/afterAll and returns the live environment (read it inside tests). */
export function useBrowserEnv(): { readonly browser: Browser; readonly url: string } {
  let env: BrowserEnv | undefined;
  beforeAll(async () => {
    env = await startBrowserEnv();
  });
  afterAll(async () => {
    await env?.close();
  });
  return {
    get browser() { return env!.browser; },
    get url() { return env!.url; },
  };
}
