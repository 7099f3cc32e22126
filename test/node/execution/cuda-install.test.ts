import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCudaProvider } from '../../../src/node/execution/cuda-install.js';
import {
  CUDA_MANIFEST_FILE,
  CUDA_PACKAGE,
  providerCoreCompatibility,
} from '../../../src/node/execution/cuda-package.js';
import { assessCuda, gatherHostFacts } from '../../../src/node/execution/providers.js';
import { CUDA13_PROVIDER_NEEDS, fakeSharedObject } from '../../helpers/elf.js';

const LIB_DIR = CUDA_PACKAGE.libraryDir;

/** A stand-in for the 179 MB package with its layout: package.json, README, Plugins/Linux/x64/*.so (tiny ELF files). */
async function fakePackage(
  root: string,
  options: { name?: string; version?: string; embeddedVersion?: string | null; readme?: string; omit?: string } = {},
): Promise<string> {
  const dir = join(root, 'package');
  await mkdir(join(dir, ...LIB_DIR.split('/')), { recursive: true });
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name: options.name ?? CUDA_PACKAGE.name, version: options.version ?? CUDA_PACKAGE.version }),
  );
  await writeFile(join(dir, 'README.md'), options.readme ?? '- ONNX Runtime: [1.29.0](https://example.invalid)\n');
  const embedded = options.embeddedVersion === undefined ? CUDA_PACKAGE.onnxruntimeVersion : options.embeddedVersion;
  const provider = fakeSharedObject({ needed: CUDA13_PROVIDER_NEEDS, strings: embedded ? [embedded] : [] });
  if (options.omit !== 'libonnxruntime_providers_cuda.so')
    await writeFile(join(dir, ...LIB_DIR.split('/'), 'libonnxruntime_providers_cuda.so'), provider);
  if (options.omit !== 'libonnxruntime_providers_shared.so') {
    await writeFile(
      join(dir, ...LIB_DIR.split('/'), 'libonnxruntime_providers_shared.so'),
      fakeSharedObject({ soname: 'libonnxruntime_providers_shared.so' }),
    );
  }
  await writeFile(join(dir, ...LIB_DIR.split('/'), 'libonnxruntime_providers_tensorrt.so'), 'tensorrt, not placed');
  return root;
}

async function tarball(root: string, name = `${CUDA_PACKAGE.name}-${CUDA_PACKAGE.version}.tgz`): Promise<string> {
  const file = join(root, name);
  execFileSync('tar', ['-czf', file, '-C', root, 'package']);
  return file;
}

/** onnxruntime-node's layout: package.json and bin/napi-v6/linux/x64/libonnxruntime.so.1. */
async function fakeOnnxruntime(root: string, version = '1.30.0'): Promise<{ dir: string; binding: string }> {
  const dir = join(root, 'onnxruntime-node');
  const binding = join(dir, 'bin', 'napi-v6', 'linux', 'x64');
  await mkdir(binding, { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'onnxruntime-node', version }));
  await writeFile(join(binding, 'libonnxruntime.so.1'), 'core');
  await writeFile(join(binding, 'onnxruntime_binding.node'), 'binding');
  return { dir, binding };
}

async function setup(t: { teardown(fn: () => unknown): void }, coreVersion = '1.30.0') {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-cuda-install-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'src'));
  const ort = await fakeOnnxruntime(root, coreVersion);
  return { root, ort, base: { onnxruntimeDir: ort.dir, platform: 'linux' as const, arch: 'x64' } };
}

const sha256 = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

