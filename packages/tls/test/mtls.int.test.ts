import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Connection, connect } from '@sock/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type PeerIdentity,
  peerIdentity,
  spkiPin,
  type TlsTransportOptions,
  tlsClient,
  tlsTransport,
} from '../src/index.js';
import {
  createCA,
  type DevCA,
  type DevCertificate,
  issueClientCert,
  issueServerCert,
  writeCertificate,
} from '../src/pki.js';
import { type Started, sClient, start } from './helpers.js';

let ca: DevCA;
let otherCa: DevCA;
let server: DevCertificate;
let dir: string;
const files: Record<string, { certPath: string; keyPath: string }> = {};
const certs: Record<string, DevCertificate> = {};
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sock-mtls-'));
  [ca, otherCa] = await Promise.all([createCA(), createCA({ commonName: 'Unknown CA' })]);
  server = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });
  const day = 86_400_000;
  const issued: Record<string, Promise<DevCertificate>> = {
    good: issueClientCert(ca, { commonName: 'worker', spiffeId: 'spiffe://example.org/ns/prod/sa/worker' }),
    other: issueClientCert(ca, {
      commonName: 'intruder',
      spiffeId: 'spiffe://example.org/ns/prod/sa/intruder',
    }),
    foreign: issueClientCert(otherCa, {
      commonName: 'worker',
      spiffeId: 'spiffe://example.org/ns/prod/sa/worker',
    }),
    expired: issueClientCert(ca, {
      commonName: 'old',
      notBefore: new Date(Date.now() - 30 * day),
      notAfter: new Date(Date.now() - day),
    }),
    serverOnly: issueServerCert(ca, { names: ['worker.example.org'] }),
  };
  for (const [name, p] of Object.entries(issued)) {
    certs[name] = await p;
    files[name] = await writeCertificate(join(dir, name), certs[name]!);
  }
  files.ca = await writeCertificate(join(dir, 'ca'), ca);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let lastIdentity: PeerIdentity | undefined;

async function serve(options: Partial<TlsTransportOptions>): Promise<Started> {
  const transport = tlsTransport({
    cert: server.cert,
    key: server.key,
    ca: ca.cert,
    clientAuth: 'require',
    ...options,
  });
  const s = await start({
    transport,
    async handler(conn: Connection) {
      lastIdentity = peerIdentity(conn);
      for await (const m of conn) await conn.send(m);
    },
  });
  cleanups.push(
    () => s.server.close({ drainMs: 100 }),
    () => transport.close(),
  );
  return s;
}

function withCert(name: string): string[] {
  return ['-cert', files[name]!.certPath, '-key', files[name]!.keyPath, '-CAfile', files.ca!.certPath];
}

/** 'hi' when echoed; 'closed' / 'refused' when the server refused (under TLS 1.3 the client sees its
 * handshake complete and then the close). */
async function echoAs(port: number, who: DevCertificate): Promise<string> {
  let conn: Connection;
  try {
    conn = await connect({ port, transport: tlsClient({ ca: ca.cert, cert: who.cert, key: who.key }) });
  } catch {
    return 'refused';
  }
  try {
    await conn.send(Buffer.from('hi'));
    const r = await conn[Symbol.asyncIterator]().next();
    return r.done ? 'closed' : r.value.toString();
  } finally {
    await conn.close();
  }
}

