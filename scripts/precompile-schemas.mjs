// Ajv standalone validators for the browser bundle. Node compiles each schema with Ajv at first use
// (src/core/bench/json-schema.ts); a page cannot: Ajv compiles to code with `new Function`, which a strict
// Content-Security-Policy (script-src without 'unsafe-eval') forbids, and its compiler is most of its weight. So the
// browser build replaces src/core/bench/precompiled-validators.ts with validators generated here, at build time, from
// the same schema files (src/core/formats/*.schema.json) and the same options (src/core/bench/ajv-options.json),
// and the `ajv` import itself with a stub that refuses to compile.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** The format schemas the library reads (heads, embedding sets, sidecars, preprocessing), each with its $id. */
export function formatSchemas(root = repoRoot) {
  const dir = join(root, 'src/core/formats');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.schema.json'))
    .sort()
    .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')));
}

/** ES module source exporting PRECOMPILED_VALIDATORS: a Map from each schema's $id to its standalone validator. */
export function precompiledValidatorsSource(root = repoRoot) {
  const options = JSON.parse(readFileSync(join(root, 'src/core/bench/ajv-options.json'), 'utf8'));
  const schemas = formatSchemas(root);
  // inlineRefs false: a shared definition (the preprocessing one) becomes one function called from each format
  // instead of a copy in each (28 KB less minified); the violations are the same (test/web/precompiled-validators).
  const ajv = new Ajv({ ...options, inlineRefs: false, code: { source: true, esm: true } });
  for (const schema of schemas) ajv.addSchema(schema);
  const names = schemas.map((schema, i) => [`validate${i}`, schema.$id]);
  // Standalone code requires Ajv's runtime helpers; as imports it also works where `ajv` stays external (the Node
  // bundle). A CommonJS default import is module.exports in Node and exports.default in esbuild: take either.
  const imports = [];
  const code = standaloneCode(ajv, Object.fromEntries(names)).replace(
    /const (\w+) = require\("(ajv\/dist\/runtime\/[\w/]+)"\)\.default;/g,
    (_, name, path) => {
      imports.push(`import ${name}$module from ${JSON.stringify(`${path}.js`)};`);
      return `const ${name} = typeof ${name}$module === 'function' ? ${name}$module : ${name}$module.default;`;
    },
  );
  if (/\brequire\(/.test(code)) throw new Error('Ajv standalone code requires a module this script does not rewrite');
  const entries = names.map(([name, id]) => `[${JSON.stringify(id)}, ${name}]`).join(', ');
  return `${imports.join('\n')}\n${code}\nexport const PRECOMPILED_VALIDATORS = new Map([${entries}]);\n`;
}

/**
 * The esbuild plugin of esbuild.config.mjs's builds (tests bundle with it too). `stubAjv`: replace Ajv itself by a
 * stub that refuses to compile (the browser, which must never compile); the Node bundles keep Ajv for the schemas
 * read at run time (device profiles, bench results) and use the precompiled format validators, so loading a head
 * compiles nothing.
 */
export function precompiledValidatorsPlugin({ root = repoRoot, stubAjv = true } = {}) {
  return {
    name: 'edgetl-precompiled-validators',
    setup(build) {
      build.onResolve({ filter: /\/precompiled-validators\.js$/ }, (args) => ({
        path: resolve(args.resolveDir, args.path),
        namespace: 'edgetl-precompiled',
      }));
      build.onLoad({ filter: /.*/, namespace: 'edgetl-precompiled' }, () => ({
        contents: precompiledValidatorsSource(root),
        loader: 'js',
        // the generated code imports Ajv's small runtime helpers (ucs2length, deep equal), resolved from here
        resolveDir: root,
      }));
      if (stubAjv)
        build.onResolve({ filter: /^ajv(\/dist\/2020\.js)?$/ }, () => ({ path: join(root, 'src/web/shims/ajv.ts') }));
    },
  };
}
