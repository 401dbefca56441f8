import { SockError } from '@sock/core';
import { describe, expect, it } from 'vitest';
import { parseIpList } from './ip-policy.js';

describe('parseIpList', () => {
  it('reads one entry per line with comments and blanks', () => {
    expect(
      parseIpList('# header\n10.0.0.0/8\n\n  192.0.2.1  # a host\r\n2001:db8::/32\n', 'deny.txt'),
    ).toEqual(['10.0.0.0/8', '192.0.2.1', '2001:db8::/32']);
  });

  it('names the file and line of a bad entry', () => {
    let error: unknown;
    try {
      parseIpList('10.0.0.0/8\n# fine\n10.0.0.300\n', '/etc/deny.txt');
    } catch (err) {
      error = err;
    }
    expect(SockError.isInstance(error)).toBe(true);
    const e = error as SockError;
    expect(e.code).toBe('ERR_SOCK_INVALID_OPTION');
    expect(e.reason).toBe('policy-file-invalid');
    expect(e.message).toContain('/etc/deny.txt:3: not an IP address or CIDR: "10.0.0.300"');
    expect(e.issues?.[0]?.path).toEqual(['/etc/deny.txt', 3]);
  });
});
