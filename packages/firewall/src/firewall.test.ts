import { mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clockAt } from '../../../test-support/clock.js';
import { FirewallError } from './errors.js';
import { createFirewall, type FirewallOptions } from './firewall.js';
import type { Command, CommandRunner } from './runner.js';

/** A runner that records and never executes; kernel listing answers "nothing". */
function recorder(): CommandRunner & { calls: Command[] } {
  const calls: Command[] = [];
  return {
    calls,
    async run(command) {
      calls.push(command);
      if (command.bin === 'nft' && command.args[1] === 'list')
        return { exitCode: 0, stdout: '{"nftables":[]}', stderr: '' };
      return { exitCode: 0, stdout: '', stderr: '' };
    },
  };
}

const quiet: Partial<FirewallOptions> = {
  env: {},
  interfaces: () => ({ eth0: [{ address: '192.0.2.10' }] }),
};

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return FirewallError.isInstance(e) ? e.code : `not a FirewallError: ${e}`;
  }
  return undefined;
}

let dir: string;

function writeStateFile(path: string, bans: object[]): Promise<void> {
  return writeFile(
    path,
    JSON.stringify({ version: 1, table: 'sockfw', savedAt: 0, bans, allows: [], ports: [] }),
  );
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sockfw-unit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('createFirewall options', () => {
  it.each([
    [{ table: 'bad name' }],
    [{ table: 'x'.repeat(17) }],
    [{ table: 'sockfw; flush ruleset' }],
    [{ backend: 'pf' as never }],
    [{ netns: 'a b' }],
    [{ netns: '..' }],
    [{ priority: 1.5 }],
    [{ maxElements: 0 }],
  ])('rejects %j', (opts) => {
    expect(() => createFirewall(opts)).toThrow(FirewallError);
  });

  it('rejects bad defaultTtl and admin CIDRs', () => {
    expect(() => createFirewall({ defaultTtl: '10 minutes' })).toThrow(/invalid defaultTtl/);
    expect(() => createFirewall({ adminCidrs: ['10.0.0.0/8; x'] })).toThrow(/invalid IP address/);
  });
});

describe('plan backend', () => {
  it('applies nothing and returns exactly what would run', async () => {
    const fw = createFirewall({ backend: 'plan', ...quiet });
    const r = await fw.ban('203.0.113.7', { ttl: '10m', reason: 'ssh brute force' });
    expect(r).toMatchObject({ backend: 'plan', applied: false });
    expect(r.commands).toHaveLength(1);
    const cmd = r.commands[0]!;
    expect(cmd.bin).toBe('nft');
    expect(cmd.args).toEqual(['-j', '-f', '<input-file>']);
    expect(JSON.parse(cmd.input!).nftables).toEqual([
      {
        add: {
          element: {
            family: 'inet',
            table: 'sockfw',
            name: 'ban4',
            elem: [{ elem: { val: '203.0.113.7', timeout: 600, comment: 'ssh brute force' } }],
          },
        },
      },
    ]);
    const list = await fw.list();
    expect(list).toMatchObject([{ target: '203.0.113.7', reason: 'ssh brute force', offences: 1 }]);
    expect(list[0]!.ttlMs).toBeLessThanOrEqual(600_000);
  });

  it('renders the iptables dialect when asked', async () => {
    const fw = createFirewall({ backend: 'plan', planDialect: 'iptables', ...quiet });
    const init = await fw.init();
    expect(init.commands.map((c) => c.bin)).toEqual(['ipset', 'iptables-restore', 'ip6tables-restore']);
    const r = await fw.ban('2001:db8::/64', { ttl: 60_000 });
    expect(r.commands).toEqual([
      {
        bin: 'ipset',
        args: ['-exist', '-file', '<input-file>', 'restore'],
        input: 'add sockfw-net6 2001:db8::/64 timeout 60\n',
      },
    ]);
    const d = await fw.destroy();
    expect(d.commands.map((c) => `${c.bin} ${c.args.join(' ')}`)).toContain('iptables -w -D INPUT -j sockfw');
  });

  it('a re-ban refreshes the timeout (add, delete, add) and counts offences', async () => {
    const fw = createFirewall({ backend: 'plan', ...quiet });
    await fw.ban('198.51.100.1', { ttl: '1m' });
    const r = await fw.ban('198.51.100.1', { ttl: '2m', reason: 'again' });
    const ops = JSON.parse(r.commands[0]!.input!).nftables.map((c: object) => Object.keys(c)[0]);
    expect(ops).toEqual(['add', 'delete', 'add']);
    expect((await fw.list())[0]).toMatchObject({ offences: 2, reason: 'again' });
  });
});

describe('validation before anything runs', () => {
  const hostile = [
    '1.2.3.4; touch /tmp/x',
    '{ 1.2.3.4 }; flush ruleset',
    'fe80::1%x; touch /tmp/x',
    '1.2.3.4\nflush ruleset',
    '1.2.3.4\0',
    '\u0661\u0662\u0663.0.0.1',
    '$(touch /tmp/x)',
  ];

  it.each(hostile)('%j: typed error, no command run, other batch members not applied', async (bad) => {
    const runner = recorder();
    const fw = createFirewall({ backend: 'nftables', runner, ...quiet });
    expect(await code(fw.banMany([{ target: '198.51.100.1' }, { target: bad }]))).toBe(
      'ERR_SOCK_FW_INVALID_ADDRESS',
    );
    expect(await code(fw.unban(bad))).toBe('ERR_SOCK_FW_INVALID_ADDRESS');
    expect(await code(fw.allowPort(22, 'tcp', { from: bad }))).toBe('ERR_SOCK_FW_INVALID_ADDRESS');
    // Only the structure (init) and listing ran; no element, no port rule.
    for (const c of runner.calls) expect(c.input ?? '').not.toContain('198.51.100.1');
    expect(await fw.list()).toEqual([]);
  });

  it('ports and protocols', async () => {
    const fw = createFirewall({ backend: 'plan', ...quiet });
    for (const p of [0, 65536, -1, 1.5, '22; reboot', '٢٢', 'http', Number.NaN]) {
      expect(await code(fw.allowPort(p as number, 'tcp'))).toBe('ERR_SOCK_FW_INVALID_PORT');
    }
    for (const proto of ['TCP', 'icmp', 'tcp; x', '']) {
      expect(await code(fw.denyPort(80, proto as 'tcp'))).toBe('ERR_SOCK_FW_INVALID_PROTOCOL');
    }
    expect((await fw.allowPort('8080', 'udp')).commands).toHaveLength(1);
  });

  it('ttl and force', async () => {
    const fw = createFirewall({ backend: 'plan', ...quiet });
    expect(await code(fw.ban('198.51.100.1', { ttl: -5 }))).toBe('ERR_SOCK_FW_INVALID_DURATION');
    expect(await code(fw.ban('198.51.100.1', { ttl: '1 hour' }))).toBe('ERR_SOCK_FW_INVALID_DURATION');
    expect(await code(fw.ban('100.0.0.0/6'))).toBe('ERR_SOCK_FW_PREFIX_TOO_BROAD');
    expect(await code(fw.ban('100.0.0.0/6', { force: 'yes' as never }))).toBe('ERR_SOCK_FW_INVALID_OPTION');
    expect(await code(fw.ban('100.0.0.0/6', { force: 'broad-prefix' }))).toBeUndefined();
    expect(await code(fw.ban('192.0.2.1', { ttl: 'permanent' }))).toBeUndefined();
    expect((await fw.list()).find((b) => b.target === '192.0.2.1')?.ttlMs).toBeNull();
  });

  it('overlapping CIDRs are refused up front (nftables interval sets)', async () => {
    const fw = createFirewall({ backend: 'plan', ...quiet });
    await fw.ban('10.0.0.0/8');
    expect(await code(fw.ban('10.1.0.0/16'))).toBe('ERR_SOCK_FW_OVERLAP');
    expect(await code(fw.banMany([{ target: '172.16.0.0/12' }, { target: '172.16.1.0/24' }]))).toBe(
      'ERR_SOCK_FW_OVERLAP',
    );
    // single addresses live in hash sets and never conflict
    expect(await code(fw.ban('10.1.2.3'))).toBeUndefined();
    // lifting a range inside a banned one cannot work either: say so instead of failing in the kernel
    await expect(fw.unban('10.1.0.0/16')).rejects.toThrow(
      /10\.1\.0\.0\/16 itself is not banned; unban 10\.0\.0\.0\/8 instead/,
    );
    expect(await code(fw.unban('10.0.0.0/8'))).toBeUndefined();
  });

  it("onInvalid: 'skip' applies the valid part and reports the rest", async () => {
    const fw = createFirewall({ backend: 'plan', ...quiet });
    const r = await fw.banMany([{ target: '198.51.100.1' }, { target: 'nope' }, { target: '127.0.0.1' }], {
      onInvalid: 'skip',
    });
    expect(r.skipped?.map((s) => [s.target, s.error.code])).toEqual([
      ['nope', 'ERR_SOCK_FW_INVALID_ADDRESS'],
      ['127.0.0.1', 'ERR_SOCK_FW_LOCKOUT'],
    ]);
    expect((await fw.list()).map((b) => b.target)).toEqual(['198.51.100.1']);
  });
});

describe('anti-lockout', () => {
  const make = (extra: Partial<FirewallOptions> = {}) =>
    createFirewall({
      backend: 'plan',
      env: { SSH_CONNECTION: '203.0.113.50 51234 192.0.2.10 22' },
      interfaces: () => ({
        lo: [{ address: '127.0.0.1' }, { address: '::1' }],
        eth0: [{ address: '192.0.2.10' }, { address: 'fe80::1' }],
      }),
      adminCidrs: ['198.51.100.0/24'],
      ...extra,
    });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.0.0/16', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['192.0.2.10', 'host'],
    ['192.0.2.0/24', 'host'],
    ['fe80::1', 'host'],
    ['203.0.113.50', 'ssh'],
    ['203.0.113.0/24', 'ssh'],
    ['198.51.100.7', 'admin'],
    ['198.0.0.0/8', 'admin'],
  ])('refuses to ban %s (%s)', async (target, source) => {
    const fw = make();
    const err = await fw.ban(target).catch((e: unknown) => e);
    expect(FirewallError.isInstance(err) && err.code).toBe('ERR_SOCK_FW_LOCKOUT');
    expect((err as FirewallError).details.source).toBe(source);
  });

  it('admin CIDRs go into the allow set at init, and denying the SSH port to the peer is refused', async () => {
    const fw = make();
    const init = await fw.init();
    const doc = JSON.parse(init.commands[0]!.input!).nftables as Record<
      string,
      { element?: { name: string; elem: unknown[] } }
    >[];
    const allow = doc.find((c) => c.add?.element?.name === 'allow4');
    expect(allow?.add?.element?.elem).toEqual([{ prefix: { addr: '198.51.100.0', len: 24 } }]);
    expect(await code(fw.denyPort(22, 'tcp'))).toBe('ERR_SOCK_FW_LOCKOUT');
    expect(await code(fw.denyPort(22, 'tcp', { from: '192.0.2.128/25' }))).toBeUndefined();
    expect(await code(fw.denyPort(23, 'tcp'))).toBeUndefined();
  });

  it('protection of host and SSH peer can be switched off explicitly, loopback never', async () => {
    const fw = make({ protectHostAddresses: false, protectSshPeer: false });
    expect(await code(fw.ban('192.0.2.10'))).toBeUndefined();
    expect(await code(fw.ban('203.0.113.50'))).toBeUndefined();
    expect(await code(fw.ban('127.0.0.1'))).toBe('ERR_SOCK_FW_LOCKOUT');
  });
});

