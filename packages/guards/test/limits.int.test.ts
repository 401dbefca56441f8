import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { clockAt } from '../../../test-support/clock.js';
import { type BanEvent, createGuards, type UnbanEvent } from '../src/index.js';
import { bundleFixture } from './fixtures.js';
import { attempt, closeAndWait, guardedServer, reasons, until } from './helpers.js';

describe('connection limits', () => {
  it('limits connections per source address and releases them exactly once on close', async () => {
    const guards = createGuards({ connections: { perKey: 2 }, rates: { connections: false } });
    const { port, rejects } = await guardedServer(guards);
    const a1 = await attempt(port, '127.0.0.1', '127.0.0.2');
    const a2 = await attempt(port, '127.0.0.1', '127.0.0.2');
    const a3 = await attempt(port, '127.0.0.1', '127.0.0.2');
    // Another source address has its own count.
    const b1 = await attempt(port, '127.0.0.1', '127.0.0.3');
    expect([a1.admitted, a2.admitted, a3.admitted, b1.admitted]).toEqual([true, true, false, true]);
    expect(reasons(rejects)).toEqual(['conn-limit-ip']);
    expect(rejects[0]).toMatchObject({ stage: 'accept', plugin: 'guards', key: '127.0.0.2', closed: true });

    await closeAndWait(a1.socket);
    await until(() => (guards.snapshot() as { connections: { active: number } }).connections.active === 2);
    const a4 = await attempt(port, '127.0.0.1', '127.0.0.2');
    expect(a4.admitted).toBe(true);
    // The rejected one released nothing it had not counted: 2 from .2 (a2, a4) and 1 from .3.
    const snap = await guards.snapshot();
    expect(snap.connections).toEqual({ active: 3, activeKeys: 2 });
    for (const s of [a2, a4, b1]) await closeAndWait(s.socket);
    await until(() => (guards.snapshot() as { connections: { active: number } }).connections.active === 0);
    expect((await guards.snapshot()).connections.activeKeys).toBe(0);
  });

  it('limits connections globally', async () => {
    const guards = createGuards({ connections: { max: 2, perKey: false }, rates: { connections: false } });
    const { port, rejects } = await guardedServer(guards);
    const results = [];
    for (let i = 0; i < 3; i++)
      results.push((await attempt(port, '127.0.0.1', `127.0.0.${10 + i}`)).admitted);
    expect(results).toEqual([true, true, false]);
    expect(reasons(rejects)).toEqual(['conn-limit']);
  });

  it('keys IPv4-mapped peers of a dual-stack listener as IPv4 (CVE-2026-30827)', async () => {
    const guards = createGuards({ connections: { perKey: 1 }, rates: { connections: false } });
    const { port, rejects } = await guardedServer(guards, '::', false);
    // Each arrives as ::ffff:127.0.0.x; masked as IPv6 /64 they would all share one bucket.
    const results = [];
    for (let i = 0; i < 4; i++)
      results.push((await attempt(port, '127.0.0.1', `127.0.0.${20 + i}`)).admitted);
    expect(results).toEqual([true, true, true, true]);
    const again = await attempt(port, '127.0.0.1', '127.0.0.20');
    expect(again.admitted).toBe(false);
    expect(rejects.map((r) => [r.reason, r.key])).toEqual([['conn-limit-ip', '127.0.0.20']]);
  });

  it('aggregates IPv6 peers per /64 (several addresses of one /64 and one outside, in a namespace)', async () => {
    // Real distinct IPv6 sources: addresses on lo of a network namespace made for this test.
    const ns = `guards-v6-${process.pid}-${Date.now() % 100000}`;
    const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
    ip('netns', 'add', ns);
    try {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      const inside = ['2001:db8:1:2::a', '2001:db8:1:2::b', '2001:db8:1:2:ffff::c'];
      const outside = '2001:db8:1:3::a';
      for (const a of [...inside, outside]) ip('-n', ns, 'addr', 'add', `${a}/64`, 'dev', 'lo', 'nodad');
      const file = await bundleFixture('ipv6-keys');
      const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, file, ...inside, outside], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      const result = JSON.parse(out.trim().split('\n').at(-1)!) as {
        admitted: boolean[];
        rejects: Array<{ reason: string; key?: string }>;
      };
      // perKey 2: three addresses of one /64 share its count, the fourth (another /64) has its own.
      expect(result.admitted).toEqual([true, true, false, true]);
      expect(result.rejects).toEqual([{ reason: 'conn-limit-ip', key: '2001:db8:1:2::/64' }]);
    } finally {
      ip('netns', 'delete', ns);
    }
    const guards = createGuards();
    expect(guards.keyOf('2001:db8:0:1::1')).toBe(guards.keyOf('2001:db8:0:1:ffff::9'));
    expect(guards.keyOf('2001:db8:0:1::1')).not.toBe(guards.keyOf('2001:db8:0:2::1'));
    guards.close();
  }, 30_000);
});

