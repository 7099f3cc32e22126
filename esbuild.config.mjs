// Bundles the Node CLI and library (dependencies stay external: onnxruntime-node and sharp ship native code)
// and, when present, the browser bundle (self-contained except onnxruntime-web, which is served beside it).
import { build as esbuild } from 'esbuild';
import { readFileSync, existsSync, mkdirSync, copyFileSync, writeFileSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { precompiledValidatorsPlugin } from './scripts/precompile-schemas.mjs';

/**
 * esbuild's build, each output written atomically (a temporary file renamed over the old one): tests serve dist/web
 * while other test processes rebuild it, and a page that fetched a half-written bundle failed with "Unexpected end
 * of input". Rebuilds are deterministic, so a reader gets the old file or the new one, whole either way.
 */
async function build(options) {
  const result = await esbuild({ ...options, write: false });
  for (const file of result.outputFiles) {
    mkdirSync(dirname(file.path), { recursive: true });
    const temporary = `${file.path}.${process.pid}.tmp`;
    writeFileSync(temporary, file.contents);
    renameSync(temporary, file.path);
  }
  return result;
}

function copyAtomically(from, to) {
  const temporary = `${to}.${process.pid}.tmp`;
  copyFileSync(from, temporary);
  renameSync(temporary, to);
}

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const define = { __EDGETL_VERSION__: JSON.stringify(pkg.version) };

const nodeBuild = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  define,
  logLevel: 'warning',
  // The format validators (heads, embedding sets, sidecars) precompiled: a command that loads a head compiles nothing.
  plugins: [precompiledValidatorsPlugin({ stubAjv: false })],
};

const builds = [
  build({
    ...nodeBuild,
    entryPoints: { cli: 'src/node/cli/main.ts' },
    outdir: 'dist',
    banner: { js: '#!/usr/bin/env node' },
  }),
  build({ ...nodeBuild, entryPoints: { index: 'src/index.ts' }, outdir: 'dist' }),
  // Loaded by src/node/embed/decode-pool.ts as a worker_threads script beside the bundle.
  build({ ...nodeBuild, entryPoints: { 'decode-worker': 'src/node/embed/decode-worker.ts' }, outdir: 'dist' }),
];

for (const [entry, out] of [
  ['src/web/index.ts', 'dist/web/index'],
  ['src/web/worker.ts', 'dist/web/worker'],
  ['src/web/preprocess-worker.ts', 'dist/web/preprocess-worker'],
  ['src/web/app/main.ts', 'dist/web/app/app'],
  ['src/web/bench/main.ts', 'dist/web/app/bench'],
]) {
  if (!existsSync(entry)) continue;
  builds.push(
    build({
      entryPoints: { [out.replace(/^dist\//, '')]: entry },
      outdir: 'dist',
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      external: ['onnxruntime-web', 'onnxruntime-web/*'],
      // The bench's measurement loop imports performance from node:perf_hooks; pages have it as a global.
      alias: { 'node:perf_hooks': './src/web/shims/perf-hooks.ts' },
      // JSON Schema validators generated now, not compiled in the page (no `new Function`, no Ajv compiler shipped).
      plugins: [precompiledValidatorsPlugin()],
      sourcemap: true,
      define,
      logLevel: 'warning',
    }),
  );
}

await Promise.all(builds);
// The kiosk page and its stylesheet are served as they are, beside the app bundle.
if (existsSync('src/web/app/main.ts')) {
  mkdirSync('dist/web/app', { recursive: true });
  for (const file of ['index.html', 'app.css']) copyAtomically(`src/web/app/${file}`, `dist/web/app/${file}`);
  if (existsSync('src/web/bench/bench.html')) copyAtomically('src/web/bench/bench.html', 'dist/web/app/bench.html');
}
