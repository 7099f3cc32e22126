/**
 * Runs `action` with process.stdout and process.stderr captured (for in-process CLI verbs), restoring both
 * afterwards, also when it throws. The error propagates; the output written so far is on `output`.
 */
export async function captureOutput<T>(
  action: () => Promise<T>,
  output = { stdout: '', stderr: '' },
): Promise<{ result: T; stdout: string; stderr: string }> {
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const text = (chunk: string | Uint8Array) => (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
  process.stdout.write = ((chunk: string | Uint8Array) => {
    output.stdout += text(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    output.stderr += text(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    const result = await action();
    return { result, stdout: output.stdout, stderr: output.stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}
