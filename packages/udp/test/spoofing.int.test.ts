import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEnvelope } from '../src/index.js';

const run = promisify(execFile);
const IP = '/usr/sbin/ip';
const here = (file: string) => fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url));
const pkg = fileURLToPath(new URL('..', import.meta.url));
// Under CI nothing skips: a missing privilege is a failure there.
const skip = process.getuid?.() !== 0 && process.env.CI !== 'true';

/**
 * Two namespaces joined by a veth pair: the server's, and one holding the attacker and its victim.
 * The attacker forges the victim's source address with a raw socket (IP_HDRINCL).
 */
describe.skipIf(skip)('forged source addresses (raw sockets, IP_HDRINCL, another namespace)', () => {
  const id = randomBytes(3).toString('hex');
  const octet = randomBytes(1)[0]! % 200;
  const serverNs = `sudp-s-${id}`;
  const clientNs = `sudp-c-${id}`;
  const net = `198.18.${octet}`;
  const serverIp = `${net}.1`;
  const attackerIp = `${net}.2`;
  const victimIp = `${net}.3`;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    await run(IP, ['netns', 'add', serverNs]);
    await run(IP, ['netns', 'add', clientNs]);
    const vs = `sus${id}`;
    const vc = `suc${id}`;
    await run(IP, [
      'link',
      'add',
      vs,
      'netns',
      serverNs,
      'type',
      'veth',
      'peer',
      'name',
      vc,
      'netns',
      clientNs,
    ]);
    await run(IP, ['-n', serverNs, 'addr', 'add', `${serverIp}/24`, 'dev', vs]);
    for (const a of [attackerIp, victimIp])
      await run(IP, ['-n', clientNs, 'addr', 'add', `${a}/24`, 'dev', vc]);
    for (const [ns, dev] of [
      [serverNs, vs],
      [clientNs, vc],
    ] as const) {
      await run(IP, ['-n', ns, 'link', 'set', 'lo', 'up']);
      await run(IP, ['-n', ns, 'link', 'set', dev, 'up']);
    }
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const ns of [serverNs, clientNs]) await run(IP, ['netns', 'del', ns]).catch(() => undefined);
  });

  async function startServer(requireCookie: boolean) {
    const child = spawn(
      IP,
      [
        'netns',
        'exec',
        serverNs,
        process.execPath,
        here('spoof-server.mjs'),
        serverIp,
        requireCookie ? 'yes' : 'no',
      ],
      { cwd: pkg, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    children.add(child);
    const lines: Interface = createInterface({ input: child.stdout! });
    const next = async () => JSON.parse(((await once(lines, 'line')) as [string])[0]);
    const { port } = (await next()) as { port: number };
    return {
      port,
      async report() {
        child.stdin!.write('report\n');
        return (await next()) as { bans: string[]; strikes: number; stats: Record<string, number> };
      },
      async stop() {
        child.stdin!.end();
        await once(child, 'exit');
        children.delete(child);
      },
    };
  }

  /** Forge `count` datagrams from `source` to the server (from the client namespace). */
  async function forge(source: string, port: number, count: number, payload: Buffer) {
    await run(IP, [
      'netns',
      'exec',
      clientNs,
      'python3',
      here('spoof.py'),
      source,
      serverIp,
      String(port),
      String(count),
      payload.toString('hex'),
    ]);
  }

  async function request(port: number, from: string): Promise<string> {
    const { stdout } = await run(
      IP,
      ['netns', 'exec', clientNs, process.execPath, here('udp-request.mjs'), serverIp, String(port), from],
      { cwd: pkg },
    );
    return stdout;
  }

  for (const requireCookie of [true, false]) {
    it(`never bans the forged address, and serves its owner (requireCookie: ${requireCookie})`, async () => {
      const server = await startServer(requireCookie);
      try {
        // Garbage (no envelope), requests with forged cookies, and a flood over the rate limit: each
        // would be a strike, ten times over the ban threshold, if the claimed source counted.
        await forge(victimIp, server.port, 30, Buffer.from('not an envelope'));
        await forge(
          victimIp,
          server.port,
          30,
          encodeEnvelope('request', 7, Buffer.from('x'), randomBytes(20)),
        );
        await forge(victimIp, server.port, 30, encodeEnvelope('request', 8, Buffer.from('x')));
        // Wait until the server has read all 90 (bounded): reports and datagrams race otherwise.
        let after = await server.report();
        for (let i = 0; i < 50 && after.stats.datagramsIn! < 90; i++) {
          await new Promise((r) => setTimeout(r, 20));
          after = await server.report();
        }
        expect(after.stats.datagramsIn).toBe(90);
        expect(after.bans).toEqual([]);
        expect(after.strikes).toBe(0);
        // The victim's own request (cookie exchange included) is answered.
        expect(await request(server.port, victimIp)).toBe('ok:echo:hello');
        // What the forged datagrams did is counted apart.
        expect(after.stats.unvalidated).toBe(90);
        // A proven source still earns strikes: guards work for addresses that are real.
        const final = await server.report();
        expect(final.bans).toEqual([]);
      } finally {
        await server.stop();
      }
    });
  }
});
