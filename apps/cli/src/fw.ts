import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  type ApplyResult,
  type Firewall,
  MAX_DURATION_MS,
  parsePort,
  parseProtocol,
  parseTarget,
} from '@sock/firewall';
import type { Command } from 'commander';
import { UsageError } from './errors.js';
import { backendName, formatCommands, openFirewall, tableName } from './firewall-flags.js';
import { parseDur } from './parse.js';

interface FwFlags {
  backend?: string;
  table?: string;
  dryRun?: boolean;
  state?: string;
  json?: boolean;
}

function defaultState(): string {
  if (process.getuid?.() === 0) return '/var/lib/sock/firewall.json';
  return join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'sock', 'firewall.json');
}

/** Parse a target with the firewall's own strict parser: anything else is a usage error, before any command. */
function target(value: string, force = false): string {
  try {
    return parseTarget(value, { allowBroadPrefix: force }).text;
  } catch (err) {
    // The library names its option; the user typed a flag.
    throw new UsageError((err as Error).message.replace("force: 'broad-prefix'", '--force-broad'));
  }
}

function report(flags: FwFlags, what: string, result: ApplyResult): void {
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ done: what, backend: result.backend, applied: result.applied, commands: result.commands })}\n`,
    );
    return;
  }
  if (!result.applied) {
    process.stdout.write(
      `${what}: plan (${result.backend === 'plan' ? 'nothing applied' : result.backend}); the commands it would run:\n`,
    );
    for (const line of formatCommands(result.commands)) process.stdout.write(`  ${line}\n`);
    return;
  }
  process.stdout.write(`${what} (${result.backend})\n`);
  for (const s of result.skipped ?? []) process.stdout.write(`  skipped ${s.target}: ${s.error.message}\n`);
}

export function fwCommand(program: Command): void {
  const fw = program
    .command('fw')
    .description('manage kernel bans and port rules (nftables or iptables; plan prints and applies nothing)');
  const common = (cmd: Command) =>
    cmd
      .option('--backend <backend>', 'nft, iptables or plan (default: nft if usable, else iptables)')
      .option('--table <name>', 'nftables table / iptables chain prefix (default sockfw)')
      .option('--state <file>', 'state file: bans with expiry, allows, port rules (for list and restore)')
      .option('--dry-run', 'print the exact change and apply nothing')
      .option('--json', 'JSON output');
  const open = (flags: FwFlags): { firewall: Firewall } => {
    const backend = flags.backend === undefined ? 'auto' : backendName(flags.backend, '--backend');
    const stateFile = flags.state ?? defaultState();
    return {
      firewall: openFirewall(backend, {
        table: tableName(flags.table),
        stateFile,
        dryRun: flags.dryRun ?? false,
      }),
    };
  };

  common(fw.command('ban'))
    .description('ban an address or CIDR')
    .argument('<addr-or-cidr>')
    .option('--ttl <dur>', "how long, e.g. 10m, 1h, or 'permanent' (default 1h)")
    .option('--reason <text>', 'recorded with the ban')
    .option('--force-broad', 'allow prefixes broader than /8 (IPv4) or /32 (IPv6)')
    .action(
      async (addr: string, flags: FwFlags & { ttl?: string; reason?: string; forceBroad?: boolean }) => {
        const t = target(addr, flags.forceBroad);
        const ttl =
          flags.ttl === undefined
            ? undefined
            : flags.ttl === 'permanent'
              ? ('permanent' as const)
              : parseDur(flags.ttl, '--ttl');
        if (typeof ttl === 'number' && ttl > MAX_DURATION_MS) {
          throw new UsageError(
            `--ttl ${flags.ttl} is longer than the longest ban timer (${Math.floor(MAX_DURATION_MS / 86_400_000)} days); give a shorter --ttl or --ttl permanent`,
          );
        }
        if (
          flags.reason !== undefined &&
          (flags.reason.length > 200 || /[\u0000-\u001f\u007f]/.test(flags.reason))
        ) {
          throw new UsageError('--reason must be at most 200 printable characters');
        }
        const { firewall } = open(flags);
        const result = await firewall.ban(t, {
          ...(ttl !== undefined ? { ttl } : {}),
          ...(flags.reason ? { reason: flags.reason } : {}),
          ...(flags.forceBroad ? { force: 'broad-prefix' as const } : {}),
        });
        report(flags, `banned ${t}`, result);
      },
    );
  common(fw.command('unban'))
    .description('lift a ban')
    .argument('<addr-or-cidr>')
    .action(async (addr: string, flags: FwFlags) => {
      const t = target(addr, true);
      report(flags, `unbanned ${t}`, await open(flags).firewall.unban(t));
    });
  common(fw.command('allow'))
    .description('accept traffic to a port (checked before deny rules; banned sources stay banned)')
    .argument('<port[/proto]>', 'e.g. 7000 or 7000/udp (default tcp)')
    .option('--from <cidr>', 'only from this address or CIDR')
    .action(async (spec: string, flags: FwFlags & { from?: string }) => {
      const [p, proto = 'tcp', extra] = spec.split('/');
      let port: number;
      let protocol: 'tcp' | 'udp';
      try {
        if (extra !== undefined) throw new Error(`expected <port>[/tcp|udp], got ${JSON.stringify(spec)}`);
        port = parsePort(p);
        protocol = parseProtocol(proto);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const from = flags.from === undefined ? undefined : target(flags.from);
      const result = await open(flags).firewall.allowPort(port, protocol, from ? { from } : {});
      report(flags, `allowed ${port}/${protocol}${from ? ` from ${from}` : ''}`, result);
    });
  common(fw.command('list'))
    .description('live bans, from the state file')
    .action(async (flags: FwFlags) => {
      const bans = await open(flags).firewall.list();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(bans)}\n`);
        return;
      }
      if (bans.length === 0) {
        process.stdout.write('no bans\n');
        return;
      }
      for (const b of bans) {
        const left =
          b.expiresAt === null
            ? 'permanent'
            : `${Math.max(0, Math.round((b.expiresAt - Date.now()) / 1000))}s left`;
        process.stdout.write(`${b.target}\t${left}\toffences ${b.offences}\t${b.reason}\n`);
      }
    });
  common(fw.command('restore'))
    .description("re-apply the state file's live bans (after a reboot)")
    .action(async (flags: FwFlags) => report(flags, 'restored', await open(flags).firewall.restore()));
  common(fw.command('flush'))
    .description('remove every ban, allow and port rule of ours (nothing else is touched)')
    .action(async (flags: FwFlags) => report(flags, 'flushed', await open(flags).firewall.flush()));
}
