import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runSsh } from '../../../test-support/openssh.mjs';
import { built, listen, run as runSock, SOCK, tempDir, until } from './helpers.js';

/** `sock …` with room for a loaded CI machine: several node processes start per test. */
const run = (args: string[], options: Parameters<typeof runSock>[1] = {}) =>
  runSock(args, { timeoutMs: 30_000, ...options });

beforeAll(() => {
  expect(built(), 'build the CLI first: pnpm build').toBe(true);
});

const tunnels = new Set<ChildProcess>();
afterEach(() => {
  for (const t of tunnels) t.kill('SIGKILL');
  tunnels.clear();
});

/** `sock ssh keygen` for the host, `ssh-keygen` for a client, and a `sock listen --ssh` echo server. */
async function sshListener(extra: string[] = []) {
  const dir = tempDir();
  const host = join(dir, 'host');
  const keygen = await run(['ssh', 'keygen', '-f', host, '--json']);
  expect(keygen.code).toBe(0);
  const generated = JSON.parse(keygen.stdout) as { fingerprint: string; publicKey: string };
  const client = join(dir, 'client');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', client]);
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${client}.pub`));
  // A loaded CI machine must not trip the authentication deadline (its own test is in @sock/ssh).
  const deadline = ['--ssh-auth-timeout', '30s'];
  const server = await listen(
    ['0', '--ssh', '--ssh-host-key', host, '--ssh-authorized-keys', authorized, ...deadline, ...extra],
    { timeoutMs: 30_000 },
  );
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${server.port} ${generated.publicKey}\n`);
  return { dir, host, client, server, knownHosts, generated };
}

describe('sock ssh keygen', { timeout: 40_000 }, () => {
  it('writes an OpenSSH Ed25519 key (0600) that ssh-keygen reads, and refuses to overwrite', async () => {
    const dir = tempDir();
    const file = join(dir, 'k');
    const r = await run(['ssh', 'keygen', '-f', file, '-C', 'ci']);
    expect(r.code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(execFileSync('ssh-keygen', ['-y', '-f', file]).toString().trim()).toBe(
      readFileSync(`${file}.pub`, 'utf8').trim(),
    );
    expect(r.stdout.split(' ')[0]).toBe(
      execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file]).toString().split(' ')[1],
    );
    const again = await run(['ssh', 'keygen', '-f', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^sock: .*exists; pass --force/);
  });
});

describe('sock listen --ssh', { timeout: 40_000 }, () => {
  it('serves echo to OpenSSH ssh -W with an authorized key, and refuses an unknown key', async () => {
    const { dir, client, server, knownHosts } = await sshListener();
    expect(server.line).toMatch(/\(ssh service localhost:\d+, echo, /);
    const at = { knownHosts, port: server.port };
    const ok = await runSsh(['-W', `localhost:${server.port}`, 'me@127.0.0.1'], {
      ...at,
      key: client,
      input: 'over ssh\n',
    });
    expect(ok.stdout, ok.stderr).toBe('over ssh\n');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'stranger')]);
    const denied = await runSsh(['-W', `localhost:${server.port}`, 'me@127.0.0.1'], {
      ...at,
      key: join(dir, 'stranger'),
      input: 'x\n',
    });
    expect(denied.code, denied.stderr).toBe(255);
    expect(denied.stderr).toContain('Permission denied (publickey)');
  });

  it('bans an address after --ban-after failed authentications, through the firewall hook', async () => {
    const { dir, client, server, knownHosts } = await sshListener([
      '--ban-after',
      '2',
      '--firewall',
      'plan',
      '--log',
      'json',
    ]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'stranger')]);
    const at = { knownHosts, port: server.port };
    for (let i = 0; i < 2; i++)
      await runSsh(['-W', 'localhost:1', 'x@127.0.0.1'], { ...at, key: join(dir, 'stranger') });
    let refused = false;
    for (let i = 0; i < 100 && !refused; i++) {
      const r = await runSsh(['-W', `localhost:${server.port}`, 'me@127.0.0.1'], {
        ...at,
        key: client,
        input: 'x\n',
      });
      refused = r.code === 255 && /kex_exchange_identification|Connection closed|reset/.test(r.stderr);
      if (!refused) await new Promise((r) => setTimeout(r, 20));
    }
    expect(refused).toBe(true);
    const logged = () =>
      server
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; reason?: string; key?: string; code?: string });
    await until(() => logged().some((l) => /^firewall/.test(String(l.msg))), 5000, 'the firewall decision');
    const lines = logged();
    expect(lines.find((l) => l.msg === 'banned')).toMatchObject({
      reason: 'ssh-auth-failed',
      key: '127.0.0.1',
    });
    // The ban reached the firewall hook, whose anti-lockout refuses loopback (a real source gets the plan,
    // as guards.int.test.ts shows through PROXY protocol).
    expect(lines.find((l) => /^firewall/.test(String(l.msg)))).toMatchObject({
      key: '127.0.0.1',
      code: 'ERR_SOCK_FW_LOCKOUT',
    });
  });

  it('refuses flag combinations that cannot work, with exit 2', async () => {
    const noKey = await run(['listen', '0', '--ssh']);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/^sock: --ssh needs --ssh-host-key/);
    const idle = await run(['listen', '0', '--ssh', '--idle-timeout', '5s']);
    expect(idle.code).toBe(2);
    expect(idle.stderr).toContain('--idle-timeout does not apply to an --ssh listener');
    const orphan = await run(['listen', '0', '--ssh-host-key', 'x']);
    expect(orphan.stderr).toContain('SSH flags given without --ssh');
  });
});