describe('state file and restore', () => {
  it('is written atomically with mode 0600 and restore() re-applies live bans with remaining TTL', async () => {
    let now = 1_000_000;
    const stateFile = join(dir, 'fw.json');
    const runner = recorder();
    const fw = createFirewall({
      backend: 'nftables',
      runner,
      stateFile,
      clock: clockAt(() => now),
      ...quiet,
    });
    await fw.banMany([
      { target: '198.51.100.1', ttl: '10m', reason: 'a' },
      { target: '198.51.100.2', ttl: '1m', reason: 'b' },
      { target: '2001:db8::/64', ttl: 'permanent', reason: 'c' },
    ]);
    expect((await stat(stateFile)).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(await readFile(stateFile, 'utf8'));
    expect(saved.bans).toHaveLength(3);

    now += 120_000; // the 1m ban is over, 8 minutes remain of the 10m one
    const fresh = createFirewall({
      backend: 'nftables',
      runner: recorder(),
      stateFile,
      clock: clockAt(() => now),
      ...quiet,
    });
    const r = await fresh.restore();
    expect(r.commands).toHaveLength(1);
    const doc = JSON.parse(r.commands[0]!.input!).nftables as Record<
      string,
      Record<string, { name: string; elem?: unknown[] }>
    >[];
    const flushed = doc.filter((c) => c.flush?.set).map((c) => c.flush!.set!.name);
    expect(flushed).toEqual(['ban4', 'ban6', 'net4', 'net6', 'net6p64', 'allow4', 'allow6']);
    const added = doc.filter((c) => c.add?.element).map((c) => [c.add!.element!.name, c.add!.element!.elem]);
    expect(added.filter(([name]) => !String(name).startsWith('allow'))).toEqual([
      ['ban4', [{ elem: { val: '198.51.100.1', timeout: 480, comment: 'a' } }]],
      ['net6p64', [{ elem: { val: '2001:db8::', comment: 'c' } }]],
    ]);
  });

  it('a tampered state file is a typed error and nothing runs', async () => {
    const stateFile = join(dir, 'fw.json');
    await writeStateFile(stateFile, [{ target: '1.2.3.4; reboot', expiresAt: null }]);
    const runner = recorder();
    const fw = createFirewall({ backend: 'nftables', runner, stateFile, ...quiet });
    expect(await code(fw.restore())).toBe('ERR_SOCK_FW_STATE_FILE');
    expect(runner.calls).toEqual([]);
    await writeFile(stateFile, '{not json');
    expect(await code(createFirewall({ backend: 'plan', stateFile }).restore())).toBe(
      'ERR_SOCK_FW_STATE_FILE',
    );
  });

  it('restore skips bans that are now protected', async () => {
    const stateFile = join(dir, 'fw.json');
    await writeStateFile(stateFile, [
      {
        target: '198.51.100.9',
        reason: '',
        expiresAt: null,
        firstBannedAt: 0,
        lastBannedAt: 0,
        offences: 1,
        active: true,
      },
    ]);
    const fw = createFirewall({ backend: 'plan', stateFile, adminCidrs: ['198.51.100.0/24'], ...quiet });
    const r = await fw.restore();
    expect(r.skipped?.[0]?.error.code).toBe('ERR_SOCK_FW_LOCKOUT');
  });
});

describe('aborting', () => {
  it('an aborted signal runs nothing', async () => {
    const runner = recorder();
    const fw = createFirewall({ backend: 'nftables', runner, ...quiet });
    const ac = new AbortController();
    ac.abort();
    expect(await code(fw.ban('198.51.100.1', { signal: ac.signal }))).toBe('ERR_SOCK_FW_ABORTED');
    expect(runner.calls).toEqual([]);
  });
});

describe('kernel failures', () => {
  it('a failed nft batch is COMMAND_FAILED naming the failing element; memory is unchanged', async () => {
    const runner: CommandRunner = {
      async run(command) {
        if (command.args[1] === 'list') return { exitCode: 0, stdout: '{"nftables":[]}', stderr: '' };
        const input = command.input ?? '';
        if (input.includes('198.51.100.66')) {
          return { exitCode: 1, stdout: '', stderr: 'Error: interval overlaps with an existing one' };
        }
        return { exitCode: 0, stdout: '', stderr: '' };
      },
    };
    const fw = createFirewall({ backend: 'nftables', runner, ...quiet });
    const err = await fw
      .banMany([{ target: '198.51.100.1' }, { target: '198.51.100.66' }, { target: '198.51.100.3' }])
      .catch((e: unknown) => e);
    expect(FirewallError.isInstance(err) && err.code).toBe('ERR_SOCK_FW_COMMAND_FAILED');
    expect((err as Error).message).toMatch(
      /first failing operation: add element 198\.51\.100\.66 in set ban4/,
    );
    expect((err as Error).message).toMatch(/nothing of it was applied/);
    expect(await fw.list()).toEqual([]);
  });

  it('permission errors become NOT_PERMITTED', async () => {
    const runner: CommandRunner = {
      async run() {
        return { exitCode: 1, stdout: '', stderr: 'Error: Operation not permitted' };
      },
    };
    const fw = createFirewall({ backend: 'nftables', runner, ...quiet });
    expect(await code(fw.init())).toBe('ERR_SOCK_FW_NOT_PERMITTED');
  });
});

describe('one transaction for every operation', () => {
  /** Mutating commands recorded; the `failAt`-th one after the count was last reset (1-based) exits 1. */
  function failingRunner(failAt: number): CommandRunner & { mutating: Command[]; failAt: number } {
    const mutating: Command[] = [];
    return {
      mutating,
      failAt,
      async run(command) {
        if (command.query)
          return { exitCode: 0, stdout: command.bin === 'nft' ? '{"nftables":[]}' : '', stderr: '' };
        mutating.push(command);
        return mutating.length === this.failAt
          ? { exitCode: 1, stdout: '', stderr: 'iptables-restore: line 12 failed' }
          : { exitCode: 0, stdout: '', stderr: '' };
      },
    };
  }

  it('an iptables change that fails half-way is rolled back to the old state, and the state file kept', async () => {
    const stateFile = join(dir, 'state.json');
    const runner = failingRunner(Number.POSITIVE_INFINITY);
    const fw = createFirewall({ ...quiet, backend: 'iptables', runner, stateFile });
    await fw.ban('198.51.100.1', { ttl: '1h' });
    const saved = await readFile(stateFile, 'utf8');
    // denyPort changes both set-free chain files: fail the second (ip6tables-restore) after iptables-restore ran.
    const failing = failingRunner(Number.POSITIVE_INFINITY);
    const again = createFirewall({ ...quiet, backend: 'iptables', runner: failing, stateFile });
    await again.init();
    failing.mutating.length = 0;
    failing.failAt = 2;
    expect(await code(again.denyPort(7000, 'tcp'))).toBe('ERR_SOCK_FW_COMMAND_FAILED');
    // After the failure: the rollback re-rendered the old state (the ban, no port rule) into the kernel.
    const rollback = failing.mutating.slice(2);
    expect(rollback.map((c) => c.bin)).toEqual(['ipset', 'iptables-restore', 'ip6tables-restore']);
    expect(rollback[0]!.input).toContain('add sockfw-ban4 198.51.100.1');
    expect(rollback[1]!.input).not.toContain('--dport 7000');
    expect(await readFile(stateFile, 'utf8')).toBe(saved);
  });

  it('a state file that cannot be staged changes nothing in the kernel', async () => {
    const runner = failingRunner(Number.POSITIVE_INFINITY);
    // The state directory is a dangling symlink: reading finds no state, but nothing can be created.
    await symlink(join(dir, 'gone'), join(dir, 'state-dir'));
    const fw = createFirewall({
      ...quiet,
      backend: 'nftables',
      runner,
      stateFile: join(dir, 'state-dir', 'sub', 's.json'),
    });
    await fw.init();
    runner.mutating.length = 0;
    expect(await code(fw.ban('198.51.100.2'))).toBe('ERR_SOCK_FW_STATE_FILE');
    expect(runner.mutating).toEqual([]);
  });
});