t.test(
  'from a tarball: both libraries land beside the binding, the record is written last, staging is gone',
  async (t) => {
    const { root, ort, base } = await setup(t);
    const source = await tarball(await fakePackage(join(root, 'src')));
    const progress: string[] = [];
    const report = await installCudaProvider({ ...base, from: source, onProgress: (m) => progress.push(m) });
    t.equal(report.source.kind, 'tarball');
    t.equal(report.package.onnxruntimeVersion, '1.29.0');
    t.equal(report.package.cudaMajor, 13, 'CUDA major read from the provider: libcudart.so.13');
    t.same(report.providerNeeds, [
      'libcublasLt.so.13',
      'libcublas.so.13',
      'libcurand.so.10',
      'libcudart.so.13',
      'libcuda.so.1',
    ]);
    t.equal(report.compatibility.kind, 'checked', '1.29.0 provider in a 1.30 core is the pair edgetl checked');
    t.match(report.warnings.join('\n'), /still to be run/, 'and the report says the GPU check is still owed');
    t.equal(report.source.integrityMatches, false, 'a fake tarball is not the registry one');
    t.match(report.warnings.join('\n'), /not byte-identical/);
    t.same(
      report.files.map((f) => [f.name, f.action]),
      [
        ['libonnxruntime_providers_shared.so', 'placed'],
        ['libonnxruntime_providers_cuda.so', 'placed'],
      ],
    );
    for (const file of report.files) {
      t.equal(await sha256(join(ort.binding, file.name)), file.sha256, `${file.name} placed byte for byte`);
    }
    t.notOk(existsSync(join(ort.binding, 'libonnxruntime_providers_tensorrt.so')), 'TensorRT provider not placed');
    const manifest = JSON.parse(await readFile(join(ort.binding, CUDA_MANIFEST_FILE), 'utf8')) as Record<
      string,
      unknown
    >;
    t.match(manifest, {
      format: 'edgetl-cuda-install/1',
      package: CUDA_PACKAGE.name,
      onnxruntimeVersion: '1.29.0',
      coreVersion: '1.30.0',
      compatibility: 'checked',
      cudaMajor: 13,
    });
    t.same(
      (await readdir(ort.binding)).filter((n) => n.startsWith('.')),
      [],
      'no staging folder or temporary file left',
    );
    t.ok(
      progress.some((m) => /unpacking/.test(m)),
      'progress reported',
    );

    const again = await installCudaProvider({ ...base, from: source });
    t.same(
      again.files.map((f) => f.action),
      ['unchanged', 'unchanged'],
      'a second run changes nothing',
    );

    // Detection reads what was placed: the provider's own DT_NEEDED entries and the install record.
    const facts = gatherHostFacts({
      onnxruntimeDir: ort.dir,
      platform: 'linux',
      arch: 'x64',
      devRoot: root,
      runTools: false,
      env: { PATH: '' },
      librarySearch: { defaultDirs: [], otherDirs: [] },
    });
    t.equal(facts.cuda.providerLibraryPresent, true);
    t.equal(facts.cuda.install?.onnxruntimeVersion, '1.29.0');
    t.same(facts.cuda.providerNeeds, report.providerNeeds);
    t.equal(assessCuda(facts).compatibility?.kind, 'checked');
  },
);

t.test('from a folder: the package root or the folder holding package/', async (t) => {
  const { root, ort, base } = await setup(t);
  const unpacked = await fakePackage(join(root, 'src'));
  const fromParent = await installCudaProvider({ ...base, from: unpacked });
  t.equal(fromParent.source.kind, 'folder');
  t.same(
    fromParent.files.map((f) => f.action),
    ['placed', 'placed'],
  );
  await rm(join(ort.binding, 'libonnxruntime_providers_cuda.so'));
  const fromRoot = await installCudaProvider({ ...base, from: join(unpacked, 'package') });
  t.same(
    fromRoot.files.map((f) => f.action),
    ['unchanged', 'placed'],
  );
  t.ok(
    existsSync(join(unpacked, 'package', LIB_DIR, 'libonnxruntime_providers_cuda.so')),
    'a folder source is copied, not moved',
  );
});

