import { describe, expect, it } from 'vitest';
import { fromSocketError, SockError, SockErrorCode } from './errors.js';

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
    expect(fromSocketError(sys('ECONNREFUSED'), 'x').code).toBe('ERR_SOCK_CONNECTION_REFUSED');
    expect(fromSocketError(sys('ECONNRESET'), 'x').code).toBe('ERR_SOCK_CONNECTION_RESET');
    expect(fromSocketError(sys('EPIPE'), 'x').code).toBe('ERR_SOCK_CONNECTION_RESET');
    expect(fromSocketError(sys('EHOSTUNREACH'), 'x').code).toBe('ERR_SOCK_SOCKET_ERROR');
  });
});
