import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type TlsTransportOptions, tlsTransport } from '../src/index.js';
import { createCA, type DevCA, type DevCertificate, issueServerCert } from '../src/pki.js';
import { run, type Started, sClient, start } from './helpers.js';

let ca: DevCA;
let server: DevCertificate;
let dir: string;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  ca = await createCA();
  server = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });
  dir = await mkdtemp(join(tmpdir(), 'sock-tickets-'));
  await writeFile(join(dir, 'server.crt'), server.cert);
  await writeFile(join(dir, 'server.key'), server.key, { mode: 0o600 });
});

afterAll(() => rm(dir, { recursive: true, force: true }));

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(
  options: Partial<TlsTransportOptions> = {},
): Promise<Started & { transport: ReturnType<typeof tlsTransport> }> {
  const transport = tlsTransport({ cert: server.cert, key: server.key, ...options });
  const s = await start({ transport });
  cleanups.push(
    () => s.server.close({ drainMs: 100 }),
    () => transport.close(),
  );
  return { ...s, transport };
}

let sessions = 0;
/** One s_client connection; `sessOut` saves its session (ticket), `sessIn` offers a saved one. */
async function handshake(port: number, version: string, sess: { in?: string; out?: string } = {}) {
  const args = [version];
  if (sess.out) args.push('-sess_out', sess.out);
  if (sess.in) args.push('-sess_in', sess.in);
  const r = await sClient(port, args, 400);
  expect(r.connected).toBe(true);
  return /^Reused,/m.test(r.stdout) ? 'resumed' : 'full';
}

describe('session tickets', () => {
  for (const version of ['-tls1_3', '-tls1_2']) {
    it(`resume (${version}), survive one key rotation, not two`, async () => {
      const s = await serve();
      const file = join(dir, `s${sessions++}.pem`);
      expect(await handshake(s.port, version, { out: file })).toBe('full');
      expect(await handshake(s.port, version, { in: file })).toBe('resumed');
      s.transport.rotateTicketKeys(); // the ticket's key is now the previous one: still accepted
      expect(await handshake(s.port, version, { in: file })).toBe('resumed');
      s.transport.rotateTicketKeys(); // and now gone
      expect(await handshake(s.port, version, { in: file })).toBe('full');
    });
  }

  it('sessionTickets: false issues none: every connection is a full handshake', async () => {
    const s = await serve({ sessionTickets: false });
    for (const version of ['-tls1_3', '-tls1_2']) {
      const file = join(dir, `s${sessions++}.pem`);
      await handshake(s.port, version, { out: file });
      expect(await handshake(s.port, version, { in: file })).toBe('full');
    }
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${s.port}`, '-tls1_2'], 300);
    expect(r.stdout).not.toMatch(/TLS session ticket:/);
  });

  it('a rotation period under 1 s is a typed error', () => {
    expect(() =>
      tlsTransport({ cert: server.cert, key: server.key, sessionTickets: { rotate: 10 } }),
    ).toThrow(/at least 1 s/);
  });
});

describe('session tickets across node:cluster workers (real workers)', () => {
  const fixture = fileURLToPath(new URL('./fixtures/ticket-cluster.mjs', import.meta.url));

  async function cluster(shared: boolean): Promise<number> {
    const child = spawn(
      process.execPath,
      [fixture, join(dir, 'server.crt'), join(dir, 'server.key'), shared ? '1' : '0'],
      { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanups.push(() => {
      child.kill('SIGTERM');
    });
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      for await (const line of lines) {
        const m = /^port (\d+)$/.exec(line);
        if (m) return Number(m[1]);
      }
    } finally {
      clearTimeout(timer);
    }
    throw new Error('the cluster never listened');
  }

  /** Resume the first connection's session 6 times; which workers served, and how many resumed. */
  async function roundRobin(port: number): Promise<{ workers: Set<string>; resumed: number }> {
    const file = join(dir, `c${sessions++}.pem`);
    const first = await sClient(port, ['-tls1_3', '-sess_out', file], 400);
    const workers = new Set([/worker (\d+)/.exec(first.stdout)?.[1] ?? '?']);
    let resumed = 0;
    for (let i = 0; i < 6; i++) {
      const r = await sClient(port, ['-tls1_3', '-sess_in', file], 400);
      workers.add(/worker (\d+)/.exec(r.stdout)?.[1] ?? '?');
      if (/^Reused,/m.test(r.stdout)) resumed++;
    }
    return { workers, resumed };
  }

  it('with shareTicketKeys() in the primary, a ticket from one worker resumes on the other', async () => {
    const { workers, resumed } = await roundRobin(await cluster(true));
    expect([...workers].sort()).toEqual(['1', '2']);
    expect(resumed).toBe(6);
  }, 60_000);

  it('without sharing, the other worker cannot resume it (the test can fail)', async () => {
    const { workers, resumed } = await roundRobin(await cluster(false));
    expect([...workers].sort()).toEqual(['1', '2']);
    expect(resumed).toBeLessThan(6);
  }, 60_000);
});
