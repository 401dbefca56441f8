import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createServer, type SockServer } from '@sock/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sshd, startSshd } from '../../../test-support/openssh.mjs';
import { SshReason, sshTransport } from '../src/index.js';
import { echoThrough as echoThroughPort } from './echo-through.js';

const execFileAsync = promisify(execFile);

/**
 * Run a shadow-utils command, retrying (bounded) while another process holds the /etc/passwd lock: those
 * tools fail at once with "cannot lock" instead of waiting, and parallel test runs may add users too.
 */
async function run(file: string, args: readonly string[], input = ''): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const running = execFileAsync(file, args);
      running.child.stdin?.end(input);
      await running;
      return;
    } catch (err) {
      const locked = /cannot lock|try again later/i.test(String((err as { stderr?: string }).stderr));
      if (!locked || attempt === 40) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

let echo: SockServer;
let echoPort: number;

beforeAll(async () => {
  echo = createServer({
    async handler(conn) {
      for await (const m of conn) await conn.send(m);
    },
  });
  echoPort = (await echo.listen({ host: '127.0.0.1', port: 0 })).port;
});

afterAll(async () => {
  await echo?.close({ drainMs: 100 });
});

function pinnedKnownHosts(sshd: Sshd, name: string): string {
  const [type, key] = sshd.hostKeyPub.split(' ');
  const path = join(sshd.dir, name);
  writeFileSync(path, `[127.0.0.1]:${sshd.port} ${type} ${key}\n`);
  return path;
}

function echoThrough(transport: ReturnType<typeof sshTransport>, payload: string): Promise<string> {
  return echoThroughPort(transport, echoPort, payload);
}

describe('password authentication, only by the explicit option, against a real sshd', () => {
  // A throwaway system user with a random password: root's and every existing user's stay untouched.
  const user = `sockpw${randomBytes(4).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  let created = false;
  let sshd: Sshd;

  beforeAll(async () => {
    await run('useradd', ['-m', '-s', '/bin/sh', user]);
    created = true;
    await run('chpasswd', [], `${user}:${password}\n`);
    // sshd keeps the first value of a keyword and startSshd's config says `PasswordAuthentication no`
    // first: a Match block (which does override) turns passwords on for this user alone.
    sshd = await startSshd([`Match User ${user}`, 'PasswordAuthentication yes', 'PubkeyAuthentication no']);
  });

  afterAll(async () => {
    await sshd?.stop();
    if (created) await run('userdel', ['-r', '-f', user]);
  });

  it('refuses a keyless transport without a password at option validation, works with it, types a wrong one', async () => {
    const via = `ssh://${user}@127.0.0.1:${sshd.port}`;
    const knownHosts = pinnedKnownHosts(sshd, 'kh_password');
    // No key, no agent, no password: nothing would ever try password auth, so it is refused up front.
    expect(() => sshTransport({ via, agent: false, knownHosts })).toThrow(
      expect.objectContaining({ code: 'ERR_SOCK_INVALID_OPTION' }),
    );
    const right = sshTransport({ via, agent: false, knownHosts, password });
    try {
      expect(await echoThrough(right, 'by password')).toBe('by password');
    } finally {
      await right.close();
    }
    const wrong = sshTransport({ via, agent: false, knownHosts, password: `${password}x` });
    await expect(echoThrough(wrong, 'x')).rejects.toMatchObject({
      code: 'ERR_SOCK_REJECTED',
      reason: SshReason.AUTH_REJECTED,
    });
  }, 60_000);
});

/** Every descendant of `pid` (sshd's per-connection monitor and session processes), from /proc. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // The command name may hold spaces and parentheses: the fields after its last ')' are fixed.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const children = parents.get(ppid) ?? [];
    children.push(Number(entry));
    parents.set(ppid, children);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of parents.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** Resume (so they can see their peer gone and exit) every process the test stopped, even after a timeout. */
function resume(pids: number[]): void {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
}

describe('client keepalives against a real sshd that stops answering', () => {
  let sshd: Sshd;
  const stopped: number[] = [];
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    resume(stopped);
    await sshd?.stop();
  });

  it('reports the connection lost after the unanswered keepalives, and the next dial reconnects', async () => {
    const keepaliveMs = 200;
    const transport = sshTransport({
      via: `ssh://root@127.0.0.1:${sshd.port}`,
      privateKey: readFileSync(sshd.clientKey),
      agent: false,
      knownHosts: pinnedKnownHosts(sshd, 'kh_keepalive'),
      keepaliveMs,
    });
    const listener = Number(readFileSync(join(sshd.dir, 'sshd.pid'), 'utf8').trim());
    try {
      const channel = await transport.dial({
        host: '127.0.0.1',
        port: echoPort,
        signal: AbortSignal.timeout(20_000),
      });
      // Read the channel: a paused stream never ends, so it would never emit 'close'.
      channel.resume();
      // Bounded below the test's timeout, so `finally` resumes the stopped processes itself.
      const closed = once(channel, 'close', { signal: AbortSignal.timeout(20_000) });
      expect(transport.stats().connections).toBe(1);
      // Freeze the processes serving this connection: the TCP connection stays open, nothing answers.
      for (const pid of descendants(listener)) {
        process.kill(pid, 'SIGSTOP');
        stopped.push(pid);
      }
      expect(stopped.length).toBeGreaterThan(0);
      const frozenAt = performance.now();
      await closed;
      // ssh2 gives up on the 4th tick with 3 pings unanswered; one tick may have fired just before the
      // freeze, so at least 2 intervals pass after it. No upper bound but the test's timeout: load only
      // makes detection later, and an idle connection without keepalives would never close.
      expect(performance.now() - frozenAt).toBeGreaterThanOrEqual(2 * keepaliveMs);
      // The listener still answers: the next dial opens a new SSH connection.
      expect(await echoThrough(transport, 'again')).toBe('again');
      expect(transport.stats().connections).toBe(2);
    } finally {
      resume(stopped);
      await transport.close();
    }
  }, 30_000);
});
