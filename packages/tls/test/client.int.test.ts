import { once } from 'node:events';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { connect, SockErrorCode } from '@sock/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spkiPin, tlsClient, tlsTransport } from '../src/index.js';
import { createCA, type DevCA, type DevCertificate, issueServerCert } from '../src/pki.js';
import { resetWarnings } from '../src/warn.js';
import { start } from './helpers.js';

let ca: DevCA;
let otherCa: DevCA;
let server: DevCertificate;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  [ca, otherCa] = await Promise.all([createCA(), createCA({ commonName: 'Other CA' })]);
  server = await issueServerCert(ca, {
    names: ['localhost', '127.0.0.1', 'spiffe://example.org/ns/prod/sa/api'],
  });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(cert: DevCertificate = server): Promise<number> {
  const transport = tlsTransport({ cert: cert.cert, key: cert.key });
  const s = await start({ transport });
  cleanups.push(() => s.server.close({ drainMs: 100 }));
  return s.port;
}

async function dial(port: number, options: Parameters<typeof tlsClient>[0], host = '127.0.0.1') {
  const conn = await connect({ host, port, transport: tlsClient(options), timeoutMs: 5000 });
  cleanups.push(() => conn.close());
  return conn;
}

function warnings(): { list: Error[]; stop: () => void } {
  const list: Error[] = [];
  const on = (w: Error) => list.push(w);
  process.on('warning', on);
  return { list, stop: () => process.off('warning', on) };
}

describe('TLS client transport', () => {
  it('verifies the server against ca and refuses an unknown CA with its reason', async () => {
    const port = await serve();
    await dial(port, { ca: ca.cert });
    await expect(dial(port, { ca: otherCa.cert })).rejects.toMatchObject({
      code: SockErrorCode.REJECTED,
      reason: 'tls-unknown-ca',
    });
  });

  it('checks the host name, and IP literals against IP SANs without sending SNI', async () => {
    let sni: string | false | undefined;
    const node = createTlsServer({ cert: server.cert, key: server.key }, (s) => {
      sni = (s as TLSSocket & { servername?: string | false }).servername;
      s.end();
    });
    node.listen(0, '127.0.0.1');
    await once(node, 'listening');
    cleanups.push(() => new Promise((r) => node.close(r)));
    const port = (node.address() as { port: number }).port;
    const seen = () => once(node, 'secureConnection');
    let accepted = seen();
    await dial(port, { ca: ca.cert });
    await accepted;
    expect(sni).toBe(false);
    accepted = seen();
    await dial(port, { ca: ca.cert, servername: 'localhost' });
    await accepted;
    expect(sni).toBe('localhost');
    await expect(dial(port, { ca: ca.cert, servername: 'elsewhere.test' })).rejects.toMatchObject({
      reason: 'tls-hostname-mismatch',
    });
  });

  it('pins the server key: the right pin connects, another key is refused', async () => {
    const port = await serve();
    await dial(port, { ca: ca.cert, pins: [spkiPin(server.cert)] });
    await dial(port, { ca: ca.cert, pins: [`sha256/${spkiPin(server.cert)}`] });
    const sameNames = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });
    const rotated = await serve(sameNames);
    await expect(dial(rotated, { ca: ca.cert, pins: [spkiPin(server.cert)] })).rejects.toMatchObject({
      reason: 'tls-pin-mismatch',
    });
    expect(() => tlsClient({ pins: ['not-a-pin'] })).toThrow(/base64 SHA-256/);
  });

  it('checks the server SPIFFE ID from its URI SAN', async () => {
    const port = await serve();
    await dial(port, { ca: ca.cert, serverSpiffeId: 'spiffe://example.org/ns/prod/sa/api' });
    await dial(port, { ca: ca.cert, serverTrustDomain: 'example.org' });
    await expect(
      dial(port, { ca: ca.cert, serverSpiffeId: 'spiffe://example.org/ns/prod/sa/other' }),
    ).rejects.toMatchObject({ reason: 'tls-server-identity' });
    await expect(dial(port, { ca: ca.cert, serverTrustDomain: 'evil.org' })).rejects.toMatchObject({
      reason: 'tls-server-identity',
    });
    const twoUris = await issueServerCert(ca, {
      names: ['spiffe://example.org/a', 'spiffe://example.org/b'],
    });
    const notSvid = await serve(twoUris);
    await expect(dial(notSvid, { ca: ca.cert, serverTrustDomain: 'example.org' })).rejects.toMatchObject({
      reason: 'tls-server-identity',
    });
  });

  it('skips verification only when told to, and warns once', async () => {
    resetWarnings();
    const w = warnings();
    try {
      const port = await serve();
      await dial(port, { insecureSkipVerify: true });
      await dial(port, { insecureSkipVerify: true });
      await new Promise((r) => setImmediate(r));
      expect(w.list.filter((e) => /insecureSkipVerify/.test(e.message)).length).toBe(1);
      // Pins still bind even without verification.
      await expect(dial(port, { insecureSkipVerify: true, pins: [spkiPin(ca.cert)] })).rejects.toMatchObject({
        reason: 'tls-pin-mismatch',
      });
    } finally {
      w.stop();
    }
  });

  it('keeps verifying under NODE_TLS_REJECT_UNAUTHORIZED=0, and says so', async () => {
    resetWarnings();
    const w = warnings();
    const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    try {
      const port = await serve();
      await expect(dial(port, { ca: otherCa.cert })).rejects.toMatchObject({ reason: 'tls-unknown-ca' });
      await new Promise((r) => setImmediate(r));
      expect(w.list.some((e) => /NODE_TLS_REJECT_UNAUTHORIZED=0/.test(e.message))).toBe(true);
    } finally {
      if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
      w.stop();
    }
  });

  it('resumes sessions with a server it dialed before', async () => {
    const port = await serve();
    const transport = tlsClient({ ca: ca.cert });
    const first = await connect({ port, transport });
    await first.send(Buffer.from('x'));
    await first[Symbol.asyncIterator]().next();
    await first.close();
    const second = await connect({ port, transport });
    cleanups.push(() => second.close());
    expect((second.socket as TLSSocket).isSessionReused()).toBe(true);
    const fresh = await connect({ port, transport: tlsClient({ ca: ca.cert, resumeSessions: false }) });
    cleanups.push(() => fresh.close());
    expect((fresh.socket as TLSSocket).isSessionReused()).toBe(false);
  });

  it('refuses a TLS 1.2-only server under the modern profile', async () => {
    const node = createTlsServer({ cert: server.cert, key: server.key, maxVersion: 'TLSv1.2' }, (s) =>
      s.end(),
    );
    node.listen(0, '127.0.0.1');
    await once(node, 'listening');
    cleanups.push(() => new Promise((r) => node.close(r)));
    const port = (node.address() as { port: number }).port;
    await expect(dial(port, { ca: ca.cert, profile: 'modern' })).rejects.toMatchObject({
      reason: 'tls-protocol-version',
    });
  });
});
