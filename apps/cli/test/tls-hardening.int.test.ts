import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { issueClientCert } from '@sock/tls/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, removeDir, run, tempDir } from './helpers.js';

let pki: string;

beforeAll(async () => {
  pki = tempDir({ suite: true });
  expect((await run(['cert', 'init', '--dir', pki])).code).toBe(0);
  expect((await run(['cert', 'issue', '--dir', pki, '--server', 'localhost', '127.0.0.1'])).code).toBe(0);
});
afterAll(() => removeDir(pki));

const serverFlags = () => [
  '--tls',
  '--tls-cert',
  join(pki, 'server.crt'),
  '--tls-key',
  join(pki, 'server.key'),
];

describe('sock cert lifetimes', () => {
  it('issues 90-day leaves by default; refuses more than 366 days without --insecure-long-validity (exit 2); help says so', async () => {
    const cert = new X509Certificate(readFileSync(join(pki, 'server.crt')));
    expect(Math.round((Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000)).toBe(90);
    const issueLong = [
      'cert',
      'issue',
      '--dir',
      pki,
      '--server',
      'a.test',
      '--name',
      'long',
      '--days',
      '400',
    ];
    const long = await run(issueLong);
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/at most 366 days.*--insecure-long-validity/);
    const forced = await run([...issueLong, '--insecure-long-validity']);
    expect(forced.code).toBe(0);
    const help = await run(['cert', 'issue', '--help']);
    expect(help.stdout).toMatch(/default 90, at most\s+366/);
  });
});

describe('sock connect is told it was refused', () => {
  it('exits 1 with reason tls-no-client-cert when the server requires a certificate it did not send', async () => {
    const server = await listen([
      '0',
      ...serverFlags(),
      '--tls-ca',
      join(pki, 'ca.crt'),
      '--require-client-cert',
    ]);
    const r = await run(
      ['connect', '127.0.0.1', String(server.port), '--tls', '--tls-ca', join(pki, 'ca.crt'), '--json'],
      { input: 'hello\n' },
    );
    expect(r.code).toBe(1);
    const end = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string; ok: boolean; reason?: string })
      .find((e) => e.event === 'end');
    expect(end).toMatchObject({ ok: false, reason: 'tls-no-client-cert' });
    await server.stop();
  });
});

describe('sock connect exits 1 for every certificate refusal (the server sends the alert)', () => {
  const alice = 'spiffe://demo.local/user/alice';
  let other: string;

  beforeAll(async () => {
    other = tempDir({ suite: true });
    const issue = (dir: string, name: string) =>
      run(['cert', 'issue', '--dir', dir, '--client', name, '--spiffe', `spiffe://demo.local/user/${name}`]);
    expect((await issue(pki, 'alice')).code).toBe(0);
    expect((await issue(pki, 'bob')).code).toBe(0);
    expect((await run(['cert', 'init', '--dir', other])).code).toBe(0);
    expect((await issue(other, 'alice')).code).toBe(0);
    // The CLI issues no expired certificates; the dev PKI does, from the same CA.
    const ca = {
      cert: readFileSync(join(pki, 'ca.crt'), 'utf8'),
      key: readFileSync(join(pki, 'ca.key'), 'utf8'),
    };
    const expired = await issueClientCert(ca, {
      commonName: 'alice',
      spiffeId: alice,
      notBefore: new Date(Date.now() - 30 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    writeFileSync(join(pki, 'expired.crt'), expired.cert);
    writeFileSync(join(pki, 'expired.key'), expired.key, { mode: 0o600 });
  });
  afterAll(() => removeDir(other));

  /** A fresh server (listeners are stopped after each test) that admits alice only. */
  const connectAs = async (dir: string | undefined, name?: string) => {
    const refusing = await listen([
      '0',
      ...serverFlags(),
      '--tls-ca',
      join(pki, 'ca.crt'),
      '--allow-spiffe',
      alice,
    ]);
    return run(
      [
        'connect',
        '127.0.0.1',
        String(refusing.port),
        '--tls',
        '--tls-ca',
        join(pki, 'ca.crt'),
        ...(dir && name
          ? ['--tls-cert', join(dir, `${name}.crt`), '--tls-key', join(dir, `${name}.key`)]
          : []),
        '--json',
      ],
      { input: 'hello\n' },
    );
  };

  const endOf = (stderr: string) =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string; ok: boolean; reason?: string })
      .find((e) => e.event === 'end');

  for (const [what, dir, name, reason, alert] of [
    ['an expired certificate', 'pki', 'expired', 'tls-cert-expired', 'certificate_expired'],
    ['a certificate from an unknown CA', 'other', 'alice', 'tls-unknown-ca', 'unknown_ca'],
    ['no certificate', undefined, undefined, 'tls-no-client-cert', 'certificate_required'],
    ['a valid certificate the policy refuses', 'pki', 'bob', 'tls-unauthorized', 'access_denied'],
  ] as const) {
    it(`${what}: exit 1, a sock: line naming the ${alert} alert, ok:false with ${reason}`, async () => {
      const r = await connectAs(dir === 'pki' ? pki : dir === 'other' ? other : undefined, name);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`^sock: .*the ${alert} alert \\(\\d+\\): `, 'm'));
      expect(endOf(r.stderr)).toMatchObject({ ok: false, reason });
    });
  }

  it('the allowed client is served (exit 0, its line echoed)', async () => {
    const r = await connectAs(pki, 'alice');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('hello\n');
    expect(endOf(r.stderr)).toMatchObject({ ok: true });
  });
});

