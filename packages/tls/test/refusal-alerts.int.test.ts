import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { connect, SockError } from '@sock/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type TlsTransportOptions, tlsClient, tlsTransport } from '../src/index.js';
import {
  createCA,
  type DevCA,
  type DevCertificate,
  issueClientCert,
  issueServerCert,
  writeCertificate,
} from '../src/pki.js';
import { reasonForHandshakeError } from '../src/reasons.js';
import { type Started, sClient, start } from './helpers.js';

/**
 * Every refusal the server decides after the handshake reaches the client as the TLS alert that names
 * it, on TLS 1.2 and 1.3, with and without session tickets and on resumed sessions: openssl s_client
 * prints it, and the library client turns it into a typed error with the server's reason.
 */

let ca: DevCA;
let dir: string;
let server: DevCertificate;
const certs: Record<string, DevCertificate> = {};
const files: Record<string, { certPath: string; keyPath: string }> = {};
const cleanups: Array<() => unknown> = [];
const day = 86_400_000;

/** The same certificate with one bit of its signature flipped: it parses, it does not verify. */
function badSignature(cert: DevCertificate): DevCertificate {
  const der = Buffer.from(new X509Certificate(cert.cert).raw);
  der[der.length - 1] = (der[der.length - 1] as number) ^ 1;
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return { ...cert, cert: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n` };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sock-alerts-'));
  const otherCa = await createCA({ commonName: 'Unknown CA' });
  ca = await createCA();
  server = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });
  const good = await issueClientCert(ca, { commonName: 'worker' });
  const issued: Record<string, DevCertificate> = {
    good,
    intruder: await issueClientCert(ca, { commonName: 'intruder' }),
    foreign: await issueClientCert(otherCa, { commonName: 'worker' }),
    expired: await issueClientCert(ca, {
      commonName: 'worker',
      notBefore: new Date(Date.now() - 30 * day),
      notAfter: new Date(Date.now() - day),
    }),
    forged: badSignature(good),
  };
  for (const [name, c] of Object.entries(issued)) {
    certs[name] = c;
    files[name] = await writeCertificate(join(dir, name), c);
  }
  files.ca = await writeCertificate(join(dir, 'ca'), ca);
});

afterAll(() => rm(dir, { recursive: true, force: true }));

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(options: Partial<TlsTransportOptions> = {}): Promise<Started> {
  const transport = tlsTransport({
    cert: server.cert,
    key: server.key,
    ca: ca.cert,
    clientAuth: 'require',
    // Only the worker may connect: the intruder's certificate is valid, the policy refuses it.
    authorize: { commonName: 'worker' },
    ...options,
  });
  const s = await start({ transport });
  cleanups.push(
    () => s.server.close({ drainMs: 100 }),
    () => transport.close(),
  );
  return s;
}

interface Refusal {
  who: string;
  /** The alert's name, as the library client's error message gives it (TLS 1.3). */
  alert: string;
  reason: string;
  /** What openssl s_client prints for the alert, per version. */
  tls13: RegExp;
  tls12: RegExp;
}

const REFUSALS: Refusal[] = [
  {
    who: 'no certificate',
    alert: 'certificate_required',
    reason: 'tls-no-client-cert',
    tls13: /alert certificate required:.*SSL alert number 116/,
    // TLS 1.2 has no certificate_required (OpenSSL sends handshake_failure during the handshake).
    tls12: /alert handshake failure:.*SSL alert number 40/,
  },
  {
    who: 'foreign',
    alert: 'unknown_ca',
    reason: 'tls-unknown-ca',
    tls13: /alert unknown ca:.*SSL alert number 48/,
    tls12: /alert unknown ca:.*SSL alert number 48/,
  },
  {
    who: 'expired',
    alert: 'certificate_expired',
    reason: 'tls-cert-expired',
    tls13: /alert certificate expired:.*SSL alert number 45/,
    tls12: /alert certificate expired:.*SSL alert number 45/,
  },
  {
    who: 'forged',
    alert: 'bad_certificate',
    reason: 'tls-cert-invalid',
    tls13: /alert bad certificate:.*SSL alert number 42/,
    tls12: /alert bad certificate:.*SSL alert number 42/,
  },
  {
    who: 'intruder',
    alert: 'access_denied',
    reason: 'tls-unauthorized',
    tls13: /alert access denied:.*SSL alert number 49/,
    tls12: /alert access denied:.*SSL alert number 49/,
  },
];

function clientArgs(who: string): string[] {
  const ca = ['-CAfile', files.ca!.certPath];
  if (who === 'no certificate') return ca;
  return ['-cert', files[who]!.certPath, '-key', files[who]!.keyPath, ...ca];
}

const VERSIONS = [
  ['-tls1_3', 'TLSv1.3', 'tls13'],
  ['-tls1_2', 'TLSv1.2', 'tls12'],
] as const;

describe('openssl s_client sees the alert that names the refusal', () => {
  for (const [flag, version, key] of VERSIONS) {
    for (const tickets of [true, false]) {
      it(`${version}, session tickets ${tickets ? 'on' : 'off'}: every refusal`, async () => {
        const s = await serve({ sessionTickets: tickets });
        for (const refusal of REFUSALS) {
          const r = await sClient(s.port, [flag, ...clientArgs(refusal.who)]);
          expect(r.stdout + r.stderr, `${refusal.who} on ${version}`).toMatch(refusal[key]);
          const e = await s.waitReject(refusal.reason);
          expect(e.closed).toBe(true);
        }
        // The good client is still served.
        const ok = await sClient(s.port, [flag, ...clientArgs('good')]);
        expect(ok.connected).toBe(true);
        expect(ok.stdout + ok.stderr).not.toMatch(/SSL alert number/);
        expect(s.server.stats().rejected).toEqual({
          'tls-no-client-cert': 1,
          'tls-unknown-ca': 1,
          'tls-cert-expired': 1,
          'tls-cert-invalid': 1,
          'tls-unauthorized': 1,
        });
      });
    }

    it(`${version}: a resumed session is refused again, with the alert`, async () => {
      const s = await serve();
      for (const refusal of REFUSALS.filter((r) => r.who !== 'no certificate')) {
        const sess = join(dir, `${refusal.who}${flag}.sess`);
        const first = await sClient(s.port, [flag, ...clientArgs(refusal.who), '-sess_out', sess]);
        expect(first.stdout + first.stderr).toMatch(refusal[key]);
        const again = await sClient(s.port, [flag, ...clientArgs(refusal.who), '-sess_in', sess]);
        expect(again.stdout, `${refusal.who} resumed on ${version}`).toMatch(/^Reused,/m);
        expect(again.stdout + again.stderr).toMatch(refusal[key]);
      }
      expect(Object.values(s.server.stats().rejected).reduce((a, b) => a + b, 0)).toBe(8);
    });
  }

  for (const [flag, suites] of [
    ['-ciphersuites', ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']],
    [
      '-cipher',
      ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
    ],
  ] as const) {
    it(`under every suite the profile allows (${flag})`, async () => {
      const s = await serve();
      for (const suite of suites) {
        const version = flag === '-cipher' ? '-tls1_2' : '-tls1_3';
        const r = await sClient(s.port, [version, flag, suite, ...clientArgs('foreign')]);
        expect(r.cipher, suite).toBe(suite);
        expect(r.stdout + r.stderr, suite).toMatch(/SSL alert number 48/);
      }
    });
  }
});

describe('the client side turns the alert into a typed error', () => {
  /** The error a library-client connection as `who` ends with: at dial, or after it (TLS 1.3). */
  async function libraryRefusal(port: number, who: string): Promise<unknown> {
    const cert = who === 'no certificate' ? {} : { cert: certs[who]!.cert, key: certs[who]!.key };
    try {
      const conn = await connect({ port, transport: tlsClient({ ca: ca.cert, ...cert }) });
      cleanups.push(() => conn.destroy());
      return (await conn.closed).error;
    } catch (err) {
      return err;
    }
  }

  it("tlsClient (TLS 1.3): each refusal is an ERR_SOCK_REJECTED with the server's reason", async () => {
    const s = await serve();
    for (const refusal of REFUSALS) {
      const error = await libraryRefusal(s.port, refusal.who);
      expect(SockError.isInstance(error), `${refusal.who}: ${String(error)}`).toBe(true);
      expect((error as SockError).reason, refusal.who).toBe(refusal.reason);
      expect((error as SockError).code).toBe('ERR_SOCK_REJECTED');
      expect((error as SockError).message).toMatch(
        new RegExp(
          `^tls: the server refused the (connection|handshake) with the ${refusal.alert} alert \\(\\d+\\): `,
        ),
      );
    }
  });

  // tlsClient has no option to cap the version (the profile offers both); Node's own client capped at
  // TLS 1.2 gets the same alerts, and the mapping tlsClient applies to them names the same reasons.
  it("TLS 1.2: Node reports each alert by its code, and it maps to the server's reason", async () => {
    const s = await serve();
    for (const refusal of REFUSALS) {
      const cert =
        refusal.who === 'no certificate'
          ? {}
          : { cert: certs[refusal.who]!.cert, key: certs[refusal.who]!.key };
      const socket = tlsConnect({
        port: s.port,
        host: '127.0.0.1',
        ca: ca.cert,
        servername: 'localhost',
        maxVersion: 'TLSv1.2',
        ...cert,
      });
      cleanups.push(() => socket.destroy());
      const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
      expect(socket.getProtocol?.() ?? 'TLSv1.2').toBe('TLSv1.2');
      const expected =
        // handshake_failure names no cause: a TLS 1.2 client cannot know it was the missing certificate.
        refusal.who === 'no certificate' ? 'tls-handshake-failed' : refusal.reason;
      expect(reasonForHandshakeError(err), `${refusal.who}: ${err.code}`).toBe(expected);
    }
  });
});

describe('alpnRequired', () => {
  it('a client offering no ALPN gets no_application_protocol on TLS 1.2 and 1.3', async () => {
    const s = await serve({ clientAuth: 'none', authorize: undefined, alpn: ['h2'], alpnRequired: true });
    for (const [flag] of VERSIONS) {
      const r = await sClient(s.port, [flag, '-CAfile', files.ca!.certPath]);
      expect(r.stdout + r.stderr, flag).toMatch(/alert no application protocol:.*SSL alert number 120/);
    }
    expect(s.server.stats().rejected).toEqual({ 'tls-alpn-mismatch': 2 });
    const ok = await sClient(s.port, ['-alpn', 'h2', '-CAfile', files.ca!.certPath]);
    expect(ok.connected).toBe(true);
  });
});

describe('a refusal no alert names', () => {
  it('a policy that does not answer within handshakeTimeout: the client is reset, not closed cleanly', async () => {
    const s = await serve({ authorize: () => new Promise<boolean>(() => {}), handshakeTimeout: 300 });
    // stdin stays open well past the deadline: s_client ends when the server resets it.
    const r = await sClient(s.port, ['-tls1_3', ...clientArgs('good')], 5000);
    expect(r.stdout + r.stderr).not.toMatch(/SSL alert number/);
    expect(r.stdout + r.stderr).toMatch(/errno=104/);
    expect((await s.waitReject('tls-handshake-timeout')).closed).toBe(true);
  });
});

describe('refusalAlerts: false', () => {
  it('keeps the native path: a refused client gets no alert but a reset, not a clean close', async () => {
    const s = await serve({ refusalAlerts: false });
    for (const [flag] of VERSIONS) {
      const r = await sClient(s.port, [flag, ...clientArgs('foreign')]);
      expect(r.stdout + r.stderr).not.toMatch(/SSL alert number/);
      // errno 104: ECONNRESET. A FIN would look like a server that accepted the client and closed.
      expect(r.stdout + r.stderr, flag).toMatch(/errno=104/);
    }
    expect(s.server.stats().rejected).toEqual({ 'tls-unknown-ca': 2 });
    // The library client's connection fails instead of ending cleanly.
    let error: unknown;
    try {
      const conn = await connect({
        port: s.port,
        transport: tlsClient({ ca: ca.cert, cert: certs.foreign!.cert, key: certs.foreign!.key }),
      });
      cleanups.push(() => conn.destroy());
      error = (await conn.closed).error;
    } catch (err) {
      error = err;
    }
    expect(SockError.isInstance(error), String(error)).toBe(true);
    expect((error as SockError).code).not.toBe('ERR_SOCK_REJECTED');
    // OpenSSL itself still sends certificate_required.
    const none = await sClient(s.port, ['-tls1_3', ...clientArgs('no certificate')]);
    expect(none.stdout + none.stderr).toMatch(/SSL alert number 116/);
    expect(s.server.stats().active).toBe(0);
  });
});

describe('a refusal decided while the handshake runs', () => {
  /**
   * A TCP stream for a client that sends the first record of its second flight (TLS 1.2: Certificate;
   * TLS 1.3: the encrypted Certificate, after the compatibility ChangeCipherSpec) alone and holds the
   * rest (CertificateVerify, Finished) until the server answers or 2 s pass: a server that answers first
   * judged the certificate before its handshake could finish.
   */
  function certificateFirst(port: number): { stream: Duplex; answeredFirst: () => boolean } {
    const tcp = netConnect({ port, host: '127.0.0.1' });
    let writes = 0;
    let serverFirst = false;
    /** Set while the rest of the flight is held: sends it. */
    let release: (() => void) | undefined;
    const onAnswer = () => {
      if (!release) return;
      serverFirst = true;
      release();
    };
    const stream = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        writes++;
        // The first write is the ClientHello.
        if (writes !== 2) return tcp.write(chunk, done);
        let first = 0;
        while (chunk[first] === 20) first += 5 + chunk.readUInt16BE(first + 3);
        first += 5 + chunk.readUInt16BE(first + 3);
        tcp.write(chunk.subarray(0, first));
        const timer = setTimeout(() => release?.(), 2000);
        release = () => {
          release = undefined;
          clearTimeout(timer);
          // After the server's answer the rest is moot (and the server has closed): it goes only when
          // the server stayed silent.
          if (!serverFirst && !tcp.destroyed) tcp.write(chunk.subarray(first));
          done();
        };
      },
      final(done) {
        tcp.end();
        done();
      },
      destroy(err, done) {
        tcp.destroy();
        done(err);
      },
    });
    tcp.on('data', (d: Buffer) => {
      onAnswer();
      stream.push(d);
    });
    tcp.on('end', () => {
      onAnswer();
      stream.push(null);
    });
    // The server resets refused clients; the TLS client has already reported the alert by then.
    tcp.on('error', () => stream.destroy());
    return { stream, answeredFirst: () => serverFirst };
  }

  for (const [, version] of VERSIONS) {
    it(`${version}: a certificate that fails verification before the handshake ends still gets its alert`, async () => {
      const s = await serve();
      const { stream, answeredFirst } = certificateFirst(s.port);
      const socket = tlsConnect({
        socket: stream,
        ca: ca.cert,
        servername: 'localhost',
        maxVersion: version,
        cert: certs.forged!.cert,
        key: certs.forged!.key,
      });
      cleanups.push(() => socket.destroy());
      const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
      // The server answered while the client's Finished was still held back.
      expect(answeredFirst()).toBe(true);
      expect(err.code).toBe('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE');
      const reject = await s.waitReject('tls-cert-invalid');
      expect(reject.message).toMatch(/CERT_SIGNATURE_FAILURE/);
    });
  }
});
