import { BlockList, isIP } from 'node:net';

/**
 * OpenSSH's pattern language (`ssh_config(5)` PATTERNS): `*` any run, `?` one character, case-insensitive.
 * Hand-written because it is ten lines and a glob library would accept more syntax than OpenSSH does.
 */
export function matchWildcard(pattern: string, value: string): boolean {
  const p = pattern.toLowerCase();
  const v = value.toLowerCase();
  let pi = 0;
  let vi = 0;
  let star = -1;
  let mark = 0;
  while (vi < v.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === v[vi])) {
      pi++;
      vi++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = vi;
    } else if (star >= 0) {
      pi = star + 1;
      vi = ++mark;
    } else return false;
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/**
 * A comma-separated pattern list as `from="…"` uses it: entries are wildcards or CIDR blocks, `!` negates.
 * A negated match refuses at once; otherwise at least one positive entry must match (OpenSSH
 * `match_host_and_ip`). Only the address is matched: no reverse DNS (OpenSSH's `UseDNS no` default).
 */
export function matchAddressList(list: string, address: string): boolean {
  let matched = false;
  for (const raw of list.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (pattern === '') continue;
    if (matchAddressPattern(pattern, address)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function matchAddressPattern(pattern: string, address: string): boolean {
  const slash = pattern.indexOf('/');
  if (slash < 0) return matchWildcard(pattern, address);
  const network = pattern.slice(0, slash);
  const bits = Number(pattern.slice(slash + 1));
  const family = isIP(network);
  const addressFamily = isIP(address);
  if (family === 0 || family !== addressFamily || !Number.isInteger(bits)) return false;
  if (bits < 0 || bits > (family === 4 ? 32 : 128)) return false;
  const list = new BlockList();
  const type = family === 4 ? 'ipv4' : 'ipv6';
  list.addSubnet(network, bits, type);
  return list.check(address, type);
}
