import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, reconnect, type SockServer } from '@sock/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type Sshd, sshKeygen, startSshd, tempDir } from '../../../test-support/openssh.mjs';
import { generateSshKey, SshReason, sha256Fingerprint, sshTransport } from '../src/index.js';
import { echoThrough as echoThroughPort } from './echo-through.js';

const user = userInfo().username;
let sshd: Sshd;
let echo: SockServer;
let echoPort: number;

beforeAll(async () => {
  sshd = await startSshd();
  echo = createServer({
    async handler(conn) {
      for await (const m of conn) await conn.send(m);
    },
  });
  echoPort = (await echo.listen({ host: '127.0.0.1', port: 0 })).port;
});

afterAll(async () => {
  await echo?.close({ drainMs: 100 });
  await sshd?.stop();
});

function knownHosts(name: string, line: string): string {
  const path = join(sshd.dir, name);
  writeFileSync(path, `${line}\n`);
  return path;
}

function echoThrough(transport: ReturnType<typeof sshTransport>, payload: string): Promise<string> {
  return echoThroughPort(transport, echoPort, payload);
}

describe('sshTransport through a real OpenSSH sshd', () => {
  it('reaches a sock echo server with the right host key, many connections on one SSH connection', async () => {
    const [type, key] = sshd.hostKeyPub.split(' ');
    const transport = sshTransport({
      via: `ssh://${user}@127.0.0.1:${sshd.port}`,
      privateKey: readFileSync(sshd.clientKey),
      agent: false,
      knownHosts: knownHosts('known_hosts', `[127.0.0.1]:${sshd.port} ${type} ${key}`),
    });
    try {
      const replies = await Promise.all([1, 2, 3].map((i) => echoThrough(transport, `hello ${i}`)));
      expect(replies).toEqual(['hello 1', 'hello 2', 'hello 3']);
      expect(transport.hostFingerprint).toBe(sha256Fingerprint(Buffer.from(key!, 'base64')));
      // Every channel went to the echo server from sshd (one TCP peer), over one SSH connection.
      expect(transport.stats()).toEqual({ connections: 1, channels: 3 });
    } finally {
      await transport.close();
    }
  });

  it('refuses an unknown host key with ssh-host-key-unknown', async () => {
    const transport = sshTransport({
      via: `ssh://${user}@127.0.0.1:${sshd.port}`,
      privateKey: readFileSync(sshd.clientKey),
      agent: false,
      knownHosts: knownHosts('empty_known_hosts', `[127.0.0.1]:1 ${sshd.hostKeyPub}`),
    });
    await expect(echoThrough(transport, 'x')).rejects.toMatchObject({
      code: 'ERR_SOCK_REJECTED',
      reason: SshReason.HOST_KEY_UNKNOWN,
    });
  });

  it('refuses a changed host key with ssh-host-key-mismatch (known_hosts and pinned fingerprint)', async () => {
    const other = generateSshKey().publicKey.split(' ');
    const transport = sshTransport({
      via: `ssh://${user}@127.0.0.1:${sshd.port}`,
      privateKey: readFileSync(sshd.clientKey),
      agent: false,
      knownHosts: knownHosts('changed_known_hosts', `[127.0.0.1]:${sshd.port} ${other[0]} ${other[1]}`),
    });
    await expect(echoThrough(transport, 'x')).rejects.toMatchObject({ reason: SshReason.HOST_KEY_MISMATCH });
    const pinned = sshTransport({
      via: `ssh://${user}@127.0.0.1:${sshd.port}`,
      privateKey: readFileSync(sshd.clientKey),
      agent: false,
      fingerprints: [generateSshKey().fingerprint],
    });
    await expect(echoThrough(pinned, 'x')).rejects.toMatchObject({ reason: SshReason.HOST_KEY_MISMATCH });
  });

  it('authenticates with an encrypted OpenSSH key and through ssh-agent; refuses an unauthorized key', async () => {
    const [type, key] = sshd.hostKeyPub.split(' ');
    const kh = knownHosts('kh_auth', `[127.0.0.1]:${sshd.port} ${type} ${key}`);
    const encrypted = join(sshd.dir, 'encrypted');
    appendFileSync(
      join(sshd.dir, 'authorized_keys'),
      `${await sshKeygen(encrypted, { passphrase: 'correct horse', rounds: 2 })}\n`,
    );
    const via = `ssh://${user}@127.0.0.1:${sshd.port}`;
    const withPassphrase = sshTransport({
      via,
      privateKey: readFileSync(encrypted),
      passphrase: 'correct horse',
      agent: false,
      knownHosts: kh,
    });
    expect(await echoThrough(withPassphrase, 'locked')).toBe('locked');
    await withPassphrase.close();
    const wrong = sshTransport({
      via,
      privateKey: readFileSync(encrypted),
      passphrase: 'wrong',
      agent: false,
      knownHosts: kh,
    });
    await expect(echoThrough(wrong, 'x')).rejects.toMatchObject({ code: 'ERR_SOCK_INVALID_OPTION' });

    const agentSocket = join(sshd.dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', agentSocket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 200; i++) {
        const added = await new Promise<number | null>((resolve) => {
          const add = spawn('ssh-add', [sshd.clientKey], {
            env: { ...process.env, SSH_AUTH_SOCK: agentSocket },
            stdio: 'ignore',
          });
          add.once('exit', resolve);
        });
        if (added === 0) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      const viaAgent = sshTransport({ via, agent: agentSocket, knownHosts: kh });
      expect(await echoThrough(viaAgent, 'agent')).toBe('agent');
      await viaAgent.close();
    } finally {
      agent.kill();
      await once(agent, 'exit');
    }

    const strangerPath = join(sshd.dir, 'stranger');
    await sshKeygen(strangerPath);
    const stranger = sshTransport({
      via,
      privateKey: readFileSync(strangerPath),
      agent: false,
      knownHosts: kh,
    });
    await expect(echoThrough(stranger, 'x')).rejects.toMatchObject({ reason: SshReason.AUTH_REJECTED });
  }, 30_000);

  it('reconnects through core backoff when the SSH connection drops', async () => {
    const [type, key] = sshd.hostKeyPub.split(' ');
    const transport = sshTransport({
      via: `ssh://${user}@127.0.0.1:${sshd.port}`,
      privateKey: readFileSync(sshd.clientKey),
      agent: false,
      knownHosts: knownHosts('kh_reconnect', `[127.0.0.1]:${sshd.port} ${type} ${key}`),
    });
    const abort = new AbortController();
    const seen: string[] = [];
    let round = 0;
    for await (const conn of reconnect({
      host: '127.0.0.1',
      port: echoPort,
      transport,
      signal: abort.signal,
      retry: { attempts: 5, initialDelayMs: 10 },
    })) {
      await conn.send(Buffer.from(`round ${round}`));
      for await (const m of conn) {
        seen.push(Buffer.from(m).toString());
        break;
      }
      round++;
      if (round === 2) {
        abort.abort();
        await conn.close();
        break;
      }
      // Drop the whole SSH connection under the channel.
      await transport.close();
    }
    await transport.close();
    expect(seen).toEqual(['round 0', 'round 1']);
    expect(transport.stats().connections).toBe(2);
  }, 30_000);

  it('asks for the host key type known_hosts has: a server known by its RSA key is not refused for its Ed25519 one', async () => {
    const { dir, cleanup } = tempDir('rsa');
    try {
      const rsaPub = await sshKeygen(join(dir, 'rsa'), { type: 'rsa' });
      const both = await startSshd([`HostKey ${join(dir, 'rsa')}`]);
      try {
        const [type, key] = rsaPub.split(' ');
        const path = join(dir, 'known_hosts');
        writeFileSync(path, `[127.0.0.1]:${both.port} ${type} ${key}\n`);
        const transport = sshTransport({
          via: `ssh://${user}@127.0.0.1:${both.port}`,
          privateKey: readFileSync(both.clientKey),
          agent: false,
          knownHosts: path,
        });
        const conn = await connect({ host: '127.0.0.1', port: echoPort, transport });
        await conn.close();
        await transport.close();
        expect(transport.hostFingerprint).toBe(sha256Fingerprint(Buffer.from(key!, 'base64')));
      } finally {
        await both.stop();
      }
    } finally {
      cleanup();
    }
  }, 30_000);

  it('insecureTrustOnFirstUse records an unknown host (hashed) and still refuses a changed key', async () => {
    const path = join(sshd.dir, 'tofu_known_hosts');
    const via = `ssh://${user}@127.0.0.1:${sshd.port}`;
    const base = { via, privateKey: readFileSync(sshd.clientKey), agent: false as const, knownHosts: path };
    const first = sshTransport({ ...base, insecureTrustOnFirstUse: true });
    expect(await echoThrough(first, 'first')).toBe('first');
    await first.close();
    const recorded = readFileSync(path, 'utf8');
    expect(recorded).toMatch(/^\|1\|\S+\|\S+ ssh-ed25519 \S+\n$/);
    expect(recorded).not.toContain('127.0.0.1');
    // Now known: a strict client accepts it.
    const strict = sshTransport(base);
    expect(await echoThrough(strict, 'known')).toBe('known');
    await strict.close();
    // A different key under the same name is a mismatch even with TOFU on.
    const other = generateSshKey().publicKey.split(' ');
    writeFileSync(path, `[127.0.0.1]:${sshd.port} ${other[0]} ${other[1]}\n`);
    const changed = sshTransport({ ...base, insecureTrustOnFirstUse: true });
    await expect(echoThrough(changed, 'x')).rejects.toMatchObject({ reason: SshReason.HOST_KEY_MISMATCH });
  });

  it('a closed SSH port is ERR_SOCK_CONNECTION_REFUSED, which core retries', async () => {
    const port = await freePort();
    const transport = sshTransport({
      via: `ssh://${user}@127.0.0.1:${port}`,
      privateKey: readFileSync(sshd.clientKey),
      agent: false,
    });
    await expect(
      connect({ host: '127.0.0.1', port: echoPort, transport, retry: { attempts: 2, initialDelayMs: 5 } }),
    ).rejects.toMatchObject({ code: 'ERR_SOCK_CONNECTION_REFUSED' });
    expect(transport.stats().connections).toBe(2);
  });

  it('refuses options that would weaken it', () => {
    expect(() => sshTransport({ via: 'ssh://u:pw@h', agent: false, privateKey: 'x' })).toThrow(
      /password in the URL/,
    );
    expect(() => sshTransport({ via: 'ssh://h', agent: false, privateKey: 'x' })).toThrow(/names no user/);
    expect(() => sshTransport({ via: 'ssh://u@h', agent: false })).toThrow(/privateKey, an ssh-agent/);
    expect(() => sshTransport({ via: 'ssh://u@h', agent: false, privateKey: 'x', fingerprints: [] })).toThrow(
      /empty/,
    );
    expect(() =>
      sshTransport({ via: 'ssh://u@h', agent: false, privateKey: 'x', fingerprints: ['MD5:00'] }),
    ).toThrow(/SHA256/);
  });
});