t.test('version mismatch: refused, nothing placed, unless allowVersionMismatch', async (t) => {
  const { root, ort, base } = await setup(t, '1.31.0');
  const source = await tarball(await fakePackage(join(root, 'src')));
  await t.rejects(installCudaProvider({ ...base, from: source }), {
    code: 'version-mismatch',
    message:
      /built from onnxruntime 1\.29\.0 but onnxruntime-node here is 1\.31\.0.*Nothing was placed.*npm install onnxruntime-node@1\.29\.0.*`allowVersionMismatch`/s,
  });
  t.same(
    (await readdir(ort.binding)).sort(),
    ['libonnxruntime.so.1', 'onnxruntime_binding.node'],
    'binding folder untouched',
  );
  const forced = await installCudaProvider({ ...base, from: source, allowVersionMismatch: true });
  t.equal(forced.compatibility.kind, 'mismatch');
  t.match(forced.warnings.join('\n'), /placed anyway/);
  const manifest = JSON.parse(await readFile(join(ort.binding, CUDA_MANIFEST_FILE), 'utf8')) as {
    compatibility: string;
  };
  t.equal(manifest.compatibility, 'mismatch', 'the record keeps that it was forced');
  // Detection then refuses to pick or try it: a mismatched provider is a missing piece with its fix.
  const facts = gatherHostFacts({
    onnxruntimeDir: ort.dir,
    platform: 'linux',
    arch: 'x64',
    devRoot: root,
    runTools: false,
    env: { PATH: '' },
    librarySearch: { defaultDirs: [], otherDirs: [] },
  });
  const cuda = assessCuda(facts);
  t.equal(cuda.tryable, false);
  t.match(
    cuda.missing.find((m) => m.kind === 'version'),
    { name: 'onnxruntime 1.29.0 provider in onnxruntime-node 1.31.0', fix: /edgetl setup cuda/ },
  );
});

t.test(
  'an exact release match is accepted as exact; a major mismatch and an unknown version are refused',
  async (t) => {
    t.equal(providerCoreCompatibility('1.29.0', '1.29.0').kind, 'exact');
    t.equal(providerCoreCompatibility('1.29.0', '1.30.2').kind, 'checked');
    t.equal(providerCoreCompatibility('1.29.0', '1.28.0').ok, false, 'an older core is not a checked pair');
    t.equal(providerCoreCompatibility('1.29.0', '2.30.0').ok, false);
    t.equal(providerCoreCompatibility('1.30.0', '1.29.0').ok, false);
    t.equal(providerCoreCompatibility('x', '1.30.0').ok, false);
    const { root, base } = await setup(t, '1.29.0');
    const report = await installCudaProvider({ ...base, from: await tarball(await fakePackage(join(root, 'src'))) });
    t.equal(report.compatibility.kind, 'exact');
    t.same(
      report.warnings.filter((w) => /checked with stand-in/.test(w)),
      [],
      'no caveat for an exact match',
    );
  },
);

t.test(
  'a provider that does not carry its claimed release, a broken layout, an unknown package: refused by name',
  async (t) => {
    const { root, ort, base } = await setup(t);
    const noVersion = await tarball(await fakePackage(join(root, 'a'), { embeddedVersion: null }));
    await t.rejects(installCudaProvider({ ...base, from: noVersion }), {
      code: 'bad-package',
      message: /doesn't carry the version string 1\.29\.0/,
    });
    const otherVersion = await tarball(await fakePackage(join(root, 'b'), { embeddedVersion: '1.28.1' }));
    await t.rejects(installCudaProvider({ ...base, from: otherVersion }), {
      code: 'bad-package',
      message: /version string 1\.29\.0/,
    });
    const missingShared = await tarball(
      await fakePackage(join(root, 'c'), { omit: 'libonnxruntime_providers_shared.so' }),
    );
    await t.rejects(installCudaProvider({ ...base, from: missingShared }), {
      code: 'bad-package',
      message: /Plugins\/Linux\/x64\/libonnxruntime_providers_shared\.so is missing/,
    });
    const unknown = await fakePackage(join(root, 'd'), {
      name: 'someone-elses-gpu-build',
      version: '9.9.9',
      readme: 'no version here',
    });
    await t.rejects(installCudaProvider({ ...base, from: unknown }), {
      code: 'bad-package',
      message: /doesn't say which onnxruntime release/,
    });
    // Another release of the package, whose README names its onnxruntime: judged by that.
    const nextRelease = await fakePackage(join(root, 'e'), {
      version: '0.5.0',
      readme: '- ONNX Runtime: [1.30.0](x)',
      embeddedVersion: '1.30.0',
    });
    t.equal((await installCudaProvider({ ...base, from: nextRelease, dryRun: true })).compatibility.kind, 'exact');
    const notGzip = join(root, 'not-a-tarball.tgz');
    await writeFile(notGzip, 'plain text');
    await t.rejects(installCudaProvider({ ...base, from: notGzip }), {
      code: 'bad-package',
      message: /not-a-tarball\.tgz: could not unpack it/,
    });
    await t.rejects(installCudaProvider({ ...base, from: join(root, 'nowhere.tgz') }), {
      code: 'bad-input',
      message: /no such file or folder/,
    });
    t.same(
      (await readdir(ort.binding)).sort(),
      ['libonnxruntime.so.1', 'onnxruntime_binding.node'],
      'every refusal left the binding folder as it was',
    );
  },
);

