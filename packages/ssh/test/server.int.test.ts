import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect, delimited, text } from '@sock/core';
import { createGuards } from '@sock/guards';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, sshClientArgs, sshKeygen } from '../../../test-support/openssh.mjs';
import { SshReason } from '../src/index.js';
import { runSsh, startSockSsh } from './sock-ssh.js';

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function fingerprintOf(pubPath: string): Promise<string> {
  const { execFileSync } = await import('node:child_process');
  return execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubPath]).toString().split(' ')[1]!;
}

describe("sock's SSH server against OpenSSH's ssh client", () => {
  it('ssh -W reaches the echo service with an authorized key; the service sees the SSH identity', async () => {
    const s = await startSockSsh();
    stops.push(() => s.stop());
    const r = await runSsh(['-W', 'echo:7', 'alice@127.0.0.1'], {
      knownHosts: s.knownHosts,
      key: s.clientKey,
      port: s.port,
      input: 'hello\n',
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`alice ${await fingerprintOf(`${s.clientKey}.pub`)} ssh hello\n`);
    expect(s.server.stats()).toMatchObject({ handshakes: 1, authFailures: 0, channelsTotal: 1 });
  });

  it('a subsystem route serves ssh -s; an unknown subsystem and a shell are refused', async () => {
    const s = await startSockSsh();
    stops.push(() => s.stop());
    // A second server whose only route is the subsystem "echo", served by the first one's echo service.
    const { createSshServer } = await import('../src/index.js');
    const server = createSshServer({
      hostKeys: [s.host.privateKey],
      authorizedKeys: s.authorizedKeys,
      routes: [{ subsystem: 'echo', server: s.echo }],
    });
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    stops.push(() => server.close({ drainMs: 100 }));
    writeFileSync(s.knownHosts, `[127.0.0.1]:${port} ${s.host.publicKey}\n`);
    const opts = { knownHosts: s.knownHosts, key: s.clientKey, port, input: 'sub\n' };
    const ok = await runSsh(['-s', 'dave@127.0.0.1', 'echo'], opts);
    expect(ok.stdout).toMatch(/^dave SHA256:\S+ ssh sub\n$/);
    const unknown = await runSsh(['-s', 'dave@127.0.0.1', 'sftp'], opts);
    expect(unknown.code).not.toBe(0);
    const shell = await runSsh(['-T', 'dave@127.0.0.1'], opts);
    expect(shell.code).not.toBe(0);
    expect(shell.stdout).toBe('');
  });

  it('ssh -L forwards a local port to the service', async () => {
    const s = await startSockSsh();
    stops.push(() => s.stop());
    const local = await freePort();
    const child = spawn(
      'ssh',
      [
        ...sshClientArgs({ knownHosts: s.knownHosts, key: s.clientKey, port: s.port }),
        ...['-o', 'ExitOnForwardFailure=yes', '-N', '-L', `127.0.0.1:${local}:echo:7`, 'bob@127.0.0.1'],
      ],
      { stdio: 'ignore' },
    );
    stops.push(async () => {
      if (child.exitCode === null) {
        child.kill();
        await once(child, 'exit');
      }
    });
    // Wait for ssh to listen (it does after authentication).
    let conn: Awaited<ReturnType<typeof connect<string, string>>> | undefined;
    for (let i = 0; i < 400 && !conn; i++) {
      conn = await connect<string, string>({ port: local, framing: delimited(), codec: text() }).catch(
        async () => {
          await new Promise((r) => setTimeout(r, 25));
          return undefined;
        },
      );
    }
    expect(conn).toBeDefined();
    await conn!.send('one');
    await conn!.send('two');
    const got: string[] = [];
    for await (const m of conn!) {
      got.push(m);
      if (got.length === 2) break;
    }
    await conn!.close();
    expect(got.map((g) => g.split(' ').slice(2).join(' '))).toEqual(['ssh one', 'ssh two']);
    expect(got[0]!.startsWith('bob SHA256:')).toBe(true);
  });

  it('refuses an unknown key and a from= mismatch, and a destination outside the permit list', async () => {
    const s = await startSockSsh();
    stops.push(() => s.stop());
    const strangerPub = await sshKeygen(join(s.dir, 'stranger'));
    const fencedPub = await sshKeygen(join(s.dir, 'fenced'));
    writeFileSync(s.authorizedKeys, `${s.clientKeyPub}\nfrom="10.0.0.0/8,!127.0.0.1" ${fencedPub}\n`);
    expect(strangerPub).not.toBe(fencedPub);
    const opts = { knownHosts: s.knownHosts, port: s.port, input: 'hi\n' };
    const stranger = await runSsh(['-W', 'echo:7', 'eve@127.0.0.1'], {
      ...opts,
      key: join(s.dir, 'stranger'),
    });
    expect(stranger.code).toBe(255);
    expect(stranger.stderr).toContain('Permission denied (publickey)');
    const fenced = await runSsh(['-W', 'echo:7', 'eve@127.0.0.1'], { ...opts, key: join(s.dir, 'fenced') });
    expect(fenced.code).toBe(255);
    expect(fenced.stderr).toContain('Permission denied (publickey)');
    // The same key from an address its from= allows gets in (the file was re-read on change).
    writeFileSync(s.authorizedKeys, `from="127.0.0.0/8" ${fencedPub}\n`);
    const allowed = await runSsh(['-W', 'echo:7', 'eve@127.0.0.1'], { ...opts, key: join(s.dir, 'fenced') });
    expect(allowed.stdout).toMatch(/^eve SHA256:\S+ ssh hi\n$/);
    const elsewhere = await runSsh(['-W', 'localhost:22', 'eve@127.0.0.1'], {
      ...opts,
      key: join(s.dir, 'fenced'),
    });
    expect(elsewhere.code).not.toBe(0);
    expect(elsewhere.stderr).toMatch(/administratively prohibited|open failed/);
    expect(s.server.stats().authFailures).toBe(2);
  });

  it('restrict refuses forwarding unless port-forwarding and a matching permitopen re-allow it', async () => {
    const s = await startSockSsh({ routes: [] });
    stops.push(() => s.stop());
    // routes replaced below through a fresh server with the echo route: reuse startSockSsh's default instead.
    await s.stop();
    stops.pop();
    const t = await startSockSsh();
    stops.push(() => t.stop());
    const opts = { knownHosts: t.knownHosts, port: t.port, input: 'x\n', key: t.clientKey };
    writeFileSync(t.authorizedKeys, `restrict ${t.clientKeyPub}\n`);
    const restricted = await runSsh(['-W', 'echo:7', 'u@127.0.0.1'], opts);
    expect(restricted.code).not.toBe(0);
    expect(restricted.stderr).toMatch(/administratively prohibited|open failed/);
    writeFileSync(t.authorizedKeys, `restrict,port-forwarding,permitopen="echo:7" ${t.clientKeyPub}\n`);
    const reopened = await runSsh(['-W', 'echo:7', 'u@127.0.0.1'], opts);
    expect(reopened.stdout).toMatch(/ssh x\n$/);
  });
});

describe('guards on the SSH listener', () => {
  it('repeated failed authentications ban the address: the next connection is refused at accept', async () => {
    const guards = createGuards({ strikes: { threshold: 3 }, bans: { duration: '10m' } });
    stops.push(() => guards.close());
    const s = await startSockSsh({ plugins: [guards.plugin] });
    stops.push(() => s.stop());
    await sshKeygen(join(s.dir, 'stranger'));
    const opts = { knownHosts: s.knownHosts, port: s.port, key: join(s.dir, 'stranger') };
    for (let i = 0; i < 3; i++) {
      const r = await runSsh(['-W', 'echo:7', 'eve@127.0.0.1'], opts);
      expect(r.stderr).toContain('Permission denied (publickey)');
    }
    // The strike lands when the server sees the connection close; wait for it, not for a clock.
    for (let i = 0; i < 200 && !(await guards.isBanned('127.0.0.1')); i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(await guards.isBanned('127.0.0.1')).toBe(true);
    expect(s.server.tcp.stats().rejected[SshReason.AUTH_FAILED]).toBe(3);
    // Now even the right key is refused before a byte of SSH: no identification string comes back.
    const socket = netConnect(s.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => {});
    await once(socket, 'close');
    expect(Buffer.concat(chunks).length).toBe(0);
    const good = await runSsh(['-W', 'echo:7', 'alice@127.0.0.1'], {
      ...opts,
      key: s.clientKey,
      input: 'x\n',
    });
    expect(good.code).toBe(255);
    expect(s.server.stats().authFailures).toBe(3);
  });

  it('IP policy and per-address connection limits decide at accept, before a byte of SSH', async () => {
    const deny = createGuards({ ip: { deny: ['127.0.0.0/8'] } });
    stops.push(() => deny.close());
    const denied = await startSockSsh({ plugins: [deny.plugin] });
    stops.push(() => denied.stop());
    const silent = netConnect(denied.port, '127.0.0.1');
    const got: Buffer[] = [];
    silent.on('data', (d) => got.push(d));
    silent.on('error', () => {});
    await once(silent, 'close');
    expect(Buffer.concat(got).length).toBe(0);
    expect(denied.server.tcp.stats().rejected['ip-denied']).toBe(1);
    expect(denied.server.stats().handshakes).toBe(0);

    const limit = createGuards({ connections: { perKey: 1 } });
    stops.push(() => limit.close());
    const limited = await startSockSsh({ plugins: [limit.plugin] });
    stops.push(() => limited.stop());
    const holder = netConnect(limited.port, '127.0.0.1');
    holder.on('error', () => {});
    await once(holder, 'data'); // the server's identification string: the first connection is in
    const second = await runSsh(['-W', 'echo:7', 'alice@127.0.0.1'], {
      knownHosts: limited.knownHosts,
      key: limited.clientKey,
      port: limited.port,
      input: 'x\n',
    });
    expect(second.code).toBe(255);
    expect(second.stdout).toBe('');
    expect(limited.server.tcp.stats().rejected['conn-limit-ip']).toBe(1);
    holder.destroy();
  });

  it('a client that never authenticates is closed at the authentication deadline', async () => {
    const s = await startSockSsh({ authTimeoutMs: 300 });
    stops.push(() => s.stop());
    const socket = netConnect(s.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.write('SSH-2.0-slow\r\n');
    await once(socket, 'close');
    expect(s.server.tcp.stats().rejected).toEqual({ [SshReason.AUTH_TIMEOUT]: 1 });
  });
});
