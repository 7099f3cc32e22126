/**
 * `edgetl setup cuda`: put onnxruntime's CUDA provider libraries beside onnxruntime-node's binding, from the npm
 * registry only (onnxruntime-node's own CUDA install reaches NuGet, which many machines can't). Opt-in: nothing here
 * runs unless asked, and `npm ci` stays CPU-only and offline.
 *
 * The steps: get the package (npm pack through the user's own npm, or a local tarball or folder), unpack it into a
 * staging folder inside the binding folder (same filesystem, so the final step is a rename), check which onnxruntime
 * release the provider was built from against the core in use, then rename each library into place (atomic per
 * file) and write the install record last. A crash leaves either the old file or the new one at each path, and no
 * record claiming an install that didn't finish.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { edgetlCacheDir } from '../util/cache-dir.js';
import { providerCudaNeeds } from './cuda-libraries.js';
import { onnxruntimeBindingDir, onnxruntimeNodeDir, onnxruntimeNodeVersion } from './providers.js';
import {
  CUDA_MANIFEST_FILE,
  CUDA_MANIFEST_FORMAT,
  CUDA_PACKAGE,
  CUDA_PACKAGE_SPEC,
  CUDA_PROVIDER_FILES,
  providerCoreCompatibility,
  type CudaInstallManifest,
  type ProviderCoreCompatibility,
} from './cuda-package.js';

export interface CudaInstallOptions {
  /** A package tarball (.tgz) or an unpacked package folder; default: the package from the npm registry. */
  from?: string;
  /** onnxruntime-node's package folder to install into (default: the one edgetl runs on). */
  onnxruntimeDir?: string;
  platform?: NodeJS.Platform;
  arch?: string;
  /** Where the downloaded tarball is kept, so a reinstall after `npm ci` needs no network (default: <cache>/cuda). */
  downloadDir?: string;
  /** Place a provider whose onnxruntime release doesn't match the core (at the user's risk). */
  allowVersionMismatch?: boolean;
  /** Check everything, place nothing. */
  dryRun?: boolean;
  /** The npm executable (default: `npm` on PATH). */
  npm?: string;
  env?: NodeJS.ProcessEnv;
  onProgress?: (message: string) => void;
}

export interface PlacedFile {
  name: string;
  path: string;
  bytes: number;
  sha256: string;
  /** placed: new; replaced: a different file was there; unchanged: the same file was already there; would-place: dry run. */
  action: 'placed' | 'replaced' | 'unchanged' | 'would-place';
}

export interface CudaInstallReport {
  package: { name: string; version: string; onnxruntimeVersion: string; cudaMajor: number; cudnnMajor: number };
  /** Where the package came from: the npm spec, a tarball or a folder, and the tarball that was unpacked. */
  source: {
    kind: 'npm' | 'tarball' | 'folder';
    spec?: string;
    path: string;
    downloaded?: boolean;
    integrity?: string;
    integrityMatches?: boolean;
  };
  core: { version: string; packageDir: string; bindingDir: string };
  compatibility: ProviderCoreCompatibility;
  /** The provider's DT_NEEDED CUDA libraries (from its ELF header, when readable). */
  providerNeeds?: string[];
  files: PlacedFile[];
  manifest?: string;
  dryRun: boolean;
  warnings: string[];
}

function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }> {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (error) => done({ code: null, stdout, stderr, error }));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

async function hashFile(path: string, algorithm: 'sha256' | 'sha512', encoding: 'hex' | 'base64'): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest(encoding);
}

/** Does the file hold `text` as a NUL-terminated C string? Streams: the CUDA provider is 230 MB. */
async function containsCString(path: string, text: string): Promise<boolean> {
  const needle = Buffer.from(`\0${text}\0`);
  let tail = Buffer.alloc(0);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const window = Buffer.concat([tail, chunk as Buffer]);
    if (window.includes(needle)) return true;
    tail = window.subarray(Math.max(0, window.length - needle.length + 1));
  }
  return false;
}

