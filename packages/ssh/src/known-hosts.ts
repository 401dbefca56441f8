import { createHmac, timingSafeEqual } from 'node:crypto';
import { matchWildcard } from './host-pattern.js';

/** One usable line of a known_hosts file. */
export interface KnownHostEntry {
  /** `@revoked` keys are refused for every host they name; `@cert-authority` lines are kept but unused. */
  readonly marker: 'revoked' | 'cert-authority' | undefined;
  /** The host field as written (a pattern list, or one `|1|salt|hash` hashed name). */
  readonly hosts: string;
  readonly keyType: string;
  /** The public key in SSH wire format. */
  readonly key: Buffer;
  /** 1-based line number, for messages. */
  readonly line: number;
}

/**
 * What {@link checkHostKey} decided: `match` (the key is listed for the host), `unknown` (the host has no
 * entry), `mismatch` (the host has other keys: refuse, it may be an attack) or `revoked` (refuse everywhere).
 */
export type HostKeyVerdict =
  | { readonly status: 'match'; readonly entry: KnownHostEntry }
  | { readonly status: 'unknown' }
  | { readonly status: 'mismatch'; readonly known: readonly KnownHostEntry[] }
  | { readonly status: 'revoked'; readonly entry: KnownHostEntry };

/**
 * Parse an OpenSSH known_hosts file (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): optional marker, host
 * patterns or a hashed name, key type, base64 key. Lines that are not well formed are skipped, as ssh does:
 * a skipped line can only make a host unknown, never trusted.
 */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const fields = (lines[i] ?? '').trim().split(/\s+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) continue;
    let marker: KnownHostEntry['marker'];
    if (fields[0].startsWith('@')) {
      const name = fields.shift();
      if (name === '@revoked') marker = 'revoked';
      else if (name === '@cert-authority') marker = 'cert-authority';
      else continue;
    }
    const [hosts, keyType, base64] = fields;
    if (!hosts || !keyType || !base64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) continue;
    const key = Buffer.from(base64, 'base64');
    if (!blobHasType(key, keyType)) continue;
    entries.push({ marker, hosts, keyType, key, line: i + 1 });
  }
  return entries;
}

/** The name known_hosts stores for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** True when a known_hosts host field names `host:port` (patterns with `!` negation, or a hashed name). */
export function hostFieldMatches(field: string, host: string, port: number): boolean {
  const name = knownHostName(host, port);
  if (field.startsWith('|1|')) return hashedMatches(field, name);
  let matched = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (matchWildcard(pattern, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, as `ssh-keygen -H` writes it. */
function hashedMatches(field: string, name: string): boolean {
  const parts = field.split('|');
  if (parts.length !== 4 || parts[3] === undefined || parts[2] === undefined) return false;
  const salt = Buffer.from(parts[2], 'base64');
  const expected = Buffer.from(parts[3], 'base64');
  if (salt.length !== 20 || expected.length !== 20) return false;
  const actual = createHmac('sha1', salt).update(name.toLowerCase()).digest();
  return timingSafeEqual(actual, expected);
}

/** Write a hashed known_hosts line for `host:port` (used by trust-on-first-use). */
export function hashedKnownHostLine(
  host: string,
  port: number,
  keyType: string,
  key: Buffer,
  salt: Buffer,
): string {
  const name = knownHostName(host, port).toLowerCase();
  const hash = createHmac('sha1', salt).update(name).digest('base64');
  return `|1|${salt.toString('base64')}|${hash} ${keyType} ${key.toString('base64')}\n`;
}

/**
 * Decide on a presented host key the way ssh(1) does with StrictHostKeyChecking=yes: a revoked key is
 * refused everywhere; a key listed for the host matches; any other key for a host that has keys is a
 * mismatch; a host with no keys is unknown.
 */
export function checkHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  key: Buffer,
): HostKeyVerdict {
  for (const entry of entries) {
    if (entry.marker === 'revoked' && entry.key.equals(key)) return { status: 'revoked', entry };
  }
  const known: KnownHostEntry[] = [];
  for (const entry of entries) {
    if (entry.marker !== undefined || !hostFieldMatches(entry.hosts, host, port)) continue;
    if (entry.key.equals(key)) return { status: 'match', entry };
    known.push(entry);
  }
  return known.length > 0 ? { status: 'mismatch', known } : { status: 'unknown' };
}

/** An SSH key blob starts with its type as an SSH string; a line whose type field disagrees is corrupt. */
export function blobHasType(blob: Buffer, keyType: string): boolean {
  if (blob.length < 4) return false;
  const length = blob.readUInt32BE(0);
  if (length > blob.length - 4) return false;
  return blob.subarray(4, 4 + length).toString('latin1') === keyType;
}
