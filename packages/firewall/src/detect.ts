import { readFileSync } from 'node:fs';
import type { KernelBackend } from './driver.js';
import { FirewallError, FirewallErrorCode } from './errors.js';
import { type BinaryName, type CommandRunner, resolveBinary } from './runner.js';

/** Options of {@link detectBackend}. */
export interface DetectOptions {
  /** The runner that will run the commands (it decides netns, binaries). */
  runner: CommandRunner;
  /** Explicit binary paths, checked before probing. */
  binaries?: Partial<Record<BinaryName, string>>;
  /** Skip the uid/capability check (a custom runner may elevate by itself). Default false. */
  skipPrivilegeCheck?: boolean;
  signal?: AbortSignal;
}

const CAP_NET_ADMIN = 12n;

/** True when this process is root or has CAP_NET_ADMIN in its effective set. */
export function hasNetAdmin(statusText?: string): boolean {
  if (statusText === undefined && process.getuid?.() === 0) return true;
  let text = statusText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return false;
    }
  }
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  if (!m) return false;
  return ((BigInt(`0x${m[1]}`) >> CAP_NET_ADMIN) & 1n) === 1n;
}

function notPermitted(): FirewallError {
  return new FirewallError(
    FirewallErrorCode.NOT_PERMITTED,
    'this process is not root and has no CAP_NET_ADMIN, so it cannot change firewall rules; run it as root, grant CAP_NET_ADMIN (e.g. systemd AmbientCapabilities=CAP_NET_ADMIN), or use backend: "plan"',
  );
}

async function probe(
  runner: CommandRunner,
  bin: BinaryName,
  args: string[],
  signal?: AbortSignal,
): Promise<FirewallError | undefined> {
  try {
    const r = await runner.run({ bin, args, query: true }, signal ? { signal } : {});
    if (r.exitCode === 0) return undefined;
    const denied = /not permitted|permission denied|must be root/i.test(r.stderr);
    return new FirewallError(
      denied ? FirewallErrorCode.NOT_PERMITTED : FirewallErrorCode.COMMAND_FAILED,
      `${bin} ${args.join(' ')} exited with ${r.exitCode}: ${r.stderr.trim().split('\n')[0] ?? ''}; ${
        denied ? 'run as root or grant CAP_NET_ADMIN' : 'check that the kernel modules are available'
      }`,
    );
  } catch (cause) {
    if (FirewallError.isInstance(cause)) return cause;
    throw cause;
  }
}

/**
 * Pick a working kernel backend: nftables if `nft` is present and answers, else iptables with
 * ipset. Throws `ERR_SOCK_FW_NOT_PERMITTED` without privilege and `ERR_SOCK_FW_NO_BACKEND` (with
 * every reason in `cause`) when neither works.
 */
export async function detectBackend(options: DetectOptions): Promise<KernelBackend> {
  if (!options.skipPrivilegeCheck && !hasNetAdmin()) throw notPermitted();
  const reasons: FirewallError[] = [];
  const missing = (names: BinaryName[]): FirewallError | undefined => {
    for (const name of names) {
      try {
        resolveBinary(name, options.binaries?.[name]);
      } catch (e) {
        return e as FirewallError;
      }
    }
    return undefined;
  };
  const nftReason =
    missing(['nft']) ?? (await probe(options.runner, 'nft', ['-j', 'list', 'tables'], options.signal));
  if (!nftReason) return 'nftables';
  reasons.push(nftReason);
  const iptReason =
    missing(['iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore', 'ipset']) ??
    (await probe(options.runner, 'iptables', ['-w', '-S', 'INPUT'], options.signal)) ??
    (await probe(options.runner, 'ipset', ['list', '-n'], options.signal));
  if (!iptReason) return 'iptables';
  reasons.push(iptReason);
  if (reasons.every((r) => r.code === FirewallErrorCode.NOT_PERMITTED)) throw notPermitted();
  throw new FirewallError(
    FirewallErrorCode.NO_BACKEND,
    `no firewall backend is usable: nftables: ${nftReason.message} — iptables: ${iptReason.message}; install nftables (preferred) or iptables+ipset, or use backend: "plan"`,
    { cause: new AggregateError(reasons, 'backend probes failed') },
  );
}
