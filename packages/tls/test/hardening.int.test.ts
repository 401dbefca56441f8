import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { connect, type Plugin, SockError, type Violation } from '@sock/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type TlsTransportOptions, tlsClient, tlsTransport } from '../src/index.js';
import { createCA, type DevCA, type DevCertificate, issueClientCert, issueServerCert } from '../src/pki.js';
import { liveSClient, type Started, sClient, start } from './helpers.js';

let ca: DevCA;
let server: DevCertificate;
let client: DevCertificate;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  ca = await createCA();
  server = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });
  client = await issueClientCert(ca, { commonName: 'worker' });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A plug-in that records what guards would see: every violation on every connection. */
function violationLog(): { plugin: Plugin; seen: Violation[] } {
  const seen: Violation[] = [];
  return { seen, plugin: { name: 'log', violation: (_conn, v) => void seen.push(v) } };
}

async function serve(
  options: Partial<TlsTransportOptions> = {},
): Promise<Started & { transport: ReturnType<typeof tlsTransport>; seen: Violation[] }> {
  const transport = tlsTransport({ cert: server.cert, key: server.key, ...options });
  const log = violationLog();
  const s = await start({ transport, plugins: [log.plugin] });
  cleanups.push(
    () => s.server.close({ drainMs: 100 }),
    () => transport.close(),
  );
  return { ...s, transport, seen: log.seen };
}

