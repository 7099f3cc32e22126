// Size of each browser bundle as esbuild.config.mjs builds it (onnxruntime-web external), plain, minified, and
// gzip of each: what a page downloads for edgetl's own code.
//   node bench/bundle-size.mjs [--json]
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { precompiledValidatorsPlugin } from '../scripts/precompile-schemas.mjs';

const rows = [];
for (const entry of ['src/web/index.ts', 'src/web/worker.ts', 'src/web/app/main.ts', 'src/web/bench/main.ts']) {
  const row = { entry };
  for (const minify of [false, true]) {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      external: ['onnxruntime-web', 'onnxruntime-web/*'],
      alias: { 'node:perf_hooks': './src/web/shims/perf-hooks.ts' },
      define: { __EDGETL_VERSION__: '"bench"' },
      plugins: [precompiledValidatorsPlugin()],
      minify,
      logLevel: 'warning',
    });
    const text = result.outputFiles[0].text;
    row[minify ? 'minifiedBytes' : 'bytes'] = text.length;
    row[minify ? 'minifiedGzipBytes' : 'gzipBytes'] = gzipSync(text).length;
  }
  rows.push(row);
}
if (process.argv.includes('--json')) console.log(JSON.stringify(rows, null, 1));
else {
  console.log('| bundle | KB | gzip KB | minified KB | minified gzip KB |');
  console.log('|---|---|---|---|---|');
  const kb = (n) => (n / 1000).toFixed(1);
  for (const r of rows)
    console.log(
      `| ${r.entry} | ${kb(r.bytes)} | ${kb(r.gzipBytes)} | ${kb(r.minifiedBytes)} | ${kb(r.minifiedGzipBytes)} |`,
    );
}
