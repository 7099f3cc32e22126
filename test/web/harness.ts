/**
 * Shared set-up for the browser tests: a fresh web build, the kiosk server on a free 127.0.0.1 port, and a blank
 * cross-origin-isolated test page (served through Playwright routes) that can import the `edgetl/web` bundle.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { repoRoot } from '../helpers/shared.js';
import {
  ISOLATION_HEADERS,
  prepareServedBackbone,
  startKioskServer,
  type KioskServer,
  type ServedBackbone,
} from '../../src/node/server/kiosk-server.js';

let built = false;

/** Builds dist/ (the browser bundles the server serves) once per test process, so a test never runs stale code. */
export function buildWebBundles(): void {
  if (built) return;
  const result = spawnSync(process.execPath, ['esbuild.config.mjs'], { cwd: repoRoot, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`esbuild failed:\n${result.stdout}\n${result.stderr}`);
  built = true;
}

export async function startServer(
  backboneIdOrPath: string,
  options: { headJson?: string; heads?: { name: string; json: string }[]; backbone?: ServedBackbone } = {},
): Promise<{ server: KioskServer; backbone: ServedBackbone }> {
  buildWebBundles();
  const backbone = options.backbone ?? (await prepareServedBackbone(backboneIdOrPath, { download: false }));
  const server = await startKioskServer({
    backbone,
    port: 0,
    host: '127.0.0.1',
    headJson: options.headJson,
    heads: options.heads,
    webRoot: join(repoRoot, 'dist', 'web'),
  });
  return { server, backbone };
}

const TEST_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>edgetl web test</title>
<script type="importmap">{ "imports": { "onnxruntime-web": "/ort/ort.min.mjs" } }</script></head><body>test page</body></html>`;

/**
 * Serves `/test/page.html` (import map, nothing else) and `/test/file/<i>` (the given local files) to `page` only,
 * with the same isolation headers as the server, then opens the page.
 */
export async function openTestPage(page: Page, server: KioskServer, files: string[]): Promise<void> {
  await page.route(`${server.url}test/**`, async (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === '/test/page.html') {
      await route.fulfill({
        status: 200,
        headers: { ...ISOLATION_HEADERS, 'Content-Type': 'text/html; charset=utf-8' },
        body: TEST_PAGE,
      });
      return;
    }
    const match = /^\/test\/file\/(\d+)$/.exec(path);
    const file = match ? files[Number(match[1])] : undefined;
    if (!file) {
      await route.fulfill({ status: 404, body: 'no such test file' });
      return;
    }
    const type = file.endsWith('.onnx')
      ? 'application/octet-stream'
      : file.endsWith('.png')
        ? 'image/png'
        : 'image/jpeg';
    await route.fulfill({
      status: 200,
      headers: { ...ISOLATION_HEADERS, 'Content-Type': type },
      body: await readFile(file),
    });
  });
  await page.goto(`${server.url}test/page.html`);
}

export { cosine } from '../helpers/vectors.js';
