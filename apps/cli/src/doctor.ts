/**
 * `sock doctor`: checks the host a socket server will run on and says, per finding, why it matters and
 * the command that changes it. Reads /proc (per network namespace where the kernel keeps it per
 * namespace), runs `systemctl`, `nft` and `iptables` without a shell, and, given a `sock listen` command
 * line after `--`, checks that line against the limits found (its --max-conns against the open-file
 * limit, the accept queue, conntrack; its port against the ephemeral range; its --firewall backend).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Command, Option } from 'commander';
import { EXIT, ExitError, UsageError } from './errors.js';
import { DEFAULT_MAX_CONNS } from './ncat-flags.js';
import { parseCount } from './parse.js';
import { style, table } from './style.js';

type Status = 'ok' | 'info' | 'warn' | 'fail';

interface Finding {
  /** Stable id, e.g. `somaxconn`, `nofile-shell`, `listen-nofile`. */
  readonly id: string;
  readonly status: Status;
  /** What was found, as text (`4096`, `32768-60999`, `unavailable`). */
  readonly value: string;
  /** Why it matters (or why it is fine). */
  readonly reason: string;
  /** The command that fixes it; absent when there is nothing to do. */
  readonly fix?: string;
}

/** Node's default listen backlog: the accept queue is min(this, somaxconn). */
const NODE_BACKLOG = 511;
/** Descriptors a server needs besides its connections (stdio, listeners, log, metrics, DNS, files). */
const FD_MARGIN = 64;

function sysctl(name: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function num(name: string): number | undefined {
  const v = sysctl(name);
  return v === undefined || !/^\d+$/.test(v) ? undefined : Number(v);
}

/** The soft and hard open-file limits of this process (inherited from the shell that started it). */
function ownNofile(): { soft: number; hard: number } | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const m = line && /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(line);
    if (!m) return undefined;
    const n = (v: string) => (v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v));
    return { soft: n(m[1]!), hard: n(m[2]!) };
  } catch {
    return undefined;
  }
}

function run(bin: string, args: string[]): Promise<{ ok: boolean; out: string; missing: boolean }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 5000, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      resolve({ ok: !err, out: `${stdout}${stderr}`.trim(), missing: code === 'ENOENT' });
    });
  });
}

/** What a `sock listen` command line asks of the host. */
interface ListenPlan {
  maxConns: number;
  maxConnsSet: boolean;
  port: number | undefined;
  firewall: string | undefined;
}

/** Read the `sock listen …` line after `--` with the listen command's own option table. */
function parseListenLine(words: string[], listen: Command): ListenPlan {
  const args = [...words];
  if (args[0] === 'sock' || args[0]?.endsWith('/sock')) args.shift();
  if (args[0] === 'listen') args.shift();
  else if (args.includes('-l') || args.includes('--listen')) {
    // ncat style: sock -l …
  } else {
    throw new UsageError(
      'after --, give a sock listen command line, e.g. -- sock listen 0.0.0.0 7000 -m 5000',
    );
  }
  const byName = new Map<string, Option>();
  for (const o of listen.options) {
    if (o.short) byName.set(o.short, o);
    if (o.long) byName.set(o.long, o);
  }
  const values = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a];
    const o = byName.get(flag!);
    if (!o) throw new UsageError(`the listen line has an unknown flag ${flag}`);
    const takes = o.required || o.optional;
    const value = takes ? (inline ?? args[++i]) : 'true';
    if (value === undefined) throw new UsageError(`the listen line's ${flag} needs a value`);
    values.set(o.attributeName(), value);
  }
  const portText = values.get('port') ?? positional[positional.length - 1];
  const maxText = values.get('maxConns');
  return {
    maxConns: maxText === undefined ? DEFAULT_MAX_CONNS : parseCount(maxText, '--max-conns'),
    maxConnsSet: maxText !== undefined,
    port: portText === undefined || !/^\d+$/.test(portText) ? undefined : Number(portText),
    firewall: values.get('firewall'),
  };
}

interface DoctorOptions {
  unit?: string;
  listen?: ListenPlan;
}

