/**
 * Fuzz/property tests for the firewall's input validation: every address, CIDR, port, protocol and
 * duration is checked by these parsers before any command is built. `FUZZ_RUNS` sets the cases per
 * property (see fuzz/harness.ts).
 */
import { isIP } from 'node:net';
import { MAX_DURATION_MS, parseDuration, parsePort, parseProtocol, parseTarget } from '@sock/firewall';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { check, expectTyped, fuzzIt } from '../../../fuzz/harness.js';

/** Characters nft or a shell would treat as syntax: none may ever survive validation. */
const HOSTILE = /[\s;{}"'`$\\|&<>()#,*!]/;

const hostile = fc
  .tuple(
    fc.oneof(fc.ipV4(), fc.ipV6()),
    fc.constantFrom(' ', ';', '}', '{', '\n', ' ; flush ruleset', '%eth0', '/', '//', '\0', '١'),
    fc.boolean(),
  )
  .map(([a, x, before]) => (before ? `${x}${a}` : `${a}${x}`));
const target = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 40 })).map(([a, n]) => `${a}/${n}`),
  fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 140 })).map(([a, n]) => `${a}/${n}`),
  fc.ipV4().map((a) => `::ffff:${a}`),
  fc.stringMatching(/^[0-9a-fA-F:./]{0,70}$/),
  fc.string({ maxLength: 40 }),
  hostile,
);

fuzzIt(
  'firewall/parseTarget',
  'canonical target or a typed error; canonical text re-parses to itself; no syntax survives',
  fc.tuple(fc.oneof(target, target, fc.anything({ maxDepth: 1 })), fc.boolean()),
  ([input, broad]) => {
    try {
      const t = parseTarget(input, { allowBroadPrefix: broad });
      check(typeof input === 'string', 'accepted a non-string');
      check(!HOSTILE.test(t.text) && t.text.length <= 43, `unsafe text ${t.text}`);
      check(isIP(t.address) === t.family, `address ${t.address} is not IPv${t.family}`);
      check(t.prefix >= 0 && t.prefix <= (t.family === 4 ? 32 : 128), 'prefix range');
      check((t.kind === 'address') === (t.prefix === (t.family === 4 ? 32 : 128)), 'kind');
      const again = parseTarget(t.text, { allowBroadPrefix: true });
      check(again.text === t.text && again.value === t.value, 'not canonical');
      if (!broad) check(t.prefix >= (t.family === 4 ? 8 : 32), 'broad prefix without force');
    } catch (err) {
      expectTyped(err, ['ERR_SOCK_FW_INVALID_ADDRESS', 'ERR_SOCK_FW_PREFIX_TOO_BROAD']);
    }
  },
);

fuzzIt(
  'firewall/parseTarget',
  'plain addresses agree with node:net',
  fc.oneof(fc.ipV4(), fc.ipV6(), fc.stringMatching(/^[0-9a-f:.]{1,45}$/)),
  (text) => {
    let ok = true;
    try {
      parseTarget(text, { allowBroadPrefix: true });
    } catch (err) {
      expectTyped(err, ['ERR_SOCK_FW_INVALID_ADDRESS']);
      ok = false;
    }
    check(ok === (isIP(text) !== 0), `parseTarget and node:net disagree on ${text}`);
  },
);

fuzzIt(
  'firewall/parsePort+parseProtocol',
  'a port in 1..65535 / tcp|udp, or a typed error',
  fc.oneof(
    fc.integer({ min: -10, max: 70_000 }),
    fc.double(),
    fc.stringMatching(/^[0-9]{0,7}$/),
    fc.string({ maxLength: 8 }),
    fc.constantFrom('tcp', 'udp', 'TCP', 'icmp', ' 22', '22 ', '0x16', '1e3', '０'),
    fc.anything({ maxDepth: 1 }),
  ),
  (input) => {
    try {
      const p = parsePort(input);
      check(Number.isInteger(p) && p >= 1 && p <= 65535, `port ${p}`);
      check(typeof input === 'number' ? p === input : String(p) === input, 'port changed');
    } catch (err) {
      expectTyped(err, ['ERR_SOCK_FW_INVALID_PORT']);
    }
    try {
      const proto = parseProtocol(input);
      check(proto === input && (proto === 'tcp' || proto === 'udp'), 'protocol');
    } catch (err) {
      expectTyped(err, ['ERR_SOCK_FW_INVALID_PROTOCOL']);
    }
  },
);

fuzzIt(
  'firewall/parseDuration',
  'whole ms in 1..MAX_DURATION_MS, or a typed error',
  fc.oneof(
    fc
      .tuple(fc.stringMatching(/^[0-9]{1,12}$/), fc.constantFrom('ms', 's', 'm', 'h', 'd', '', 'w', 'S'))
      .map(([n, u]) => n + u),
    fc.double(),
    fc.integer(),
    fc.string({ maxLength: 12 }),
    fc.anything({ maxDepth: 1 }),
  ),
  (input) => {
    try {
      const ms = parseDuration(input);
      check(Number.isInteger(ms) && ms >= 1 && ms <= MAX_DURATION_MS, `duration ${ms}`);
    } catch (err) {
      expectTyped(err, ['ERR_SOCK_FW_INVALID_DURATION']);
    }
  },
);

describe('regressions found by fuzzing', () => {
  it('an input without a usable toString is a typed error, not a TypeError from the message', () => {
    for (const input of [Object.create(null), { toString: undefined }, { toString: () => ({}) }]) {
      expect(() => parseDuration(input)).toThrow(
        expect.objectContaining({ code: 'ERR_SOCK_FW_INVALID_DURATION' }),
      );
      expect(() => parsePort(input)).toThrow(expect.objectContaining({ code: 'ERR_SOCK_FW_INVALID_PORT' }));
      expect(() => parseTarget(input)).toThrow(
        expect.objectContaining({ code: 'ERR_SOCK_FW_INVALID_ADDRESS' }),
      );
    }
  });
});
