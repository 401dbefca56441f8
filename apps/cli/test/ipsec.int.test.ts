import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IP,
  inNetns,
  type Lab,
  type LabSide,
  labMissing,
  startLab,
} from '../../../test-support/ipsec-lab.mjs';
import { type RunResult, run, SOCK, until } from './helpers.js';

const missing = labMissing();
if (missing && process.env.CI === 'true') throw new Error(`ipsec lab: ${missing}`);

/** `sock <args>` inside a side's namespace, as an operator on that host would run it. */
function sockIn(side: LabSide, args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(IP, ['netns', 'exec', side.netns, process.execPath, SOCK, ...args], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const t = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe.skipIf(missing)('sock ipsec between two namespaces', () => {
  let lab: Lab;
  const config = (side: 'a' | 'b', extra = '') => {
    const me = lab[side];
    const peer = side === 'a' ? lab.b : lab.a;
    const file = join(lab.dir, `${side}.yaml`);
    writeFileSync(
      file,
      `# ${side} side
name: net
localAddress: ${me.outer}
remoteAddress: ${peer.outer}
local:
  cert: pki/${side}.crt
  key: pki/${side}.key
remote:
  id: ${peer.name}.ipsec.test
  ca: pki/ca.crt
localTs: [${me.inner}/32]
remoteTs: [${peer.inner}/32]
${extra}`,
    );
    return file;
  };

  // Every step is a node start-up (~0.5-1 s each on a busy 2-core machine): generous timeouts.
  beforeAll(async () => {
    const pki = () => join(lab.dir, 'pki');
    lab = await startLab();
    expect((await run(['cert', 'init', '--dir', pki()], { timeoutMs: 30_000 })).code).toBe(0);
    const issued = await Promise.all(
      ['a', 'b'].map((s) =>
        run(['cert', 'issue', '--dir', pki(), '--server', `${s}.ipsec.test`, '--name', s], {
          timeoutMs: 30_000,
        }),
      ),
    );
    expect(issued.map((r) => r.code)).toEqual([0, 0]);
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  it('up, status, watch, down — with fail-closed routes left in place', async () => {
    const b = await sockIn(lab.b, ['ipsec', 'up', config('b', 'initiate: false\n'), '--vici', lab.b.vici]);
    expect(b.stderr).toBe('');
    expect(b.stdout).toBe('loaded net (waiting for the peer), fail-closed routes installed\n');
    expect(b.code).toBe(0);

    const watch = spawn(
      IP,
      [
        'netns',
        'exec',
        lab.a.netns,
        process.execPath,
        SOCK,
        'ipsec',
        'watch',
        '--json',
        '--vici',
        lab.a.vici,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let watched = '';
    let watchErr = '';
    watch.stdout.on('data', (d) => {
      watched += d;
    });
    watch.stderr.on('data', (d) => {
      watchErr += d;
    });
    const watchExit = new Promise<number | null>((r) => watch.on('close', r));
    try {
      await until(() => watchErr.includes('watching'), 10_000, 'sock ipsec watch to register');

      const a = await sockIn(lab.a, ['ipsec', 'up', config('a'), '--vici', lab.a.vici, '--json']);
      expect(a.code).toBe(0);
      expect(a.stderr).toMatch(/charon: CHILD_SA net\{\d+\} established/); // the daemon's log as progress
      const up = JSON.parse(a.stdout);
      expect(up).toMatchObject({
        name: 'net',
        initiated: true,
        failClosed: true,
        sa: { state: 'ESTABLISHED' },
      });
      const routes = await inNetns(lab.a, [IP, 'route', 'show', 'table', 'main', lab.b.inner]);
      expect(routes.stdout).toMatch(/^unreachable 10\.2\.0\.1/m);

      const status = await sockIn(lab.a, ['ipsec', 'status', '--json', '--vici', lab.a.vici]);
      expect(status.code).toBe(0);
      const s = JSON.parse(status.stdout);
      expect(s.connections.map((c: { name: string }) => c.name)).toEqual(['net']);
      expect(s.sas[0]).toMatchObject({
        name: 'net',
        state: 'ESTABLISHED',
        children: [{ name: 'net', state: 'INSTALLED' }],
      });
      const text = await sockIn(lab.a, ['ipsec', 'status', '--vici', lab.a.vici]);
      expect(text.stdout).toMatch(
        /^net: ESTABLISHED 192\.0\.2\.1 <=> 192\.0\.2\.2 AES_GCM_16-256 CURVE_25519\n {2}net: INSTALLED TUNNEL/,
      );

      const down = await sockIn(lab.a, ['ipsec', 'down', 'net', '--vici', lab.a.vici, '--quiet']);
      expect(down).toMatchObject({ code: 0, stdout: 'down net\n', stderr: '' });
      await until(
        () => watched.includes('"child-updown"') && watched.includes('"up":false'),
        10_000,
        'down event',
      );
      const events = watched
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; up: boolean });
      expect(events.map((e) => `${e.type} ${e.up}`)).toEqual(
        expect.arrayContaining(['ike-updown true', 'child-updown true', 'child-updown false']),
      );
      // Down, but still refused rather than sent in the clear.
      expect((await inNetns(lab.a, [IP, 'route', 'get', lab.b.inner]).catch((e) => e)).stderr).toMatch(
        /unreachable|No route/i,
      );
    } finally {
      watch.kill('SIGINT');
    }
    expect(await watchExit).toBe(0);
  }, 90_000);

  it('names the field of a bad config and exits 2, before anything reaches charon', async () => {
    const cases: Array<[string, RegExp]> = [
      ['mode: beet\n', /config\.mode: expected one of tunnel, transport/],
      ['psk: hunter2\n', /config\.psk: unknown field/],
      [
        'ikeProposals: [aes128-sha1-modp1024]\n',
        /config\.ikeProposals\[0\]: "sha1" is not in the safe set.*ERR_SOCK_IPSEC_INSECURE/,
      ],
      ['failClosed: maybe\n', /config\.failClosed: expected true or false/],
      ['dpdDelaySeconds: 0\n', /config\.dpdDelaySeconds: "0" must be a whole number of seconds/],
    ];
    // In parallel (each is a node start-up); a config is written per case.
    const results = await Promise.all(
      cases.map(([extra], i) => {
        const file = config('a', extra).replace(/a\.yaml$/, `bad-${i}.yaml`);
        writeFileSync(file, readFileSync(config('a', extra)));
        return run(['ipsec', 'up', file, '--vici', lab.a.vici], { timeoutMs: 45_000 });
      }),
    );
    results.forEach((r, i) => {
      expect(r.stderr).toMatch(/^sock: /);
      expect(r.stderr).toMatch(cases[i]![1]);
      expect(r.code).toBe(2);
    });
    const device = await run(['ipsec', 'up', '/dev/zero', '--vici', lab.a.vici], { timeoutMs: 30_000 });
    expect(device).toMatchObject({ code: 2, stderr: 'sock: /dev/zero: not a regular file\n' });
    const noDaemon = await run(['ipsec', 'status', '--vici', join(lab.dir, 'nope.sock')], {
      timeoutMs: 30_000,
    });
    expect(noDaemon.code).toBe(1);
    expect(noDaemon.stderr).toMatch(
      /^sock: cannot reach charon's VICI socket .*\(ERR_SOCK_IPSEC_CONNECT_FAILED\)\n$/,
    );
    const unknown = await sockIn(lab.a, ['ipsec', 'down', 'nosuch', '--vici', lab.a.vici, '--quiet']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(
      /^sock: terminate nosuch: charon refused terminate: .*ERR_SOCK_IPSEC_COMMAND_FAILED/,
    );
    const badName = await run(['ipsec', 'down', '../x', '--vici', lab.a.vici], { timeoutMs: 30_000 });
    expect(badName.code).toBe(2);
    expect(badName.stderr).toMatch(/^sock: name: "\.\.\/x" is not a name/);
  }, 90_000);
});
