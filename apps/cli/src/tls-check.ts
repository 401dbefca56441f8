import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { isIP, connect as tcpConnect } from 'node:net';
import { getCiphers, type SecureVersion, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { INTERMEDIATE_TLS12_CIPHERS } from '@sock/tls';
import type { Command } from 'commander';
import { EXIT, ExitError, endpoint, systemCode } from './errors.js';
import { oneOf, parseDur, parsePort } from './parse.js';
import { style, table } from './style.js';

interface ProbeResult {
  kind: 'version' | 'suite' | 'curve' | 'property';
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
/** Leaf lifetime Mozilla's guidelines allow (90 days recommended). */
const MAX_LIFETIME_DAYS = 366;

/**
 * Every suite before TLS 1.3 this machine's OpenSSL knows (`openssl ciphers -V ALL:COMPLEMENTOFALL`, at
 * security level 0 so nothing is hidden), with their protocol; Node's own list if openssl is absent.
 */
async function legacySuites(): Promise<Array<{ name: string; protocol: string }>> {
  try {
    const { stdout } = await promisify(execFile)(
      'openssl',
      ['ciphers', '-V', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'],
      { timeout: 10_000 },
    );
    const suites = stdout
      .split('\n')
      .map((line) => /^\s*0x[0-9A-F]{2},0x[0-9A-F]{2} - (\S+)\s+(\S+)/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null && !m[1]!.startsWith('TLS_'))
      .map((m) => ({ name: m[1]!, protocol: m[2]! }));
    if (suites.length > 0) return suites;
  } catch {
    // fall through to Node's list
  }
  return getCiphers()
    .map((c) => c.toUpperCase())
    .filter((c) => !c.startsWith('TLS_'))
    .map((name) => ({ name, protocol: 'TLSv1.2' }));
}
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
        // PSK suites are only offered with a key; a server that has none refuses them anyway.
        ...(/PSK/.test(o.ciphers)
          ? { pskCallback: () => ({ psk: Buffer.alloc(32, 1), identity: 'sock-tls-check' }) }
          : {}),
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

/** Connect once (TLS 1.2 when `tls12`), run `fn` on the open session, always close. */
function session<T>(
  t: ProbeTarget,
  tls12: boolean,
  fn: (socket: TLSSocket) => Promise<T>,
  session?: Buffer,
): Promise<T | undefined> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: t.host,
      port: t.port,
      ...(t.servername ? { servername: t.servername } : {}),
      rejectUnauthorized: false,
      ...(tls12 ? { maxVersion: 'TLSv1.2' as const } : {}),
      ...(session ? { session } : {}),
    });
    const timer = setTimeout(() => finish(undefined), t.timeoutMs);
    let settled = false;
    const finish = (v: T | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    socket.on('error', () => finish(undefined));
    socket.once('secureConnect', () => {
      fn(socket).then(finish, () => finish(undefined));
    });
  });
}

/** Client-initiated renegotiation (TLS 1.2): does the server complete one? */
function renegotiation(t: ProbeTarget): Promise<ProbeResult> {
  return session(t, true, (socket) => {
    return new Promise<ProbeResult>((resolve) => {
      const refused = (detail: string) =>
        resolve({ kind: 'property', name: 'renegotiation', accepted: false, detail });
      socket.once('close', () => refused('refused (connection closed)'));
      socket.once('error', (err: NodeJS.ErrnoException) => refused(`refused (${err.code ?? err.message})`));
      const ok = socket.renegotiate({ rejectUnauthorized: false }, (err) =>
        err
          ? refused(`refused (${(err as NodeJS.ErrnoException).code ?? err.message})`)
          : resolve({
              kind: 'property',
              name: 'renegotiation',
              accepted: true,
              detail: 'client-initiated renegotiation completed',
            }),
      );
      if (!ok) refused('refused');
    });
  }).then(
    (r) => r ?? { kind: 'property', name: 'renegotiation', accepted: false, detail: 'no TLS 1.2 session' },
  );
}

/** Does the server issue session tickets, and does a second connection resume with one? */
async function tickets(t: ProbeTarget): Promise<ProbeResult[]> {
  const ticket = await session(t, true, async (socket) => {
    await new Promise((r) => setTimeout(r, 50));
    return { ticket: socket.getTLSTicket(), session: socket.getSession() };
  });
  const resumed =
    ticket?.ticket && ticket.session
      ? await session(t, true, async (socket) => socket.isSessionReused(), ticket.session)
      : false;
  return [
    {
      kind: 'property',
      name: 'session tickets',
      accepted: ticket?.ticket !== undefined,
      detail: ticket?.ticket ? `issued (TLS 1.2), ${resumed ? 'resumed' : 'not resumed'}` : 'none issued',
    },
  ];
}