describe('IP policy', () => {
  it('denies by CIDR with a more specific allow', async () => {
    const guards = createGuards({
      ip: { deny: ['127.0.0.0/24'], allow: ['127.0.0.5'] },
      rates: { connections: false },
    });
    const { port, rejects } = await guardedServer(guards);
    expect((await attempt(port, '127.0.0.1', '127.0.0.4')).admitted).toBe(false);
    expect((await attempt(port, '127.0.0.1', '127.0.0.5')).admitted).toBe(true);
    expect((await attempt(port, '127.0.0.1', '127.0.1.1')).admitted).toBe(true);
    expect(rejects.map((r) => [r.reason, r.key, r.stage])).toEqual([['ip-denied', '127.0.0.4', 'accept']]);
  });

  it('denies everything not allowed with default deny', async () => {
    const guards = createGuards({
      ip: { default: 'deny', allow: ['127.0.0.7/32'] },
      rates: { connections: false },
    });
    const { port } = await guardedServer(guards);
    expect((await attempt(port, '127.0.0.1', '127.0.0.7')).admitted).toBe(true);
    expect((await attempt(port, '127.0.0.1', '127.0.0.8')).admitted).toBe(false);
  });
});

describe('strikes and bans', () => {
  it('bans after N strikes, escalates, reports onBan/onUnban and rejects banned keys at accept', async () => {
    let now = 1_000_000;
    const bans: BanEvent[] = [];
    const unbans: UnbanEvent[] = [];
    const guards = createGuards(
      {
        ip: { deny: ['127.0.0.30'] },
        strikes: { threshold: 3, window: '1m' },
        bans: { duration: '10s', factor: 3, max: '60s' },
        rates: { connections: false },
      },
      { clock: clockAt(() => now), onBan: (e) => bans.push(e), onUnban: (e) => unbans.push(e) },
    );
    const { port, rejects } = await guardedServer(guards);
    // Three denied attempts (weight 1 each) ban the key.
    for (let i = 0; i < 3; i++) await attempt(port, '127.0.0.1', '127.0.0.30');
    expect(bans).toEqual([
      { key: '127.0.0.30', durationMs: 10_000, reason: 'ip-denied', offences: 1, until: now + 10_000 },
    ]);
    expect(await guards.isBanned('127.0.0.30')).toBe(true);
    expect(await guards.isBanned('::ffff:127.0.0.30')).toBe(true);
    await attempt(port, '127.0.0.1', '127.0.0.30');
    expect(reasons(rejects).at(-1)).toBe('banned');

    // After the ban, three more strikes: the second ban lasts 3×, the third is capped.
    now += 11_000;
    expect(await guards.isBanned('127.0.0.30')).toBe(false);
    for (let i = 0; i < 3; i++) await attempt(port, '127.0.0.1', '127.0.0.30');
    expect(bans[1]).toMatchObject({ durationMs: 30_000, offences: 2 });
    now += 31_000;
    for (let i = 0; i < 3; i++) await attempt(port, '127.0.0.1', '127.0.0.30');
    expect(bans[2]).toMatchObject({ durationMs: 60_000, offences: 3 });

    expect(await guards.unban('127.0.0.30')).toBe(true);
    expect(unbans).toEqual([{ key: '127.0.0.30', reason: 'manual', offences: 3 }]);
    expect(await guards.unban('127.0.0.30')).toBe(false);
    const snap = await guards.snapshot();
    expect(snap.bans.issued).toBe(3);
    expect(snap.rejected['ip-denied']).toBe(9);
  });

  it('never bans allowlisted keys; manual ban and unban work on any key', async () => {
    const bans: BanEvent[] = [];
    const guards = createGuards(
      { strikes: { threshold: 1 }, bans: { neverBan: ['127.0.0.0/24'] }, rates: { connections: false } },
      { onBan: (e) => bans.push(e) },
    );
    await guards.strike('127.0.0.40', 'frame-too-large');
    expect(await guards.isBanned('127.0.0.40')).toBe(false);
    expect((await guards.snapshot()).bans.skipped).toBe(1);
    await guards.ban('2001:db8::1', '1m');
    expect(bans).toEqual([
      expect.objectContaining({ key: '2001:db8::/64', durationMs: 60_000, reason: 'manual' }),
    ]);
    expect(await guards.isBanned('2001:db8::ffff')).toBe(true);
    expect(await guards.isBanned('2001:db8:0:1::1')).toBe(false);
    const { port } = await guardedServer(guards, '::1');
    await guards.ban('::1', 60_000);
    expect((await attempt(port, '::1')).admitted).toBe(false);
    expect(await guards.unban('::/64')).toBe(true);
    expect((await attempt(port, '::1')).admitted).toBe(true);
  });

  it("counts core's own rejections (frame-too-large) as strikes", async () => {
    const bans: BanEvent[] = [];
    const guards = createGuards(
      { strikes: { threshold: 2 }, rates: { connections: false } },
      { onBan: (e) => bans.push(e) },
    );
    const { port, rejects } = await guardedServer(guards);
    const { socket } = await attempt(port, '127.0.0.1', '127.0.0.50');
    const header = Buffer.alloc(4);
    header.writeUInt32BE(10 * 1024 * 1024);
    socket.write(header);
    await until(() => bans.length === 1);
    expect(reasons(rejects)).toContain('frame-too-large');
    expect(bans[0]).toMatchObject({ key: '127.0.0.50', reason: 'frame-too-large' });
  });
});