/** Poll a condition the server reaches asynchronously (a close, a counter), failing after `ms`. */
async function until(what: string, check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`never happened within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function live(port: number, args: readonly string[]) {
  const c = liveSClient(port, args);
  cleanups.push(() => c.kill());
  return c;
}

describe('renegotiation', () => {
  it('refuses a TLS 1.2 renegotiation (openssl s_client R), closes the connection and reports tls-renegotiation to plug-ins', async () => {
    const s = await serve();
    const c = live(s.port, ['-tls1_2']);
    await c.waitFor(/Cipher is ECDHE/);
    c.line('R');
    const reject = await s.waitReject('tls-renegotiation');
    expect(reject.closed).toBe(true);
    // The connection is closed under the client: no second handshake was served.
    expect(await c.exited()).not.toBeNull();
    expect(c.output()).not.toMatch(/RENEGOTIATING[\s\S]*Cipher is/);
    expect(s.seen.map((v) => [v.reason, v.plugin, v.closed])).toContainEqual([
      'tls-renegotiation',
      'tls',
      true,
    ]);
    expect(s.transport.stats().renegotiationAttempts).toBe(1);
    await until('the server lets go of the connection', () => s.server.connections.size === 0);
  });

  it('a second R never gets a second handshake: the first attempt already closed the connection', async () => {
    const s = await serve();
    const c = live(s.port, ['-tls1_2']);
    await c.waitFor(/Cipher is ECDHE/);
    c.line('R');
    await s.waitReject('tls-renegotiation');
    c.line('R');
    await c.exited();
    expect(c.output().match(/RENEGOTIATING/g)?.length ?? 0).toBeLessThanOrEqual(2);
    expect(s.transport.stats().renegotiationAttempts).toBe(1);
  });
});

describe('post-handshake TLS errors', () => {
  it('closes the connection with tls-error when a forged record arrives after the handshake', async () => {
    const s = await serve();
    const tcp = netConnect({ host: '127.0.0.1', port: s.port });
    cleanups.push(() => tcp.destroy());
    const tls = tlsConnect({ socket: tcp, ca: ca.cert, servername: 'localhost' });
    tls.on('error', () => {});
    await once(tls, 'secureConnect');
    // Wait until the server has finished its handshake (a bad record before that is a handshake
    // failure), then write a record no key encrypted: bad_record_mac.
    await until('the server finishes the handshake', () => s.transport.stats().handshakes === 1);
    const tcpClosed = once(tcp, 'close');
    tcp.write(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x30]), Buffer.alloc(0x30, 0x41)]));
    const reject = await s.waitReject('tls-error', 2000);
    expect(reject.closed).toBe(true);
    expect(reject.message).toMatch(/decryption failed|bad record mac/i);
    // The server let go of the TCP connection (before the fix it stayed open, holding its slot).
    await tcpClosed;
    await until('the server lets go of the connection', () => s.server.connections.size === 0);
    expect(s.seen.map((v) => v.reason)).toContain('tls-error');
  });
});

describe('refused clients are told why', () => {
  for (const [flag, alert, version] of [
    ['-tls1_3', /alert certificate required/, 'TLSv1.3'],
    ['-tls1_2', /alert handshake failure/, 'TLSv1.2'],
  ] as const) {
    it(`sends the alert for a missing client certificate on ${version} (openssl s_client sees it)`, async () => {
      const s = await serve({ ca: ca.cert, clientAuth: 'require' });
      const r = await sClient(s.port, [flag], 500);
      expect(r.stderr + r.stdout).toMatch(alert);
      const reject = await s.waitReject('tls-no-client-cert');
      expect(reject.closed).toBe(true);
    });
  }

  it('the library client turns the certificate_required alert into a typed error (TLS 1.3)', async () => {
    const s = await serve({ ca: ca.cert, clientAuth: 'require' });
    let error: unknown;
    try {
      const conn = await connect({ port: s.port, transport: tlsClient({ ca: ca.cert }) });
      cleanups.push(() => conn.destroy());
      // TLS 1.3: the client finishes first and reads the refusal afterwards.
      const info = await conn.closed;
      error = info.error;
    } catch (err) {
      error = err;
    }
    expect(SockError.isInstance(error)).toBe(true);
    expect((error as SockError).reason).toBe('tls-no-client-cert');
  });

  it('a client with a certificate is still served', async () => {
    const s = await serve({ ca: ca.cert, clientAuth: 'require' });
    const conn = await connect({
      port: s.port,
      transport: tlsClient({ ca: ca.cert, cert: client.cert, key: client.key }),
    });
    cleanups.push(() => conn.close());
    await conn.send(Buffer.from('ping'));
    const echo = await conn[Symbol.asyncIterator]().next();
    expect(Buffer.from(echo.value as Uint8Array).toString()).toBe('ping');
    expect(s.transport.stats().handshakes).toBe(1);
  });
});

describe('ALPN', () => {
  it('accepts a client offering no ALPN by default', async () => {
    const s = await serve({ alpn: ['h2'] });
    const r = await sClient(s.port, [], 200);
    expect(r.connected).toBe(true);
  });

  it('alpnRequired refuses a client offering no ALPN, serves one offering it, and refuses a mismatch with the alert', async () => {
    const s = await serve({ alpn: ['h2'], alpnRequired: true });
    const none = await sClient(s.port, [], 300);
    await s.waitReject('tls-alpn-mismatch');
    expect(none.stdout).toMatch(/No ALPN negotiated/);
    const ok = await sClient(s.port, ['-alpn', 'h2'], 300);
    expect(ok.stdout).toMatch(/ALPN protocol: h2/);
    const wrong = await sClient(s.port, ['-alpn', 'http/1.1'], 300);
    expect(wrong.stderr).toMatch(/no application protocol/);
    expect(s.rejects().filter((e) => e.reason === 'tls-alpn-mismatch').length).toBe(2);
  });

  it('alpnRequired without alpn is a typed error', () => {
    expect(() => tlsTransport({ cert: server.cert, key: server.key, alpnRequired: true })).toThrow(
      /alpnRequired needs alpn/,
    );
  });
});

describe('stats()', () => {
  it('counts handshakes, failures and the certificates served, without addresses', async () => {
    const s = await serve();
    const ok = await sClient(s.port, [], 100);
    expect(ok.connected).toBe(true);
    await sClient(s.port, ['-tls1_1'], 100);
    await s.waitReject();
    const stats = s.transport.stats();
    expect(stats.handshakes).toBe(1);
    expect(stats.handshakeFailures).toBe(1);
    expect(stats.reloads).toBe(0);
    expect(stats.reloadFailures).toBe(0);
    expect(stats.renegotiationAttempts).toBe(0);
    expect(stats.certificates).toEqual([{ subject: 'CN=localhost', notAfter: expect.any(Number) as number }]);
    expect(JSON.stringify(stats)).not.toMatch(/127\.0\.0\.1/);
  });
});

describe('Ed25519 server certificates', () => {
  it('warn at start-up: browsers cannot connect to them', async () => {
    const ed = await issueServerCert(ca, { names: ['localhost'], keyType: 'ed25519' });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      tlsTransport({ cert: server.cert, key: server.key }).close();
      tlsTransport({ cert: ed.cert, key: ed.key }).close();
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => (w as Error & { code?: string }).code)).toEqual([
      'SOCK_TLS_ED25519_SERVER_CERT',
    ]);
    expect(warnings[0]?.message).toMatch(/browsers and most TLS clients cannot connect/);
  });
});
