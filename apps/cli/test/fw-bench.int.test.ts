import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { listen, run, SOCK, tempDir } from './helpers.js';

const exec = promisify(execFile);

describe('sock fw (plan backend)', () => {
  it('ban prints the exact nft change and applies nothing; list and flush read the state', async () => {
    const state = join(tempDir(), 'fw.json');
    const r = await run([
      'fw',
      'ban',
      '203.0.113.7',
      '--ttl',
      '10m',
      '--reason',
      'test',
      '--backend',
      'plan',
      '--state',
      state,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^banned 203\.0\.113\.7: plan \(nothing applied\); the commands it would run:\n {2}nft -j -f /,
    );
    expect(r.stdout).toContain('"val":"203.0.113.7","timeout":600');
    const list = await run(['fw', 'list', '--backend', 'plan', '--state', state, '--json']);
    expect(JSON.parse(list.stdout)).toEqual([]);
    const ipt = await run([
      'fw',
      'ban',
      '198.51.100.0/24',
      '--backend',
      'iptables',
      '--dry-run',
      '--json',
      '--state',
      state,
    ]);
    const plan = JSON.parse(ipt.stdout) as {
      applied: boolean;
      commands: Array<{ bin: string; input?: string }>;
    };
    expect(plan.applied).toBe(false);
    expect(plan.commands[0]!.bin).toBe('ipset');
    expect(plan.commands[0]!.input).toContain('198.51.100.0/24');
  });

  it('allow <port>/udp --from renders a port rule', async () => {
    const r = await run([
      'fw',
      'allow',
      '7000/udp',
      '--from',
      '192.0.2.0/24',
      '--backend',
      'plan',
      '--json',
      '--state',
      join(tempDir(), 's.json'),
    ]);
    expect(r.code).toBe(0);
    const input = (JSON.parse(r.stdout) as { commands: Array<{ input: string }> }).commands[0]!.input;
    expect(input).toContain('"dport"');
    expect(input).toContain('7000');
  });

  const hostile = [
    ['ban', '1.2.3.4; flush ruleset'],
    ['ban', '1.2.3.4 }; flush set inet sockfw ban4'],
    ['ban', '$(reboot)'],
    ['ban', 'example.org'],
    ['ban', '10.0.0.1%eth0'],
    ['ban', '0.0.0.0/0'],
    ['unban', '--', '-1'],
    ['allow', '7000/icmp'],
    ['allow', '99999'],
    ['allow', '7000', '--from', '1.2.3.4;'],
    ['ban', '203.0.113.9', '--table', 'x;y'],
    ['ban', '203.0.113.9', '--ttl', '1 hour; rm'],
    ['ban', '203.0.113.9', '--reason', 'a\nb'],
    ['ban', '203.0.113.9', '--backend', 'ufw'],
  ];
  for (const args of hostile) {
    it(`refuses hostile input: fw ${args.join(' ')}`, async () => {
      const r = await run(
        ['fw', ...args, '--backend', 'plan'].filter(
          (a, i, all) =>
            !(a === '--backend' && all.indexOf('--backend') !== i) &&
            !(all[i - 1] === '--backend' && all.indexOf('--backend') !== i - 1),
        ),
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^sock: /);
      expect(r.stdout).toBe('');
    });
  }

  it('refuses to ban loopback (exit 1, lockout)', async () => {
    const r = await run([
      'fw',
      'ban',
      '127.0.0.1',
      '--backend',
      'plan',
      '--state',
      join(tempDir(), 's.json'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_SOCK_FW_LOCKOUT/);
  });
});

const root = process.getuid?.() === 0;
describe.skipIf(!root && process.env.CI !== 'true')(
  'sock fw against nft in a network namespace (root)',
  () => {
    it('ban, list, unban, flush change the kernel ruleset of the namespace only', async () => {
      const ns = `sockcli-${randomBytes(3).toString('hex')}`;
      const state = join(tempDir(), 'fw.json');
      await exec('ip', ['netns', 'add', ns]);
      try {
        const sock = (...args: string[]) =>
          exec(
            'ip',
            [
              'netns',
              'exec',
              ns,
              process.execPath,
              SOCK,
              'fw',
              ...args,
              '--backend',
              'nft',
              '--table',
              'sockcli',
              '--state',
              state,
            ],
            { env: { ...process.env, NO_COLOR: '1' } },
          );
        const ban = await sock('ban', '203.0.113.7', '--ttl', '10m', '--reason', 'cli test');
        expect(ban.stdout).toBe('banned 203.0.113.7 (nftables)\n');
        const ruleset = (await exec('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'sockcli']))
          .stdout;
        expect(ruleset).toContain('203.0.113.7');
        const list = JSON.parse((await sock('list', '--json')).stdout) as Array<{
          target: string;
          reason: string;
        }>;
        expect(list).toMatchObject([{ target: '203.0.113.7', reason: 'cli test' }]);
        await sock('unban', '203.0.113.7');
        expect(
          (await exec('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'sockcli'])).stdout,
        ).not.toContain('203.0.113.7');
        await sock('ban', '198.51.100.0/24');
        await sock('flush');
        expect(JSON.parse((await sock('list', '--json')).stdout)).toEqual([]);
      } finally {
        await exec('ip', ['netns', 'del', ns]);
      }
    });
  },
);

describe('sock bench', () => {
  it('measures an echo server and prints JSON and a table', async () => {
    const server = await listen(['0']);
    const r = await run([
      'bench',
      '127.0.0.1',
      String(server.port),
      '--conns',
      '4',
      '--size',
      '128',
      '--duration',
      '500ms',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as {
      messages: number;
      errors: number;
      latencyMs: { p50: number; p99: number };
    };
    expect(result.messages).toBeGreaterThan(10);
    expect(result.errors).toBe(0);
    expect(result.latencyMs.p99).toBeGreaterThanOrEqual(result.latencyMs.p50);
    const t = await run(['bench', '127.0.0.1', String(server.port), '--conns', '2', '--duration', '300ms']);
    expect(t.stdout).toMatch(/^transport +conns +size +messages +msg\/s +MB\/s +p50 ms +p90 ms +p99 ms/);
    expect(t.stderr).toBe(''); // no progress bar when stderr is not a terminal
  });

  it('UDP bench against sock listen -u', async () => {
    const server = await listen(['0', '-u']);
    const r = await run([
      'bench',
      '127.0.0.1',
      String(server.port),
      '-u',
      '--conns',
      '2',
      '--duration',
      '300ms',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { messages: number; transport: string }).transport).toBe('udp');
  });

  it('exit 1 when nothing answers; usage errors exit 2', async () => {
    const r = await run(['bench', '127.0.0.1', '1', '--conns', '1', '--duration', '200ms']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sock: bench: 1 error\(s\), first: .*connection refused/);
    const u = await run(['bench', '127.0.0.1', '1', '--duration', '1y']);
    expect(u.code).toBe(2);
  });
});
