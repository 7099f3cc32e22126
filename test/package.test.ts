/**
 * edgetl as a consumer gets it: the README's library example type-checks in a strict TypeScript project against the
 * declarations `npm run build` writes (package.json `types`/`exports`), and runs against the built bundle, also when
 * one of the photos cannot be read.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { repoRoot } from './helpers/shared.js';

const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');

/** The README's ```ts block that imports from 'edgetl'. */
function readmeExample(): string {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .find((code) => /from 'edgetl'/.test(code));
  if (!block) throw new Error("README.md has no ```ts block importing from 'edgetl'");
  return block;
}

// What `npm run build` does: the bundles, then the declarations.
execFileSync(process.execPath, ['esbuild.config.mjs'], { cwd: repoRoot, stdio: 'inherit' });
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: 'inherit' });

const root = mkdtempSync(join(tmpdir(), 'edgetl-consumer-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

/** A consumer project: its own package.json, and edgetl (plus @types/node, as any Node TypeScript project has) installed by symlink. */
function consumerProject(name: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
  symlinkSync(repoRoot, join(dir, 'node_modules', 'edgetl'), 'dir');
  symlinkSync(join(repoRoot, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  return dir;
}

function typeCheck(dir: string, files: Record<string, string>, resolution: 'node16' | 'bundler') {
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  const compilerOptions =
    resolution === 'node16'
      ? { module: 'node16', moduleResolution: 'node16' }
      : { module: 'esnext', moduleResolution: 'bundler' };
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        ...compilerOptions,
        target: 'es2022',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      },
      files: Object.keys(files),
    }),
  );
  return spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
}

t.test('package.json types and exports point at declarations the build wrote', async (t) => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    types: string;
    exports: Record<string, { types: string }>;
  };
  for (const file of [pkg.types, pkg.exports['.']!.types, pkg.exports['./web']!.types])
    t.ok(existsSync(join(repoRoot, file)), `${file} exists`);
});

for (const resolution of ['node16', 'bundler'] as const) {
  const misuse = resolution === 'node16';
  t.test(
    `the README example type-checks in a strict consumer (moduleResolution ${resolution})${misuse ? ', and a misuse does not' : ''}`,
    async (t) => {
      const dir = consumerProject(`consumer-${resolution}`);
      const web =
        "import { WebBackbone, Head } from 'edgetl/web';\nexport const names: string[] = [WebBackbone.name, Head.name];\n";
      const good = typeCheck(dir, { 'example.ts': readmeExample(), 'web.ts': web }, resolution);
      t.equal(good.status, 0, `tsc --strict passes:\n${good.stdout}${good.stderr}`);
      if (!misuse) return;
      const bad = typeCheck(
        dir,
        {
          'misuse.ts':
            "import { Backbone } from 'edgetl';\nconst b = await Backbone.load('mobilenetv2-12-int8');\nconst dim: string = b.embeddingDim;\nexport { dim };\n",
          // An internal is not part of the package's API, whatever module it lives in.
          'internal.ts': "import { resizeBilinearPillow } from 'edgetl';\nexport const f = resizeBilinearPillow;\n",
        },
        resolution,
      );
      t.not(bad.status, 0, 'a wrong type is an error: the declarations are real, not `any`');
      t.match(bad.stdout, /TS2322/, 'number is not assignable to string');
      t.notMatch(bad.stdout, /TS7016/, 'no "could not find a declaration file"');
      t.match(bad.stdout, /internal\.ts.*TS2305.*resizeBilinearPillow/, 'internals are not exported from the root');
    },
  );
}

t.test('the README example runs against the built package with an unreadable photo among them', async (t) => {
  const dir = consumerProject('runner');
  const colours = { red: { r: 200, g: 40, b: 30 }, blue: { r: 30, g: 60, b: 210 } };
  for (const [label, colour] of Object.entries(colours)) {
    mkdirSync(join(dir, 'photos', 'train', label), { recursive: true });
    for (let i = 0; i < 5; i++) {
      const background = { r: Math.min(255, colour.r + i * 6), g: colour.g + i * 3, b: Math.max(0, colour.b - i * 5) };
      await sharp({ create: { width: 120 + i * 9, height: 100 + i * 7, channels: 3, background } })
        .jpeg()
        .toFile(join(dir, 'photos', 'train', label, `${i}.jpg`));
    }
  }
  // First in sorted order, so a misaligned label list would shift every label after it.
  writeFileSync(join(dir, 'photos', 'train', 'blue', '0-broken.jpg'), 'not a JPEG');
  await sharp({ create: { width: 90, height: 90, channels: 3, background: colours.red } })
    .jpeg()
    .toFile(join(dir, 'photo.jpg'));
  // The example is plain JavaScript apart from its imports; run it as a module and print what it computed.
  const script = `${readmeExample()}\nconsole.log(JSON.stringify({ skipped: skipped.length, rows: embeddings.length / backbone.embeddingDim, labels, label, score, topK }));\n`;
  writeFileSync(join(dir, 'example.mjs'), script);
  const env: NodeJS.ProcessEnv = { ...process.env, EDGETL_CACHE_DIR: join(dir, '.cache'), HOME: dir };
  delete env.EDGETL_MODEL_PATH;
  const run = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, env, encoding: 'utf8', timeout: 180_000 });
  t.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as {
    skipped: number;
    rows: number;
    labels: string[];
    label: string;
    score: number;
  };
  t.equal(out.skipped, 1, 'the broken file is skipped');
  t.equal(out.rows, 10);
  t.same(out.labels, [...Array(5).fill('blue'), ...Array(5).fill('red')], 'labels stay aligned with the rows');
  t.equal(out.label, 'red', 'the head it trained labels a red photo red');
  t.ok(out.score > 0.5);
  t.ok(existsSync(join(dir, 'head.json')), 'head.json written');
});
