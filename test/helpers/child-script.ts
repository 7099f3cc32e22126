/**
 * Runs a TypeScript file of the test suite in a child Node process (with the same TypeScript loader tap uses), for
 * tests that kill a real process with SIGKILL or run one as another user.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** The loader flags tap gave this process (the TypeScript import hook), so the child can run .ts files. */
function typescriptLoaderFlags(): string[] {
  return process.execArgv.filter((flag) => flag.includes('@tapjs/typescript') || flag === '--enable-source-maps');
}

export function spawnTypeScript(script: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, [...typescriptLoaderFlags(), script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
  });
}

/** Resolves when the child prints `marker` on stdout; rejects if it exits first (with its stderr). */
export function waitForOutput(child: ChildProcess, marker: string, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(
      () => reject(new Error(`child did not print "${marker}" within ${timeoutMs} ms: ${stderr}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes(marker)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code ?? signal}) before printing "${marker}": ${stderr}`));
    });
  });
}

/** SIGKILL (kill -9) and wait until the process is gone. */
export function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Runs to completion; resolves with the exit code and output. */
export function runToEnd(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