/** Every check; nothing here changes the host. */
async function diagnose(options: DoctorOptions = {}): Promise<Finding[]> {
  const out: Finding[] = [];
  const plan = options.listen;
  const conns = plan?.maxConns;

  // Open files: each connection is a descriptor.
  const nofile = ownNofile();
  if (nofile) {
    const want = Math.max(65_536, (conns ?? 0) + FD_MARGIN);
    const raise = Number.isFinite(nofile.hard) ? Math.min(nofile.hard, want) : want;
    out.push(
      nofile.soft >= want
        ? {
            id: 'nofile-shell',
            status: 'ok',
            value: String(nofile.soft),
            reason: 'open-file limit of this shell',
          }
        : {
            id: 'nofile-shell',
            status: 'warn',
            value: `${nofile.soft} (hard ${nofile.hard})`,
            reason: `a server started from this shell can hold at most ~${Math.max(0, nofile.soft - FD_MARGIN)} connections (one descriptor each)`,
            fix:
              nofile.hard >= want
                ? `ulimit -n ${raise}`
                : `ulimit -n ${raise}; for more, raise the hard limit: echo '* hard nofile ${want}' >> /etc/security/limits.conf`,
          },
    );
    if (plan) {
      const need = plan.maxConns + FD_MARGIN;
      out.push(
        nofile.soft >= need
          ? {
              id: 'listen-nofile',
              status: 'ok',
              value: `${plan.maxConns} conns ≤ ${nofile.soft} files`,
              reason: 'the listen line fits the open-file limit',
            }
          : {
              id: 'listen-nofile',
              status: 'fail',
              value: `${plan.maxConns} conns > ${nofile.soft} files`,
              reason: `--max-conns ${plan.maxConns}${plan.maxConnsSet ? '' : ' (the default)'} needs ${need} descriptors; past ${nofile.soft} accept fails with EMFILE`,
              fix: `ulimit -n ${need}${nofile.hard < need ? ` (raise the hard limit first: prlimit --pid $$ --nofile=${need}:${need})` : ''}`,
            },
      );
    }
  }

  // A systemd unit has its own limit, not the shell's.
  if (options.unit !== undefined) {
    if (!/^[A-Za-z0-9@._:-]{1,200}$/.test(options.unit))
      throw new UsageError(`--unit must be a systemd unit name, got ${JSON.stringify(options.unit)}`);
    const r = await run('systemctl', ['show', options.unit, '--property=LimitNOFILE', '--value']);
    const v = r.out.split('\n')[0] ?? '';
    if (!r.ok || !/^(\d+|infinity)$/.test(v)) {
      out.push({
        id: 'nofile-unit',
        status: 'info',
        value: r.missing ? 'no systemctl' : 'unknown',
        reason: `the open-file limit of ${options.unit} could not be read${r.missing ? ' (systemd is not installed here)' : `: ${r.out.slice(0, 120)}`}`,
      });
    } else {
      const limit = v === 'infinity' ? Number.POSITIVE_INFINITY : Number(v);
      const want = Math.max(65_536, (conns ?? 0) + FD_MARGIN);
      out.push(
        limit >= want
          ? { id: 'nofile-unit', status: 'ok', value: v, reason: `LimitNOFILE of ${options.unit}` }
          : {
              id: 'nofile-unit',
              status: plan ? 'fail' : 'warn',
              value: v,
              reason: `${options.unit} runs with LimitNOFILE=${v}, whatever the shell's limit is`,
              fix: `systemctl edit ${options.unit}   # add: [Service] LimitNOFILE=${want}; then systemctl restart ${options.unit}`,
            },
      );
    }
  }

  // The accept queue.
  const somaxconn = num('net.core.somaxconn');
  if (somaxconn !== undefined) {
    out.push(
      somaxconn >= 4096
        ? { id: 'somaxconn', status: 'ok', value: String(somaxconn), reason: 'accept queue cap' }
        : {
            id: 'somaxconn',
            status: 'warn',
            value: String(somaxconn),
            reason: `the accept queue holds at most ${Math.min(somaxconn, NODE_BACKLOG)} connections waiting for accept() (Node asks for ${NODE_BACKLOG}); a burst beyond it is dropped or reset`,
            fix: 'sysctl -w net.core.somaxconn=4096',
          },
    );
  }
  const synBacklog = num('net.ipv4.tcp_max_syn_backlog');
  if (synBacklog !== undefined) {
    out.push(
      synBacklog >= 1024
        ? {
            id: 'tcp_max_syn_backlog',
            status: 'ok',
            value: String(synBacklog),
            reason: 'half-open connection queue',
          }
        : {
            id: 'tcp_max_syn_backlog',
            status: 'warn',
            value: String(synBacklog),
            reason:
              'few half-open connections fit: a SYN flood fills the queue quickly (with SYN cookies off, new clients are dropped)',
            fix: 'sysctl -w net.ipv4.tcp_max_syn_backlog=4096',
          },
    );
  }
  const cookies = num('net.ipv4.tcp_syncookies');
  if (cookies !== undefined) {
    out.push(
      cookies >= 1
        ? {
            id: 'tcp_syncookies',
            status: 'ok',
            value: String(cookies),
            reason: 'SYN cookies answer a SYN flood',
          }
        : {
            id: 'tcp_syncookies',
            status: 'warn',
            value: '0',
            reason: 'SYN cookies are off: a SYN flood that fills the SYN queue locks real clients out',
            fix: 'sysctl -w net.ipv4.tcp_syncookies=1',
          },
    );
  }

  // Connection tracking: a full table drops new connections before sock sees them.
  const ctMax = num('net.netfilter.nf_conntrack_max');
  const ctCount = num('net.netfilter.nf_conntrack_count');
  if (ctMax === undefined) {
    out.push({
      id: 'conntrack',
      status: 'ok',
      value: 'not loaded',
      reason: 'no connection tracking here, so no table to fill',
    });
  } else {
    const used = ctCount === undefined ? 0 : ctCount / Math.max(1, ctMax);
    const need = (conns ?? 0) * 2;
    const bad = used > 0.8 || ctMax < need;
    out.push(
      bad
        ? {
            id: 'conntrack',
            status: plan && ctMax < need ? 'fail' : 'warn',
            value: `${ctCount ?? '?'} of ${ctMax}`,
            reason:
              ctMax < need
                ? `--max-conns ${conns} needs room for ~${need} tracked flows (closing ones linger); a full table drops new connections ("nf_conntrack: table full")`
                : `the table is ${Math.round(used * 100)}% full; when full, new connections are dropped`,
            fix: `sysctl -w net.netfilter.nf_conntrack_max=${Math.max(262_144, need * 2)}`,
          }
        : {
            id: 'conntrack',
            status: 'ok',
            value: `${ctCount ?? '?'} of ${ctMax}`,
            reason: 'connection tracking table has room',
          },
    );
  }

  // Ephemeral ports.
  const range = sysctl('net.ipv4.ip_local_port_range');
  const m = range && /^(\d+)\s+(\d+)$/.exec(range);
  if (m) {
    const [lo, hi] = [Number(m[1]), Number(m[2])];
    const size = hi - lo + 1;
    out.push(
      size >= 16_384
        ? {
            id: 'ip_local_port_range',
            status: 'ok',
            value: `${lo}-${hi}`,
            reason: `${size} ephemeral ports for outgoing connections`,
          }
        : {
            id: 'ip_local_port_range',
            status: 'warn',
            value: `${lo}-${hi}`,
            reason: `only ${size} ephemeral ports: outgoing connections (to Redis, upstreams, sock bench) run out (EADDRNOTAVAIL)`,
            fix: 'sysctl -w net.ipv4.ip_local_port_range="32768 60999"',
          },
    );
    if (plan?.port !== undefined && plan.port !== 0 && plan.port >= lo && plan.port <= hi) {
      out.push({
        id: 'listen-port-ephemeral',
        status: 'warn',
        value: String(plan.port),
        reason: `port ${plan.port} is inside the ephemeral range ${lo}-${hi}: an outgoing connection may hold it when the server restarts (EADDRINUSE)`,
        fix: `sysctl -w net.ipv4.ip_local_reserved_ports=${plan.port}`,
      });
    }
  }

  // Socket buffers: the most a socket may ask for.
  for (const name of ['net.core.rmem_max', 'net.core.wmem_max']) {
    const v = num(name);
    if (v === undefined) continue;
    const id = name.slice('net.core.'.length);
    out.push(
      v >= 212_992
        ? { id, status: 'ok', value: String(v), reason: 'socket buffer cap' }
        : {
            id,
            status: 'warn',
            value: String(v),
            reason:
              'below the kernel default (212992): large UDP datagrams and fast links lose data or throughput',
            fix: `sysctl -w ${name}=4194304`,
          },
    );
  }

  // The firewall backends (for --firewall and sock fw).
  const nft = await run('nft', ['list', 'tables']);
  const ipt = await run('iptables', ['-w', '5', '-S', 'INPUT']);
  const usable = (r: typeof nft, what: string, fix: string): Finding =>
    r.ok
      ? { id: what, status: 'ok', value: 'usable', reason: `${what} can read the ruleset here` }
      : {
          id: what,
          status: 'info',
          value: r.missing ? 'not installed' : 'not usable',
          reason: r.missing
            ? `${what} is not installed`
            : `${what} fails here (${r.out.split('\n')[0]?.slice(0, 100)}): needs root or CAP_NET_ADMIN, and the kernel modules`,
          fix,
        };
  out.push(usable(nft, 'nft', 'apt-get install nftables; modprobe nf_tables'));
  out.push(usable(ipt, 'iptables', 'apt-get install iptables; modprobe ip_tables'));
  if (plan?.firewall !== undefined && plan.firewall !== 'plan') {
    const r = plan.firewall === 'iptables' ? ipt : nft;
    out.push(
      r.ok
        ? { id: 'listen-firewall', status: 'ok', value: plan.firewall, reason: '--firewall can apply bans' }
        : {
            id: 'listen-firewall',
            status: 'fail',
            value: plan.firewall,
            reason: `--firewall ${plan.firewall} cannot apply bans here`,
            fix: 'run as root (or with CAP_NET_ADMIN), or use --firewall plan to see the changes only',
          },
    );
  }
  return out;
}

