import { once } from 'node:events';
import { isIP, connect as tcpConnect } from 'node:net';
import { type SecureVersion, connect as tlsConnect } from 'node:tls';
import { INTERMEDIATE_TLS12_CIPHERS } from '@sock/tls';
import type { Command } from 'commander';
import { EXIT, ExitError, endpoint, systemCode } from './errors.js';
import { oneOf, parseDur, parsePort } from './parse.js';
import { style, table } from './style.js';

export interface ProbeResult {
  kind: 'version' | 'suite' | 'curve';
  name: string;
  accepted: boolean;
  detail?: string;
}

const VERSIONS: Array<[string, SecureVersion]> = [
  ['TLS 1.0', 'TLSv1'],
  ['TLS 1.1', 'TLSv1.1'],
  ['TLS 1.2', 'TLSv1.2'],
  ['TLS 1.3', 'TLSv1.3'],
];
const MOZILLA_TLS12 = INTERMEDIATE_TLS12_CIPHERS.split(':');
/** Suites worth knowing about besides Mozilla's: CBC, SHA-1, static RSA, 3DES, finite-field DHE. */
const OTHER_TLS12 = [
  'ECDHE-ECDSA-AES128-SHA256',
  'ECDHE-RSA-AES128-SHA256',
  'ECDHE-ECDSA-AES256-SHA384',
  'ECDHE-RSA-AES256-SHA384',
  'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-RSA-AES128-SHA',
  'ECDHE-RSA-AES256-SHA',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-CHACHA20-POLY1305',
  'AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-SHA256',
  'AES128-SHA',
  'AES256-SHA',
  'DES-CBC3-SHA',
];
const TLS13 = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
const CURVES = ['X25519', 'P-256', 'P-384', 'P-521', 'X448'];

interface ProbeTarget {
  host: string;
  port: number;
  servername: string | undefined;
  timeoutMs: number;
}

/** One handshake with exactly these parameters; verification off: this looks at protocol, not trust. */
function probe(
  t: ProbeTarget,
  o: { min: SecureVersion; max: SecureVersion; ciphers: string; curve?: string },
): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    let socket: ReturnType<typeof tlsConnect>;
    try {
      socket = tlsConnect({
        host: t.host,
        port: t.port,
        ...(t.servername ? { servername: t.servername } : {}),
        rejectUnauthorized: false,
        minVersion: o.min,
        maxVersion: o.max,
        ciphers: o.ciphers,
        ...(o.curve ? { ecdhCurve: o.curve } : {}),
      });
    } catch (err) {
      // This OpenSSL cannot even offer it (3DES, X448 in some builds): not testable from here.
      resolve({ ok: false, detail: `not offered: ${(err as Error).message}` });
      return;
    }
    const timer = setTimeout(() => done(false, 'timeout'), t.timeoutMs);
    let settled = false;
    function done(ok: boolean, detail: string) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, detail });
    }
    socket.once('secureConnect', () => {
      const cipher = socket.getCipher();
      const key = socket.getEphemeralKeyInfo() as { name?: string } | null;
      done(
        true,
        `${socket.getProtocol()} ${cipher.name}${key && 'name' in key && key.name ? ` ${key.name}` : ''}`,
      );
    });
    socket.once('error', (err: NodeJS.ErrnoException) => done(false, err.code ?? err.message));
    socket.once('close', () => done(false, 'closed'));
  });
}