describe('sock connect --via and sock tunnel', { timeout: 40_000 }, () => {
  it('connect --via reaches the service; a wrong pinned fingerprint is ssh-host-key-mismatch (exit 1)', async () => {
    const { client, server, knownHosts, generated } = await sshListener();
    const via = `ssh://me@127.0.0.1:${server.port}`;
    // `sock connect localhost <port> --via … --ssh-key …` plus how the host key is checked.
    const viaConnect = (...check: string[]) => [
      'connect',
      'localhost',
      String(server.port),
      '--via',
      via,
      '--ssh-key',
      client,
      ...check,
    ];
    const ok = await run(viaConnect('--ssh-known-hosts', knownHosts), { input: 'via\n' });
    expect(ok.stdout).toBe('via\n');
    expect(ok.code).toBe(0);
    const pinned = await run(viaConnect('--ssh-fingerprint', generated.fingerprint), { input: 'pin\n' });
    expect(pinned.stdout).toBe('pin\n');
    const other = JSON.parse((await run(['ssh', 'keygen', '-f', join(tempDir(), 'o'), '--json'])).stdout) as {
      fingerprint: string;
    };
    const wrong = await run(viaConnect('--ssh-fingerprint', other.fingerprint, '--json'));
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('ssh-host-key-mismatch');
    const unknown = await run(viaConnect('--ssh-known-hosts', '/dev/null'));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('ssh-host-key-unknown');
    const usage = await run(['connect', 'h', '1', '--via', via, '--tls']);
    expect(usage.code).toBe(2);
  });

  /** `sock tunnel -L` to sock's own SSH server (which serves line echo); resolves with its ready line. */
  async function startTunnel(): Promise<{ port: number; host: string }> {
    const { client, server, knownHosts } = await sshListener();
    const tunnel = spawn(
      process.execPath,
      [
        SOCK,
        'tunnel',
        '-L',
        `0:localhost:${server.port}`,
        `ssh://me@127.0.0.1:${server.port}`,
        '--ssh-key',
        client,
        '--ssh-known-hosts',
        knownHosts,
        '--json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    tunnels.add(tunnel);
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      tunnel.stdout.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      tunnel.once('exit', (code) => reject(new Error(`tunnel exited ${code}`)));
    });
    return JSON.parse(line) as { port: number; host: string };
  }

  it('tunnel -L forwards a local port through the SSH server', async () => {
    const ready = await startTunnel();
    expect(ready.host).toBe('localhost');
    const r = await run(['connect', '127.0.0.1', String(ready.port)], { input: 'one\ntwo\n' });
    expect(r.stdout).toBe('one\ntwo\n');
    const bad = await run(['tunnel', '-L', 'nonsense', 'ssh://u@h']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('-L must be [bind:]port:host:hostport');
  });

  it('tunnel -L carries a bulk transfer: 8 MiB echoed whole, whatever size the SSH channel hands over', async () => {
    // An SSH channel delivers what it has buffered (89 KB and more at once): sent as one frame, that
    // was over raw framing's 64 KiB limit and reset the tunnelled connection on its first burst.
    const ready = await startTunnel();
    const socket = netConnect({ host: '127.0.0.1', port: ready.port });
    await once(socket, 'connect');
    const line = Buffer.from(`${'a'.repeat(1023)}\n`);
    const total = 8192 * line.length;
    let received = 0;
    let wrong = 0;
    const echoed = new Promise<void>((resolve, reject) => {
      socket.on('data', (d: Buffer) => {
        for (const b of d) if (b !== 0x61 && b !== 0x0a) wrong++;
        received += d.length;
        if (received >= total) resolve();
      });
      socket.once('error', reject);
      socket.once('close', () => reject(new Error(`closed after ${received} of ${total} bytes`)));
    });
    for (let i = 0; i < 8192; i++) if (!socket.write(line)) await once(socket, 'drain');
    await echoed;
    expect({ received, wrong }).toEqual({ received: total, wrong: 0 });
    socket.destroy();
  });
});
