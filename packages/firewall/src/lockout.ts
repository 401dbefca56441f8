import { networkInterfaces } from 'node:os';
import { type IpTarget, overlaps, parseTarget } from './address.js';
import { FirewallError, FirewallErrorCode } from './errors.js';

/** Where a protected address came from. */
type ProtectedSource = 'loopback' | 'host' | 'ssh' | 'admin';

/** One address or CIDR that must never be banned. */
export interface ProtectedTarget {
  readonly target: IpTarget;
  readonly source: ProtectedSource;
}

/** Inputs of the lockout check; each is injectable for tests. */
export interface LockoutOptions {
  /** CIDRs or addresses of administrators: never banned, always in the allow set. */
  adminCidrs?: readonly string[];
  /** Protect this host's own addresses (os.networkInterfaces). Default true. */
  protectHostAddresses?: boolean;
  /** Protect the peer named in `SSH_CONNECTION`. Default true. */
  protectSshPeer?: boolean;
  /** Environment to read `SSH_CONNECTION` from. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Source of interface addresses. Default `os.networkInterfaces`. */
  interfaces?: () => Record<string, readonly { address: string }[] | undefined>;
}

const LOOPBACK = [parseTarget('127.0.0.0/8'), parseTarget('::1')];

/** Parse admin CIDRs (broad prefixes allowed: allowing is never dangerous). */
export function parseAdminCidrs(list: readonly string[] | undefined): IpTarget[] {
  return (list ?? []).map((c) => parseTarget(c, { allowBroadPrefix: true }));
}

/** The SSH peer and local end from `SSH_CONNECTION` ("peer peerPort local localPort"). */
export function sshConnection(
  env: Readonly<Record<string, string | undefined>>,
): { peer: IpTarget; localPort: number } | undefined {
  const raw = env.SSH_CONNECTION;
  if (!raw) return undefined;
  const parts = raw.trim().split(/ +/);
  try {
    // A link-local peer carries a zone id (fe80::1%eth0): the address without it is what we protect.
    const peer = parseTarget(parts[0]?.split('%')[0], { allowBroadPrefix: true });
    const localPort = Number(parts[3]);
    return { peer, localPort: Number.isInteger(localPort) ? localPort : 0 };
  } catch {
    return undefined;
  }
}

/** Everything that must never be banned right now. */
export function protectedTargets(options: LockoutOptions, admin: readonly IpTarget[]): ProtectedTarget[] {
  const out: ProtectedTarget[] = LOOPBACK.map((target) => ({ target, source: 'loopback' as const }));
  if (options.protectHostAddresses ?? true) {
    const ifaces = (options.interfaces ?? networkInterfaces)();
    for (const list of Object.values(ifaces)) {
      for (const info of list ?? []) {
        try {
          out.push({ target: parseTarget(info.address, { allowBroadPrefix: true }), source: 'host' });
        } catch {
          // Link-local addresses with zone ids and other oddities cannot be banned by us either.
        }
      }
    }
  }
  if (options.protectSshPeer ?? true) {
    const ssh = sshConnection(options.env ?? process.env);
    if (ssh) out.push({ target: ssh.peer, source: 'ssh' });
  }
  for (const target of admin) out.push({ target, source: 'admin' });
  return out;
}

const WHY: Record<ProtectedSource, string> = {
  loopback: 'loopback',
  host: "one of this host's own addresses",
  ssh: 'the peer of the current SSH session (SSH_CONNECTION)',
  admin: 'an admin CIDR (adminCidrs)',
};

function lockoutError(target: IpTarget, p: ProtectedTarget): FirewallError {
  return new FirewallError(
    FirewallErrorCode.LOCKOUT,
    `refusing to ban ${target.text}: it covers ${p.target.text}, ${WHY[p.source]}; ban a narrower range or remove it from adminCidrs if that is really intended`,
    { details: { target: target.text, protected: p.target.text, source: p.source } },
  );
}

/**
 * Build a check that throws `ERR_SOCK_FW_LOCKOUT` if banning a target would cover any protected
 * address. Single protected addresses are looked up in a Set, so checking 100k bans stays cheap.
 */
export function createLockoutCheck(protect: readonly ProtectedTarget[]): (target: IpTarget) => void {
  const singles = new Map<string, ProtectedTarget>();
  const ranges: ProtectedTarget[] = [];
  for (const p of protect) {
    if (p.target.kind === 'address') {
      if (!singles.has(p.target.text)) singles.set(p.target.text, p);
    } else ranges.push(p);
  }
  return (target) => {
    for (const p of ranges) if (overlaps(target, p.target)) throw lockoutError(target, p);
    if (target.kind === 'address') {
      const hit = singles.get(target.text);
      if (hit) throw lockoutError(target, hit);
    } else {
      for (const p of singles.values()) if (overlaps(target, p.target)) throw lockoutError(target, p);
    }
  };
}