async function pool<T>(jobs: Array<() => Promise<T>>, concurrency: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

export async function checkServer(t: ProbeTarget): Promise<ProbeResult[]> {
  const legacy = (c: string) => `${c}:@SECLEVEL=0`;
  const jobs: Array<() => Promise<ProbeResult>> = [];
  for (const [name, v] of VERSIONS) {
    jobs.push(async () => {
      const r = await probe(t, { min: v, max: v, ciphers: legacy('ALL') });
      return { kind: 'version', name, accepted: r.ok, detail: r.detail };
    });
  }
  for (const suite of [...MOZILLA_TLS12, ...OTHER_TLS12]) {
    jobs.push(async () => {
      const r = await probe(t, { min: 'TLSv1.2', max: 'TLSv1.2', ciphers: legacy(suite) });
      return { kind: 'suite', name: suite, accepted: r.ok, detail: r.detail };
    });
  }
  for (const suite of TLS13) {
    jobs.push(async () => {
      const r = await probe(t, { min: 'TLSv1.3', max: 'TLSv1.3', ciphers: suite });
      return { kind: 'suite', name: suite, accepted: r.ok, detail: r.detail };
    });
  }
  for (const curve of CURVES) {
    jobs.push(async () => {
      const r = await probe(t, { min: 'TLSv1.2', max: 'TLSv1.3', ciphers: legacy('ALL'), curve });
      return { kind: 'curve', name: curve, accepted: r.ok, detail: r.detail };
    });
  }
  return pool(jobs, 4);
}

/** What keeps the server from meeting the profile; empty when it does. */
export function profileProblems(results: ProbeResult[], profile: 'intermediate' | 'modern'): string[] {
  const problems: string[] = [];
  const accepted = (kind: ProbeResult['kind']) =>
    results.filter((r) => r.kind === kind && r.accepted).map((r) => r.name);
  const versions = accepted('version');
  const allowed = profile === 'modern' ? ['TLS 1.3'] : ['TLS 1.2', 'TLS 1.3'];
  for (const v of versions) if (!allowed.includes(v)) problems.push(`accepts ${v}`);
  if (!versions.includes('TLS 1.3') && (profile === 'modern' || !versions.includes('TLS 1.2'))) {
    problems.push(`accepts none of ${allowed.join(', ')}`);
  }
  const suites = accepted('suite');
  for (const s of suites) {
    if (s.startsWith('TLS_')) continue;
    if (profile === 'modern') problems.push(`accepts the TLS 1.2 suite ${s}`);
    else if (!MOZILLA_TLS12.includes(s)) problems.push(`accepts ${s} (not in Mozilla intermediate)`);
  }
  return problems;
}

export function tlsCheckCommand(program: Command): void {
  program
    .command('tls-check')
    .description(
      'which TLS versions, suites and curves a server accepts, and whether it meets a Mozilla profile',
    )
    .argument('<host>')
    .argument('<port>')
    .option('--profile <profile>', 'intermediate or modern', 'intermediate')
    .option('--servername <name>', 'SNI name to send (default the host, unless it is an IP address)')
    .option('--timeout <dur>', 'per handshake', '3s')
    .option('--json', 'print the probes and the verdict as JSON')
    .addHelpText(
      'after',
      '\nExit status: 0 the server meets the profile, 1 it does not (or cannot be reached), 2 usage error.\nCertificates are not verified: this looks at the protocol, not at trust.',
    )
    .action(
      async (
        host: string,
        portArg: string,
        flags: { profile: string; servername?: string; timeout: string; json?: boolean },
      ) => {
        const port = parsePort(portArg);
        const profile = oneOf(flags.profile, ['intermediate', 'modern'] as const, '--profile');
        const timeoutMs = parseDur(flags.timeout, '--timeout');
        const servername = flags.servername ?? (isIP(host) ? undefined : host);
        const unreachable = await tcpProblem(host, port, timeoutMs);
        if (unreachable) {
          // One line, not 33 "refused" probes: there is no server to check.
          if (flags.json)
            process.stdout.write(
              `${JSON.stringify({ host, port, profile, meets: false, error: unreachable })}\n`,
            );
          process.stderr.write(`sock: tls-check ${endpoint(host, port)}: ${unreachable}\n`);
          throw new ExitError(EXIT.RUNTIME);
        }
        const results = await checkServer({ host, port, servername, timeoutMs });
        const reached = results.some((r) => r.accepted);
        const problems = reached
          ? profileProblems(results, profile)
          : ['no TLS handshake succeeded (is it a TLS server?)'];
        const meets = problems.length === 0;
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ host, port, profile, meets, problems, results })}\n`);
        } else {
          const s = style(process.stdout);
          const rows = results.map((r) => [
            r.kind,
            r.name,
            r.accepted ? s.yellow('accepted') : 'refused',
            r.accepted ? (r.detail ?? '') : '',
          ]);
          process.stdout.write(`${table(['kind', 'name', 'result', 'negotiated'], rows)}\n\n`);
          process.stdout.write(
            meets
              ? `${s.green('meets')} Mozilla ${profile}\n`
              : `${s.red('does not meet')} Mozilla ${profile}:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`,
          );
        }
        if (!meets) throw new ExitError(EXIT.RUNTIME);
      },
    );
}

/** Why a plain TCP connection to the server fails (`connection refused`, …), or undefined when it works. */
async function tcpProblem(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  const socket = tcpConnect({ host, port, timeout: timeoutMs });
  try {
    const first = await Promise.race([
      once(socket, 'connect').then(() => undefined),
      once(socket, 'timeout').then(() => `no answer within ${timeoutMs} ms`),
    ]);
    return first;
  } catch (err) {
    const code = systemCode(err);
    if (code === 'ECONNREFUSED') return 'connection refused';
    if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `host unreachable (${code})`;
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve ${host} (${code})`;
    return (err as Error).message;
  } finally {
    socket.destroy();
  }
}