/** Fetch the package with the user's npm (their registry, proxy and cache settings), into `dir`; reuse a good copy. */
async function fetchPackage(
  dir: string,
  options: CudaInstallOptions,
  progress: (m: string) => void,
): Promise<{ path: string; downloaded: boolean }> {
  await mkdir(dir, { recursive: true });
  const expected = join(dir, `${CUDA_PACKAGE.name}-${CUDA_PACKAGE.version}.tgz`);
  if (existsSync(expected)) {
    if ((await hashFile(expected, 'sha512', 'base64')) === CUDA_PACKAGE.integrity.slice('sha512-'.length)) {
      progress(`using the copy downloaded before: ${expected}`);
      return { path: expected, downloaded: false };
    }
    progress(`${expected} doesn't match the registry's checksum; downloading it again`);
    await unlink(expected);
  }
  const npm = options.npm ?? 'npm';
  progress(`downloading ${CUDA_PACKAGE_SPEC} from the npm registry (about 180 MB) with \`${npm} pack\``);
  const result = await run(npm, ['pack', CUDA_PACKAGE_SPEC, '--pack-destination', dir, '--json', '--silent'], {
    cwd: dir,
    env: options.env ?? process.env,
  });
  if (result.error || result.code !== 0) {
    const why = result.error
      ? describeError(result.error)
      : result.stderr
          .trim()
          .split('\n')
          .filter((l) => !/npm warn/i.test(l))
          .slice(-3)
          .join(' ') || `exit code ${result.code}`;
    throw new EdgetlError(
      'download-failed',
      `could not download ${CUDA_PACKAGE_SPEC} with \`${npm} pack\`: ${why}. On a machine without the npm registry, ` +
        `fetch the tarball elsewhere (\`npm pack ${CUDA_PACKAGE_SPEC}\`) and install from that file (the \`from\` option)`,
    );
  }
  if (!existsSync(expected)) {
    throw new EdgetlError(
      'download-failed',
      `\`${npm} pack\` finished but ${expected} is not there (npm said: ${result.stdout.trim().slice(0, 300)})`,
    );
  }
  return { path: expected, downloaded: true };
}

interface StagedPackage {
  name: string;
  version: string;
  onnxruntimeVersion: string;
  libraryDir: string;
}

