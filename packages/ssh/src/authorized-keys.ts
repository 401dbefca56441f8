import { isIP } from 'node:net';
import { matchAddressList } from './host-pattern.js';
import { blobHasType } from './known-hosts.js';

/** One key line of an authorized_keys file with the options sock honours. */
export interface AuthorizedKey {
  readonly keyType: string;
  /** The public key in SSH wire format. */
  readonly key: Buffer;
  readonly comment: string;
  /** `from="…"`: the client address must match this pattern list. */
  readonly from: string | undefined;
  /** Port forwarding (`direct-tcpip` channels) allowed: off under `restrict` or `no-port-forwarding`. */
  readonly portForwarding: boolean;
  /** `permitopen="host:port"` entries; empty means every destination the server permits. */
  readonly permitOpen: readonly string[];
  readonly line: number;
}

export interface AuthorizedKeysParse {
  readonly keys: AuthorizedKey[];
  /** Lines refused (bad syntax, unknown or unsupported option): the key on them is not authorized. */
  readonly errors: readonly { line: number; message: string }[];
}

/** Options that concern features sock's SSH server never offers (ptys, X11, agents, rc files). */
const IGNORED = new Set([
  'no-pty',
  'pty',
  'no-x11-forwarding',
  'x11-forwarding',
  'no-agent-forwarding',
  'agent-forwarding',
  'no-user-rc',
  'user-rc',
  'no-touch-required',
  'verify-required',
]);

const KEY_TYPE =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)$/;

/**
 * Parse an OpenSSH authorized_keys file (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"). Fail closed: a line with
 * an option sock cannot honour (`command=`, `principals=`, `cert-authority`, `tunnel=`, `environment=`,
 * `expiry-time=`) or cannot parse is refused, never granted without its restriction.
 */
export function parseAuthorizedKeys(text: string): AuthorizedKeysParse {
  const keys: AuthorizedKey[] = [];
  const errors: { line: number; message: string }[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const trimmed = (lines[i] ?? '').trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    try {
      keys.push(parseLine(trimmed, i + 1));
    } catch (err) {
      errors.push({ line: i + 1, message: (err as Error).message });
    }
  }
  return { keys, errors };
}

function parseLine(text: string, line: number): AuthorizedKey {
  let rest = text;
  let options: string[] = [];
  const first = rest.split(/\s/, 1)[0] ?? '';
  if (!KEY_TYPE.test(first)) {
    const parsed = splitOptions(rest);
    options = parsed.options;
    rest = parsed.rest.trimStart();
  }
  const [keyType = '', base64 = '', ...comment] = rest.split(/\s+/);
  if (!KEY_TYPE.test(keyType)) throw new Error(`unsupported or missing key type "${keyType.slice(0, 40)}"`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw new Error('the key is not base64');
  const key = Buffer.from(base64, 'base64');
  if (!blobHasType(key, keyType)) throw new Error(`the key data is not a ${keyType} key`);

  let from: string | undefined;
  let portForwarding = true;
  let restricted = false;
  let reenabled = false;
  const permitOpen: string[] = [];
  for (const option of options) {
    const eq = option.indexOf('=');
    const name = (eq < 0 ? option : option.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? undefined : unquote(option.slice(eq + 1));
    if (name === 'restrict' && value === undefined) restricted = true;
    else if (name === 'no-port-forwarding' && value === undefined) portForwarding = false;
    else if (name === 'port-forwarding' && value === undefined) reenabled = true;
    else if (name === 'from' && value !== undefined) {
      checkAddressList(value);
      from = from === undefined ? value : `${from},${value}`;
    } else if (name === 'permitopen' && value !== undefined) {
      if (!/^[^\s:]+:(\d{1,5}|\*)$/.test(value) && !/^\[[^\]]+\]:(\d{1,5}|\*)$/.test(value)) {
        throw new Error(`permitopen="${value}" is not host:port`);
      }
      permitOpen.push(value);
    } else if (IGNORED.has(name) && value === undefined) {
      // Concerns a feature this server never offers.
    } else throw new Error(`option "${name}" is not supported by sock's SSH server; the key is refused`);
  }
  if (restricted && !reenabled) portForwarding = false;
  if (!restricted && reenabled) portForwarding = true;
  return { keyType, key, comment: comment.join(' '), from, portForwarding, permitOpen, line };
}

/** Split the leading option list: commas separate, double quotes protect commas and spaces, `\"` escapes. */
function splitOptions(text: string): { options: string[]; rest: string } {
  const options: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '\\' && text[i + 1] === '"') {
        current += '\\"';
        i++;
      } else {
        if (c === '"') quoted = false;
        current += c;
      }
    } else if (c === '"') {
      quoted = true;
      current += c;
    } else if (c === ',') {
      options.push(current);
      current = '';
    } else if (c === ' ' || c === '\t') {
      options.push(current);
      return { options, rest: text.slice(i) };
    } else current += c;
  }
  throw new Error(quoted ? 'unterminated quote in the options' : 'options but no key');
}

function unquote(value: string): string {
  if (value.length < 2 || !value.startsWith('"') || !value.endsWith('"')) {
    throw new Error(`option value ${value.slice(0, 40)} must be in double quotes`);
  }
  return value.slice(1, -1).replaceAll('\\"', '"');
}

function checkAddressList(list: string): void {
  for (const raw of list.split(',')) {
    const pattern = raw.startsWith('!') ? raw.slice(1) : raw;
    if (pattern === '') throw new Error('from="…" has an empty pattern');
    const slash = pattern.indexOf('/');
    if (slash >= 0) {
      const family = isIP(pattern.slice(0, slash));
      const bits = Number(pattern.slice(slash + 1));
      const max = family === 4 ? 32 : 128;
      if (family === 0 || !/^\d{1,3}$/.test(pattern.slice(slash + 1)) || bits > max) {
        throw new Error(`from="…" has an invalid CIDR block "${pattern}"`);
      }
    }
  }
}

/** May a client at `address` use this key? (`from="…"`) */
export function keyAllowsAddress(key: AuthorizedKey, address: string): boolean {
  return key.from === undefined || matchAddressList(key.from, address);
}

/** May this key open a `direct-tcpip` channel to `host:port`? */
export function keyAllowsForward(key: AuthorizedKey, host: string, port: number): boolean {
  if (!key.portForwarding) return false;
  if (key.permitOpen.length === 0) return true;
  return key.permitOpen.some((entry) => {
    const colon = entry.lastIndexOf(':');
    const h = entry.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const p = entry.slice(colon + 1);
    return h.toLowerCase() === host.toLowerCase() && (p === '*' || Number(p) === port);
  });
}
