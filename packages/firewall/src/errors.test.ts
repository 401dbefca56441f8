import { SockError, SockErrorCode } from '@sock/core';
import { describe, expect, it } from 'vitest';
import { FirewallError, FirewallErrorCode } from './errors.js';

describe('FirewallError', () => {
  it('has its own marker: a FirewallError is not a SockError, and the other way round', () => {
    const fw = new FirewallError(FirewallErrorCode.ABORTED, 'aborted');
    const sock = new SockError(SockErrorCode.ABORTED, 'aborted');
    expect(FirewallError.isInstance(fw)).toBe(true);
    expect(SockError.isInstance(fw)).toBe(false);
    expect(FirewallError.isInstance(sock)).toBe(false);
    // An object shaped like one without the marker is not one either.
    expect(FirewallError.isInstance({ code: 'ERR_SOCK_FW_ABORTED', message: 'x' })).toBe(false);
  });

  it('is recognised across copies of the package through the shared registry marker', () => {
    const copy = Object.assign(new Error('from another copy'), {
      code: 'ERR_SOCK_FW_ABORTED',
      [Symbol.for('sock.firewall-error')]: true,
    });
    expect(FirewallError.isInstance(copy)).toBe(true);
  });
});
