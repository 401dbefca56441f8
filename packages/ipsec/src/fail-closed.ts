/**
 * Fail closed. With strongSwan's kernel-libipsec backend (ESP in user space over the `ipsec0` TUN
 * device) the only thing that sends protected traffic into the tunnel is a route in table 220, which
 * charon removes when the CHILD SA goes down; any cleartext route (a default route!) then carries the
 * traffic in the clear. An `unreachable` route for each remote selector in the main table closes that
 * path: while the tunnel is up, charon's table 220 (policy rule 220) wins; when it is down, sending
 * fails with EHOSTUNREACH instead of leaking. With the kernel's own ESP (XFRM policies) charon's
 * policies already block; the route is still a cheap second wall.
 *
 * `ip` runs through execFile with argv (never a shell), after every prefix and the namespace name were
 * validated.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { IpsecError, IpsecErrorCode, throwIfAborted } from './errors.js';
import { checkCidr, checkPath } from './validate.js';

/** Options of {@link createFailClosed}. */
export interface FailClosedOptions {
  /** The remote traffic selectors to protect (what `loadConnection` returned as `remoteTs`). */
  prefixes: string[];
  /** Run inside this network namespace (`ip -n NAME`). Default: the current one. */
  netns?: string;
  /** Path of `ip`. Default `/usr/sbin/ip` (Debian's iproute2), or `/sbin/ip` when that does not exist. */
  ipBinary?: string;
  /** Routing table for the unreachable routes. Default `main`. */
  table?: number | 'main';
}

/** The fail-closed routes for a set of remote prefixes, returned by {@link createFailClosed}. */
export interface FailClosed {
  /** Install (or replace) an `unreachable` route per prefix. Idempotent. */
  install(options?: { signal?: AbortSignal }): Promise<void>;
  /** Remove them (for a deliberate teardown, after which the traffic should flow in the clear again). */
  remove(options?: { signal?: AbortSignal }): Promise<void>;
  /** The argv lists `install` runs, for review or dry runs. */
  commands(): string[][];
}

const NETNS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Prepare `unreachable` routes for the remote traffic selectors, so traffic meant for the tunnel fails
 * (EHOSTUNREACH) instead of leaking in the clear while the SA is down. Nothing runs until `install`.
 * Throws IpsecError INVALID_OPTION for 0 or more than 64 prefixes, a bad prefix, namespace name, `ip` path
 * or table (220 is charon's and refused); `install`/`remove` reject with EXEC_FAILED (they need root or
 * CAP_NET_ADMIN).
 */
export function createFailClosed(options: FailClosedOptions): FailClosed {
  if (!Array.isArray(options?.prefixes) || options.prefixes.length === 0 || options.prefixes.length > 64)
    throw new IpsecError(IpsecErrorCode.INVALID_OPTION, 'prefixes: expected 1 to 64 addresses or CIDRs', {
      details: { field: 'prefixes' },
    });
  const targets = options.prefixes.map((p, i) => checkCidr(`prefixes[${i}]`, p));
  if (options.netns !== undefined && !NETNS.test(options.netns))
    throw new IpsecError(
      IpsecErrorCode.INVALID_OPTION,
      `netns: ${JSON.stringify(options.netns)} is not a namespace name`,
      {
        details: { field: 'netns' },
      },
    );
  const table = options.table ?? 'main';
  if (table !== 'main' && !(Number.isInteger(table) && table > 0 && table < 2 ** 31 && table !== 220))
    throw new IpsecError(
      IpsecErrorCode.INVALID_OPTION,
      'table: expected "main" or a table number other than 220 (charon\'s)',
      {
        details: { field: 'table' },
      },
    );
  const ip = options.ipBinary === undefined ? defaultIp() : checkPath('ipBinary', options.ipBinary);
  const prefix = options.netns ? ['-n', options.netns] : [];
  const argv = (verb: 'replace' | 'del') =>
    targets.map((t) => [
      ...prefix,
      t.family === 6 ? '-6' : '-4',
      'route',
      verb,
      'unreachable',
      t.text,
      'table',
      String(table),
    ]);

  const run = async (verb: 'replace' | 'del', signal: AbortSignal | undefined) => {
    for (const args of argv(verb)) {
      throwIfAborted(signal, `fail-closed ${verb}`);
      try {
        await exec(ip, args, signal);
      } catch (err) {
        const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
        // Removing a route that is already gone is what the caller wanted.
        if (verb === 'del' && /No such process|not found/i.test(stderr)) continue;
        throw new IpsecError(
          IpsecErrorCode.EXEC_FAILED,
          `${ip} ${args.join(' ')} failed: ${stderr || (err as Error).message}; fail-closed routes need root or CAP_NET_ADMIN`,
          { cause: err, details: { argv: args } },
        );
      }
    }
  };
  return {
    install: (o = {}) => run('replace', o.signal),
    remove: (o = {}) => run('del', o.signal),
    commands: () => argv('replace').map((a) => [ip, ...a]),
  };
}

function exec(file: string, args: string[], signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 10_000, ...(signal ? { signal } : {}) }, (err, _stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr }));
      else resolve();
    });
  });
}

function defaultIp(): string {
  return existsSync('/usr/sbin/ip') ? '/usr/sbin/ip' : '/sbin/ip';
}
