import { describe, expect, it } from 'vitest';
import { SockError, SockErrorCode, toSockError } from './errors.js';

describe('SockError', () => {
  it('carries code, reason, cause and a stable name', () => {
    const cause = new Error('inner');
    const err = new SockError(SockErrorCode.FRAME_TOO_LARGE, 'too big', { cause, reason: 'frame-too-large' });
    expect(err).toMatchObject({
      name: 'SockError',
      code: 'ERR_SOCK_FRAME_TOO_LARGE',
      reason: 'frame-too-large',
    });
    expect(err.cause).toBe(cause);
    expect(err).toBeInstanceOf(Error);
  });

  it('isInstance recognises errors from another copy of the package', () => {
    // A second copy has its own class but marks errors with the same global symbol.
    const foreign = Object.assign(new Error('x'), {
      [Symbol.for('sock.error')]: true,
      code: 'ERR_SOCK_ABORTED',
    });
    expect(SockError.isInstance(foreign)).toBe(true);
    expect(SockError.isInstance(new Error('plain'))).toBe(false);
    expect(SockError.isInstance(null)).toBe(false);
    expect(SockError.isInstance('ERR_SOCK_ABORTED')).toBe(false);
  });

  it('maps system errors to the codes callers act on', () => {
    const sys = (code: string) => Object.assign(new Error(code), { code });
    expect(toSockError(sys('ECONNREFUSED'), 'x').code).toBe('ERR_SOCK_CONNECTION_REFUSED');
    expect(toSockError(sys('ECONNRESET'), 'x').code).toBe('ERR_SOCK_CONNECTION_RESET');
    expect(toSockError(sys('EPIPE'), 'x').code).toBe('ERR_SOCK_CONNECTION_RESET');
    expect(toSockError(sys('EHOSTUNREACH'), 'x').code).toBe('ERR_SOCK_SOCKET_ERROR');
    expect(toSockError(sys('ABORT_ERR'), 'x').code).toBe('ERR_SOCK_ABORTED');
  });

  it('toSockError: a SockError passes through; anything else is wrapped with context, code, reason, cause', () => {
    const own = new SockError(SockErrorCode.REJECTED, 'no', { reason: 'ip-denied' });
    expect(toSockError(own, 'ignored', { code: SockErrorCode.INVALID_OPTION })).toBe(own);
    const cause = Object.assign(new Error('boom'), { code: 'ECONNRESET' });
    const wrapped = toSockError(cause, 'store take', {
      code: SockErrorCode.INVALID_MESSAGE,
      reason: 'invalid-message',
    });
    // An explicit code wins over the system error's meaning.
    expect(wrapped).toMatchObject({
      code: 'ERR_SOCK_INVALID_MESSAGE',
      reason: 'invalid-message',
      message: 'store take: boom',
    });
    expect(wrapped.cause).toBe(cause);
    expect(toSockError('a string', 'ctx')).toMatchObject({
      code: 'ERR_SOCK_SOCKET_ERROR',
      message: 'ctx: a string',
    });
    expect(toSockError(undefined, 'ctx').reason).toBeUndefined();
  });
});
