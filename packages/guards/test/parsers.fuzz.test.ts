/**
 * Fuzz/property tests for guards' parsers: PROXY protocol v1/v2, address and CIDR parsing (checked
 * against node:net and a naive longest-prefix reference), IP list files and the policy (object, JSON and
 * YAML text). `FUZZ_RUNS` sets the cases per property (see fuzz/harness.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP, isIPv4 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SockError } from '@sock/core';
import {
  addressKey,
  canonicalAddress,
  createCidrMatcher,
  loadPolicyFile,
  parseIpList,
  parseProxyHeader,
  proxyV1Header,
  proxyV2Header,
  resolvePolicy,
} from '@sock/guards';
import fc from 'fast-check';
import { afterAll } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { check, expectTyped, FUZZ_RUNS, fuzzIt, fuzzItAsync, mutate } from '../../../fuzz/harness.js';
import { PROXY_V2_SIGNATURE } from '../src/proxy-protocol.js';

// ---------------------------------------------------------------- PROXY protocol

const v4 = fc.ipV4();
const v6 = fc.ipV6().filter((a) => !a.includes('.'));
const endpoint = (addr: fc.Arbitrary<string>) => fc.record({ address: addr, port: fc.nat(65535) });
const validHeader = fc.oneof(
  fc.tuple(endpoint(v4), endpoint(v4)).map(([s, d]) => proxyV1Header(s, d)),
  fc.tuple(endpoint(v6), endpoint(v6)).map(([s, d]) => proxyV1Header(s, d)),
  fc.tuple(endpoint(v4), endpoint(v4)).map(([s, d]) => proxyV2Header(s, d)),
  fc.tuple(endpoint(v6), endpoint(v6)).map(([s, d]) => proxyV2Header(s, d)),
  fc.constant(proxyV2Header()),
  fc.constant(Buffer.from('PROXY UNKNOWN\r\n')),
);
const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 3 });
const proxyInput = fc.oneof(
  fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)),
  fc
    .tuple(fc.constantFrom(PROXY_V2_SIGNATURE, Buffer.from('PROXY ')), fc.uint8Array({ maxLength: 120 }))
    .map(([p, b]) => Buffer.concat([p, b])),
  fc.tuple(validHeader, edits).map(([h, e]) => mutate(h, e)),
  fc.tuple(validHeader, fc.nat()).map(([h, n]) => h.subarray(0, n % (h.length + 1))),
);
const STATUSES = ['incomplete', 'invalid', 'done'];

fuzzIt(
  'guards/proxy-protocol',
  'total: any bytes give incomplete/invalid/done, never past the buffer or maxBytes',
  fc.tuple(proxyInput, fc.integer({ min: 16, max: 600 })),
  ([buf, maxBytes]) => {
    const r = parseProxyHeader(buf, maxBytes);
    check(STATUSES.includes(r.status), 'unknown status');
    if (r.status === 'done') {
      check(r.length <= buf.length && r.length <= Math.max(maxBytes, 107), 'length past the buffer');
      if (r.source) check(isIP(r.source.address) !== 0, `bad source ${r.source.address}`);
    }
  },
);

fuzzIt(
  'guards/proxy-protocol',
  'prefix-monotone: more bytes never revive an invalid header nor change a done one',
  fc.tuple(proxyInput, fc.uint8Array({ maxLength: 40 })),
  ([buf, more]) => {
    const a = parseProxyHeader(buf);
    const b = parseProxyHeader(Buffer.concat([buf, more]));
    if (a.status === 'invalid') check(b.status === 'invalid', 'an invalid prefix became valid');
    if (a.status === 'done')
      check(JSON.stringify(a) === JSON.stringify(b), 'trailing bytes changed a header');
  },
);

fuzzIt(
  'guards/proxy-protocol',
  'round trip: every strict prefix is incomplete, the whole header parses to its fields',
  fc.tuple(fc.oneof(endpoint(v4), endpoint(v6)), fc.nat(65535), fc.boolean()),
  ([src, dport, useV2]) => {
    const family = src.address.includes(':') ? '::1' : '127.0.0.1';
    const dst = { address: family, port: dport };
    const header = useV2 ? proxyV2Header(src, dst) : proxyV1Header(src, dst);
    for (let n = 0; n < header.length; n++) {
      check(parseProxyHeader(header.subarray(0, n)).status === 'incomplete', `prefix ${n} not incomplete`);
    }
    const r = parseProxyHeader(header);
    check(r.status === 'done' && r.length === header.length, 'not parsed');
    if (r.status === 'done') {
      check(canonicalAddress(r.source!.address) === canonicalAddress(src.address), 'source differs');
      check(r.source!.port === src.port && r.destination!.port === dport, 'ports differ');
    }
  },
  { runs: Math.ceil(FUZZ_RUNS / 4) },
);

// ---------------------------------------------------------------- addresses

const addressText = fc.oneof(
  v4,
  fc.ipV6(),
  v4.map((a) => `::ffff:${a}`),
  fc.ipV6().map((a) => a.toUpperCase()),
  fc.stringMatching(/^[0-9a-fA-F:.%]{0,24}$/),
  fc.string({ maxLength: 30 }),
);

fuzzIt(
  'guards/address',
  'canonicalAddress/addressKey agree with node:net, are idempotent and never throw',
  fc.tuple(addressText, fc.integer({ min: 1, max: 128 })),
  ([text, prefix]) => {
    const c = canonicalAddress(text);
    // node accepts zone ids (`fe80::1%eth0`); guards parse and drop them.
    if (!text.includes('%'))
      check((c !== undefined) === (isIP(text) !== 0), `disagrees with node:net: ${text}`);
    if (c === undefined) {
      check(addressKey(text, prefix) === undefined, 'a key for a non-address');
      return;
    }
    check(isIP(c) !== 0 && canonicalAddress(c) === c, `not canonical: ${c}`);
    const key = addressKey(text, prefix);
    check(key !== undefined, 'no key for an address');
    if (isIPv4(c)) check(key === c, 'IPv4 key is the address');
  },
);

// ---------------------------------------------------------------- CIDR matcher vs a naive reference

function bitsOf(address: string): { family: 4 | 6; bits: bigint } | undefined {
  const c = canonicalAddress(address);
  if (c === undefined) return undefined;
  if (isIPv4(c)) return { family: 4, bits: c.split('.').reduce((acc, o) => (acc << 8n) | BigInt(o), 0n) };
  const [head = '', tail = ''] = c.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = c.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return { family: 6, bits: groups.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n) };
}

// Addresses near each other so rules overlap and nest.
const near4 = fc.tuple(fc.constantFrom(10, 192), fc.nat(3), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const near6 = fc
  .tuple(fc.constantFrom('2001:db8', 'fd00'), fc.nat(3), fc.nat(0xffff))
  .map(([p, a, b]) => `${p}:${a}::${b.toString(16)}`);
const rule = fc.oneof(
  fc.tuple(near4, fc.integer({ min: 0, max: 32 })).map(([a, n]) => `${a}/${n}`),
  near4,
  fc.tuple(near6, fc.integer({ min: 0, max: 128 })).map(([a, n]) => `${a}/${n}`),
);

fuzzIt(
  'guards/cidr-matcher',
  'longest-prefix lookups equal a naive scan; IPv4-mapped queries match IPv4 rules',
  fc.tuple(
    fc.array(fc.tuple(rule, fc.nat(9)), { maxLength: 12 }),
    fc.array(
      fc.oneof(
        near4,
        near6,
        near4.map((a) => `::ffff:${a}`),
        fc.string({ maxLength: 8 }),
      ),
      {
        minLength: 1,
        maxLength: 6,
      },
    ),
  ),
  ([rules, queries]) => {
    const matcher = createCidrMatcher(rules.map(([cidr, value]) => ({ cidr, value })));
    check(matcher.size === new Set(rules.map(([c]) => prefixKey(c))).size, 'size counts distinct prefixes');
    for (const q of queries) {
      // Reference: the longest covering prefix; two covering prefixes of one length are the same prefix,
      // and a later rule for a prefix replaces an earlier one.
      let want: number | undefined;
      let best = -1;
      for (const [cidr, value] of rules) {
        const len = covers(cidr, q);
        if (len >= 0 && len >= best) {
          best = len;
          want = value;
        }
      }
      const got = matcher.lookup(q);
      check(got === want, `lookup(${q}) = ${got}, reference ${want}`);
    }
  },
  // Each case builds a matcher (a 65,536-entry IPv4 table, ~0.3 ms); addresses and CIDRs themselves get
  // their million cases in the address and ip-list properties.
  { runs: Math.ceil(FUZZ_RUNS / 10), perCaseMs: 1 },
);

/** Family, prefix length and network bits of a rule. */
function prefixKey(cidr: string): string {
  const [a = '', n] = cidr.split('/');
  const b = bitsOf(a)!;
  const width = b.family === 4 ? 32 : 128;
  const len = n === undefined ? width : Number(n);
  return `${b.family}/${len}/${(b.bits >> BigInt(width - len)).toString(16)}`;
}
/** Prefix length of `cidr` when it covers `q`, else -1. */
function covers(cidr: string, q: string): number {
  const a = bitsOf(q);
  const [addr = '', n] = cidr.split('/');
  const r = bitsOf(addr)!;
  if (!a || a.family !== r.family) return -1;
  const width = a.family === 4 ? 32 : 128;
  const len = n === undefined ? width : Number(n);
  const shift = BigInt(width - len);
  return a.bits >> shift === r.bits >> shift ? len : -1;
}

