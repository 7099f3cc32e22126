import t from 'tap';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../helpers/shared.js';
import { assessCuda, gatherHostFacts } from '../../../src/node/execution/providers.js';

// The CLI as users run it: the esbuild bundle, in a child process. Nothing here installs: a test must not place
// libraries into the onnxruntime-node that every test shares (the install itself is tested on a fake one).
execFileSync(process.execPath, ['esbuild.config.mjs'], { cwd: repoRoot, stdio: 'inherit' });
const cli = join(repoRoot, 'dist', 'cli.js');
const root = mkdtempSync(join(tmpdir(), 'edgetl-cli-setup-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

function run(args: string[]) {
  const result = spawnSync(process.execPath, [cli, 'setup', ...args], {
    cwd: root,
    env: { ...process.env, EDGETL_CACHE_DIR: join(root, 'cache'), EDGETL_DEBUG: undefined },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

t.test('--help explains the npm-only route, the check and the options', async (t) => {
  const help = run(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.9/);
  t.match(help.stdout, /npm ci` stays CPU-only and offline/);
  t.match(help.stdout, /--from <path>/);
  t.match(help.stdout, /libcudnn\.so\.9/);
});

t.test('usage errors exit 2 with the reason', async (t) => {
  t.match(run([]), { code: 2, stderr: /missing what to set up: edgetl setup cuda/ });
  t.match(run(['rocm']), { code: 2, stderr: /unknown setup "rocm"/ });
  t.match(run(['cuda', 'extra']), { code: 2, stderr: /unexpected argument "extra"/ });
  t.match(run(['cuda', '--check', '--from', 'x.tgz']), { code: 2, stderr: /--check installs nothing/ });
  t.match(run(['cuda', '--bogus']), { code: 2, stderr: /bogus/ });
});

t.test('--from a path that does not exist: refused before anything is touched', async (t) => {
  const result = run(['cuda', '--from', join(root, 'nope.tgz')]);
  t.equal(result.code, 1);
  t.match(
    result.stderr,
    process.platform === 'linux' && process.arch === 'x64'
      ? /--from .*nope\.tgz: no such file or folder/
      : /linux\/x64 only/,
  );
  t.notMatch(result.stderr, /at .*\.js:\d+/, 'no stack trace');
});

const here = assessCuda(gatherHostFacts());
t.test('--check --json on this machine reports what CUDA lacks, and exits 1 unless it is ready', async (t) => {
  const result = run(['cuda', '--check', '--json', '--no-load-check']);
  const report = JSON.parse(result.stdout) as {
    ready: boolean;
    assessment: { missing: { kind: string; name: string }[] };
    cuda: { bindingDir: string };
  };
  t.equal(report.ready, here.ready);
  t.same(
    report.assessment.missing.map((m) => m.kind),
    here.missing.map((m) => m.kind),
  );
  t.equal(result.code, here.ready ? 0 : 1);
  t.match(report.cuda.bindingDir, /onnxruntime-node[/\\]bin[/\\]napi-v\d+/);
  const human = run(['cuda', '--check', '--no-load-check']);
  t.match(human.stdout, here.ready ? /CUDA is ready/ : /CUDA is not ready here yet\. Missing:\n {2}- /);
});