describe('sock listen --tls start-up', () => {
  it('warns about an Ed25519 server certificate', async () => {
    expect(
      (await run(['cert', 'issue', '--dir', pki, '--server', 'localhost', '--name', 'ed', '--ed25519'])).code,
    ).toBe(0);
    const server = await listen([
      '0',
      '--tls',
      '--tls-cert',
      join(pki, 'ed.crt'),
      '--tls-key',
      join(pki, 'ed.key'),
    ]);
    expect(server.stderr()).toMatch(/warning: the server certificate is Ed25519/);
    const check = await run(['tls-check', '127.0.0.1', String(server.port)], { timeoutMs: 60_000 });
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/serves an Ed25519 certificate/);
    await server.stop();
  });
});

describe('sock tls-check', () => {
  it('against plain node:tls finds the ten non-Mozilla suites testssl finds, and renegotiation', async () => {
    const script = `
      const tls = require('node:tls'); const fs = require('node:fs');
      const s = tls.createServer({ cert: fs.readFileSync(process.argv[1]), key: fs.readFileSync(process.argv[2]) }, (c) => c.pipe(c));
      s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
    const child = spawn(process.execPath, ['-e', script, join(pki, 'server.crt'), join(pki, 'server.key')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const [line] = await createInterface({ input: child.stdout })
        [Symbol.asyncIterator]()
        .next()
        .then((r) => [r.value as string]);
      const check = await run(['tls-check', '127.0.0.1', String(line), '--json'], { timeoutMs: 60_000 });
      expect(check.code).toBe(1);
      const report = JSON.parse(check.stdout) as {
        problems: string[];
        results: Array<{ kind: string; name: string; accepted: boolean }>;
      };
      const extra = report.problems.filter((p) => /not in Mozilla intermediate/.test(p));
      expect(extra).toHaveLength(10);
      for (const suite of [
        'ECDHE-ECDSA-AES128-SHA',
        'ECDHE-ECDSA-AES256-CCM8',
        'ECDHE-ECDSA-ARIA128-GCM-SHA256',
      ]) {
        expect(extra.some((p) => p.includes(`accepts ${suite} `))).toBe(true);
      }
      expect(report.problems).toContain(
        'accepts client-initiated renegotiation (a CPU DoS: one full handshake per request)',
      );
      // The whole OpenSSL list was probed, not a sample.
      expect(report.results.filter((r) => r.kind === 'suite').length).toBeGreaterThan(120);
    } finally {
      child.kill();
    }
  });

  it('against sock listen --tls: meets intermediate; reports tickets, certificate type and lifetime', async () => {
    const server = await listen(['0', ...serverFlags()]);
    const check = await run(['tls-check', '127.0.0.1', String(server.port), '--json'], { timeoutMs: 60_000 });
    expect(check.code, check.stdout).toBe(0);
    const report = JSON.parse(check.stdout) as {
      results: Array<{ kind: string; name: string; accepted: boolean; detail?: string }>;
    };
    const property = (name: string) => report.results.find((r) => r.kind === 'property' && r.name === name);
    expect(property('renegotiation')?.accepted).toBe(false);
    expect(property('session tickets')).toMatchObject({
      accepted: true,
      detail: 'issued (TLS 1.2), resumed',
    });
    expect(property('certificate type')?.detail).toBe('ECDSA prime256v1');
    expect(property('certificate lifetime')?.detail).toMatch(/^90 days/);
    await server.stop();
  });
});
