import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as netServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { built, echoes, listen, peer, run, SOCK, tempDir, until } from './helpers.js';

beforeAll(() => {
  expect(built(), 'build the CLI first: pnpm build').toBe(true);
});

const opened: Server[] = [];
const accepted = new Set<Socket>();
afterEach(async () => {
  for (const s of accepted) s.destroy();
  accepted.clear();
  for (const s of opened.splice(0)) await new Promise((r) => s.close(r));
});

/** A plain TCP server that accepts and never answers (holds the port for port-in-use tests). */
async function silentServer(host = '127.0.0.1'): Promise<{ port: number }> {
  const server = netServer((socket) => {
    accepted.add(socket);
    socket.on('error', () => {});
  });
  opened.push(server);
  server.listen(0, host);
  await once(server, 'listening');
  return server.address() as { port: number };
}

/** A port nothing listens on: bound once, then closed. */
async function closedPort(host = '127.0.0.1'): Promise<number> {
  const s = netServer();
  s.listen(0, host);
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * `sock <args> | head`, made deterministic: the reader has already exited when sock writes, as `head -1`
 * has after its line, so every write meets a closed pipe (EPIPE).
 */
async function toClosedPipe(args: string[]): Promise<{ code: number | null; stderr: string }> {
  // `true` reads nothing and exits at once; node needs far longer to start than it does.
  const reader = spawn('true', [], { stdio: ['pipe', 'ignore', 'ignore'] });
  reader.stdin.on('error', () => {});
  const sock = spawn(process.execPath, [SOCK, ...args], { stdio: ['ignore', reader.stdin, 'pipe'] });
  reader.stdin.destroy(); // our copy of the write end: only sock holds it now
  await once(reader, 'exit');
  let stderr = '';
  sock.stderr!.on('data', (d: Buffer) => {
    stderr += d;
  });
  const [code] = (await once(sock, 'close')) as [number | null];
  return { code, stderr };
}

describe('help, version and closed pipes', () => {
  it('sock help and sock help <cmd> exit 0; sock alone is a usage error', async () => {
    expect((await run(['help'])).code).toBe(0);
    const listenHelp = await run(['help', 'listen']);
    expect(listenHelp.code).toBe(0);
    expect(listenHelp.stdout).toContain('Usage: sock listen');
    expect((await run([])).code).toBe(2);
  });

  it('--version prints the version of the package.json', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect((await run(['--version'])).stdout.trim()).toBe(version);
  });

  it('a closed stdout ends quietly: --help | head -1 and fw ban … | head -1', async () => {
    const dir = tempDir();
    for (const args of [
      ['listen', '--help'],
      ['fw', 'ban', '192.0.2.1', '--backend', 'plan', '--state', join(dir, 'fw.json')],
    ]) {
      const r = await toClosedPipe(args);
      expect(r.stderr, args.join(' ')).not.toContain('EPIPE');
      expect(r.code, args.join(' ')).toBe(0);
    }
  });
});

