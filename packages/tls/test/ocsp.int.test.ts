import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tlsTransport } from '../src/index.js';
import { readOcspResponse } from '../src/ocsp.js';
import {
  createCA,
  type DevCA,
  type DevCertificate,
  issueServerCert,
  writeCA,
  writeCertificate,
} from '../src/pki.js';
import { run, sClient, start } from './helpers.js';

let ca: DevCA;
let server: DevCertificate;
let dir: string;
const cleanups: Array<() => unknown> = [];

/** `openssl ocsp` as the dev CA's responder: a signed response for the server certificate. */
async function ocspResponse(name: string, status: 'V' | 'R', days = 1): Promise<string> {
  const leaf = new X509Certificate(server.cert);
  const expiry = '991231235959Z';
  const revoked = status === 'R' ? '250101000000Z' : '';
  const index = join(dir, `${name}.index`);
  await writeFile(
    index,
    `${status}\t${expiry}\t${revoked}\t${leaf.serialNumber.toUpperCase()}\tunknown\t/CN=localhost\n`,
  );
  const req = join(dir, `${name}.req`);
  const out = join(dir, `${name}.der`);
  const ca = join(dir, 'ca', 'ca.crt');
  const caKey = join(dir, 'ca', 'ca.key');
  const cert = join(dir, 'srv', 'tls.crt');
  let r = await run('openssl', ['ocsp', '-issuer', ca, '-cert', cert, '-no_nonce', '-reqout', req]);
  expect(r.code).toBe(0);
  r = await run('openssl', [
    'ocsp',
    '-index',
    index,
    '-CA',
    ca,
    '-rsigner',
    ca,
    '-rkey',
    caKey,
    '-reqin',
    req,
    '-respout',
    out,
    '-ndays',
    String(days),
  ]);
  expect(r.code, r.stderr).toBe(0);
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sock-ocsp-'));
  ca = await createCA();
  server = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });
  await writeCA(join(dir, 'ca'), ca);
  await writeCertificate(join(dir, 'srv'), server);
});

afterAll(() => rm(dir, { recursive: true, force: true }));

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serveWith(ocsp: Parameters<typeof tlsTransport>[0]['ocsp']) {
  const transport = tlsTransport({ cert: server.cert, key: server.key, ocsp });
  const s = await start({ transport });
  cleanups.push(
    () => s.server.close({ drainMs: 100 }),
    () => transport.close(),
  );
  return s;
}

describe('OCSP stapling', () => {
  it('staples the response from a file: openssl s_client -status sees "good", signed by the dev CA', async () => {
    const file = await ocspResponse('good', 'V');
    const s = await serveWith({ file });
    for (const version of ['-tls1_3', '-tls1_2']) {
      const r = await sClient(s.port, [version, '-status', '-CAfile', join(dir, 'ca', 'ca.crt')], 300);
      expect(r.stdout).toMatch(/OCSP Response Status: successful/);
      expect(r.stdout).toMatch(/Cert Status: good/);
    }
    // Without -status the client asked for nothing and gets nothing.
    const plain = await sClient(s.port, [], 200);
    expect(plain.stdout).not.toMatch(/OCSP Response Status/);
  });

  it('reads status and nextUpdate from the DER; a revoked response is read as revoked', async () => {
    const good = readOcspResponse(await readFile(await ocspResponse('g2', 'V', 2)));
    expect(good.status).toBe('good');
    expect(good.nextUpdate! - good.thisUpdate).toBeGreaterThan(47 * 3_600_000);
    const revoked = readOcspResponse(await readFile(await ocspResponse('r', 'R')));
    expect(revoked.status).toBe('revoked');
    expect(() => readOcspResponse(Buffer.from('not der'))).toThrow(/does not parse/);
  });

  it('refuses an expired response at start-up, with a typed error', async () => {
    const file = await ocspResponse('old', 'V');
    const later = Date.now() + 3 * 86_400_000;
    expect(() =>
      tlsTransport({ cert: server.cert, key: server.key, ocsp: { file }, now: () => later }),
    ).toThrow(/OCSP response expired/);
  });

  it('a fetch callback is called again before nextUpdate (refreshBefore), and its new response is stapled', async () => {
    const first = await readFile(await ocspResponse('f1', 'V', 1));
    const second = await readFile(await ocspResponse('f2', 'R', 1));
    let calls = 0;
    let refreshed!: () => void;
    const again = new Promise<void>((r) => {
      refreshed = r;
    });
    // nextUpdate is 1 day away; refreshing 1 day minus 1.5 s before it makes the refresh due in ~1.5 s.
    const s = await serveWith({
      fetch: async () => {
        calls++;
        if (calls === 2) setImmediate(refreshed);
        return calls === 1 ? first : second;
      },
      refreshBefore: 86_400_000 - 1500,
    });
    await again;
    await new Promise((r) => setImmediate(r));
    const r = await sClient(s.port, ['-status'], 300);
    expect(r.stdout).toMatch(/Cert Status: revoked/);
    expect(calls).toBe(2);
  });
});
