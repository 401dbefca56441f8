import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { type Connection, connect, type SockError } from '@sock/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type ReloadInfo,
  type TlsServerTransport,
  type TlsTransportOptions,
  tlsClient,
  tlsTransport,
} from '../src/index.js';
import { createCA, type DevCA, type DevCertificate, issueClientCert, issueServerCert } from '../src/pki.js';
import { sClient, start } from './helpers.js';

let ca: DevCA;
let certs: DevCertificate[];
let client: DevCertificate;
let dir: string;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  ca = await createCA();
  certs = await Promise.all([1, 2, 3].map(() => issueServerCert(ca, { names: ['localhost', '127.0.0.1'] })));
  client = await issueClientCert(ca, { commonName: 'worker' });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const fingerprint = (c: DevCertificate) => new X509Certificate(c.cert).fingerprint256;

interface Harness {
  port: number;
  transport: TlsServerTransport;
  reloads: ReloadInfo[];
  errors: SockError[];
  /** Resolves when a reload or a reload error matching `pred` has been reported. */
  until: (pred: () => boolean, ms?: number) => Promise<void>;
}

async function serve(options: Partial<TlsTransportOptions> = {}): Promise<Harness> {
  const reloads: ReloadInfo[] = [];
  const errors: SockError[] = [];
  const transport = tlsTransport({
    cert: { path: join(dir, 'tls.crt') },
    key: { path: join(dir, 'tls.key') },
    reload: { debounce: 50, poll: false },
    onReload: (info) => reloads.push(info),
    onReloadError: (err) => errors.push(err),
    ...options,
  });
  const s = await start({ transport });
  cleanups.push(
    () => s.server.close({ drainMs: 100 }),
    () => transport.close(),
  );
  const until = async (pred: () => boolean, ms = 5000) => {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline)
        throw new Error(`timed out; reloads ${reloads.length}, errors ${errors.map((e) => e.reason)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { port: s.port, transport, reloads, errors, until };
}

async function served(
  port: number,
  extra: Parameters<typeof tlsClient>[0] = {},
): Promise<{ fp: string; conn: Connection }> {
  const conn = await connect({
    port,
    transport: tlsClient({ ca: ca.cert, resumeSessions: false, ...extra }),
  });
  cleanups.push(() => conn.close());
  const fp = (conn.socket as TLSSocket).getPeerX509Certificate()?.fingerprint256 ?? '';
  return { fp, conn };
}

async function echo(conn: Connection, text: string): Promise<string | undefined> {
  await conn.send(Buffer.from(text));
  return (await conn[Symbol.asyncIterator]().next()).value?.toString();
}

/** Plain files, replaced by rename (how most tools write them). */
async function writePlain(material: { cert: string; key: string }): Promise<void> {
  await writeFile(join(dir, 'tls.key.tmp'), material.key, { mode: 0o600 });
  await writeFile(join(dir, 'tls.crt.tmp'), material.cert);
  await rename(join(dir, 'tls.key.tmp'), join(dir, 'tls.key'));
  await rename(join(dir, 'tls.crt.tmp'), join(dir, 'tls.crt'));
}

let generation = 0;
/** What the kubelet does for a Secret volume: new timestamped dir, `..data` symlink swapped atomically. */
async function k8sSwap(material: DevCertificate, first = false): Promise<void> {
  const name = `..2026_01_01_00_00_0${generation++}.${process.pid}`;
  await mkdir(join(dir, name));
  await writeFile(join(dir, name, 'tls.crt'), material.cert);
  await writeFile(join(dir, name, 'tls.key'), material.key, { mode: 0o600 });
  await symlink(name, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  if (first) {
    await symlink('..data/tls.crt', join(dir, 'tls.crt'));
    await symlink('..data/tls.key', join(dir, 'tls.key'));
  }
}

describe('hot reload', () => {
  it('serves a rotated certificate to new connections while open ones continue', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sock-reload-'));
    await writePlain(certs[0]!);
    const h = await serve();
    const old = await served(h.port);
    expect(old.fp).toBe(fingerprint(certs[0]!));
    await writePlain(certs[1]!);
    await h.until(() => h.transport.certificate.fingerprintSha256 === fingerprint(certs[1]!));
    const fresh = await served(h.port);
    expect(fresh.fp).toBe(fingerprint(certs[1]!));
    expect(await echo(old.conn, 'old still works')).toBe('old still works');
    expect(await echo(fresh.conn, 'new works')).toBe('new works');
    expect(h.reloads.at(-1)).toMatchObject({ trigger: 'watch', changed: true });
  });

  it('sees two successive Kubernetes ..data symlink swaps', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sock-k8s-'));
    await k8sSwap(certs[0]!, true);
    const h = await serve();
    expect((await served(h.port)).fp).toBe(fingerprint(certs[0]!));
    for (const next of [certs[1]!, certs[2]!]) {
      await k8sSwap(next);
      await h.until(() => h.transport.certificate.fingerprintSha256 === fingerprint(next));
      expect((await served(h.port)).fp).toBe(fingerprint(next));
    }
    expect(h.reloads.filter((r) => r.changed).length).toBe(2);
  });

  it('keeps the old certificate when the new key does not match or the PEM is truncated', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sock-bad-'));
    await writePlain(certs[0]!);
    const h = await serve();
    await writePlain({ cert: certs[1]!.cert, key: certs[0]!.key });
    await h.until(() => h.errors.some((e) => e.reason === 'tls-key-mismatch'));
    expect((await served(h.port)).fp).toBe(fingerprint(certs[0]!));
    await writePlain({ cert: certs[1]!.cert.slice(0, certs[1]!.cert.length / 2), key: certs[1]!.key });
    await h.until(() => h.errors.some((e) => e.reason === 'tls-cert-invalid'));
    expect((await served(h.port)).fp).toBe(fingerprint(certs[0]!));
    expect(h.transport.certificate.fingerprintSha256).toBe(fingerprint(certs[0]!));
    expect(h.reloads.filter((r) => r.changed)).toEqual([]);
    // And a good pair afterwards is taken.
    await writePlain(certs[2]!);
    await h.until(() => h.transport.certificate.fingerprintSha256 === fingerprint(certs[2]!));
  });

  it('rebuilds from the full option set: CA, client auth and versions survive a reload', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sock-full-'));
    await writePlain(certs[0]!);
    const h = await serve({ ca: ca.cert, clientAuth: 'require' });
    await writePlain(certs[1]!);
    await h.until(() => h.transport.certificate.fingerprintSha256 === fingerprint(certs[1]!));
    const withCert = await served(h.port, { cert: client.cert, key: client.key });
    expect(withCert.fp).toBe(fingerprint(certs[1]!));
    expect(await echo(withCert.conn, 'mtls')).toBe('mtls');
    const anonymous = await served(h.port);
    expect(await echo(anonymous.conn, 'x').catch(() => undefined)).toBeUndefined();
    expect((await sClient(h.port, ['-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0'])).connected).toBe(false);
  });

  it('polls as a fallback, and reports an unchanged manual reload', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sock-poll-'));
    await writePlain(certs[0]!);
    // A debounce far beyond the test: only the poll can pick the change up.
    const h = await serve({ reload: { debounce: '1h', poll: 100 } });
    const manual = await h.transport.reload();
    expect(manual).toMatchObject({ trigger: 'manual', changed: false });
    await writePlain(certs[1]!);
    await h.until(() => h.reloads.some((r) => r.trigger === 'poll' && r.changed));
    expect((await served(h.port)).fp).toBe(fingerprint(certs[1]!));
  });

  it('rejects a manual reload of bad files and keeps serving', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sock-manual-'));
    await writePlain(certs[0]!);
    const h = await serve({ reload: false });
    await writeFile(join(dir, 'tls.crt'), 'garbage');
    await expect(h.transport.reload()).rejects.toMatchObject({ reason: 'tls-cert-invalid' });
    expect((await served(h.port)).fp).toBe(fingerprint(certs[0]!));
  });
});
