import { SockError, SockErrorCode } from '@sock/core';
import { describe, expect, it } from 'vitest';
import { IpsecError, IpsecErrorCode } from './errors.js';

describe('IpsecError', () => {
  it('has its own marker: an IpsecError is not a SockError, and the other way round', () => {
    const ipsec = new IpsecError(IpsecErrorCode.ABORTED, 'aborted');
    const sock = new SockError(SockErrorCode.ABORTED, 'aborted');
    expect(IpsecError.isInstance(ipsec)).toBe(true);
    expect(SockError.isInstance(ipsec)).toBe(false);
    expect(IpsecError.isInstance(sock)).toBe(false);
    // Shaped like one, without the marker (or with core's): not one either.
    expect(IpsecError.isInstance({ code: 'ERR_SOCK_IPSEC_ABORTED', message: 'x' })).toBe(false);
    const withCoreMarker = Object.assign(new Error('x'), {
      code: 'ERR_SOCK_IPSEC_ABORTED',
      [Symbol.for('sock.error')]: true,
    });
    expect(IpsecError.isInstance(withCoreMarker)).toBe(false);
  });

  it('is recognised across copies of the package through the shared registry marker', () => {
    const copy = Object.assign(new Error('from another copy'), {
      code: 'ERR_SOCK_IPSEC_ABORTED',
      [Symbol.for('sock.ipsec-error')]: true,
    });
    expect(IpsecError.isInstance(copy)).toBe(true);
  });
});
