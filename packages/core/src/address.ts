import { isIPv4 } from 'node:net';

/**
 * An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, as a dual-stack listener reports IPv4 peers) written
 * as the IPv4 address it is. Everything keyed on addresses must see IPv4 peers as IPv4 (CVE-2026-30827:
 * treating them as IPv6 put every IPv4 client in one /64 bucket).
 */
export function canonicalPeer(address: string): { address: string; family: 'IPv4' | 'IPv6' } {
  if (isIPv4(address)) return { address, family: 'IPv4' };
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:')) {
    const tail = lower.slice(7);
    if (isIPv4(tail)) return { address: tail, family: 'IPv4' };
  }
  return { address: lower, family: 'IPv6' };
}