fuzzIt(
  'guards/cidr-matcher',
  'invalid rules are refused with an ERR_SOCK_INVALID_OPTION naming the rule, never accepted',
  fc.oneof(fc.string({ maxLength: 24 }), fc.stringMatching(/^[0-9a-f:./]{1,24}$/)),
  (text) => {
    const valid = parseIpListSafe(text) !== undefined && text.trim() === text && text !== '';
    try {
      const m = createCidrMatcher([{ cidr: text, value: 1 }]);
      check(valid, `accepted an invalid rule ${JSON.stringify(text)}`);
      check(m.size === 1, 'one rule');
    } catch (err) {
      if (!(SockError.isInstance(err) && err.code === 'ERR_SOCK_INVALID_OPTION')) throw err;
      check(!valid, `refused a valid rule ${JSON.stringify(text)}`);
    }
  },
  { runs: Math.ceil(FUZZ_RUNS / 10), perCaseMs: 0.5 },
);

function parseIpListSafe(text: string): string[] | undefined {
  if (text.includes('\n') || text.includes('#')) return undefined;
  try {
    return parseIpList(text);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- IP list files

const listLine = fc.oneof(
  rule,
  near4,
  fc.constantFrom('', '   ', '# comment', '\t', '\r'),
  rule.map((r) => `  ${r}  # why`),
  fc.string({ maxLength: 12 }),
);

fuzzIt(
  'guards/ip-list',
  'a list or ERR_SOCK_INVALID_OPTION naming the line; every entry is a valid CIDR',
  fc.array(listLine, { maxLength: 8 }).map((lines) => lines.join('\n')),
  (text) => {
    try {
      const list = parseIpList(text, 'deny.txt');
      for (const entry of list)
        check(entry !== '' && entry.trim() === entry && !entry.includes('#'), 'entry');
    } catch (err) {
      expectTyped(err, ['ERR_SOCK_INVALID_OPTION']);
      const path = (err as SockError).issues?.[0]?.path;
      check(path?.[0] === 'deny.txt' && typeof path[1] === 'number', 'error does not name file and line');
    }
  },
);

// ---------------------------------------------------------------- policy

const junk = fc.oneof(
  fc.integer({ min: -5, max: 100_000 }),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('10s', '5m', '1.5s', '-1s', '0', 'x', '10.0.0.0/8', '::1', 'evict', 'close', 'pause'),
);
const rate = fc.oneof(
  junk,
  fc.constant(false),
  fc.record({ rate: junk, per: junk, burst: junk }, { requiredKeys: [] }),
);
const cidrs = fc.oneof(junk, fc.array(fc.oneof(rule, junk), { maxLength: 3 }));
const policy = fc.record(
  {
    ipv6Prefix: junk,
    ip: fc.oneof(
      junk,
      fc.record(
        {
          default: fc.oneof(junk, fc.constantFrom('allow', 'deny')),
          allow: cidrs,
          deny: cidrs,
          shadow: junk,
        },
        { requiredKeys: [] },
      ),
    ),
    connections: fc.oneof(junk, fc.record({ max: junk, perKey: junk, shadow: junk }, { requiredKeys: [] })),
    rates: fc.oneof(
      junk,
      fc.record(
        {
          connections: rate,
          messages: fc.oneof(junk, fc.record({ perConnection: rate, perKey: rate }, { requiredKeys: [] })),
          bytes: fc.oneof(junk, fc.record({ perConnection: rate }, { requiredKeys: [] })),
          onExceed: junk,
          tarpit: junk,
        },
        { requiredKeys: [] },
      ),
    ),
    timeouts: fc.oneof(
      junk,
      fc.record(
        {
          handshake: junk,
          idle: junk,
          lifetime: junk,
          minRate: fc.oneof(junk, fc.record({ bytesPerSecond: junk, grace: junk }, { requiredKeys: [] })),
        },
        { requiredKeys: [] },
      ),
    ),
    strikes: fc.oneof(
      junk,
      fc.record(
        { threshold: junk, window: junk, weights: fc.oneof(junk, fc.dictionary(fc.string(), junk)) },
        { requiredKeys: [] },
      ),
    ),
    bans: fc.oneof(
      junk,
      fc.record({ duration: junk, factor: junk, max: junk, neverBan: cidrs }, { requiredKeys: [] }),
    ),
    proxy: fc.oneof(
      junk,
      fc.record(
        { trusted: cidrs, ports: fc.oneof(junk, fc.array(junk)), maxBytes: junk },
        { requiredKeys: [] },
      ),
    ),
    store: fc.oneof(junk, fc.record({ maxKeys: junk, onFull: junk }, { requiredKeys: [] })),
    extra: junk,
  },
  { requiredKeys: [] },
);

function checkResolved(input: unknown): void {
  try {
    const r = resolvePolicy(input, 'fuzz.yaml');
    const durations = [
      r.timeouts.firstFrameMs,
      r.timeouts.idleMs,
      r.timeouts.lifetimeMs,
      r.rates.tarpitMs,
      r.rates.maxPauseMs,
      r.bans.durationMs,
      r.bans.maxMs,
      r.strikes.windowMs,
    ];
    for (const d of durations) check(Number.isFinite(d) && d >= 0, `duration ${d}`);
    check(r.ipv6Prefix >= 1 && r.ipv6Prefix <= 128, 'ipv6Prefix range');
    // Every CIDR kept is one the list parser (parseCidr) accepts.
    for (const c of [...r.ip.allow, ...r.ip.deny, ...r.bans.neverBan]) parseIpList(c);
    // Resolving is idempotent in outcome: a policy that resolved once resolves again.
    resolvePolicy(input);
  } catch (err) {
    expectTyped(err, ['ERR_SOCK_INVALID_OPTION']);
    const issues = (err as SockError).issues ?? [];
    check(issues.length > 0, 'a refused policy lists its issues');
    for (const i of issues) check(Array.isArray(i.path), 'every issue has a path');
  }
}

fuzzIt(
  'guards/policy',
  'any policy object: resolved with finite durations, or ERR_SOCK_INVALID_OPTION with issues',
  fc.oneof(policy, fc.anything({ maxDepth: 2 })),
  checkResolved,
);

const policyText = fc.oneof(
  policy.map((p) => JSON.stringify(p)),
  fc.string({ maxLength: 60 }),
  fc.tuple(policy, edits).map(([p, e]) => mutate(Buffer.from(JSON.stringify(p)), e).toString('latin1')),
  fc.constantFrom('timeouts:\n  handshake: 5s\n', 'ip: [', '{"rates":{"connections":false}}', 'a: &x [*x]'),
);

fuzzIt(
  'guards/policy',
  'policy file text (YAML, JSON ⊂ YAML) as loadPolicyFile reads it: typed errors only',
  policyText,
  (text) => {
    if (text.startsWith('{') || text.startsWith('"')) {
      // What a .json file goes through.
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (json !== undefined) checkResolved(json ?? {});
    }
    let data: unknown;
    try {
      data = parseYaml(text, { maxAliasCount: 100, logLevel: 'error' });
    } catch {
      return; // loadPolicyFile turns YAML syntax errors into ERR_SOCK_INVALID_OPTION (tested below)
    }
    checkResolved(data ?? {});
  },
  // The YAML library costs ~1 ms a document: the policy parser itself gets its million cases above.
  { runs: Math.min(FUZZ_RUNS, 100_000), perCaseMs: 1.5 },
);

const dir = mkdtempSync(join(tmpdir(), 'sock-policy-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;

fuzzItAsync(
  'guards/policy-file',
  'loadPolicyFile on real files: a policy or ERR_SOCK_INVALID_OPTION',
  fc.tuple(
    fc.oneof(
      policyText.filter((t) => !/[!%]/.test(t)),
      policy.map((p) => JSON.stringify(p)),
    ),
    fc.constantFrom('.json', '.yaml', '.yml'),
  ),
  async ([text, ext]) => {
    const file = join(dir, `p${fileNo++ % 8}${ext}`);
    writeFileSync(file, text);
    try {
      const p = await loadPolicyFile(file);
      checkResolved(p);
    } catch (err) {
      expectTyped(err, ['ERR_SOCK_INVALID_OPTION']);
    }
  },
  // File I/O per case: the in-memory property above carries the million cases.
  { runs: Math.min(FUZZ_RUNS, 5_000), perCaseMs: 3 },
);
