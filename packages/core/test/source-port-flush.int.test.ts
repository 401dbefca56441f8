import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, delimited, SockErrorCode } from '../src/index.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

async function serve(onSocket: (s: Socket) => void): Promise<number> {
  const server = createServer(onSocket);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

describe('connect({ localPort })', () => {
  it('the server sees the source port', async () => {
    const seen: number[] = [];
    const port = await serve((s) => {
      seen.push(s.remotePort!);
      s.end();
    });
    // A free port: bound by a listener, read, released.
    const source = await serve(() => {});
    await new Promise((resolve) => servers.pop()!.close(resolve));
    const conn = await connect({ port, localPort: source, framing: delimited() });
    await conn.closed;
    expect(seen).toEqual([source]);
  });

  it('a source port in use fails with a clear error', async () => {
    const busy = await serve(() => {});
    const port = await serve((s) => s.end());
    await expect(connect({ port, localPort: busy, framing: delimited() })).rejects.toMatchObject({
      name: 'SockError',
      message: expect.stringMatching(/EADDRINUSE/),
    });
  });

  it('refuses a localPort outside 1–65535 with ERR_SOCK_INVALID_OPTION', async () => {
    for (const localPort of [0, 65536, 1.5, -1]) {
      await expect(connect({ port: 9, localPort })).rejects.toMatchObject({
        code: SockErrorCode.INVALID_OPTION,
      });
    }
  });
});

/** Server-side reads of a client that writes `payload` and ends. */
async function linesFrom(payload: Buffer, flushOnEnd: boolean, maxFrameBytes?: number) {
  const port = await serve((s) => s.end(payload));
  const conn = await connect({ port, framing: delimited({ flushOnEnd, maxFrameBytes }) });
  const got: string[] = [];
  for await (const m of conn) got.push(Buffer.from(m).toString());
  return { got, closed: await conn.closed };
}

describe('delimited({ flushOnEnd })', () => {
  it('delivers a final line without a newline only with the option', async () => {
    expect((await linesFrom(Buffer.from('a\nb'), true)).got).toEqual(['a', 'b']);
    expect((await linesFrom(Buffer.from('a\nb'), false)).got).toEqual(['a']);
  });

  it('refuses a 100 KiB unterminated tail with maxFrameBytes 64 KiB', async () => {
    const r = await linesFrom(Buffer.alloc(100 * 1024, 0x61), true, 64 * 1024);
    expect(r.got).toEqual([]);
    expect(r.closed).toMatchObject({ error: { code: SockErrorCode.FRAME_TOO_LARGE } });
  });

  it('delivers a tail of exactly maxFrameBytes, refuses one byte more (the decoder)', () => {
    const f = delimited({ flushOnEnd: true, maxFrameBytes: 4, delimiter: '\r\n' });
    const ok = f.createDecoder();
    ok.push(Buffer.from('abcd'), () => {});
    expect(ok.end?.()?.toString()).toBe('abcd');
    const over = f.createDecoder();
    over.push(Buffer.from('abcd\r'), () => {});
    expect(() => over.end?.()).toThrow(expect.objectContaining({ code: SockErrorCode.FRAME_TOO_LARGE }));
  });

  it('property: never more than maxFrameBytes, never loses or duplicates bytes, across any chunking', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a.map((b) => (b % 4 === 0 ? 0x0a : 0x61)))),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.integer({ min: 1, max: 16 }),
        (input, cuts, max) => {
          const decoder = delimited({ flushOnEnd: true, maxFrameBytes: max }).createDecoder();
          const frames: Buffer[] = [];
          const sink = (f: Buffer) => void frames.push(Buffer.from(f));
          const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
          let refused = false;
          try {
            let from = 0;
            for (const p of [...points, input.length]) {
              decoder.push(input.subarray(from, p), sink);
              from = p;
            }
            const last = decoder.end?.();
            if (last) frames.push(Buffer.from(last));
          } catch (err) {
            expect((err as { code: string }).code).toBe(SockErrorCode.FRAME_TOO_LARGE);
            refused = true;
          }
          for (const f of frames) expect(f.length).toBeLessThanOrEqual(max);
          const parts = input.toString('latin1').split('\n');
          const tail = parts.pop()!;
          const expected = tail.length > 0 ? [...parts, tail] : parts;
          const tooLong = expected.findIndex((p) => p.length > max);
          if (tooLong === -1) {
            expect(refused).toBe(false);
            expect(frames.map((f) => f.toString('latin1'))).toEqual(expected);
          } else {
            expect(refused).toBe(true);
            expect(frames.map((f) => f.toString('latin1'))).toEqual(expected.slice(0, tooLong));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
