import { describe, expect, it } from 'vitest';
import { detectBackend } from './detect.js';
import { FirewallError } from './errors.js';
import type { Command, CommandRunner } from './runner.js';

const node = process.execPath;
const binaries = {
  nft: node,
  iptables: node,
  ip6tables: node,
  'iptables-restore': node,
  'ip6tables-restore': node,
  ipset: node,
};

function fake(answer: (c: Command) => { exitCode: number; stderr?: string }): CommandRunner {
  return {
    async run(c) {
      const a = answer(c);
      return { exitCode: a.exitCode, stdout: '', stderr: a.stderr ?? '' };
    },
  };
}

describe('detectBackend', () => {
  it('prefers nftables when nft answers', async () => {
    const runner = fake(() => ({ exitCode: 0 }));
    expect(await detectBackend({ runner, binaries, skipPrivilegeCheck: true })).toBe('nftables');
  });

  it('falls back to iptables when nft fails', async () => {
    const runner = fake((c) => ({
      exitCode: c.bin === 'nft' ? 1 : 0,
      stderr: 'netlink: Error: module missing',
    }));
    expect(await detectBackend({ runner, binaries, skipPrivilegeCheck: true })).toBe('iptables');
  });

  it('NO_BACKEND with every reason in cause when nothing works', async () => {
    const runner = fake(() => ({ exitCode: 1, stderr: 'Error: Protocol not supported' }));
    const err = await detectBackend({ runner, binaries, skipPrivilegeCheck: true }).catch((e: unknown) => e);
    expect(FirewallError.isInstance(err) && err.code).toBe('ERR_SOCK_FW_NO_BACKEND');
    expect((err as Error).cause).toBeInstanceOf(AggregateError);
    expect(((err as Error).cause as AggregateError).errors).toHaveLength(2);
    expect((err as Error).message).toMatch(/install nftables/);
  });

  it('NOT_PERMITTED when every probe is refused for permission', async () => {
    const runner = fake(() => ({ exitCode: 1, stderr: 'Error: Operation not permitted' }));
    const err = await detectBackend({ runner, binaries, skipPrivilegeCheck: true }).catch((e: unknown) => e);
    expect(FirewallError.isInstance(err) && err.code).toBe('ERR_SOCK_FW_NOT_PERMITTED');
  });

  it('BINARY_MISSING reasons when the tools are not installed', async () => {
    const runner = fake(() => ({ exitCode: 0 }));
    const missing = { ...binaries, nft: '/nonexistent/nft', ipset: '/nonexistent/ipset' };
    const err = await detectBackend({ runner, binaries: missing, skipPrivilegeCheck: true }).catch(
      (e: unknown) => e,
    );
    expect(FirewallError.isInstance(err) && err.code).toBe('ERR_SOCK_FW_NO_BACKEND');
    const codes = ((err as Error).cause as AggregateError).errors.map((e: FirewallError) => e.code);
    expect(codes).toEqual(['ERR_SOCK_FW_BINARY_MISSING', 'ERR_SOCK_FW_BINARY_MISSING']);
  });
});
