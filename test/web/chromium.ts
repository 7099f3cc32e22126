/**
 * Debian's chromium driven by playwright-core (no browser download). Tests skip with a message when it is absent.
 * Flags: headless, no sandbox (we run as root in a container), nothing that phones home; WebGPU through SwiftShader
 * (software Vulkan shipped with chromium) for correctness runs.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.EDGETL_CHROMIUM ?? '/usr/bin/chromium';

/** False when chromium is there, else the reason to skip. */
export function chromiumSkip(): false | string {
  return existsSync(CHROMIUM_PATH)
    ? false
    : `needs Debian's chromium at ${CHROMIUM_PATH} (apt-get install chromium) or EDGETL_CHROMIUM`;
}

export type BrowserMode = 'wasm' | 'webgpu';

const BASE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
];

export function chromiumFlags(mode: BrowserMode): string[] {
  if (mode === 'wasm') return [...BASE_FLAGS, '--disable-gpu'];
  return [...BASE_FLAGS, '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];
}

export interface LaunchedBrowser {
  context: BrowserContext;
  page: Page;
  /** Console lines and page errors, for failure messages. */
  logs: string[];
  close(): Promise<void>;
}

/** A fresh profile each time (nothing cached or stored from an earlier run). */
export async function launchChromium(
  mode: BrowserMode,
  options: { acceptDownloads?: boolean; viewport?: { width: number; height: number }; fakeCamera?: boolean } = {},
): Promise<LaunchedBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'edgetl-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    // A fake camera (Chromium's test pattern) for the camera paths; permission is still the page's to ask for.
    args: [...chromiumFlags(mode), ...(options.fakeCamera ? ['--use-fake-device-for-media-stream'] : [])],
    acceptDownloads: options.acceptDownloads ?? true,
    viewport: options.viewport ?? { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  return {
    context,
    page,
    logs,
    close: async () => {
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}
