import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, logs, rejections, removeDir, run, tempDir, until } from './helpers.js';

let pki: string;

/** A dev PKI made with `sock cert`, as the README shows. */
async function makePki(): Promise<string> {
  const dir = tempDir({ suite: true });
  const init = await run(['cert', 'init', '--dir', dir]);
  expect(init.code).toBe(0);
  expect(init.stdout).toContain(`CA certificate: ${join(dir, 'ca.crt')}`);
  expect(init.stdout).toContain('--tls-ca');
  const server = await run(['cert', 'issue', '--dir', dir, '--server', 'localhost', '127.0.0.1', '::1']);
  expect(server.code).toBe(0);
  const alice = await run([
    'cert',
    'issue',
    '--dir',
    dir,
    '--client',
    'alice',
    '--spiffe',
    'spiffe://demo.local/user/alice',
    '--json',
  ]);
  expect(JSON.parse(alice.stdout)).toMatchObject({ kind: 'client', cert: join(dir, 'alice.crt') });
  const bob = await run([
    'cert',
    'issue',
    '--dir',
    dir,
    '--client',
    'bob',
    '--spiffe',
    'spiffe://demo.local/user/bob',
    '--ed25519',
  ]);
  expect(bob.code).toBe(0);
  return dir;
}

describe('sock cert', () => {
  beforeAll(async () => {
    pki = await makePki();
  });
  afterAll(() => removeDir(pki));

  it('writes keys 0600 and refuses to replace a CA without --force', async () => {
    expect(statSync(join(pki, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(pki, 'alice.key')).mode & 0o777).toBe(0o600);
    const again = await run(['cert', 'init', '--dir', pki]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^sock: .*ca\.key exists; pass --force/);
  });

  it('usage errors: both or neither of --server/--client, no CA, hostile names', async () => {
    const none = await run(['cert', 'issue', '--dir', pki]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/exactly one of --server <names\.\.\.> or --client <name>/);
    const noCa = await run(['cert', 'issue', '--dir', join(pki, 'nowhere'), '--client', 'x']);
    expect(noCa.code).toBe(2);
    expect(noCa.stderr).toMatch(/no CA in .*: run sock cert init/);
    const hostile = await run(['cert', 'issue', '--dir', pki, '--client', '../../etc/passwd']);
    expect(hostile.code).toBe(2);
    expect(hostile.stderr).toMatch(/--client must be a plain name/);
  });

  it('TLS round trip verified against the CA, and a --pin from sock cert pin', async () => {
    const server = await listen([
      '0',
      '--tls',
      '--tls-cert',
      join(pki, 'server.crt'),
      '--tls-key',
      join(pki, 'server.key'),
    ]);
    expect(server.line).toContain('(tls intermediate, echo');
    const ok = await run(
      ['connect', '127.0.0.1', String(server.port), '--tls', '--tls-ca', join(pki, 'ca.crt')],
      { input: 'secret\n' },
    );
    expect(ok.stdout).toBe('secret\n');
    expect(ok.code).toBe(0);
    const pin = (await run(['cert', 'pin', join(pki, 'server.crt')])).stdout.trim();
    const pinned = await run(
      ['connect', '127.0.0.1', String(server.port), '--tls', '--tls-ca', join(pki, 'ca.crt'), '--pin', pin],
      { input: 'p\n' },
    );
    expect(pinned.stdout).toBe('p\n');
    const wrongPin = await run(
      [
        'connect',
        '127.0.0.1',
        String(server.port),
        '--tls',
        '--tls-ca',
        join(pki, 'ca.crt'),
        '--pin',
        pin.replace(/^./, pin[0] === 'A' ? 'B' : 'A'),
      ],
      { input: 'p\n' },
    );
    expect(wrongPin.code).toBe(1);
    const untrusted = await run(['connect', '127.0.0.1', String(server.port), '--tls'], { input: 'x\n' });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/^sock: .*ERR_SOCK_REJECTED/);
    const insecure = await run(['connect', '127.0.0.1', String(server.port), '--tls', '--insecure'], {
      input: 'i\n',
    });
    expect(insecure.stderr).toContain('sock: warning: --insecure');
    expect(insecure.stdout).toBe('i\n');
  });

  it('mutual TLS: --require-client-cert refuses a client without one, with its reason; --allow-spiffe picks users', async () => {
    const server = await listen([
      '0',
      '--log',
      'json',
      '--ssl',
      '--ssl-cert',
      join(pki, 'server.crt'),
      '--ssl-key',
      join(pki, 'server.key'),
      '--ssl-trustfile',
      join(pki, 'ca.crt'),
      '--allow-spiffe',
      'spiffe://demo.local/user/alice',
    ]);
    expect(server.line).toContain('client-cert require, spiffe spiffe://demo.local/user/alice');
    const tls = ['--tls', '--tls-ca', join(pki, 'ca.crt')];
    const alice = await run(
      [
        'connect',
        'localhost',
        String(server.port),
        ...tls,
        '--tls-cert',
        join(pki, 'alice.crt'),
        '--tls-key',
        join(pki, 'alice.key'),
      ],
      { input: 'from alice\n' },
    );
    expect(alice.stdout).toBe('from alice\n');
    const bob = await run(
      [
        'connect',
        'localhost',
        String(server.port),
        ...tls,
        '--tls-cert',
        join(pki, 'bob.crt'),
        '--tls-key',
        join(pki, 'bob.key'),
      ],
      { input: 'from bob\n' },
    );
    expect(bob.stdout).toBe('');
    const anonymous = await run(['connect', 'localhost', String(server.port), ...tls], { input: 'nobody\n' });
    expect(anonymous.stdout).toBe('');
    await until(
      () =>
        rejections(server).includes('tls-no-client-cert') && rejections(server).includes('tls-unauthorized'),
      5000,
      'both refusals',
    );
    expect(logs(server).filter((r) => r.msg === 'open')).toHaveLength(1);
  });

  it('tls-check: meets intermediate, not modern (exit 1), and says why', async () => {
    const server = await listen([
      '0',
      '--tls',
      '--tls-cert',
      join(pki, 'server.crt'),
      '--tls-key',
      join(pki, 'server.key'),
    ]);
    const inter = await run(['tls-check', '127.0.0.1', String(server.port), '--json'], { timeoutMs: 30_000 });
    expect(inter.code).toBe(0);
    const report = JSON.parse(inter.stdout) as {
      meets: boolean;
      results: Array<{ kind: string; name: string; accepted: boolean }>;
    };
    expect(report.meets).toBe(true);
    const accepted = (name: string) => report.results.find((r) => r.name === name)?.accepted;
    expect(accepted('TLS 1.1')).toBe(false);
    expect(accepted('TLS 1.2')).toBe(true);
    expect(accepted('TLS 1.3')).toBe(true);
    expect(accepted('AES128-SHA')).toBe(false);
    const modern = await run(['tls-check', '127.0.0.1', String(server.port), '--profile', 'modern'], {
      timeoutMs: 30_000,
    });
    expect(modern.code).toBe(1);
    expect(modern.stdout).toMatch(/does not meet Mozilla modern:\n {2}- accepts TLS 1\.2/);
    const modernServer = await listen([
      '0',
      '--tls',
      '--tls-profile',
      'modern',
      '--tls-cert',
      join(pki, 'server.crt'),
      '--tls-key',
      join(pki, 'server.key'),
    ]);
    const ok = await run(['tls-check', '127.0.0.1', String(modernServer.port), '--profile', 'modern'], {
      timeoutMs: 30_000,
    });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('meets Mozilla modern');
  });

  it('TLS usage errors exit 2', async () => {
    for (const [args, message] of [
      [['listen', '0', '--tls'], /--tls needs --tls-cert <file> and --tls-key <file>/],
      [['listen', '0', '--tls-cert', 'x'], /TLS flags given without --tls/],
      [
        ['listen', '0', '--tls', '--tls-cert', '/nope.crt', '--tls-key', '/nope.key'],
        /--tls-cert: no such file/,
      ],
      [
        [
          'listen',
          '0',
          '--tls',
          '--tls-cert',
          join(pki, 'server.crt'),
          '--tls-key',
          join(pki, 'server.key'),
          '--require-client-cert',
        ],
        /need --tls-ca/,
      ],
      [
        [
          'listen',
          '0',
          '--tls',
          '--tls-cert',
          join(pki, 'server.crt'),
          '--tls-key',
          join(pki, 'server.key'),
          '--tls-profile',
          'old',
        ],
        /--tls-profile must be one of intermediate, modern/,
      ],
      [['connect', 'localhost', '1', '--pin', 'abc'], /TLS flags given without --tls/],
      [
        [
          'listen',
          '0',
          '-u',
          '--tls',
          '--tls-cert',
          join(pki, 'server.crt'),
          '--tls-key',
          join(pki, 'server.key'),
        ],
        /--udp and --tls exclude each other/,
      ],
    ] as Array<[string[], RegExp]>) {
      const r = await run(args);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(readFileSync(join(pki, 'ca.crt'), 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
  });
});
