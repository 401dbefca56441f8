import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SockError } from '../errors.js';
import { delimited } from './delimited.js';
import type { Framing } from './framing.js';
import { lengthPrefixed } from './length-prefixed.js';
import { raw } from './raw.js';

/** Decode a stream fed in the given pieces; collects frames as copies. */
function decodeChunks(framing: Framing, chunks: Buffer[]): Buffer[] {
  const decoder = framing.createDecoder();
  const out: Buffer[] = [];
  for (const c of chunks)
    decoder.push(c, (f) => {
      out.push(Buffer.from(f));
    });
  return out;
}

/** Split `buf` at the given cut points. */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    parts.push(buf.subarray(prev, p));
    prev = p;
  }
  parts.push(buf.subarray(prev));
  return parts;
}

const framings: Array<[string, () => Framing, fc.Arbitrary<Uint8Array>]> = [
  [
    'length-u16',
    () => lengthPrefixed({ header: 'u16', maxFrameBytes: 300 }),
    fc.uint8Array({ maxLength: 300 }),
  ],
  ['length-u32', () => lengthPrefixed({ maxFrameBytes: 300 }), fc.uint8Array({ maxLength: 300 })],
  [
    'delimited \\n',
    () => delimited({ maxFrameBytes: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((a) => a.map((b) => (b === 10 ? 11 : b))),
  ],
  [
    'delimited \\r\\n\\r\\n',
    () => delimited({ delimiter: '\r\n\r\n', maxFrameBytes: 300 }),
    // Payloads without CR so no delimiter can form inside or across the seam.
    fc.uint8Array({ maxLength: 300 }).map((a) => a.map((b) => (b === 13 ? 14 : b))),
  ],
];

describe.each(framings)('%s', (_name, make, payload) => {
  it('any chunking of any frame sequence decodes to the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(payload, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (payloads, cuts) => {
          const framing = make();
          const stream = Buffer.concat(payloads.map((p) => framing.encode(p)));
          const frames = decodeChunks(framing, split(stream, cuts));
          expect(frames.map((f) => f.toString('hex'))).toEqual(
            payloads.map((p) => Buffer.from(p).toString('hex')),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decodes a stream fed one byte at a time', () => {
    const framing = make();
    const payloads = [Buffer.from('alpha'), Buffer.alloc(0), Buffer.from('gamma'.repeat(40))];
    const stream = Buffer.concat(payloads.map((p) => framing.encode(p)));
    const bytes = [...stream].map((b) => Buffer.from([b]));
    expect(decodeChunks(framing, bytes).map(String)).toEqual(payloads.map(String));
  });

  it('random bytes never crash and never buffer past the limit', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 30 }), (chunks) => {
        const framing = make();
        const decoder = framing.createDecoder();
        try {
          for (const c of chunks) {
            decoder.push(Buffer.from(c), () => {});
            // Limit + header/delimiter overhead is the most a decoder may hold.
            expect(decoder.bufferedBytes).toBeLessThanOrEqual(framing.maxFrameBytes + 16);
          }
        } catch (err) {
          expect(SockError.isInstance(err) && err.code).toBe('ERR_SOCK_FRAME_TOO_LARGE');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses an oversized outbound payload', () => {
    const framing = make();
    expect(() => framing.encode(Buffer.alloc(301))).toThrow(/exceeds maxFrameBytes 300/);
  });
});

describe('oversize detection', () => {
  it('length-prefixed: refused from the header alone', () => {
    const decoder = lengthPrefixed({ maxFrameBytes: 1024 }).createDecoder();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025);
    expect(() => decoder.push(header, () => {})).toThrow(
      expect.objectContaining({ code: 'ERR_SOCK_FRAME_TOO_LARGE', reason: 'frame-too-large' }),
    );
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('length-prefixed: a header split across reads is still checked before the payload', () => {
    const decoder = lengthPrefixed({ maxFrameBytes: 1024 }).createDecoder();
    const frames: Buffer[] = [];
    decoder.push(Buffer.from([0, 0]), (f) => {
      frames.push(f);
    });
    expect(() => decoder.push(Buffer.from([0xff, 0xff]), () => {})).toThrow(/65535 bytes exceeds/);
  });

  it('delimited: a delimiter-less flood is refused at the first byte past the limit', () => {
    const decoder = delimited({ maxFrameBytes: 100 }).createDecoder();
    decoder.push(Buffer.alloc(60, 'a'), () => {});
    decoder.push(Buffer.alloc(40, 'a'), () => {});
    expect(decoder.bufferedBytes).toBe(100);
    expect(() => decoder.push(Buffer.from('a'), () => {})).toThrow(/101 bytes exceeds maxFrameBytes 100/);
  });

  it('delimited: a frame of exactly the limit passes', () => {
    const framing = delimited({ maxFrameBytes: 100 });
    expect(decodeChunks(framing, [Buffer.alloc(100, 'x'), Buffer.from('\n')])[0]?.length).toBe(100);
    expect(
      decodeChunks(framing, [Buffer.concat([Buffer.alloc(100, 'x'), Buffer.from('\n')])])[0]?.length,
    ).toBe(100);
  });

  it('delimited: strips a carriage return when asked', () => {
    const framing = delimited({ stripCarriageReturn: true });
    expect(decodeChunks(framing, [Buffer.from('a\r\nb\n')]).map(String)).toEqual(['a', 'b']);
  });

  it('delimited: refuses to send a payload containing the delimiter', () => {
    expect(() => delimited().encode(Buffer.from('a\nb'))).toThrow(
      expect.objectContaining({ code: 'ERR_SOCK_INVALID_FRAME' }),
    );
  });

  it('u16 header: refuses a limit the header cannot express', () => {
    expect(() => lengthPrefixed({ header: 'u16', maxFrameBytes: 70_000 })).toThrow(/1 to 65535/);
    expect(lengthPrefixed({ header: 'u16' }).maxFrameBytes).toBe(65535);
    expect(lengthPrefixed().maxFrameBytes).toBe(65536);
  });

  it('raw: splits reads into pieces of at most the limit', () => {
    const frames = decodeChunks(raw({ maxFrameBytes: 4 }), [Buffer.from('abcdefghij')]);
    expect(frames.map(String)).toEqual(['abcd', 'efgh', 'ij']);
  });
});

describe('copying', () => {
  it('a trickled frame is assembled with linear copying', () => {
    // 64 KiB one byte at a time: with concat-per-read this would copy ~2 GB and take seconds.
    const framing = lengthPrefixed();
    const payload = Buffer.alloc(65536, 7);
    const stream = framing.encode(payload);
    const decoder = framing.createDecoder();
    let got: Buffer | undefined;
    const one = Buffer.alloc(1);
    const started = process.hrtime.bigint();
    for (let i = 0; i < stream.length; i++) {
      one[0] = stream[i]!;
      decoder.push(one, (f) => {
        got = f;
      });
    }
    expect(got?.equals(payload)).toBe(true);
    // Not a speed assertion: a generous bound that only a quadratic algorithm breaks.
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2000);
  });
});
