/**
 * Fuzz/property tests for core's parsers: frame decoders, the text and JSON codecs (with a Standard
 * Schema), parseDuration and canonicalPeer. `FUZZ_RUNS` sets the cases per property (see fuzz/harness.ts).
 */

import {
  delimited,
  type Framing,
  json,
  lengthPrefixed,
  parseDuration,
  raw,
  type SockError,
  text,
} from '@sock/core';
import { canonicalPeer } from '@sock/core/internal';
import fc from 'fast-check';
import { describe } from 'vitest';
import { z } from 'zod';
import { check, expectTyped, fuzzIt, mutate, split } from '../../../fuzz/harness.js';

// Small inputs: a million cases must fit in minutes; limits are small too, so every boundary is reached.
const chunks = fc.array(fc.uint8Array({ maxLength: 48 }), { maxLength: 6 });

/** Feed chunks; returns frames (copies) and whether the decoder refused the stream. */
function feed(framing: Framing, parts: readonly Uint8Array[]): { frames: Buffer[]; refused: boolean } {
  const decoder = framing.createDecoder();
  const frames: Buffer[] = [];
  try {
    for (const c of parts) {
      decoder.push(Buffer.from(c), (f) => {
        check(f.length <= framing.maxFrameBytes, 'frame over the limit');
        frames.push(Buffer.from(f));
      });
      check(decoder.bufferedBytes <= framing.maxFrameBytes + 16, 'buffered past the limit');
    }
    return { frames, refused: false };
  } catch (err) {
    expectTyped(err, ['ERR_SOCK_FRAME_TOO_LARGE']);
    return { frames, refused: true };
  }
}

/** Encode payloads as one stream. A payload byte equal to the delimiter's first could form a delimiter: replaced. */
function encodeAll(
  framing: Framing,
  payloads: readonly Uint8Array[],
  forbidden: number,
): { clean: Uint8Array[]; stream: Buffer } {
  const clean = payloads.map((p) => (forbidden ? Buffer.from(p.map((b) => (b === forbidden ? 0 : b))) : p));
  return { clean, stream: Buffer.concat(clean.map((p) => framing.encode(p))) };
}

const framings: Array<[string, (max: number) => Framing, number]> = [
  ['length-u16', (max) => lengthPrefixed({ header: 'u16', maxFrameBytes: max }), 0],
  ['length-u32', (max) => lengthPrefixed({ maxFrameBytes: max }), 0],
  ['delimited-lf', (max) => delimited({ maxFrameBytes: max }), 10],
  [
    'delimited-crlfcrlf',
    (max) => delimited({ delimiter: '\r\n\r\n', maxFrameBytes: max, stripCarriageReturn: true }),
    13,
  ],
];

describe.each(framings)('core/%s', (name, make, forbidden) => {
  fuzzIt(
    `core/${name}`,
    'hostile bytes: typed errors only, buffering bounded',
    fc.tuple(fc.integer({ min: 1, max: 64 }), chunks),
    ([max, parts]) => {
      feed(make(max), parts);
    },
  );

  fuzzIt(
    `core/${name}`,
    'round trip under any chunking',
    fc.tuple(
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 5 }),
      fc.array(fc.nat(), { maxLength: 6 }),
    ),
    ([payloads, cuts]) => {
      const framing = make(64);
      const { clean, stream } = encodeAll(framing, payloads, forbidden);
      const { frames, refused } = feed(framing, split(stream, cuts));
      check(!refused, 'a valid stream was refused');
      check(frames.length === clean.length, 'frame count differs');
      for (const [i, f] of frames.entries()) check(f.equals(clean[i]!), `frame ${i} differs`);
    },
  );

  fuzzIt(
    `core/${name}`,
    'stopping after any frame and pushing the rest later loses and repeats nothing',
    fc.tuple(
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      fc.array(fc.boolean(), { maxLength: 12 }),
    ),
    ([payloads, cuts, stops]) => {
      const framing = make(64);
      const { clean, stream } = encodeAll(framing, payloads, forbidden);
      const decoder = framing.createDecoder();
      const frames: Buffer[] = [];
      let n = 0;
      for (const part of split(stream, cuts)) {
        let rest = Buffer.from(part);
        while (rest.length > 0) {
          const consumed = decoder.push(rest, (f) => {
            frames.push(Buffer.from(f));
            return stops[n++ % Math.max(1, stops.length)] === true;
          });
          check(
            typeof consumed === 'number' && consumed > 0 && consumed <= rest.length,
            'bad consumed count',
          );
          rest = rest.subarray(consumed as number);
        }
      }
      check(frames.length === clean.length, 'frame count differs');
      for (const [i, f] of frames.entries()) check(f.equals(clean[i]!), `frame ${i} differs`);
    },
  );
});

fuzzIt(
  'core/raw',
  'pieces within the limit, concatenation is the input',
  fc.tuple(fc.integer({ min: 1, max: 64 }), chunks),
  ([max, parts]) => {
    const { frames, refused } = feed(raw({ maxFrameBytes: max }), parts);
    check(!refused, 'raw refused bytes');
    check(Buffer.concat(frames).equals(Buffer.concat(parts)), 'raw changed the bytes');
  },
);

