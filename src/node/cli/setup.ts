import { installCudaProvider, type CudaInstallReport } from '../execution/cuda-install.js';
import { checkCudaLoads, type CudaLoadCheck } from '../execution/cuda-load-check.js';
import { CUDA_PACKAGE, CUDA_PACKAGE_SPEC } from '../execution/cuda-package.js';
import { assessCuda, gatherHostFacts, type CudaAssessment, type CudaFacts } from '../execution/providers.js';
import { EdgetlError } from '../../core/util/errors.js';
import { type Command, inCliTerms, parseCommandLine, printJson } from './common.js';

const setupOptions = {
  from: { type: 'string' },
  check: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'allow-version-mismatch': { type: 'boolean' },
  'no-load-check': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export interface CudaSetupResult {
  install?: CudaInstallReport;
  ready: boolean;
  assessment: CudaAssessment;
  cuda: CudaFacts;
  loadCheck?: CudaLoadCheck;
  /** Why the load check didn't run, when it didn't. */
  loadCheckSkipped?: string;
}

function printHuman(result: CudaSetupResult): void {
  const out = (line = '') => process.stdout.write(line + '\n');
  const { install } = result;
  if (install) {
    const what = install.dryRun ? 'would place' : 'placed';
    out(
      `${install.package.name}@${install.package.version}: CUDA ${install.package.cudaMajor} provider built from onnxruntime ${install.package.onnxruntimeVersion}`,
    );
    out(
      `  from ${install.source.kind === 'npm' ? `the npm registry (${install.source.downloaded ? 'downloaded to' : 'kept at'} ${install.source.path})` : install.source.path}`,
    );
    out(`  into onnxruntime-node ${install.core.version}: ${install.core.bindingDir}`);
    out(`  ${install.compatibility.detail}`);
    for (const file of install.files)
      out(
        `  ${file.action === 'would-place' ? what : file.action}: ${file.name} (${(file.bytes / 1e6).toFixed(1)} MB, sha256 ${file.sha256.slice(0, 12)})`,
      );
    for (const warning of install.warnings) out(`  note: ${inCliTerms(warning)}`);
    out();
  }
  if (result.ready) {
    out(`CUDA is ready: ${result.assessment.reason}`);
  } else if (result.assessment.missing.length === 0) {
    out('CUDA is not ready: onnxruntime could not open a session on CUDA (see the load check below)');
  } else {
    out(`CUDA is not ready here yet. Missing:`);
    for (const piece of result.assessment.missing)
      out(`  - ${piece.detail}${piece.fix && !piece.detail.includes(piece.fix) ? `\n      fix: ${piece.fix}` : ''}`);
  }
  if (result.loadCheck)
    out(
      `load check (a one-node model on CUDA, in a child process): ${result.loadCheck.outcome}: ${result.loadCheck.message}`,
    );
  else if (result.loadCheckSkipped) out(`load check skipped: ${result.loadCheckSkipped}`);
  if (result.ready && result.loadCheck?.outcome === 'runs') {
    out();
    out(
      'Next: edgetl embed <images> --backbone <id> --ep cuda --strict-ep   (compare with --ep cpu: the vectors should agree)',
    );
  }
}

export const setupCommand: Command = {
  name: 'setup',
  summary: 'opt-in installs: `setup cuda` fetches the CUDA 13 provider from the npm registry and checks the machine',
  help: `Usage: edgetl setup cuda [--from <file.tgz|folder>] [--check] [--dry-run] [--allow-version-mismatch] [--json]

Installs onnxruntime's CUDA execution provider for onnxruntime-node, from the npm registry only: the package
${CUDA_PACKAGE_SPEC} (MIT; about 180 MB) holds libonnxruntime_providers_cuda.so and
libonnxruntime_providers_shared.so built from onnxruntime ${CUDA_PACKAGE.onnxruntimeVersion} for CUDA ${CUDA_PACKAGE.cudaMajor} and cuDNN ${CUDA_PACKAGE.cudnnMajor} (linux/x64).
It is fetched with your own \`npm pack\` (your registry, proxy and cache settings) and kept in the edgetl cache
(<cache>/cuda), so running it again after \`npm ci\` (which reinstalls onnxruntime-node without the provider)
needs no network. Nothing changes for anyone who doesn't run it: \`npm ci\` stays CPU-only and offline.

What it does: checks that the provider's onnxruntime release pairs with the onnxruntime-node core in use
(a mismatch is refused: onnxruntime's provider bridge has no version check of its own), places the two libraries
beside onnxruntime-node's binding (bin/napi-v*/linux/x64/), each by an atomic rename, writes edgetl-cuda.json
there last, then checks the machine: the CUDA ${CUDA_PACKAGE.cudaMajor} libraries (libcudart.so.${CUDA_PACKAGE.cudaMajor}, libcublas.so.${CUDA_PACKAGE.cudaMajor},
libcublasLt.so.${CUDA_PACKAGE.cudaMajor}, libcurand.so.10) and cuDNN (libcudnn.so.${CUDA_PACKAGE.cudnnMajor}) where the dynamic loader finds them, an NVIDIA GPU and a
driver new enough, and opens a one-node model on CUDA in a child process. Each missing piece is named with the
command that installs it.

Options:
  --from <path>              a tarball of the package (npm pack's .tgz) or an unpacked copy: no network
  --check                    install nothing; report whether CUDA can run here (exit 1 when it can't)
  --dry-run                  unpack and check everything, place nothing
  --allow-version-mismatch   place a provider whose onnxruntime release doesn't pair with the core (your risk:
                             compare results with --ep cpu)
  --no-load-check            skip opening the one-node model on CUDA
  --json                     one JSON object on stdout: {install, ready, assessment, cuda, loadCheck}

Exit code: 0 when the libraries were placed (--check: when CUDA is ready), 1 on an error, 2 on a usage error.

Examples:
  edgetl setup cuda
  edgetl setup cuda --check
  npm pack ${CUDA_PACKAGE_SPEC}    # on a machine with the registry, then:
  edgetl setup cuda --from ${CUDA_PACKAGE.name}-${CUDA_PACKAGE.version}.tgz
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, setupOptions);
    const [what, ...extra] = positionals;
    if (what === undefined) throw new EdgetlError('usage', 'missing what to set up: edgetl setup cuda');
    if (what !== 'cuda')
      throw new EdgetlError('usage', `unknown setup "${what}": edgetl setup cuda is the one there is`);
    if (extra.length > 0) throw new EdgetlError('usage', `unexpected argument "${extra[0]}"`);
    if (values.check && (values.from !== undefined || values['dry-run']))
      throw new EdgetlError('usage', '--check installs nothing: leave out --from and --dry-run');

    const progress = values.json ? undefined : (message: string) => process.stderr.write(`edgetl setup: ${message}\n`);
    const install = values.check
      ? undefined
      : await installCudaProvider({
          from: values.from,
          dryRun: values['dry-run'] === true,
          allowVersionMismatch: values['allow-version-mismatch'] === true,
          onProgress: progress,
        });
    const facts = gatherHostFacts();
    const assessment = assessCuda(facts);
    const result: CudaSetupResult = {
      ...(install ? { install } : {}),
      ready: assessment.ready,
      assessment,
      cuda: facts.cuda,
    };
    if (values['no-load-check']) result.loadCheckSkipped = '--no-load-check';
    else if (install?.dryRun) result.loadCheckSkipped = 'dry run: nothing was placed';
    else if (!assessment.tryable) result.loadCheckSkipped = 'the provider or a library it needs is missing (see above)';
    else {
      progress?.('opening a one-node model on CUDA (load check)');
      result.loadCheck = await checkCudaLoads();
      // A session that can't open on CUDA means CUDA is not ready, whatever the files say.
      if (result.loadCheck.outcome !== 'runs') result.ready = false;
    }
    if (values.json) printJson(result);
    else printHuman(result);
    return values.check ? (result.ready ? 0 : 1) : 0;
  },
};
