import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, peer, rejections, removeDir, run, tempDir, until } from './helpers.js';

// `sock listen --config <file>`: the guards/TLS policy file. Certificates come from `sock cert`; the
// file names them relative to its own directory.
let dir: string;

beforeAll(async () => {
  dir = tempDir({ suite: true });
  expect((await run(['cert', 'init', '--dir', join(dir, 'pki')])).code).toBe(0);
  const server = await run([
    'cert',
    'issue',
    '--dir',
    join(dir, 'pki'),
    '--server',
    'localhost',
    '127.0.0.1',
  ]);
  expect(server.code).toBe(0);
  const alice = await run(['cert', 'issue', '--dir', join(dir, 'pki'), '--client', 'alice']);
  expect(alice.code).toBe(0);
});
afterAll(() => removeDir(dir));

function config(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A TLS 1.2-only handshake from node:tls: did the server accept it? */
function tls12Accepted(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: readFileSync(join(dir, 'pki', 'ca.crt')),
      maxVersion: 'TLSv1.2',
    });
    s.once('secureConnect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('sock listen --config with a tls section', () => {
  it('serves TLS from the file (paths relative to it), with its guards section on too', async () => {
    const file = config(
      'tls.yaml',
      'tls:\n  cert: pki/server.crt\n  key: pki/server.key\nguards:\n  ip:\n    deny: [127.0.0.13]\n',
    );
    // Started from another working directory: the paths are the file's, not the cwd's.
    const server = await listen(['0', '--log', 'json', '--config', file]);
    expect(server.line).toContain('(tls intermediate, echo');
    expect(server.line).toContain(`guards: config ${file}`);
    const ok = await run(
      ['connect', '127.0.0.1', String(server.port), '--tls', '--tls-ca', join(dir, 'pki', 'ca.crt')],
      { input: 'over tls\n' },
    );
    expect(ok.stdout).toBe('over tls\n');
    expect(ok.code).toBe(0);
    const denied = await peer(server.port, { localAddress: '127.0.0.13' });
    await denied.closed;
    await until(() => rejections(server).includes('ip-denied'), 5000, 'ip-denied from the guards section');
  });

  it('clientAuth: require in the file refuses a client without a certificate', async () => {
    const file = config(
      'mtls.json',
      JSON.stringify({
        tls: { cert: 'pki/server.crt', key: 'pki/server.key', ca: 'pki/ca.crt', clientAuth: 'require' },
      }),
    );
    const server = await listen(['0', '--log', 'json', '--config', file]);
    expect(server.line).toContain('client-cert require');
    expect(server.line).toContain('guards: off');
    const tls = ['--tls', '--tls-ca', join(dir, 'pki', 'ca.crt')];
    const anonymous = await run(['connect', 'localhost', String(server.port), ...tls], { input: 'nobody\n' });
    expect(anonymous.stdout).toBe('');
    await until(() => rejections(server).includes('tls-no-client-cert'), 5000, 'tls-no-client-cert');
    const alice = await run(
      [
        'connect',
        'localhost',
        String(server.port),
        ...tls,
        '--tls-cert',
        join(dir, 'pki', 'alice.crt'),
        '--tls-key',
        join(dir, 'pki', 'alice.key'),
      ],
      { input: 'alice\n' },
    );
    expect(alice.stdout).toBe('alice\n');
  });

  it('flags override the file: --tls-profile intermediate over profile: modern', async () => {
    const file = config(
      'modern.yaml',
      'tls:\n  cert: pki/server.crt\n  key: pki/server.key\n  profile: modern\n',
    );
    const modern = await listen(['0', '--config', file]);
    expect(modern.line).toContain('(tls modern,');
    expect(await tls12Accepted(modern.port)).toBe(false);
    const overridden = await listen(['0', '--config', file, '--tls-profile', 'intermediate']);
    expect(overridden.line).toContain('(tls intermediate,');
    expect(await tls12Accepted(overridden.port)).toBe(true);
  });

  it('a plain guards policy at the top level still works (older format)', async () => {
    const file = config('plain.yaml', 'ip:\n  deny: [127.0.0.13]\n');
    const server = await listen(['0', '--log', 'json', '--config', file]);
    expect(server.line).toContain('(tcp, echo');
    const denied = await peer(server.port, { localAddress: '127.0.0.13' });
    await denied.closed;
    await until(() => rejections(server).includes('ip-denied'), 5000, 'ip-denied');
  });
});

