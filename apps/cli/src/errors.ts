import { SockError } from '@sock/core';

/** Exit statuses of every `sock` command. */
export const EXIT = { OK: 0, RUNTIME: 1, USAGE: 2 } as const;

/** A wrong flag or argument: printed as `sock: <message>` and exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure at run time that was already reported, with the status to exit with. */
export class ExitError extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

/** The one line printed for an error: the SockError code is appended when there is one. */
export function describeError(err: unknown): string {
  if (SockError.isInstance(err)) {
    const reason = err.reason ? `, reason ${err.reason}` : '';
    return `${err.message} (${err.code}${reason})`;
  }
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string' && 'message' in err) {
    return `${String(err.message)} (${err.code})`;
  }
  return err instanceof Error ? err.message : String(err);
}