/** Read the unpacked package: its name, version, which onnxruntime release built it, and where the libraries are. */
async function readStagedPackage(root: string, origin: string): Promise<StagedPackage> {
  const packageJson = join(root, 'package.json');
  let meta: { name?: unknown; version?: unknown };
  try {
    meta = JSON.parse(readFileSync(packageJson, 'utf8')) as { name?: unknown; version?: unknown };
  } catch (error) {
    throw new EdgetlError(
      'bad-package',
      `${origin}: no readable package.json (${describeError(error)}): not an npm package`,
      { file: origin },
    );
  }
  if (typeof meta.name !== 'string' || typeof meta.version !== 'string') {
    throw new EdgetlError('bad-package', `${origin}: package.json has no name and version`, { file: origin });
  }
  const libraryDir = join(root, ...CUDA_PACKAGE.libraryDir.split('/'));
  for (const file of CUDA_PROVIDER_FILES) {
    if (!existsSync(join(libraryDir, file))) {
      throw new EdgetlError(
        'bad-package',
        `${origin}: ${CUDA_PACKAGE.libraryDir}/${file} is missing: not the layout of ${CUDA_PACKAGE.name}`,
        { file: origin },
      );
    }
  }
  let onnxruntimeVersion: string | undefined;
  if (meta.name === CUDA_PACKAGE.name && meta.version === CUDA_PACKAGE.version) {
    onnxruntimeVersion = CUDA_PACKAGE.onnxruntimeVersion;
  } else {
    // Another release of the package: its README names the onnxruntime release ("ONNX Runtime: [1.29.0](...)").
    try {
      onnxruntimeVersion = /ONNX Runtime:\s*\[?(\d+\.\d+\.\d+)/.exec(
        readFileSync(join(root, 'README.md'), 'utf8'),
      )?.[1];
    } catch {
      onnxruntimeVersion = undefined;
    }
  }
  if (!onnxruntimeVersion) {
    throw new EdgetlError(
      'bad-package',
      `${origin}: ${meta.name}@${meta.version} doesn't say which onnxruntime release its provider is built from (edgetl knows ${CUDA_PACKAGE_SPEC})`,
      { file: origin },
    );
  }
  // The provider carries its release as a string (onnxruntime writes it into tuning results): a cross-check that the
  // binary is the build the package claims.
  const provider = join(libraryDir, 'libonnxruntime_providers_cuda.so');
  if (!(await containsCString(provider, onnxruntimeVersion))) {
    throw new EdgetlError(
      'bad-package',
      `${origin}: libonnxruntime_providers_cuda.so doesn't carry the version string ${onnxruntimeVersion} that ${meta.name}@${meta.version} claims: refusing a provider of unknown release`,
      { file: origin },
    );
  }
  return { name: meta.name, version: meta.version, onnxruntimeVersion, libraryDir };
}

/** The package root inside a folder: the folder itself, or its `package/` (an unpacked npm tarball). */
function packageRootIn(folder: string): string {
  return existsSync(join(folder, 'package.json')) ? folder : join(folder, 'package');
}

type InstallSource = CudaInstallReport['source'];

/** The onnxruntime-node install the provider goes next to. */
interface CoreInstall {
  packageDir: string;
  coreVersion: string;
  bindingDir: string;
}

function checkPlatform(platform: string, arch: string): void {
  if (platform !== 'linux' || arch !== 'x64') {
    throw new EdgetlError(
      'unsupported',
      `${CUDA_PACKAGE.name} holds the CUDA provider for linux/x64 only; this is ${platform}/${arch}` +
        (platform === 'linux' && arch === 'arm64'
          ? " (on a Jetson, build onnxruntime with CUDA from source, or use `ep: 'webgpu'` or `ep: 'cpu'`)"
          : ''),
    );
  }
}

function locateCore(options: CudaInstallOptions, platform: string, arch: string): CoreInstall {
  const packageDir = options.onnxruntimeDir ?? onnxruntimeNodeDir();
  if (!packageDir || !existsSync(packageDir)) {
    throw new EdgetlError('not-installed', 'onnxruntime-node is not installed: run `npm ci` (or `npm install`) first');
  }
  const coreVersion = onnxruntimeNodeVersion(packageDir);
  const bindingDir = onnxruntimeBindingDir(packageDir, platform, arch);
  if (!coreVersion || !existsSync(join(bindingDir, 'libonnxruntime.so.1'))) {
    throw new EdgetlError(
      'not-installed',
      `onnxruntime-node at ${packageDir} has no linux/x64 core (${join(bindingDir, 'libonnxruntime.so.1')} is missing): reinstall it with \`npm ci\``,
      { file: packageDir },
    );
  }
  return { packageDir, coreVersion, bindingDir };
}

/** The package from the registry (kept in the download folder), or the tarball or folder given with `from`. */
async function installSource(options: CudaInstallOptions, progress: (message: string) => void): Promise<InstallSource> {
  if (options.from === undefined) {
    const fetched = await fetchPackage(
      options.downloadDir ?? join(edgetlCacheDir(options.env), 'cuda'),
      options,
      progress,
    );
    return {
      kind: 'npm',
      spec: CUDA_PACKAGE_SPEC,
      path: fetched.path,
      downloaded: fetched.downloaded,
      integrity: CUDA_PACKAGE.integrity,
      integrityMatches: true,
    };
  }
  const from = resolve(options.from);
  let isFolder: boolean;
  try {
    isFolder = statSync(from).isDirectory();
  } catch {
    throw new EdgetlError('bad-input', `\`from: '${options.from}'\`: no such file or folder`, { file: from });
  }
  if (isFolder) return { kind: 'folder', path: from };
  const integrity = `sha512-${await hashFile(from, 'sha512', 'base64')}`;
  return { kind: 'tarball', path: from, integrity };
}

/** The package root: a folder source as it is, a tarball unpacked into `staging`. */
async function unpackedRoot(
  source: InstallSource,
  staging: string,
  progress: (message: string) => void,
): Promise<string> {
  if (source.kind === 'folder') {
    const root = packageRootIn(source.path);
    if (!existsSync(join(root, 'package.json'))) {
      throw new EdgetlError(
        'bad-package',
        `\`from: '${source.path}'\`: neither it nor its package/ folder holds a package.json`,
        {
          file: source.path,
        },
      );
    }
    return root;
  }
  progress(`unpacking ${basename(source.path)}`);
  const untar = await run('tar', ['-xzof', source.path, '-C', staging], {});
  if (untar.error || untar.code !== 0) {
    const why = untar.error
      ? `tar could not run (${describeError(untar.error)}): install tar`
      : untar.stderr.trim().split('\n').slice(-2).join(' ');
    throw new EdgetlError('bad-package', `${source.path}: could not unpack it: ${why}`, { file: source.path });
  }
  return packageRootIn(staging);
}

/**
 * Whether the provider's onnxruntime release suits the core: a mismatch refuses (unless allowed, then warns).
 * A tarball claiming to be the known release is also checked byte for byte against the registry's.
 */
function checkStagedPackage(
  staged: StagedPackage,
  source: InstallSource,
  coreVersion: string,
  options: CudaInstallOptions,
  warnings: string[],
): ProviderCoreCompatibility {
  if (source.kind === 'tarball' && staged.name === CUDA_PACKAGE.name && staged.version === CUDA_PACKAGE.version) {
    source.integrityMatches = source.integrity === CUDA_PACKAGE.integrity;
    if (!source.integrityMatches) {
      warnings.push(
        `${source.path} is not byte-identical to the registry's ${CUDA_PACKAGE_SPEC} (its sha512 differs): a repacked or altered copy`,
      );
    }
  }
  const compatibility = providerCoreCompatibility(staged.onnxruntimeVersion, coreVersion);
  if (!compatibility.ok) {
    if (!options.allowVersionMismatch) {
      throw new EdgetlError(
        'version-mismatch',
        `${staged.name}@${staged.version}: ${compatibility.detail}. Nothing was placed. Either install the matching core ` +
          `(\`npm install onnxruntime-node@${staged.onnxruntimeVersion}\`; in an app that depends on edgetl, ` +
          `"overrides": {"onnxruntime-node": "${staged.onnxruntimeVersion}"} in its package.json; then run this again), or place it anyway with ` +
          "`allowVersionMismatch` and check the results against `ep: 'cpu'`",
      );
    }
    warnings.push(
      `${compatibility.detail}; placed anyway (\`allowVersionMismatch\`): compare results against \`ep: 'cpu'\``,
    );
  } else if (compatibility.evidence) {
    warnings.push(compatibility.evidence);
  }
  return compatibility;
}

/** Where each provider file is staged before its rename into place. */
function stagedPath(name: string, source: InstallSource, staging: string, staged: StagedPackage): string {
  return source.kind === 'folder' ? join(staging, name) : join(staged.libraryDir, name);
}

/**
 * What each provider file would do to the binding folder (placed, replaced, unchanged). Folder sources are copied
 * into staging first, so what is renamed into place is complete and on this filesystem.
 */
async function planFiles(
  staged: StagedPackage,
  source: InstallSource,
  staging: string,
  bindingDir: string,
  dryRun: boolean,
): Promise<PlacedFile[]> {
  const files: PlacedFile[] = [];
  for (const name of CUDA_PROVIDER_FILES) {
    const stagedFile = stagedPath(name, source, staging, staged);
    if (source.kind === 'folder') await copyFile(join(staged.libraryDir, name), stagedFile);
    const target = join(bindingDir, name);
    const sha256 = await hashFile(stagedFile, 'sha256', 'hex');
    const bytes = statSync(stagedFile).size;
    // Something that isn't a file at the path (a folder) counts as different: the rename below then says why it can't.
    const existing = !existsSync(target)
      ? undefined
      : statSync(target).isFile()
        ? await hashFile(target, 'sha256', 'hex')
        : 'not a file';
    const action: PlacedFile['action'] = dryRun
      ? 'would-place'
      : existing === sha256
        ? 'unchanged'
        : existing
          ? 'replaced'
          : 'placed';
    files.push({ name, path: target, bytes, sha256, action });
  }
  return files;
}

/** Each changed file synced and renamed into place, then the folder synced. */
async function placeFiles(
  files: PlacedFile[],
  stagedFile: (name: string) => string,
  bindingDir: string,
  progress: (message: string) => void,
): Promise<void> {
  for (const file of files) {
    if (file.action === 'unchanged') continue;
    const from = stagedFile(file.name);
    const handle = await open(from, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(from, 0o755);
    try {
      await rename(from, file.path);
    } catch (error) {
      throw new EdgetlError(
        'install-failed',
        `could not put ${file.path} in place (${describeError(error)}); every path still holds either its old file or the ` +
          `complete new one, and no install record was written: fix that and run edgetl setup cuda again`,
        { file: file.path, cause: error },
      );
    }
    progress(`${file.action} ${file.path}`);
  }
  await syncDirectory(bindingDir);
}

function installManifest(report: CudaInstallReport): CudaInstallManifest {
  return {
    format: CUDA_MANIFEST_FORMAT,
    package: report.package.name,
    packageVersion: report.package.version,
    onnxruntimeVersion: report.package.onnxruntimeVersion,
    coreVersion: report.core.version,
    cudaMajor: report.package.cudaMajor,
    cudnnMajor: CUDA_PACKAGE.cudnnMajor,
    compatibility: report.compatibility.kind,
    files: report.files.map(({ name, bytes, sha256 }) => ({ name, bytes, sha256 })),
    installedAt: new Date().toISOString(),
    source: report.source.spec ?? report.source.path,
  };
}

export async function installCudaProvider(options: CudaInstallOptions = {}): Promise<CudaInstallReport> {
  const progress = options.onProgress ?? (() => undefined);
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  checkPlatform(platform, arch);
  const { packageDir, coreVersion, bindingDir } = locateCore(options, platform, arch);
  const warnings: string[] = [];
  const source = await installSource(options, progress);

  // Staging inside the binding folder: the final renames never cross a filesystem. (tar -o: the files belong to
  // whoever runs this, not to the uid recorded in the tarball.)
  await removeLeftoverStaging(bindingDir);
  const staging = join(bindingDir, `.edgetl-cuda-staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(staging, { recursive: true });
  try {
    const root = await unpackedRoot(source, staging, progress);
    const origin = source.kind === 'npm' ? `${CUDA_PACKAGE_SPEC} (${source.path})` : source.path;
    const staged = await readStagedPackage(root, origin);
    const compatibility = checkStagedPackage(staged, source, coreVersion, options, warnings);
    const linked = providerCudaNeeds(join(staged.libraryDir, 'libonnxruntime_providers_cuda.so'));
    const providerNeeds = linked?.needs;
    const cudaMajor = linked?.cudaMajor ?? CUDA_PACKAGE.cudaMajor;
    const files = await planFiles(staged, source, staging, bindingDir, options.dryRun === true);
    const report: CudaInstallReport = {
      package: {
        name: staged.name,
        version: staged.version,
        onnxruntimeVersion: staged.onnxruntimeVersion,
        cudaMajor,
        cudnnMajor: CUDA_PACKAGE.cudnnMajor,
      },
      source,
      core: { version: coreVersion, packageDir, bindingDir },
      compatibility,
      ...(providerNeeds ? { providerNeeds } : {}),
      files,
      dryRun: options.dryRun === true,
      warnings,
    };
    if (options.dryRun) return report;

    // The old record goes first: until the new one is written, nothing claims a finished install.
    const manifestPath = join(bindingDir, CUDA_MANIFEST_FILE);
    await unlink(manifestPath).catch(() => undefined);
    await placeFiles(files, (name) => stagedPath(name, source, staging, staged), bindingDir, progress);
    await writeFileAtomic(manifestPath, JSON.stringify(installManifest(report), null, 2) + '\n');
    return { ...report, manifest: manifestPath };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** fsync a folder so the renames in it survive a power cut (a no-op where folders can't be opened). */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Not all filesystems allow it; the renames are still atomic.
  }
}

/** Remove staging folders left by an install that died (its process is gone) before it could clean up. */
async function removeLeftoverStaging(bindingDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(bindingDir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^\.edgetl-cuda-staging-(\d+)-/.exec(name)?.[1]);
    if (!pid) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) await rm(join(bindingDir, name), { recursive: true, force: true });
  }
}
