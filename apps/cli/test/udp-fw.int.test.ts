import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { listen, run, SOCK, tempDir } from './helpers.js';

const exec = promisify(execFile);

/** Send one datagram of `size` bytes to 127.0.0.1:`port`; what comes back within `ms`, or undefined. */
async function roundTrip(port: number, size: number, ms = 500): Promise<Buffer | undefined> {
  const socket = createSocket('udp4');
  try {
    socket.send(Buffer.alloc(size, 0x61), port, '127.0.0.1');
    const reply = once(socket, 'message').then(([m]) => m as Buffer);
    const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), ms));
    return await Promise.race([reply, timeout]);
  } finally {
    socket.close();
  }
}

describe('sock listen -u / connect -u', () => {
  it("listen -u keeps the library's 1232-byte datagram cap unless --max-frame says otherwise", async () => {
    const server = await listen(['0', '-u']);
    try {
      expect((await roundTrip(server.port, 1232))?.length).toBe(1232);
      // 2000 bytes is over the safe default: dropped, not echoed; the datagram after it is.
      const socket = createSocket('udp4');
      try {
        socket.send(Buffer.alloc(2000, 0x61), server.port, '127.0.0.1');
        socket.send(Buffer.from('after'), server.port, '127.0.0.1');
        const [first] = (await once(socket, 'message')) as [Buffer];
        expect(first.toString()).toBe('after');
      } finally {
        socket.close();
      }
    } finally {
      await server.stop();
    }
    const big = await listen(['0', '-u', '--max-frame', '4096']);
    try {
      expect((await roundTrip(big.port, 2000))?.length).toBe(2000);
    } finally {
      await big.stop();
    }
  });

  it('connect -u to a closed port exits 1 with "Connection refused", as ncat does', async () => {
    // A port that was just free: nothing listens there, so the kernel answers ICMP port unreachable.
    const probe = createSocket('udp4');
    probe.bind(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = probe.address().port;
    probe.close();
    const r = await run(['connect', '-u', '127.0.0.1', String(port), '-w', '500ms'], {
      input: 'one\ntwo\n',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Connection refused');
  });

  it("connect -u sends each line with its newline (ncat's datagrams)", async () => {
    const server = createSocket('udp4');
    server.bind(0, '127.0.0.1');
    await once(server, 'listening');
    const got: string[] = [];
    server.on('message', (m, rinfo) => {
      got.push(m.toString());
      server.send(m, rinfo.port, rinfo.address);
    });
    try {
      const r = await run(['connect', '-u', '127.0.0.1', String(server.address().port), '-w', '300ms'], {
        input: 'ping\npong\nlast',
      });
      expect(r.code).toBe(0);
      expect(got).toEqual(['ping\n', 'pong\n', 'last']);
      // What comes back is printed as it is.
      expect(r.stdout).toBe('ping\npong\nlast');
    } finally {
      server.close();
    }
  });
});

describe('sock fw state file', () => {
  it('fw restore --state <missing file> is an error, not "restored"', async () => {
    const missing = join(tempDir(), 'nope', 'firewall.json');
    const r = await run(['fw', 'restore', '--backend', 'plan', '--state', missing]);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('restored');
    expect(r.stderr).toMatch(/does not exist, so there is nothing to restore/);
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root && process.env.CI !== 'true')(
    'the first fw ban on a fresh machine creates the state directory; ban, unban and flush exit 0 (nft, in a namespace)',
    async () => {
      const ns = `sockcli-${randomBytes(3).toString('hex')}`;
      const state = join(tempDir(), 'var', 'lib', 'sock', 'firewall.json');
      const sock = (args: string[]) =>
        exec('/usr/sbin/ip', ['netns', 'exec', ns, process.execPath, SOCK, 'fw', ...args, '--state', state]);
      await exec('/usr/sbin/ip', ['netns', 'add', ns]);
      try {
        const ban = await sock(['ban', '192.0.2.7', '--ttl', '10m', '--backend', 'nft']);
        expect(ban.stdout).toBe('banned 192.0.2.7 (nftables)\n');
        expect(statSync(join(state, '..')).mode & 0o777).toBe(0o700);
        expect(existsSync(state)).toBe(true);
        const listed = await exec('/usr/sbin/ip', [
          'netns',
          'exec',
          ns,
          'nft',
          'list',
          'set',
          'inet',
          'sockfw',
          'ban4',
        ]);
        expect(listed.stdout).toContain('192.0.2.7');
        expect((await sock(['unban', '192.0.2.7', '--backend', 'nft'])).stdout).toContain(
          'unbanned 192.0.2.7',
        );
        expect((await sock(['flush', '--backend', 'nft'])).stdout).toContain('flushed');
        expect((await sock(['restore', '--backend', 'nft'])).stdout).toContain('restored');
      } finally {
        await exec('/usr/sbin/ip', ['netns', 'del', ns]).catch(() => undefined);
      }
    },
  );
});
