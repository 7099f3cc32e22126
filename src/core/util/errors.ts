/**
 * An error a user can act on: it names the file (or thing) and the reason. The CLI prints `message` alone,
 * without a stack trace; `--debug` adds the stack.
 */
export class EdgetlError extends Error {
  readonly code: string;
  readonly file?: string;
  constructor(code: string, message: string, options?: { file?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EdgetlError';
    this.code = code;
    this.file = options?.file;
  }
}

export function isEdgetlError(error: unknown): error is EdgetlError {
  return error instanceof EdgetlError;
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