describe('bad --config files exit 2 naming the field', () => {
  const cases: Array<[string, string, RegExp]> = [
    [
      'bad-profile.yaml',
      'tls:\n  cert: pki/server.crt\n  key: pki/server.key\n  profile: superb\n',
      /config\.tls\.profile: expected one of intermediate, modern, got "superb"/,
    ],
    [
      'bad-auth.json',
      '{"tls":{"cert":"pki/server.crt","key":"pki/server.key","clientAuth":"always"}}',
      /config\.tls\.clientAuth: expected one of none, optional, require, got "always"/,
    ],
    [
      'bad-cert.yaml',
      'tls:\n  cert: pki/nope.crt\n  key: pki/server.key\n',
      /config\.tls\.cert: no such file: /,
    ],
    ['bad-field.yaml', 'tls:\n  certificate: x\n', /config\.tls\.certificate: unknown field/],
    [
      'bad-spiffe.yaml',
      'tls:\n  cert: pki/server.crt\n  key: pki/server.key\n  ca: pki/ca.crt\n  allowSpiffe: [http://x]\n',
      /config\.tls\.allowSpiffe\[0\]: /,
    ],
    ['bad-guards.yaml', 'guards:\n  connections: { max: many }\n', /config\.guards\.connections\.max: /],
    ['bad-top.yaml', 'tls: {}\nrates: {}\n', /config\.rates: unknown field/],
    ['no-key.yaml', 'tls:\n  cert: pki/server.crt\n', /--tls needs --tls-cert <file> and --tls-key <file>/],
    ['bad.json', '{"tls": ', /not valid JSON/],
  ];
  for (const [name, text, message] of cases) {
    it(name, async () => {
      const r = await run(['listen', '0', '--config', config(name, text)]);
      expect(r.stderr).toMatch(/^sock: /);
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(2);
    });
  }
});

describe('sock listen --config reloads', () => {
  it('the whole policy on change and on SIGHUP; a bad file keeps the old one', async () => {
    const file = config('reload.yaml', 'guards:\n  ip:\n    deny: [127.0.0.14]\n');
    const server = await listen(['0', '--log', 'json', '--config', file]);
    const denied = await peer(server.port, { localAddress: '127.0.0.14' });
    await denied.closed;
    // Atomic replace: the new file is written beside and renamed over the old.
    const replace = (text: string) => {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    };
    replace('guards:\n  ip:\n    deny: [127.0.0.15]\n');
    await until(() => server.stderr().includes('policy reloaded'), 5000, 'reload');
    const now = await peer(server.port, { localAddress: '127.0.0.15' });
    await now.closed;
    const free = await peer(server.port, { localAddress: '127.0.0.14' });
    free.socket.write('hi\n');
    await until(() => free.received().includes('hi'), 5000, 'echo from the no longer denied address');
    free.socket.destroy();
    replace('guards:\n  ip:\n    deny: [not-an-address]\n');
    await until(() => server.stderr().includes('policy reload failed'), 5000, 'reload failure');
    const still = await peer(server.port, { localAddress: '127.0.0.15' });
    await still.closed;
    // SIGHUP reloads too.
    const before = server.stderr().split('policy reloaded').length;
    writeFileSync(file, 'guards:\n  ip:\n    deny: [127.0.0.16]\n');
    server.child.kill('SIGHUP');
    await until(() => server.stderr().split('policy reloaded').length > before, 5000, 'SIGHUP reload');
    expect(rejections(server).filter((r) => r === 'ip-denied').length).toBeGreaterThanOrEqual(3);
    await server.stop();
  });
});
