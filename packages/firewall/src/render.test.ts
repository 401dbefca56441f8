import { describe, expect, it } from 'vitest';
import { parseTarget } from './address.js';
import { IptablesRenderer, jumpState, parseIpsetSave } from './iptables.js';
import type { BanElement, Change } from './model.js';
import { NftRenderer, parseNftList } from './nftables.js';

const el = (t: string, timeoutSec: number | null, comment = '', refresh = false): BanElement => ({
  target: parseTarget(t),
  timeoutSec,
  comment,
  refresh,
});

const changes: Change[] = [
  {
    type: 'ban',
    elements: [
      el('192.0.2.1', 600, 'ssh brute'),
      el('192.0.2.2', 60, '', true),
      el('2001:db8::1', null, 'manual'),
      el('198.51.100.0/24', 3600, 'scanner'),
      el('2001:db8:1:2::/64', 120, 'guards'),
      el('2001:db8:100::/48', 120),
    ],
  },
  { type: 'unban', targets: [parseTarget('203.0.113.9'), parseTarget('2001:db8:5::/64')] },
  { type: 'set-allow', targets: [parseTarget('10.0.0.0/8'), parseTarget('2001:db8:ff::1')] },
  {
    type: 'set-ports',
    rules: [
      { action: 'deny', port: 22, protocol: 'tcp' },
      { action: 'allow', port: 22, protocol: 'tcp', from: '192.0.2.0/24' },
      { action: 'deny', port: 53, protocol: 'udp', from: '2001:db8::/32' },
    ],
  },
];

describe('nftables renderer (golden)', () => {
  const r = new NftRenderer('sockfw');

  it('structure', async () => {
    await expect(JSON.stringify({ nftables: r.structure() }, null, 2)).toMatchFileSnapshot(
      './__golden__/nft-structure.json.golden',
    );
  });

  it('changes', async () => {
    await expect(JSON.stringify({ nftables: r.changes(changes) }, null, 2)).toMatchFileSnapshot(
      './__golden__/nft-changes.json.golden',
    );
  });

  it('replace-bans (restore) flushes only our ban sets', async () => {
    const doc = r.changes([{ type: 'replace-bans', elements: [el('192.0.2.1', 30, 'x')] }]);
    await expect(JSON.stringify({ nftables: doc }, null, 2)).toMatchFileSnapshot(
      './__golden__/nft-restore.json.golden',
    );
    for (const cmd of doc) {
      const flush = (cmd as { flush?: { set?: { table: string } } }).flush;
      if (flush) expect(flush.set?.table).toBe('sockfw');
    }
  });

  it('destroy only names our table', () => {
    expect(r.destroy()).toEqual([
      { add: { table: { family: 'inet', name: 'sockfw' } } },
      { delete: { table: { family: 'inet', name: 'sockfw' } } },
    ]);
  });

  it('never emits a ruleset-wide command', () => {
    const text = JSON.stringify([...r.structure(), ...r.changes(changes), ...r.destroy()]);
    expect(text).not.toMatch(/ruleset/);
  });

  it('parses nft -j list output', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        {
          set: {
            name: 'ban4',
            elem: [{ elem: { val: '1.2.3.4', timeout: 600, expires: 599, comment: 'ssh brute' } }, '5.6.7.8'],
          },
        },
        {
          set: {
            name: 'net4',
            elem: [{ elem: { val: { prefix: { addr: '10.0.0.0', len: 8 } }, expires: 10 } }],
          },
        },
        { set: { name: 'net6p64', elem: [{ elem: { val: '2001:db8::', expires: 5 } }] } },
        { set: { name: 'allow4', elem: ['9.9.9.9'] } },
      ],
    });
    expect(parseNftList(json).map((b) => [b.target.text, b.expiresSec, b.comment])).toEqual([
      ['1.2.3.4', 599, 'ssh brute'],
      ['5.6.7.8', null, undefined],
      ['10.0.0.0/8', 10, undefined],
      ['2001:db8::/64', 5, undefined],
    ]);
  });
});

describe('iptables renderer (golden)', () => {
  const r = new IptablesRenderer('sockfw');

  it('ipset restore file', async () => {
    const text = [...r.createSets(), ...r.ipsetLines(changes)].join('\n');
    await expect(`${text}\n`).toMatchFileSnapshot('./__golden__/ipset-restore.txt');
  });

  it('iptables-restore files', async () => {
    const rules = (changes[3] as Extract<Change, { type: 'set-ports' }>).rules;
    await expect(r.restoreFile(4, rules, { INPUT: 'missing', FORWARD: 'missing' })).toMatchFileSnapshot(
      './__golden__/iptables-restore-v4.txt',
    );
    await expect(r.restoreFile(6, rules, {})).toMatchFileSnapshot('./__golden__/ip6tables-restore-v6.txt');
    // Our jump further down (someone inserted before it) moves back to the top; a FORWARD jump of the
    // older layout (straight to the INPUT chain) goes.
    await expect(r.restoreFile(4, [], { INPUT: 'elsewhere', FORWARD: 'first' }, true)).toMatchFileSnapshot(
      './__golden__/iptables-restore-move-jump.txt',
    );
    await expect(r.removeChainsFile()).toMatchFileSnapshot('./__golden__/iptables-remove.txt');
  });

  it('reads where our jump sits in a hook chain', () => {
    const listing = ['-P INPUT DROP', '-A INPUT -i lo -j ACCEPT', '-A INPUT -j sockfw', ''].join('\n');
    expect(jumpState(listing, 'INPUT', 'sockfw')).toBe('elsewhere');
    expect(jumpState('-P INPUT DROP\n-A INPUT -j sockfw\n', 'INPUT', 'sockfw')).toBe('first');
    expect(jumpState('-P INPUT DROP\n-A INPUT -j sockfwx\n', 'INPUT', 'sockfw')).toBe('missing');
  });

  it('parses ipset save output, ours only', () => {
    const text = [
      'create sockfw-ban4 hash:ip family inet hashsize 1024 maxelem 1048576 timeout 0 comment',
      'add sockfw-ban4 1.2.3.4 timeout 599 comment "ssh brute"',
      'add sockfw-ban4 5.6.7.8 timeout 0',
      'add sockfw-net6 2001:db8::/64 timeout 30',
      'add sockfw-allow4 10.0.0.0/8',
      'add other-set 7.7.7.7 timeout 5',
    ].join('\n');
    expect(parseIpsetSave(text, r).map((b) => [b.target.text, b.expiresSec, b.comment])).toEqual([
      ['1.2.3.4', 599, 'ssh brute'],
      ['5.6.7.8', null, undefined],
      ['2001:db8::/64', 30, undefined],
    ]);
  });
});
