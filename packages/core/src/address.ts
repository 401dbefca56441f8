import { isIPv4, isIPv6 } from 'node:net';

const MAPPED_HEX = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/;

/**
 * An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, as a dual-stack listener reports IPv4 peers) written
 * as the IPv4 address it is. Everything keyed on addresses must see IPv4 peers as IPv4 (CVE-2026-30827:
 * treating them as IPv6 put every IPv4 client in one /64 bucket). Any spelling of a mapped address is
 * recognised (`::ffff:c000:207`, `0:0:0:0:0:ffff:192.0.2.7`, as a PROXY v2 header's binary source is
 * often formatted); other IPv6 addresses come back in their canonical form (RFC 5952).
 */
export function canonicalPeer(address: string): { address: string; family: 'IPv4' | 'IPv6' } {
  if (isIPv4(address)) return { address, family: 'IPv4' };
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:')) {
    const tail = lower.slice(7);
    if (isIPv4(tail)) return { address: tail, family: 'IPv4' };
  }
  if (!isIPv6(lower) || lower.includes('%')) return { address: lower, family: 'IPv6' };
  // The WHATWG URL serialiser writes any IPv6 spelling in RFC 5952 form (compressed, lower-case hex):
  // one parser we did not write, and a mapped address always comes out as `::ffff:hhhh:hhhh`.
  const host = new URL(`http://[${lower}]/`).hostname;
  const mapped = MAPPED_HEX.exec(host);
  if (mapped) {
    const hi = Number.parseInt(mapped[1]!, 16);
    const lo = Number.parseInt(mapped[2]!, 16);
    return { address: `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`, family: 'IPv4' };
  }
  return { address: host.slice(1, -1), family: 'IPv6' };
}