t.test('not linux/x64, or no onnxruntime-node: refused before anything is fetched', async (t) => {
  const { root, base } = await setup(t);
  const npmCalls = join(root, 'npm-calls');
  const npm = join(root, 'fake-npm');
  await writeFile(npm, `#!/bin/sh\necho called >> ${npmCalls}\nexit 1\n`);
  await chmod(npm, 0o755);
  await t.rejects(installCudaProvider({ ...base, arch: 'arm64', npm }), {
    code: 'unsupported',
    message: /linux\/x64 only; this is linux\/arm64.*Jetson/,
  });
  await t.rejects(installCudaProvider({ ...base, platform: 'darwin', npm }), {
    code: 'unsupported',
    message: /this is darwin\/x64/,
  });
  await t.rejects(installCudaProvider({ ...base, onnxruntimeDir: join(root, 'missing'), npm }), {
    code: 'not-installed',
    message: /npm ci/,
  });
  const bare = join(root, 'bare-ort');
  await mkdir(bare);
  await writeFile(join(bare, 'package.json'), '{"version":"1.30.0"}');
  await t.rejects(installCudaProvider({ ...base, onnxruntimeDir: bare, npm }), {
    code: 'not-installed',
    message: /libonnxruntime\.so\.1 is missing/,
  });
  t.notOk(existsSync(npmCalls), 'npm was never run');
});

t.test(
  'from the registry: npm pack is run with the pinned spec, its tarball kept; a failed download says what to do',
  async (t) => {
    const { root, ort, base } = await setup(t);
    const source = await tarball(await fakePackage(join(root, 'src')));
    const calls = join(root, 'npm-calls');
    const npm = join(root, 'fake-npm');
    // A stand-in for npm: records its arguments and drops the package tarball into --pack-destination.
    await writeFile(
      npm,
      `#!/bin/sh\necho "$@" >> ${calls}\nwhile [ $# -gt 0 ]; do if [ "$1" = --pack-destination ]; then cp ${source} "$2/"; fi; shift; done\necho '[{}]'\n`,
    );
    await chmod(npm, 0o755);
    const downloadDir = join(root, 'cache', 'cuda');
    const report = await installCudaProvider({ ...base, npm, downloadDir });
    t.equal(report.source.kind, 'npm');
    t.equal(report.source.downloaded, true);
    t.equal(
      report.source.path,
      join(downloadDir, `${CUDA_PACKAGE.name}-${CUDA_PACKAGE.version}.tgz`),
      'kept in the cache for a reinstall after npm ci',
    );
    t.ok(existsSync(report.source.path));
    t.match(
      await readFile(calls, 'utf8'),
      new RegExp(`^pack ${CUDA_PACKAGE.name.replace(/\./g, '\\.')}@0\\.4\\.9 --pack-destination ${downloadDir}`),
    );
    t.ok(existsSync(join(ort.binding, 'libonnxruntime_providers_cuda.so')));
    // The kept copy doesn't match the registry's checksum (it's a fake), so it is fetched again rather than trusted.
    await installCudaProvider({ ...base, npm, downloadDir });
    t.equal(
      (await readFile(calls, 'utf8')).trim().split('\n').length,
      2,
      'a kept copy with the wrong checksum is downloaded again',
    );

    const failing = join(root, 'failing-npm');
    await writeFile(failing, '#!/bin/sh\necho "npm error code E404" >&2\necho "npm error 404 Not Found" >&2\nexit 1\n');
    await chmod(failing, 0o755);
    await t.rejects(installCudaProvider({ ...base, npm: failing, downloadDir: join(root, 'cache2') }), {
      code: 'download-failed',
      message: /could not download com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.9 .*E404.*the `from` option/s,
    });
    await t.rejects(
      installCudaProvider({ ...base, npm: join(root, 'no-such-npm'), downloadDir: join(root, 'cache3') }),
      { code: 'download-failed', message: /ENOENT/ },
    );
  },
);

