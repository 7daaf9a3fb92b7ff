// One place for the browser tests' setup: Vite's dev server (what `npm run dev` serves) and Debian's
// Chromium with WebGPU (SwiftShader on machines without a GPU), launched as the workplace requires.
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, inject } from 'vitest';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Chromium with WebGPU, launched as the workplace requires (no sandbox as root, no background traffic). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** The same Chromium on a profile kept in `userDataDir`: closing it and launching again is a browser restart. */
export function launchChromiumProfile(userDataDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export interface BrowserEnv {
  server: ViteDevServer;
  browser: Browser;
  url: string;
  close(): Promise<void>;
}

export async function startBrowserEnv(): Promise<BrowserEnv> {
  // the rest of the server's settings (404s for missing files, pre-bundled deps) come from vite.config.ts
  const server = await createServer({ logLevel: 'silent', server: { port: 0, host: 'localhost' } });
  await server.listen();
  const browser = await launchChromium();
  return {
    server,
    browser,
    url: server.resolvedUrls!.local[0]!,
    close: async () => {
      await browser.close();
      await server.close();
    },
  };
}

/**
 * The built app (what `npm run build` writes, built once for the run by tests/helpers/build-app.ts), served
 * by Vite's preview server, with Chromium. The end-to-end tests run against this: the bundle users get, not
 * the dev server's modules.
 */
export async function startBuiltEnv(): Promise<{ browser: Browser; url: string; outDir: string; close(): Promise<void> }> {
  const { preview } = await import('vite');
  const outDir = inject('builtApp');
  if (!outDir) throw new Error('the built app is missing: run the browser tests through vitest (its browser project builds it once)');
  const server = await preview({ logLevel: 'silent', preview: { port: 0, host: 'localhost' }, build: { outDir } });
  const browser = await launchChromium();
  return {
    browser,
    outDir,
    url: server.resolvedUrls!.local[0]!,
    close: async () => {
      await browser.close();
      await server.close();
    },
  };
}

/** Registers the file's beforeAll/afterAll around `start` and returns the live environment (read it inside tests). */
function useEnv(start: () => Promise<{ browser: Browser; url: string; close(): Promise<void> }>): { readonly browser: Browser; readonly url: string } {
  let env: Awaited<ReturnType<typeof start>> | undefined;
  beforeAll(async () => {
    env = await start();
  }, 300_000);
  afterAll(async () => {
    await env?.close();
  });
  return {
    get browser() {
      return env!.browser;
    },
    get url() {
      return env!.url;
    },
  };
}

/** Vite's dev server (test pages, the self-test) and Chromium. */
export const useBrowserEnv = () => useEnv(startBrowserEnv);
/** The built app and Chromium: what the end-to-end tests drive. */
export const useBuiltEnv = () => useEnv(startBuiltEnv);
