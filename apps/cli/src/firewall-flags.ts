import { type BackendName, createFirewall, type Firewall } from '@sock/firewall';
import { UsageError } from './errors.js';

/** ncat-style short names → the firewall package's backend names. */
export function backendName(value: string, flag: string): BackendName {
  const map: Record<string, BackendName> = {
    nft: 'nftables',
    nftables: 'nftables',
    iptables: 'iptables',
    plan: 'plan',
  };
  const b = map[value];
  if (!b) throw new UsageError(`${flag} must be one of nft, iptables, plan, got ${JSON.stringify(value)}`);
  return b;
}

export function tableName(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[a-z][a-z0-9_]{0,15}$/.test(value)) {
    throw new UsageError(`--table must match [a-z][a-z0-9_]{0,15}, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function openFirewall(
  backend: BackendName | 'auto',
  options: { table?: string | undefined; stateFile?: string | undefined; dryRun?: boolean },
): Firewall {
  const dialect = backend === 'iptables' ? 'iptables' : 'nftables';
  return createFirewall({
    backend: options.dryRun ? 'plan' : backend,
    planDialect: dialect,
    ...(options.table ? { table: options.table } : {}),
    ...(options.stateFile ? { stateFile: options.stateFile } : {}),
  });
}

/** One command of a plan as a copy-pasteable argv line (the input file's content shown under it). */
export function formatCommands(
  commands: ReadonlyArray<{ bin: string; args: readonly string[]; input?: string }>,
): string[] {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);
  const out: string[] = [];
  for (const c of commands) {
    out.push(`${c.bin} ${c.args.map(quote).join(' ')}`);
    if (c.input !== undefined)
      out.push(
        ...c.input
          .trimEnd()
          .split('\n')
          .map((l) => `    ${l}`),
      );
  }
  return out;
}