t.test(
  'atomic placement: a dry run places nothing, a failed rename leaves no install record, leftovers of a dead run are removed',
  async (t) => {
    const { root, ort, base } = await setup(t);
    const source = await tarball(await fakePackage(join(root, 'src')));
    const dry = await installCudaProvider({ ...base, from: source, dryRun: true });
    t.same(
      dry.files.map((f) => f.action),
      ['would-place', 'would-place'],
    );
    t.same(
      (await readdir(ort.binding)).sort(),
      ['libonnxruntime.so.1', 'onnxruntime_binding.node'],
      'dry run: nothing placed',
    );

    // An older install is there; the new provider can't be renamed into place (a folder sits at its path).
    await writeFile(join(ort.binding, 'libonnxruntime_providers_shared.so'), 'old shared');
    await writeFile(join(ort.binding, CUDA_MANIFEST_FILE), '{"format":"edgetl-cuda-install/1"}');
    await mkdir(join(ort.binding, 'libonnxruntime_providers_cuda.so', 'blocker'), { recursive: true });
    await t.rejects(installCudaProvider({ ...base, from: source }), {
      code: 'install-failed',
      message: /could not put .*libonnxruntime_providers_cuda\.so in place.*run edgetl setup cuda again/,
    });
    t.notOk(existsSync(join(ort.binding, CUDA_MANIFEST_FILE)), 'no record claims an install that did not finish');
    const shared = await readFile(join(ort.binding, 'libonnxruntime_providers_shared.so'));
    t.ok(
      shared.toString() === 'old shared' || shared.subarray(0, 4).toString('hex') === '7f454c46',
      'each path holds the old file or the whole new one',
    );
    t.same(
      (await readdir(ort.binding)).filter((n) => n.startsWith('.edgetl-cuda-staging')),
      [],
      'staging removed after the failure',
    );

    await rm(join(ort.binding, 'libonnxruntime_providers_cuda.so'), { recursive: true });
    await writeFile(join(ort.binding, 'libonnxruntime_providers_shared.so'), 'old shared');
    // A staging folder from a process that died mid-install (a pid at the top of Linux's range; skipped if it runs).
    const deadPid = 4194303;
    let alive = true;
    try {
      process.kill(deadPid, 0);
    } catch {
      alive = false;
    }
    const leftover = join(ort.binding, `.edgetl-cuda-staging-${deadPid}-abcd1234`);
    await mkdir(leftover);
    await writeFile(join(leftover, 'libonnxruntime_providers_cuda.so'), 'half');
    const report = await installCudaProvider({ ...base, from: source });
    t.same(
      report.files.map((f) => f.action),
      ['replaced', 'placed'],
      'the old shared library is replaced',
    );
    if (!alive) t.notOk(existsSync(leftover), "a dead install's staging folder is cleaned up");
    t.ok(existsSync(join(ort.binding, CUDA_MANIFEST_FILE)));
  },
);
