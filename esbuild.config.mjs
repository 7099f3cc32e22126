// Bundles the Node CLI and library (dependencies stay external: onnxruntime-node and sharp ship native code)
// and, when present, the browser bundle (self-contained except onnxruntime-web, which is served beside it).
import { build } from 'esbuild';
import { readFileSync, existsSync, mkdirSync, copyFileSync } from 'node:fs';
import { precompiledValidatorsPlugin } from './scripts/precompile-schemas.mjs';

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
  for (const file of ['index.html', 'app.css']) copyFileSync(`src/web/app/${file}`, `dist/web/app/${file}`);
  if (existsSync('src/web/bench/bench.html')) copyFileSync('src/web/bench/bench.html', 'dist/web/app/bench.html');
}
