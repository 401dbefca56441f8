import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SockError } from '@sock/core';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPolicyFile, resolvePolicy } from './policy.js';

function problems(input: unknown): string[] {
  try {
    resolvePolicy(input);
  } catch (err) {
    expect(SockError.isInstance(err)).toBe(true);
    expect((err as SockError).code).toBe('ERR_SOCK_INVALID_OPTION');
    return (err as SockError).issues!.map((i) => i.message);
  }
  return [];
}

describe('resolvePolicy', () => {
  it('applies safe defaults', () => {
    const p = resolvePolicy({});
    expect(p.ipv6Prefix).toBe(64);
    expect(p.connections).toEqual({ max: 10_000, perKey: 32, shadow: false });
    expect(p.rates.connections).toEqual({ emissionMs: 100, burst: 20 });
    expect(p.timeouts).toMatchObject({ firstFrameMs: 10_000, idleMs: 300_000, lifetimeMs: 0 });
    expect(p.strikes.weights.banned).toBe(0);
    expect(p.bans).toMatchObject({ durationMs: 600_000, factor: 2 });
    expect(p.proxy).toBeUndefined();
    expect(p.store).toEqual({ maxKeys: 100_000, onFull: 'evict' });
  });

  it('accepts durations as strings and turns guards off with false', () => {
    const p = resolvePolicy({
      timeouts: { handshake: '2s', idle: false, minRate: false },
      rates: { connections: { rate: 5, per: '1m' }, messages: { perConnection: false } },
      connections: { max: false },
    });
    expect(p.timeouts).toMatchObject({ firstFrameMs: 2000, idleMs: 0, minRate: undefined });
    expect(p.rates.connections).toEqual({ emissionMs: 12_000, burst: 5 });
    expect(p.rates.messagesPerConnection).toBeUndefined();
    expect(p.connections.max).toBe(Number.POSITIVE_INFINITY);
  });

  it('names every bad field and says what is wrong', () => {
    expect(
      problems({
        ipv6Prefix: 200,
        connections: { perKey: -1 },
        rates: { connections: { rate: 'fast' }, onExceed: 'explode' },
        timeouts: { idle: '5 minutes' },
        ip: { deny: ['10.0.0.0/8', '10.0.0/8'] },
        bans: { factr: 2 },
        proxy: { ports: [80] },
      }),
    ).toEqual([
      expect.stringMatching(/^policy\.ipv6Prefix: expected an integer from 1 to 128, got 200/),
      expect.stringMatching(/^policy\.ip\.deny\[1\]: not an IP address or CIDR: "10\.0\.0\/8"/),
      expect.stringMatching(/^policy\.connections\.perKey: expected an integer/),
      expect.stringMatching(/^policy\.rates\.connections\.rate: expected a number/),
      expect.stringMatching(
        /^policy\.rates\.onExceed: expected one of "close", "tarpit", "pause", got "explode"/,
      ),
      expect.stringMatching(/^policy\.timeouts\.idle: expected a duration/),
      expect.stringMatching(/^policy\.bans\.factr: unknown field/),
      expect.stringMatching(/^policy\.proxy\.trusted: required/),
    ]);
    expect(problems('nope')).toEqual(['policy: expected an object, got "nope"']);
  });
});

describe('loadPolicyFile', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = '';
  });

  it('reads YAML and JSON, resolving list files against the policy file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'guards-policy-'));
    await writeFile(
      join(dir, 'policy.yaml'),
      'connections:\n  perKey: 4\nip:\n  denyFiles: [deny.txt]\nbans:\n  duration: 30m\n',
    );
    const yaml = await loadPolicyFile(join(dir, 'policy.yaml'));
    expect(yaml.ip?.denyFiles).toEqual([join(dir, 'deny.txt')]);
    expect(resolvePolicy(yaml).bans.durationMs).toBe(1_800_000);
    await writeFile(join(dir, 'policy.json'), JSON.stringify({ timeouts: { idle: '1m' } }));
    expect(resolvePolicy(await loadPolicyFile(join(dir, 'policy.json'))).timeouts.idleMs).toBe(60_000);
  });

  it('names the file and the field on errors', async () => {
    dir = await mkdtemp(join(tmpdir(), 'guards-policy-'));
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'rates:\n  tarpit: soon\n');
    await expect(loadPolicyFile(file)).rejects.toThrow(
      `${file}: invalid: policy.rates.tarpit: expected a duration`,
    );
    await writeFile(file, 'rates: [unclosed\n');
    await expect(loadPolicyFile(file)).rejects.toThrow(`${file}: not valid YAML`);
  });
});