const codecErrors = ['ERR_SOCK_INVALID_MESSAGE'];

fuzzIt(
  'core/text',
  'any bytes: a string or ERR_SOCK_INVALID_MESSAGE',
  fc.uint8Array({ maxLength: 64 }),
  (b) => {
    const codec = text();
    try {
      const s = codec.decode(Buffer.from(b)) as string;
      check(Buffer.from(codec.encode(s)).equals(Buffer.from(b)), 'text round trip');
    } catch (err) {
      expectTyped(err, codecErrors);
    }
  },
);

const jsonish = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  fc.json({ maxDepth: 3 }).map((s) => Buffer.from(s)),
  fc
    .tuple(
      fc.json({ maxDepth: 2 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
    )
    .map(([s, edits]) => mutate(Buffer.from(s), edits)),
);

fuzzIt('core/json', 'any bytes: a value or ERR_SOCK_INVALID_MESSAGE', jsonish, (frame) => {
  try {
    json().decode(frame);
  } catch (err) {
    expectTyped(err, codecErrors);
  }
});

fuzzIt('core/json', 'round trip of any JSON value', fc.jsonValue({ maxDepth: 3 }), (value) => {
  const codec = json();
  const encoded = Buffer.from(codec.encode(value));
  // JSON has no -0: compare through the canonical text.
  check(JSON.stringify(codec.decode(encoded)) === JSON.stringify(value), 'json round trip');
});

const schema = z.object({
  type: z.enum(['chat', 'ping']),
  text: z.string().max(64).optional(),
  n: z.number().int().nonnegative().optional(),
});
const junk = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.constant(null),
);
const shaped = fc.oneof(
  jsonish,
  fc
    .record(
      {
        type: fc.oneof(fc.constantFrom('chat', 'ping', 'other'), junk),
        text: fc.oneof(fc.string({ maxLength: 80 }), junk),
        n: junk,
      },
      { requiredKeys: [] },
    )
    .map((o) => Buffer.from(JSON.stringify(o) ?? 'null')),
);

fuzzIt(
  'core/json+schema',
  'a valid value or ERR_SOCK_INVALID_MESSAGE / ERR_SOCK_VALIDATION_FAILED with issues',
  shaped,
  (frame) => {
    try {
      const value = json({ schema }).decode(frame);
      check(schema.safeParse(value).success, 'decoded value fails the schema');
    } catch (err) {
      expectTyped(err, [...codecErrors, 'ERR_SOCK_VALIDATION_FAILED']);
      if ((err as SockError).code === 'ERR_SOCK_VALIDATION_FAILED') {
        check(((err as SockError).issues?.length ?? 0) > 0, 'validation error without issues');
      }
    }
  },
);

const durationText = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc
    .tuple(
      fc.stringMatching(/^\d{1,25}(\.\d{1,5})?$/),
      fc.constantFrom('', 'ms', 's', 'm', 'h', 'd', 'x', ' s', 'S'),
      fc.constantFrom('', ' ', '\t'),
    )
    .map(([n, u, pad]) => `${pad}${n}${u}${pad}`),
);

fuzzIt(
  'core/parseDuration',
  'a finite non-negative ms count or ERR_SOCK_INVALID_OPTION',
  fc.oneof(durationText, fc.double(), fc.integer()),
  (value) => {
    try {
      const ms = parseDuration(value);
      check(Number.isFinite(ms) && ms >= 0, `parseDuration(${JSON.stringify(value)}) = ${ms}`);
      if (typeof value === 'number') check(ms === value, 'a number is returned as is');
      else check(parseDuration(`${ms}ms`) === ms, 'ms round trip');
    } catch (err) {
      expectTyped(err, ['ERR_SOCK_INVALID_OPTION']);
    }
  },
);

fuzzIt(
  'core/canonicalPeer',
  'IPv4 and IPv4-mapped IPv6 give the same IPv4; idempotent; never throws',
  fc.oneof(
    fc.ipV4().map((a) => [a, a] as const),
    fc.ipV4().map((a) => [`::ffff:${a}`, a] as const),
    fc.ipV4().map((a) => [`::FFFF:${a}`, a] as const),
    // Spelled in hex, uncompressed, as a PROXY v2 header's 16 bytes are often formatted.
    fc.ipV4().map((a) => {
      const [b0, b1, b2, b3] = a.split('.').map(Number) as [number, number, number, number];
      const hex = `${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
      return [`0:0:0:0:0:ffff:${hex}`, a] as const;
    }),
    fc.ipV6().map((a) => [a, undefined] as const),
    fc.string({ maxLength: 50 }).map((a) => [a, undefined] as const),
  ),
  ([input, v4]) => {
    const peer = canonicalPeer(input);
    if (v4 !== undefined) check(peer.address === v4 && peer.family === 'IPv4', 'mapped IPv4 not unmapped');
    const again = canonicalPeer(peer.address);
    check(again.address === peer.address && again.family === peer.family, 'not idempotent');
  },
);