/** The server certificate's key type and lifetime. */
async function certificate(t: ProbeTarget): Promise<ProbeResult[]> {
  const peer = await session(t, false, async (socket) => socket.getPeerX509Certificate());
  if (!peer) return [];
  const key = peer.publicKey;
  const details = key.asymmetricKeyDetails;
  const type =
    key.asymmetricKeyType === 'ec'
      ? `ECDSA ${details?.namedCurve ?? ''}`.trim()
      : key.asymmetricKeyType === 'rsa'
        ? `RSA ${details?.modulusLength ?? '?'}`
        : (key.asymmetricKeyType ?? 'unknown');
  const days = Math.round((Date.parse(peer.validTo) - Date.parse(peer.validFrom)) / 86_400_000);
  return [
    { kind: 'property', name: 'certificate type', accepted: true, detail: type },
    {
      kind: 'property',
      name: 'certificate lifetime',
      accepted: true,
      detail: `${days} days (until ${new Date(Date.parse(peer.validTo)).toISOString().slice(0, 10)})`,
    },
  ];
}

async function checkServer(t: ProbeTarget): Promise<ProbeResult[]> {
  const legacy = (c: string) => `${c}:@SECLEVEL=0`;
  const jobs: Array<() => Promise<ProbeResult>> = [];
  const others = (await legacySuites()).filter((s) => !MOZILLA_TLS12.includes(s.name));
  for (const [name, v] of VERSIONS) {
    jobs.push(async () => {
      const r = await probe(t, { min: v, max: v, ciphers: legacy('ALL') });
      return { kind: 'version', name, accepted: r.ok, detail: r.detail };
    });
  }
  for (const suite of MOZILLA_TLS12) {
    jobs.push(async () => {
      const r = await probe(t, { min: 'TLSv1.2', max: 'TLSv1.2', ciphers: legacy(suite) });
      return { kind: 'suite', name: suite, accepted: r.ok, detail: r.detail };
    });
  }
  // Every other suite, at the highest protocol it runs on (TLS 1.2 for most; TLS 1.0 for none, as
  // OpenSSL lists SSLv3-era suites as usable in TLS 1.2): tried from TLS 1.0 to 1.2.
  for (const { name } of others) {
    jobs.push(async () => {
      const r = await probe(t, { min: 'TLSv1', max: 'TLSv1.2', ciphers: legacy(name) });
      return { kind: 'suite', name, accepted: r.ok, detail: r.detail };
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
  const results = await pool(jobs, 4);
  results.push(await renegotiation(t), ...(await tickets(t)), ...(await certificate(t)));
  return results;
}

/** What keeps the server from meeting the profile; empty when it does. */
function profileProblems(results: ProbeResult[], profile: 'intermediate' | 'modern'): string[] {
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
  const property = (name: string) => results.find((r) => r.kind === 'property' && r.name === name);
  if (property('renegotiation')?.accepted) {
    problems.push('accepts client-initiated renegotiation (a CPU DoS: one full handshake per request)');
  }
  const type = property('certificate type')?.detail ?? '';
  if (/^ed25519$/i.test(type)) {
    problems.push(
      'serves an Ed25519 certificate: browsers and most clients cannot connect (Mozilla: ECDSA P-256 or RSA 2048)',
    );
  } else if (/^RSA (\d+)$/.test(type) && Number(/\d+/.exec(type)![0]) < 2048) {
    problems.push(`serves a ${type} certificate (Mozilla: at least RSA 2048)`);
  }
  const lifetime = Number(/^(\d+) days/.exec(property('certificate lifetime')?.detail ?? '')?.[1]);
  if (lifetime > MAX_LIFETIME_DAYS) {
    problems.push(
      `certificate valid for ${lifetime} days (Mozilla: at most ${MAX_LIFETIME_DAYS}, 90 recommended)`,
    );
  }
  return problems;
}

export function tlsCheckCommand(program: Command): void {
  program
    .command('tls-check')
    .description(
      'which TLS versions, suites (all OpenSSL knows) and curves a server accepts, whether it renegotiates and issues tickets, its certificate type and lifetime, and whether it meets a Mozilla profile',
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
            r.kind === 'property'
              ? r.accepted
                ? 'yes'
                : 'no'
              : r.accepted
                ? s.yellow('accepted')
                : 'refused',
            r.accepted || r.kind === 'property' ? (r.detail ?? '') : '',
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
