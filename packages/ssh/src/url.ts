import { isIP } from 'node:net';
import { invalidOption } from './reasons.js';

export interface SshTarget {
  readonly user: string;
  readonly host: string;
  readonly port: number;
}

/** `ssh://user@host[:port]` (IPv6 in brackets), validated: no password in the URL, no path. */
export function parseSshUrl(input: string): SshTarget {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw invalidOption(`ssh: "${input}" is not a URL; write ssh://user@host[:port]`);
  }
  if (url.protocol !== 'ssh:') throw invalidOption(`ssh: "${input}" must start with ssh://`);
  if (url.password)
    throw invalidOption('ssh: a password in the URL would leak into logs; use the password option');
  if (!url.username) throw invalidOption(`ssh: "${input}" names no user; write ssh://user@host`);
  if ((url.pathname && url.pathname !== '/') || url.search || url.hash) {
    throw invalidOption(`ssh: "${input}" must not have a path, query or fragment`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host || (!isIP(host) && !/^[A-Za-z0-9.-]+$/.test(host)))
    throw invalidOption(`ssh: "${input}" has no valid host`);
  const port = url.port ? Number(url.port) : 22;
  return { user: decodeURIComponent(url.username), host, port };
}