export function doctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check this host for a socket server: limits, queues, conntrack, ports, buffers, firewall')
    .usage('[options] [-- sock listen <args>]')
    .argument('[listen...]', 'a sock listen command line, after --, to check against the limits found')
    .option('--unit <name>', 'also check the open-file limit of this systemd unit')
    .option('--json', 'print the findings as JSON')
    .addHelpText(
      'after',
      `
Exit status: 0 nothing fails (warnings may remain), 1 the listen line after -- would not fit, 2 usage error.
Nothing is changed: each finding says why it matters and the command that would change it.

Examples:
  sock doctor
  sock doctor --unit chat.service -- sock listen 0.0.0.0 7000 --max-conns 50000 --firewall nft`,
    )
    .action(async (words: string[], flags: { unit?: string; json?: boolean }) => {
      const listen = program.commands.find((c) => c.name() === 'listen')!;
      const plan = words.length > 0 ? parseListenLine(words, listen) : undefined;
      const findings = await diagnose({
        ...(flags.unit !== undefined ? { unit: flags.unit } : {}),
        ...(plan ? { listen: plan } : {}),
      });
      const failed = findings.some((f) => f.status === 'fail');
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ ok: !failed, findings })}\n`);
      } else {
        const s = style(process.stdout);
        const mark = { ok: s.green('ok'), info: 'info', warn: s.yellow('warn'), fail: s.red('FAIL') };
        process.stdout.write(
          `${table(
            ['status', 'check', 'value', 'why'],
            findings.map((f) => [mark[f.status], f.id, f.value, f.reason]),
          )}\n`,
        );
        const fixes = findings.filter((f) => f.fix && f.status !== 'ok');
        if (fixes.length > 0) {
          process.stdout.write('\nTo change:\n');
          for (const f of fixes) process.stdout.write(`  ${f.id}: ${f.fix}\n`);
        }
      }
      if (failed) throw new ExitError(EXIT.RUNTIME);
    });
}
