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

/** `host:port` as users write it: `[::1]:7000` for IPv6, `127.0.0.1:7000` otherwise. */
export function endpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The one line printed for an error: the SockError code is appended when there is one. With the
 * `at` endpoint, the libraries' `::1:7000` becomes `[::1]:7000`.
 */
export function describeError(err: unknown, at?: { host: string; port: number }): string {
  const text = (message: string) =>
    at?.host.includes(':')
      ? message.replaceAll(`${at.host}:${at.port}`, endpoint(at.host, at.port))
      : message;
  if (SockError.isInstance(err)) {
    const reason = err.reason ? `, reason ${err.reason}` : '';
    return `${text(err.message)} (${err.code}${reason})`;
  }
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string' && 'message' in err) {
    return `${text(String(err.message))} (${err.code})`;
  }
  return text(err instanceof Error ? err.message : String(err));
}

/** The system error code (EADDRINUSE, ECONNREFUSED, …) of an error or of its causes. */
export function systemCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
