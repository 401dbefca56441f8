import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LabPki, labPki } from '../test/pki.js';
import { type ConnectionOptions, prepareConnection } from './connection.js';
import { createFailClosed } from './fail-closed.js';

let pki: LabPki;
let dir: string;
beforeAll(async () => {
  pki = await labPki();
  dir = mkdtempSync(join(tmpdir(), 'sock-ipsec-conn-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = (): ConnectionOptions => ({
  name: 'site-b',
  localAddress: '192.0.2.1',
  remoteAddress: '192.0.2.2',
  local: { cert: pki.a.cert, key: pki.a.key },
  remote: { id: 'b.ipsec.test', ca: pki.ca.cert },
  localTs: ['10.1.0.7/24'],
  remoteTs: ['10.2.0.0/24'],
});
const fails = (patch: (c: ConnectionOptions) => void, code: string, field?: string) => {
  const c = base();
  patch(c);
  return expect(prepareConnection(c)).rejects.toMatchObject({
    code,
    ...(field ? { details: expect.objectContaining({ field }) } : {}),
  });
};

describe('connection options', () => {
  it('build an IKEv2, certificate-only, AES-GCM load-conn with rekeying on', async () => {
    const p = await prepareConnection(base());
    // biome-ignore lint/suspicious/noExplicitAny: reading a nested test fixture
    const conn = p.message['site-b'] as any;
    expect(conn.version).toBe('2');
    expect(conn.local).toMatchObject({ auth: 'pubkey', id: 'a.ipsec.test' });
    expect(conn.remote).toMatchObject({ auth: 'pubkey', id: 'b.ipsec.test' });
    expect(conn.proposals).toEqual(['aes256gcm16-aes128gcm16-prfsha384-prfsha256-curve25519-ecp384-ecp256']);
    expect(conn.rekey_time).toBe('14400s');
    expect(conn.children['site-b']).toMatchObject({
      mode: 'tunnel',
      local_ts: ['10.1.0.0/24'], // canonical: host bits cleared
      remote_ts: ['10.2.0.0/24'],
      rekey_time: '3600s',
      start_action: 'none',
    });
    expect(p.key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(JSON.stringify(p.message)).not.toMatch(/psk|ikev1|sha1|modp1024|modp2048/i);
  });

  it('asks for transport mode when told, selectors and all', async () => {
    const c = base();
    c.mode = 'transport';
    c.localTs = ['192.0.2.1'];
    c.remoteTs = ['192.0.2.2/32'];
    const child = ((await prepareConnection(c)).message['site-b'] as Record<string, Record<string, unknown>>)
      .children!['site-b'];
    expect(child).toMatchObject({
      mode: 'transport',
      local_ts: ['192.0.2.1/32'],
      remote_ts: ['192.0.2.2/32'],
    });
  });

  it('reads certificates and keys from absolute paths', async () => {
    for (const [f, v] of [
      ['a.crt', pki.a.cert],
      ['a.key', pki.a.key],
      ['ca.crt', pki.ca.cert],
    ] as const)
      writeFileSync(join(dir, f), v);
    const c = base();
    c.local = { cert: { path: join(dir, 'a.crt') }, key: { path: join(dir, 'a.key') } };
    c.remote.ca = { path: join(dir, 'ca.crt') };
    await expect(prepareConnection(c)).resolves.toMatchObject({ name: 'site-b' });
    await fails(
      (x) => (x.local.cert = { path: 'a.crt' }),
      'ERR_SOCK_IPSEC_INVALID_OPTION',
      'local.cert.path',
    );
    await fails(
      (x) => (x.local.cert = { path: join(dir, 'missing.crt') }),
      'ERR_SOCK_IPSEC_INVALID_OPTION',
      'local.cert.path',
    );
    await fails((x) => (x.local.cert = { path: dir }), 'ERR_SOCK_IPSEC_INVALID_OPTION', 'local.cert.path');
  });

  it('validate every name, address, CIDR and identity before anything reaches the daemon', async () => {
    const bad = 'ERR_SOCK_IPSEC_INVALID_OPTION';
    await fails((c) => (c.name = 'a b'), bad, 'name');
    await fails((c) => (c.name = '../x'), bad, 'name');
    await fails((c) => (c.name = 'x'.repeat(65)), bad, 'name');
    await fails((c) => (c.localAddress = '192.0.2.1; reboot'), bad, 'localAddress');
    await fails((c) => (c.remoteAddress = '10.0.0.0/8'), bad, 'remoteAddress');
    await fails((c) => (c.remoteAddress = 'gw.example'), bad, 'remoteAddress');
    await fails((c) => (c.localTs = ['10.1.0.0/33']), bad, 'localTs[0]');
    await fails((c) => (c.remoteTs = []), bad, 'remoteTs');
    await fails((c) => (c.remoteTs = ['10.2.0.0/24', 'dynamic']), bad, 'remoteTs[1]');
    await fails((c) => (c.remote.id = '%any'), bad, 'remote.id');
    await fails((c) => (c.remote.id = '*'), bad, 'remote.id');
    await fails((c) => (c.remote.id = 'a"b'), bad, 'remote.id');
    await fails((c) => (c.mode = 'beet' as never), bad, 'mode');
    await fails((c) => ((c as unknown as Record<string, unknown>).psk = 'secret'), bad, 'psk');
    await fails((c) => ((c as unknown as Record<string, unknown>).version = 1), bad, 'version');
    await fails((c) => (c.ikeRekeySeconds = 0), bad, 'ikeRekeySeconds');
    await fails((c) => (c.local.key = pki.b.key), bad, 'local.key'); // not the certificate's key
    await fails((c) => (c.remote.ca = pki.b.cert), bad, 'remote.ca'); // not a CA
    await fails((c) => (c.local.cert = 'a.crt'), bad, 'local.cert');
  });

  it('refuse weak proposals unless dangerouslyAllowWeakProposals', async () => {
    const weak = 'ERR_SOCK_IPSEC_INSECURE';
    await fails((c) => (c.ikeProposals = ['aes256-sha1-modp2048']), weak, 'ikeProposals[0]');
    await fails((c) => (c.ikeProposals = ['aes256gcm16-prfsha256-modp2048']), weak);
    await fails((c) => (c.espProposals = ['3des-sha256']), weak, 'espProposals[0]');
    await fails((c) => (c.espProposals = ['aes128']), weak); // CBC without integrity
    await fails((c) => (c.ikeProposals = ['default']), weak);
    await fails((c) => (c.ikeProposals = ['aes256-sha256;x']), 'ERR_SOCK_IPSEC_INVALID_OPTION');
    const c = base();
    c.ikeProposals = ['aes256-sha1-modp2048'];
    c.dangerouslyAllowWeakProposals = true;
    await expect(prepareConnection(c)).resolves.toBeDefined();
    const ok = base();
    ok.ikeProposals = ['chacha20poly1305-prfsha512-x448', 'aes256-sha384-ecp384'];
    await expect(prepareConnection(ok)).resolves.toBeDefined();
  });
});

describe('fail-closed routes', () => {
  it('run ip with argv per prefix, canonical, in the named namespace', () => {
    const g = createFailClosed({
      prefixes: ['10.2.0.9/24', '2001:db8::/64'],
      netns: 'ns-1',
      ipBinary: '/usr/sbin/ip',
    });
    expect(g.commands()).toEqual([
      ['/usr/sbin/ip', '-n', 'ns-1', '-4', 'route', 'replace', 'unreachable', '10.2.0.0/24', 'table', 'main'],
      [
        '/usr/sbin/ip',
        '-n',
        'ns-1',
        '-6',
        'route',
        'replace',
        'unreachable',
        '2001:db8::/64',
        'table',
        'main',
      ],
    ]);
  });

  it('refuse what is not a prefix, a namespace name or a safe table', () => {
    const bad = expect.objectContaining({ code: 'ERR_SOCK_IPSEC_INVALID_OPTION' });
    expect(() => createFailClosed({ prefixes: ['10.2.0.0/24 dev eth0'] })).toThrow(bad);
    expect(() => createFailClosed({ prefixes: [] })).toThrow(bad);
    expect(() => createFailClosed({ prefixes: ['10.2.0.0/24'], netns: '-all' })).toThrow(bad);
    expect(() => createFailClosed({ prefixes: ['10.2.0.0/24'], table: 220 })).toThrow(bad);
    expect(() => createFailClosed({ prefixes: ['10.2.0.0/24'], ipBinary: 'ip' })).toThrow(bad);
  });
});
