/**
 * Fuzz/property tests for udp's datagram parsers: the request/response envelope and address-validation
 * cookies. `FUZZ_RUNS` sets the cases per property (see fuzz/harness.ts).
 */
import { addressCookies, encodeEnvelope, parseEnvelope } from '@sock/udp';
import fc from 'fast-check';
import { check, fuzzIt, mutate } from '../../../fuzz/harness.js';
import { clockAt } from '../../../test-support/clock.js';
import { COOKIE_BYTES } from '../src/cookie.js';
import { ENVELOPE_HEADER_BYTES } from '../src/envelope.js';

const KINDS = ['request', 'response', 'cookie', 'error'] as const;
const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 });
const envelope = fc
  .tuple(
    fc.constantFrom(...KINDS),
    fc.nat({ max: 0xffffffff }),
    fc.uint8Array({ maxLength: 64 }),
    fc.option(fc.uint8Array({ minLength: COOKIE_BYTES, maxLength: COOKIE_BYTES }), { nil: undefined }),
  )
  .map(([kind, id, payload, cookie]) =>
    kind === 'cookie'
      ? { kind, id, payload: new Uint8Array(0), cookie: cookie ?? new Uint8Array(COOKIE_BYTES) }
      : { kind, id, payload, cookie },
  );

fuzzIt(
  'udp/envelope',
  'any datagram: an envelope whose parts lie inside it, or undefined; never throws',
  fc.oneof(
    fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)),
    fc.tuple(envelope, edits).map(([e, x]) => mutate(encodeEnvelope(e.kind, e.id, e.payload, e.cookie), x)),
    envelope.map((e) => encodeEnvelope(e.kind, e.id, e.payload, e.cookie).subarray(0, 6 + (e.id % 30))),
  ),
  (datagram) => {
    const e = parseEnvelope(datagram);
    if (e === undefined) return;
    check(KINDS.includes(e.kind), 'kind');
    check(e.id >= 0 && e.id <= 0xffffffff, 'id');
    const head = ENVELOPE_HEADER_BYTES + (e.cookie ? COOKIE_BYTES : 0);
    check(e.payload.length === datagram.length - head, 'payload is the rest');
    check(e.cookie === undefined || e.cookie.length === COOKIE_BYTES, 'cookie size');
    // Re-encoding gives the same bytes: the parser accepts exactly one encoding of each envelope.
    check(encodeEnvelope(e.kind, e.id, e.payload, e.cookie).equals(datagram), 'not canonical');
  },
);

fuzzIt('udp/envelope', 'round trip of every envelope', envelope, (e) => {
  const got = parseEnvelope(encodeEnvelope(e.kind, e.id, e.payload, e.cookie));
  check(got !== undefined && got.kind === e.kind && got.id === e.id, 'header');
  check(Buffer.from(e.payload).equals(got.payload), 'payload');
  check(
    e.cookie === undefined ? got.cookie === undefined : Buffer.from(e.cookie).equals(got.cookie!),
    'cookie',
  );
});

let clock = 1_700_000_000_000;
const cookies = addressCookies({ secret: Buffer.alloc(32, 7), lifetime: '60s', clock: clockAt(() => clock) });
const address = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4().map((a) => `::ffff:${a}`),
  fc.string({ maxLength: 20 }),
);

fuzzIt(
  'udp/cookie',
  'verify never throws; only an issued cookie for the same address and port is valid',
  fc.tuple(
    address,
    fc.integer({ min: -1, max: 70_000 }),
    fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.uint8Array({ minLength: COOKIE_BYTES, maxLength: COOKIE_BYTES }),
    ),
    edits,
    fc.integer({ min: -10_000, max: 120_000 }),
  ),
  ([addr, port, junk, x, later]) => {
    const r = cookies.verify(junk, addr, port);
    check(r === 'invalid' || r === 'valid' || r === 'expired', 'result');
    const issued = cookies.issue(addr, port);
    check(issued.length === COOKIE_BYTES, 'size');
    check(cookies.verify(issued, addr, port) === 'valid', 'fresh cookie not valid');
    // Two edits of one byte may cancel out: only a cookie that really differs must be refused.
    const altered = mutate(issued, x);
    if (!altered.equals(issued))
      check(cookies.verify(altered, addr, port) === 'invalid', 'altered cookie accepted');
    check(
      cookies.verify(issued, addr, (port + 1) & 0xffff) === 'invalid' ||
        (port & 0xffff) === ((port + 1) & 0xffff),
      'other port',
    );
    const saved = clock;
    clock += later;
    const aged = cookies.verify(issued, addr, port);
    clock = saved;
    if (later > 61_000) check(aged === 'expired', 'old cookie not expired');
    if (later >= 0 && later < 59_000) check(aged === 'valid', 'young cookie not valid');
  },
);
