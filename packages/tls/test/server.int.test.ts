import { once } from 'node:events';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { connect, type Plugin, raw } from '@sock/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tlsClient, tlsTransport } from '../src/index.js';
import { createCA, type DevCA, type DevCertificate, issueServerCert } from '../src/pki.js';
import { delay, rawTcp, type Started, sClient, start } from './helpers.js';

let ca: DevCA;
let ecdsa: DevCertificate;
let rsa: DevCertificate;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  ca = await createCA();
  ecdsa = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });
  rsa = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'], keyType: 'rsa2048' });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(
  options: Parameters<typeof tlsTransport>[0],
  extra: Parameters<typeof start>[0] = {},
): Promise<Started> {
  const transport = tlsTransport(options);
  const s = await start({ transport, ...extra });
  cleanups.push(
    () => s.server.close({ drainMs: 100 }),
    () => transport.close(),
  );
  return s;
}

describe('TLS server transport', () => {
  it('runs core connections over TLS: echo with the verifying client', async () => {
    const s = await serve({ cert: ecdsa.cert, key: ecdsa.key });
    const client = await connect({ port: s.port, transport: tlsClient({ ca: ca.cert }) });
    cleanups.push(() => client.close());
    expect((client.socket as TLSSocket).getProtocol()).toBe('TLSv1.3');
    await client.send(Buffer.from('hello'));
    const it = client[Symbol.asyncIterator]();
    expect((await it.next()).value?.toString()).toBe('hello');
    expect(s.rejects()).toEqual([]);
  });

  it('serves TLS 1.2 only with the six Mozilla intermediate suites', async () => {
    const s = await serve({ cert: ecdsa.cert, key: ecdsa.key });
    const ok12 = await sClient(s.port, ['-tls1_2']);
    expect(ok12.connected).toBe(true);
    expect(ok12.protocol).toBe('TLSv1.2');
    expect(ok12.cipher).toBe('ECDHE-ECDSA-AES256-GCM-SHA384');
    const chacha = await sClient(s.port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305']);
    expect(chacha.cipher).toBe('ECDHE-ECDSA-CHACHA20-POLY1305');
    const ok13 = await sClient(s.port, ['-tls1_3']);
    expect(ok13.protocol).toBe('TLSv1.3');
  });

  it('refuses TLS 1.0 and 1.1 (and accepts them only under insecureAllowLegacyProtocols)', async () => {
    const s = await serve({ cert: ecdsa.cert, key: ecdsa.key });
    for (const flag of ['-tls1', '-tls1_1']) {
      const r = await sClient(s.port, [flag, '-cipher', 'DEFAULT:@SECLEVEL=0']);
      expect(r.connected, flag).toBe(false);
    }
    await s.waitReject('tls-protocol-version');
    expect(s.rejects().filter((e) => e.reason === 'tls-protocol-version').length).toBe(2);
    expect(s.server.stats().rejected['tls-protocol-version']).toBe(2);
    // The same client does get TLS 1.0 where it is explicitly allowed: the refusal above is ours.
    const legacy = await serve({ cert: ecdsa.cert, key: ecdsa.key, insecureAllowLegacyProtocols: true });
    const r = await sClient(legacy.port, ['-tls1', '-cipher', 'DEFAULT:@SECLEVEL=0']);
    expect(r.protocol).toBe('TLSv1');
  });

  it('refuses CBC and static-RSA suites that Node itself would negotiate', async () => {
    const node = createTlsServer({ cert: rsa.cert, key: rsa.key }, (socket) => socket.end());
    node.listen(0, '127.0.0.1');
    await once(node, 'listening');
    cleanups.push(() => new Promise((r) => node.close(r)));
    const nodePort = (node.address() as { port: number }).port;
    const s = await serve({ cert: rsa.cert, key: rsa.key });
    for (const cipher of ['ECDHE-RSA-AES128-SHA', 'AES128-GCM-SHA256', 'AES128-SHA']) {
      const control = await sClient(nodePort, ['-tls1_2', '-cipher', cipher]);
      expect(control.cipher, `node:tls defaults accept ${cipher}`).toBe(cipher);
      const ours = await sClient(s.port, ['-tls1_2', '-cipher', cipher]);
      expect(ours.connected, cipher).toBe(false);
    }
    const ecdsaServer = await serve({ cert: ecdsa.cert, key: ecdsa.key });
    expect(
      (await sClient(ecdsaServer.port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA'])).connected,
    ).toBe(false);
    await s.waitReject('tls-no-shared-cipher');
    expect(s.server.stats().rejected['tls-no-shared-cipher']).toBe(3);
    // With the RSA certificate our server negotiates the ECDHE-RSA GCM suite.
    expect((await sClient(s.port, ['-tls1_2'])).cipher).toBe('ECDHE-RSA-AES256-GCM-SHA384');
  });

  it('offers only X25519, P-256 and P-384', async () => {
    const s = await serve({ cert: ecdsa.cert, key: ecdsa.key });
    expect((await sClient(s.port, ['-tls1_3', '-groups', 'P-521'])).connected).toBe(false);
    expect((await sClient(s.port, ['-tls1_2', '-groups', 'P-521'])).connected).toBe(false);
    for (const group of ['X25519', 'P-256', 'P-384']) {
      expect((await sClient(s.port, ['-tls1_3', '-groups', group])).connected, group).toBe(true);
    }
  });

  it('modern profile: TLS 1.3 only', async () => {
    const s = await serve({ cert: ecdsa.cert, key: ecdsa.key, profile: 'modern' });
    expect((await sClient(s.port, ['-tls1_2'])).connected).toBe(false);
    expect((await sClient(s.port, ['-tls1_3'])).protocol).toBe('TLSv1.3');
    await s.waitReject('tls-protocol-version');
  });

  it('cuts a TCP client that never finishes the handshake, with its reason', async () => {
    const s = await serve({ cert: ecdsa.cert, key: ecdsa.key, handshakeTimeout: '300ms' });
    const socket = await rawTcp(s.port);
    cleanups.push(() => socket.destroy());
    socket.on('error', () => {});
    const started = Date.now();
    await once(socket, 'close');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(3000);
    const e = await s.waitReject('tls-handshake-timeout');
    expect(e.stage).toBe('handshake');
    expect(e.plugin).toBe('tls');
    expect(s.server.stats().rejected['tls-handshake-timeout']).toBe(1);
  });

  it('lets the server close while a handshake is pending', async () => {
    const transport = tlsTransport({ cert: ecdsa.cert, key: ecdsa.key });
    const s = await start({ transport });
    const socket = await rawTcp(s.port);
    cleanups.push(() => socket.destroy());
    socket.on('error', () => {});
    const closed = once(socket, 'close');
    const started = Date.now();
    await s.server.close({ drainMs: 100 });
    await closed;
    expect(Date.now() - started).toBeLessThan(2000);
    expect(s.server.stats().open).toBe(0);
  });

  it('reports plain-text clients as tls-not-tls', async () => {
    const s = await serve({ cert: ecdsa.cert, key: ecdsa.key });
    const socket = await rawTcp(s.port);
    cleanups.push(() => socket.destroy());
    socket.on('error', () => {});
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(socket, 'close');
    await s.waitReject('tls-not-tls');
  });

  it('keeps bytes a preface plug-in unshifted back (PROXY protocol before TLS)', async () => {
    // A tiny preface: one line "PEER <ip> <port>\n", consumed; the bytes after it (the start of the
    // ClientHello) are unshifted back, as a PROXY protocol plug-in does.
    let unshifted = 0;
    const preface: Plugin = {
      name: 'fake-proxy',
      preface(socket) {
        return new Promise((resolve) => {
          let buf = Buffer.alloc(0);
          const onData = (chunk: Buffer) => {
            buf = Buffer.concat([buf, chunk]);
            const nl = buf.indexOf(10);
            // Wait until TLS bytes follow the line, so the unshift path is what this test exercises.
            if (nl === -1 || buf.length === nl + 1) return;
            socket.off('data', onData);
            socket.pause();
            const rest = buf.subarray(nl + 1);
            unshifted = rest.length;
            socket.unshift(rest);
            const [, address, port] = buf.subarray(0, nl).toString().split(' ');
            resolve({ address: address!, port: Number(port) });
          };
          socket.on('data', onData);
          socket.resume();
        });
      },
    };
    let seen = '';
    const s = await serve(
      { cert: ecdsa.cert, key: ecdsa.key },
      {
        plugins: [preface],
        framing: raw(),
        async handler(conn) {
          seen = conn.remoteAddress;
          for await (const m of conn) await conn.send(m);
        },
      },
    );
    const tcp = await rawTcp(s.port);
    cleanups.push(() => tcp.destroy());
    tcp.write('PEER 203.0.113.9 4000\n');
    const secure = tlsConnect({ socket: tcp, ca: ca.cert, servername: 'localhost' });
    cleanups.push(() => secure.destroy());
    await once(secure, 'secureConnect');
    secure.write('ping');
    const [echo] = (await once(secure, 'data')) as [Buffer];
    expect(echo.toString()).toBe('ping');
    expect(seen).toBe('203.0.113.9');
    expect(unshifted).toBeGreaterThan(0);
    expect(s.rejects()).toEqual([]);
  });

  it('negotiates ALPN and refuses a client with no protocol in common', async () => {
    const s = await serve({ cert: ecdsa.cert, key: ecdsa.key, alpn: ['sock/1', 'h2'] });
    const client = await connect({ port: s.port, transport: tlsClient({ ca: ca.cert, alpn: ['sock/1'] }) });
    cleanups.push(() => client.close());
    expect((client.socket as TLSSocket).alpnProtocol).toBe('sock/1');
    await expect(
      connect({ port: s.port, transport: tlsClient({ ca: ca.cert, alpn: ['other'] }) }),
    ).rejects.toThrow();
    await s.waitReject('tls-alpn-mismatch');
  });

  it('picks a certificate by SNI, exact or wildcard, with the default as fallback', async () => {
    const api = await issueServerCert(ca, { names: ['api.test'] });
    const wild = await issueServerCert(ca, { names: ['*.svc.test'] });
    const s = await serve({
      cert: ecdsa.cert,
      key: ecdsa.key,
      sni: { 'api.test': api, '*.svc.test': wild },
    });
    const names = async (servername: string) => {
      const c = await connect({
        host: '127.0.0.1',
        port: s.port,
        transport: tlsClient({ ca: ca.cert, servername }),
      });
      const subject = (c.socket as TLSSocket).getPeerX509Certificate()?.subject;
      await c.close();
      return subject;
    };
    expect(await names('api.test')).toBe('CN=api.test');
    expect(await names('db.svc.test')).toBe('CN=*.svc.test');
    expect(await names('localhost')).toBe('CN=localhost');
    await expect(names('a.b.svc.test')).rejects.toMatchObject({ reason: 'tls-hostname-mismatch' });
  });

  it('leaves the connection alone once the handler has it', async () => {
    const s = await serve({ cert: ecdsa.cert, key: ecdsa.key, handshakeTimeout: 200 });
    const client = await connect({ port: s.port, transport: tlsClient({ ca: ca.cert }) });
    cleanups.push(() => client.close());
    await delay(400);
    await client.send(Buffer.from('still here'));
    const it = client[Symbol.asyncIterator]();
    expect((await it.next()).value?.toString()).toBe('still here');
  });

  it('refuses bad material at creation', async () => {
    const other = await issueServerCert(ca, { names: ['localhost'] });
    expect(() => tlsTransport({ cert: ecdsa.cert, key: other.key })).toThrow(/does not match/);
    expect(() => tlsTransport({ cert: ecdsa.cert.slice(0, 200), key: ecdsa.key })).toThrow(
      /truncated|no complete/,
    );
    expect(() => tlsTransport({ cert: '/etc/tls/cert.pem', key: ecdsa.key })).toThrow(/pass \{ path/);
    expect(() => tlsTransport({ cert: ecdsa.cert, key: ecdsa.key, clientAuth: 'require' })).toThrow(
      /needs `ca`/,
    );
    expect(() => tlsTransport({ cert: ecdsa.cert, key: ecdsa.key, reload: true })).toThrow(
      /give them as \{ path \}/,
    );
    const expired = await issueServerCert(ca, {
      names: ['localhost'],
      notBefore: new Date(Date.now() - 5 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    expect(() => tlsTransport(expired)).toThrow(/expired/);
  });
});