describe('mutual TLS', () => {
  it('accepts a valid client certificate and hands its identity to the handler', async () => {
    const s = await serve({});
    lastIdentity = undefined;
    expect(await echoAs(s.port, certs.good!)).toBe('hi');
    expect(lastIdentity).toMatchObject({
      commonName: 'worker',
      spiffeId: 'spiffe://example.org/ns/prod/sa/worker',
      trustDomain: 'example.org',
      uris: ['spiffe://example.org/ns/prod/sa/worker'],
      issuerCommonName: 'sock development CA',
      spkiSha256: spkiPin(certs.good!.cert),
      isCA: false,
    });
    const id = lastIdentity as PeerIdentity | undefined;
    expect(id?.fingerprintSha256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(id?.notAfter.getTime()).toBeGreaterThan(Date.now());
    const ok = await sClient(s.port, withCert('good'));
    expect(ok.connected).toBe(true);
    expect(s.rejects()).toEqual([]);
  });

  it('refuses each bad client with its reported reason (openssl s_client)', async () => {
    const s = await serve({});
    const cases: Array<[string[], string]> = [
      [['-CAfile', files.ca!.certPath], 'tls-no-client-cert'],
      [withCert('foreign'), 'tls-unknown-ca'],
      [withCert('expired'), 'tls-cert-expired'],
      [withCert('serverOnly'), 'tls-wrong-purpose'],
    ];
    for (const [args, reason] of cases) {
      const r = await sClient(s.port, args);
      const e = await s.waitReject(reason);
      expect(e.stage, reason).toBe('handshake');
      expect(e.plugin).toBe('tls');
      expect(e.closed).toBe(true);
      // The session never reaches the handler: openssl sees the close right after its handshake.
      expect(r.stdout + r.stderr).not.toMatch(/^hi$/m);
    }
    const stats = s.server.stats();
    expect(stats.rejected).toEqual({
      'tls-no-client-cert': 1,
      'tls-unknown-ca': 1,
      'tls-cert-expired': 1,
      'tls-wrong-purpose': 1,
    });
    expect(stats.active).toBe(0);
  });

  it('refuses a wrong SPIFFE ID under an authorize policy (node client)', async () => {
    const s = await serve({ authorize: { spiffeId: 'spiffe://example.org/ns/prod/sa/worker' } });
    expect(await echoAs(s.port, certs.good!)).toBe('hi');
    expect(await echoAs(s.port, certs.other!)).not.toBe('hi');
    const e = await s.waitReject('tls-unauthorized');
    expect(e.message).toContain('spiffe://example.org/ns/prod/sa/intruder');
    expect(s.server.stats().rejected['tls-unauthorized']).toBe(1);
  });

  it('applies rule lists, trust domains and custom functions', async () => {
    const byDomain = await serve({ authorize: [{ commonName: 'nobody' }, { trustDomain: 'example.org' }] });
    expect(await echoAs(byDomain.port, certs.other!)).toBe('hi');
    const seen: string[] = [];
    const custom = await serve({
      authorize: async (id) => {
        seen.push(id.commonName ?? '');
        return id.commonName === 'worker';
      },
    });
    expect(await echoAs(custom.port, certs.good!)).toBe('hi');
    expect(await echoAs(custom.port, certs.other!)).not.toBe('hi');
    await custom.waitReject('tls-unauthorized');
    expect(seen).toEqual(['worker', 'intruder']);
    const throwing = await serve({
      authorize: () => {
        throw new Error('policy store down');
      },
    });
    expect(await echoAs(throwing.port, certs.good!)).not.toBe('hi');
    const e = await throwing.waitReject('tls-unauthorized');
    expect(e.message).toContain('policy store down');
  });

  it('optional: a client without a certificate passes, one with a bad certificate does not', async () => {
    const s = await serve({ clientAuth: 'optional' });
    lastIdentity = peerIdentity({ locals: new Map() });
    const conn = await connect({ port: s.port, transport: tlsClient({ ca: ca.cert }) });
    await conn.send(Buffer.from('anon'));
    expect((await conn[Symbol.asyncIterator]().next()).value?.toString()).toBe('anon');
    await conn.close();
    expect(lastIdentity).toBeUndefined();
    expect(await echoAs(s.port, certs.good!)).toBe('hi');
    expect(lastIdentity?.commonName).toBe('worker');
    expect(await echoAs(s.port, certs.foreign!)).not.toBe('hi');
    await s.waitReject('tls-unknown-ca');
  });

  it('keeps the identity on resumed sessions', async () => {
    const s = await serve({ authorize: { commonName: 'worker' } });
    const transport = tlsClient({ ca: ca.cert, cert: certs.good!.cert, key: certs.good!.key });
    for (let i = 0; i < 2; i++) {
      lastIdentity = undefined;
      const conn = await connect({ port: s.port, transport });
      await conn.send(Buffer.from('again'));
      expect((await conn[Symbol.asyncIterator]().next()).value?.toString()).toBe('again');
      expect((conn.socket as import('node:tls').TLSSocket).isSessionReused()).toBe(i === 1);
      await conn.close();
      expect((lastIdentity as PeerIdentity | undefined)?.commonName).toBe('worker');
    }
    expect(s.rejects()).toEqual([]);
  });

  it('checks the option set', () => {
    expect(() =>
      tlsTransport({ cert: server.cert, key: server.key, authorize: { commonName: 'x' } }),
    ).toThrow(/clientAuth/);
    expect(() =>
      tlsTransport({ cert: server.cert, key: server.key, ca: ca.cert, clientAuth: 'require', authorize: {} }),
    ).toThrow(/empty rule/);
  });
});
