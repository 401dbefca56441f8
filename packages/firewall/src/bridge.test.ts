import { createVirtualClock, type VirtualClock } from '@sock/core/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { createBanBridge } from './bridge.js';
import type { FirewallError } from './errors.js';
import { createFirewall, type Firewall } from './firewall.js';

// One virtual clock for the bridge and its firewall: the per-second cap and the TTLs run in virtual time.
let clock: VirtualClock;

/** Let the bridge's batches (promises) run, without waiting on the wall clock. */
async function flush(): Promise<void> {
  for (let i = 0; i < 8; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Move virtual time forward by `ms`, timer by timer, letting each batch finish before the next. */
async function advance(ms: number): Promise<void> {
  await flush();
  const target = clock.now() + ms;
  for (let next = clock.nextTimerAt(); next !== undefined && next <= target; next = clock.nextTimerAt()) {
    clock.advance(next - clock.now());
    await flush();
  }
  clock.advance(target - clock.now());
  await flush();
}

function spyFirewall(): { fw: Firewall; batches: string[][]; unbans: string[][] } {
  const fw = createFirewall({ backend: 'plan', env: {}, interfaces: () => ({}), clock });
  const batches: string[][] = [];
  const unbans: string[][] = [];
  const banMany = fw.banMany.bind(fw);
  const unbanMany = fw.unbanMany.bind(fw);
  fw.banMany = (reqs, opts) => {
    batches.push(reqs.map((r) => r.target));
    return banMany(reqs, opts);
  };
  fw.unbanMany = (targets, opts) => {
    unbans.push([...targets]);
    return unbanMany(targets, opts);
  };
  return { fw, batches, unbans };
}

describe('createBanBridge', () => {
  beforeEach(() => {
    clock = createVirtualClock(0);
  });

  it('coalesces bans within the window into one transaction', async () => {
    const { fw, batches } = spyFirewall();
    const bridge = createBanBridge(fw, { clock, windowMs: 50 });
    bridge.onBan({ key: '198.51.100.1', durationMs: 60_000, reason: 'rate' });
    bridge.onBan({ key: '198.51.100.2', durationMs: 60_000, reason: 'rate' });
    bridge.onBan({ key: '198.51.100.1', durationMs: 120_000, reason: 'again' });
    bridge.onBan({ key: '2001:db8::/64', durationMs: 60_000, reason: 'v6 prefix' });
    expect(batches).toEqual([]);
    await advance(60);
    expect(batches).toEqual([['198.51.100.1', '198.51.100.2', '2001:db8::/64']]);
    const list = await fw.list();
    const one = list.find((b) => b.target === '198.51.100.1');
    expect(one?.reason).toBe('again');
    expect(one?.ttlMs).toBeGreaterThan(119_000);
    expect(bridge.stats()).toMatchObject({ applied: 3, batches: 1, pending: 0 });
  });

  it('caps bans per second; the rest wait for the next windows', async () => {
    const { fw, batches } = spyFirewall();
    const bridge = createBanBridge(fw, { clock, windowMs: 10, maxBansPerSecond: 5 });
    for (let i = 1; i <= 12; i++) bridge.onBan({ key: `198.51.100.${i}`, durationMs: 1000, reason: '' });
    await advance(20);
    expect(batches.flat()).toHaveLength(5);
    await advance(1000);
    expect(batches.flat().length).toBeLessThanOrEqual(10);
    await advance(2000);
    expect(batches.flat()).toHaveLength(12);
    expect(bridge.stats().applied).toBe(12);
  });

  it('drops bans beyond maxPending and reports RATE_LIMITED', async () => {
    const { fw } = spyFirewall();
    const errors: FirewallError[] = [];
    const bridge = createBanBridge(fw, {
      clock,
      maxBansPerSecond: 1,
      maxPending: 2,
      onError: (e) => errors.push(e),
    });
    for (let i = 1; i <= 4; i++) bridge.onBan({ key: `198.51.100.${i}`, durationMs: 1000, reason: '' });
    expect(bridge.stats()).toMatchObject({ dropped: 2, pending: 2 });
    expect(errors.map((e) => e.code)).toEqual(['ERR_SOCK_FW_RATE_LIMITED', 'ERR_SOCK_FW_RATE_LIMITED']);
  });

  it('skips invalid and protected keys without losing the rest of the batch', async () => {
    const { fw } = spyFirewall();
    const errors: string[] = [];
    const bridge = createBanBridge(fw, { clock, onError: (e) => errors.push(e.code) });
    bridge.onBan({ key: '1.2.3.4; touch /tmp/x', durationMs: 1000, reason: '' });
    bridge.onBan({ key: '127.0.0.1', durationMs: 1000, reason: '' });
    bridge.onBan({ key: '198.51.100.9', durationMs: 0, reason: '' });
    bridge.onBan({ key: '198.51.100.1', durationMs: 1000, reason: '' });
    await bridge.flush();
    expect(errors.sort()).toEqual([
      'ERR_SOCK_FW_INVALID_ADDRESS',
      'ERR_SOCK_FW_INVALID_DURATION',
      'ERR_SOCK_FW_LOCKOUT',
    ]);
    expect((await fw.list()).map((b) => b.target)).toEqual(['198.51.100.1']);
    expect(bridge.stats()).toMatchObject({ applied: 1, rejected: 3 });
  });

  it('unbans cancel pending bans and are applied in one batch', async () => {
    const { fw, batches, unbans } = spyFirewall();
    const bridge = createBanBridge(fw, { clock });
    bridge.onBan({ key: '198.51.100.1', durationMs: 1000, reason: '' });
    bridge.onUnban({ key: '198.51.100.1' });
    bridge.onUnban({ key: '198.51.100.2' });
    await bridge.close();
    expect(batches).toEqual([]);
    expect(unbans).toEqual([['198.51.100.1', '198.51.100.2']]);
    bridge.onBan({ key: '198.51.100.3', durationMs: 1000, reason: '' });
    expect(bridge.stats().pending).toBe(0);
  });

  it('rejects bad options', () => {
    const { fw } = spyFirewall();
    expect(() => createBanBridge(fw, { clock, windowMs: 0 })).toThrow(/windowMs/);
    expect(() => createBanBridge(fw, { clock, maxBansPerSecond: 1.5 })).toThrow(/maxBansPerSecond/);
  });
});