describe('errors in the words the user typed', () => {
  it('names --force-broad, --deny, --days and prints --ttl as typed', async () => {
    const dir = tempDir();
    const state = ['--backend', 'plan', '--state', join(dir, 'fw.json')];
    const broad = await run(['fw', 'ban', '10.0.0.0/4', ...state]);
    expect(broad.code).toBe(2);
    expect(broad.stderr).toContain('--force-broad');
    expect(broad.stderr).not.toContain("force: 'broad-prefix'");
    const deny = await run(['listen', '0', '--deny', '10.0.0.0/8,10.0.0.0/33']);
    expect(deny.code).toBe(2);
    expect(deny.stderr).toBe('sock: --deny: not an IP address or CIDR: "10.0.0.0/33"\n');
    const ttl = await run(['fw', 'ban', '192.0.2.1', '--ttl', '30d', ...state]);
    expect(ttl.code).toBe(2);
    expect(ttl.stderr).toContain('--ttl 30d');
    expect(ttl.stderr).not.toMatch(/2592000000/);
    expect((await run(['cert', 'init', '--dir', join(dir, 'pki')])).code).toBe(0);
    const days = await run([
      'cert',
      'issue',
      '--dir',
      join(dir, 'pki'),
      '--server',
      'localhost',
      '--days',
      '9999',
    ]);
    expect(days.code).toBe(2);
    expect(days.stderr).toContain('--days');
    expect(days.stderr).not.toContain('validityDays');
  });

  it('a directory as --tls-cert is the same usage error as a missing file', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'certs'));
    writeFileSync(join(dir, 'k.pem'), 'x');
    const asDir = await run([
      'listen',
      '0',
      '--tls',
      '--tls-cert',
      join(dir, 'certs'),
      '--tls-key',
      join(dir, 'k.pem'),
    ]);
    const missing = await run([
      'listen',
      '0',
      '--tls',
      '--tls-cert',
      join(dir, 'nope'),
      '--tls-key',
      join(dir, 'k.pem'),
    ]);
    expect(asDir.code).toBe(2);
    expect(missing.code).toBe(2);
    expect(asDir.stderr).toContain('--tls-cert: not a file');
    const client = await run(['connect', 'localhost', '1', '--tls', '--tls-ca', join(dir, 'certs')]);
    expect(client.code).toBe(2);
  });

  it('a port in use is reported once, IPv6 endpoints as [::1]:port', async () => {
    const { port } = await silentServer('::1');
    const r = await run(['listen', '::1', String(port)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sock: listen: [::1]:${port} is already in use (EADDRINUSE): pick another port, or stop what listens there\n`,
    );
    const closed = await closedPort('::1');
    const c = await run(['connect', '::1', String(closed)]);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain(`[::1]:${closed}: connection refused`);
  });

  it('tls-check on a closed port says "connection refused" once', async () => {
    const closed = await closedPort();
    const r = await run(['tls-check', '127.0.0.1', String(closed)]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`sock: tls-check 127.0.0.1:${closed}: connection refused\n`);
  });
});

describe('ncat fidelity', () => {
  it('-w: a bare number is seconds', async () => {
    // A TLS connect to a server that never answers the ClientHello: -w bounds the handshake. Measured on
    // the server, from accept to the client giving up (process start-up does not count).
    let held = -1;
    const server = netServer((socket) => {
      const t0 = Date.now();
      accepted.add(socket);
      socket.on('error', () => {});
      socket.resume(); // read (and drop) the ClientHello, so the client's close is seen
      socket.on('close', () => {
        held = Date.now() - t0;
      });
    });
    opened.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const r = await run(['connect', '127.0.0.1', String(port), '--tls', '--insecure', '-w', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/time/i);
    await until(() => held >= 0, 5000, 'the client closed');
    expect(held).toBeGreaterThanOrEqual(900);
  });

  it('-i in listen and connect: a bare number is seconds', async () => {
    const server = await listen(['0', '-i', '1', '--log', 'json']);
    const p = await peer(server.port);
    const lived = await p.closed;
    expect(lived).toBeGreaterThanOrEqual(900);
    const quiet = await silentServer();
    const child = spawn(process.execPath, [SOCK, 'connect', '127.0.0.1', String(quiet.port), '-i', '1'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const t0 = Date.now();
    const [code] = (await once(child, 'close')) as [number];
    expect(code).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(stderr).toContain('idle');
  });

  it('-l, -k, -p, -s, -4, -6 and -v', async () => {
    const a = await listen(['-l', '-k', '-s', '127.0.0.1', '-p', '0', '-4']);
    expect(a.host).toBe('127.0.0.1');
    const six = await listen(['-6', '0']);
    expect(six.host).toBe('::1');
    expect((await run(['listen', '-4', '::1', '0'])).code).toBe(2);
    // `sock -l …` is `sock listen …`, as `ncat -l` is.
    const child = spawn(process.execPath, [SOCK, '-l', '-p', '0', '-v'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [first] = (await once(child.stdout, 'data')) as [Buffer];
    expect(String(first)).toMatch(/^listening on 127\.0\.0\.1:\d+/);
    child.kill('SIGTERM');
    await once(child, 'close');
    const r = await run(['connect', '-4', '-v', '-s', '127.0.0.1', 'localhost', String(a.port)], {
      input: 'hi\n',
    });
    expect(r.stdout).toBe('hi\n');
    expect(r.stderr).toContain(`sock: connected to 127.0.0.1:${a.port}`);
    expect((await run(['connect', '-6', '127.0.0.1', String(a.port)])).code).toBe(2);
  });

  it('--send-only discards what comes back; --recv-only does not read stdin', async () => {
    const server = await listen(['0']);
    const send = await run(['connect', '127.0.0.1', String(server.port), '--send-only'], { input: 'a\nb\n' });
    expect(send.code).toBe(0);
    expect(send.stdout).toBe('');
    const chat = await listen(['0', '--chat']);
    const watcher = await peer(chat.port);
    await until(() => watcher.received().includes('already connected'), 3000, 'greeting');
    const child = spawn(process.execPath, [SOCK, 'connect', '127.0.0.1', String(chat.port), '--recv-only'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    child.stdin.write('must not be sent\n');
    await until(() => out.includes('already connected'), 3000, 'recv-only greeting');
    watcher.socket.write('to the reader\n');
    await until(() => out.includes('to the reader'), 3000, 'recv-only receives');
    expect(watcher.received()).not.toContain('must not be sent');
    child.kill('SIGTERM');
    watcher.socket.destroy();
  });

  it('a last line without a newline is still sent', async () => {
    const server = await listen(['0']);
    const r = await run(['connect', '127.0.0.1', String(server.port)], { input: 'first\nlast' });
    expect(r.stdout).toBe('first\nlast\n');
  });

  it('--allow takes a comma list', async () => {
    const server = await listen(['0', '--allow', '10.0.0.0/8, 127.0.0.1']);
    expect(server.line).toContain('allow 10.0.0.0/8,127.0.0.1');
    const r = await run(['connect', '127.0.0.1', String(server.port)], { input: 'in\n' });
    expect(r.stdout).toBe('in\n');
  });

  it('connect takes --ssl-trustfile, --ssl-cert, --ssl-key and --ssl-verify (implying --ssl)', async () => {
    const dir = tempDir();
    const pki = join(dir, 'pki');
    expect((await run(['cert', 'init', '--dir', pki])).code).toBe(0);
    expect((await run(['cert', 'issue', '--dir', pki, '--server', 'localhost'])).code).toBe(0);
    expect((await run(['cert', 'issue', '--dir', pki, '--client', 'alice'])).code).toBe(0);
    const f = (n: string) => join(pki, n);
    const server = await listen([
      '0',
      '--ssl',
      '--ssl-cert',
      f('server.crt'),
      '--ssl-key',
      f('server.key'),
      '--ssl-trustfile',
      f('ca.crt'),
      '--require-client-cert',
    ]);
    const args = [
      'connect',
      'localhost',
      String(server.port),
      '--ssl-verify',
      '--ssl-trustfile',
      f('ca.crt'),
    ];
    const ok = await run([...args, '--ssl-cert', f('alice.crt'), '--ssl-key', f('alice.key')], {
      input: 'tls\n',
    });
    expect(ok.stdout).toBe('tls\n');
    expect(ok.code).toBe(0);
    const wrongCa = await run(['connect', 'localhost', String(server.port), '--ssl-verify'], {
      input: 'x\n',
    });
    expect(wrongCa.code).toBe(1);
  });

  it('a listener without a limit takes at most 100 connections at once', async () => {
    const server = await listen(['0', '--log', 'json']);
    expect(server.line).toContain('max-conns 100 (default)');
    const peers: Awaited<ReturnType<typeof peer>>[] = [];
    for (let i = 0; i < 101; i++) peers.push(await peer(server.port));
    await until(() => peers.filter((p) => p.isClosed()).length >= 1, 5000, 'the 101st closed');
    expect(peers.filter((p) => p.isClosed()).length).toBe(1);
    expect(peers[100]!.isClosed()).toBe(true);
    // One closes: a place is free again.
    peers[0]!.socket.destroy();
    await until(async () => (await echoes(server.port)) === true, 5000, 'a free place');
    for (const p of peers) p.socket.destroy();
    const raised = await listen(['0', '-m', '200']);
    expect(raised.line).toContain('max-conns 200');
    expect(raised.line).not.toContain('(default)');
  });

  it('--chat escapes control characters and escape sequences, and announces joins and leaves', async () => {
    const server = await listen(['0', '--chat']);
    const alice = await peer(server.port);
    await until(() => alice.received().includes('already connected: nobody.'), 3000, 'greeting');
    const mallory = await peer(server.port);
    await until(() => alice.received().includes('is connected as <user'), 3000, 'join');
    expect(mallory.received()).toMatch(/already connected: <user\d+>\./);
    mallory.socket.write('hi \u001b[2J\u001b]52;c;cHduZWQ=\u0007 \u202eevil\r\n');
    await until(() => alice.received().includes('evil'), 3000, 'message');
    mallory.socket.end();
    await until(() => alice.received().includes('is disconnected.'), 3000, 'leave');
    const text = alice.received();
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\u202e]/u);
    expect(text).toContain('hi \\x1b[2J\\x1b]52;c;cHduZWQ=\\x07 \\u{202e}evil\\x0d');
    alice.socket.destroy();
  });
});
