import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer, type SockServer } from '@sock/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateHostKey, SshReason, sha256Fingerprint, sshTransport } from '../src/index.js';
import { type Sshd, startSshd } from './openssh.js';

const user = process.env.USER ?? 'root';
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

async function echoThrough(transport: ReturnType<typeof sshTransport>, payload: string): Promise<string> {
  const conn = await connect({ host: '127.0.0.1', port: echoPort, transport });
  await conn.send(Buffer.from(payload));
  for await (const m of conn) {
    await conn.close();
    return Buffer.from(m).toString();
  }
  throw new Error('no reply');
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
      expect(echo.stats().accepted).toBeGreaterThanOrEqual(3);
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
    const other = generateHostKey().publicKey.split(' ');
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
      fingerprints: [generateHostKey().fingerprint],
    });
    await expect(echoThrough(pinned, 'x')).rejects.toMatchObject({ reason: SshReason.HOST_KEY_MISMATCH });
  });
});
