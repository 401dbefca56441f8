/**
 * Property (issue 13): for any sequence of frames (valid, invalid, empty, up to the frame limit), any
 * chunking on the wire, any reader speed (iterator or onMessage) and any schema latency, the inbox's own
 * accounting never passes the bound — at most `maxQueuedMessages` entries and less than
 * `maxQueuedBytes + maxFrameBytes` frame bytes — and nothing is lost or reordered. Real sockets.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createServer, json, lengthPrefixed, type SockServer } from '../src/index.js';
import { delay, rawClient, readAll, u32 } from './helpers.js';

interface Inspectable {
  inbox: { peakEntries: number; peakBytes: number; size: number; bytes: number };
}

const MAX_FRAME = 256;

const frame = fc.oneof(
  fc.integer({ min: 0, max: 1_000_000 }).map((n) => ({ kind: 'valid' as const, body: JSON.stringify(n) })),
  fc
    .integer({ min: 0, max: MAX_FRAME - 2 })
    .map((n) => ({ kind: 'valid' as const, body: JSON.stringify('v'.repeat(n)) })),
  fc.constant({ kind: 'invalid' as const, body: '{nope' }),
  fc.constant({ kind: 'invalid' as const, body: '' }),
);

const scenario = fc.record({
  frames: fc.array(frame, { minLength: 1, maxLength: 120 }),
  cuts: fc.array(fc.integer({ min: 1, max: 600 }), { maxLength: 8 }),
  maxQueuedMessages: fc.integer({ min: 1, max: 8 }),
  maxQueuedBytes: fc.integer({ min: 1, max: 2048 }),
  style: fc.constantFrom('iterator', 'onMessage'),
  /** ms per message in the reader; -1: the reader does not start until the whole burst is in. */
  readerDelay: fc.constantFrom(-1, 0, 1, 3),
  /** undefined: a synchronous schema; else async validation taking this long. */
  schemaDelay: fc.constantFrom(undefined, 0, 1, 2),
});

function schemaFor(ms: number | undefined): StandardSchemaV1<unknown, unknown> {
  return {
    '~standard': {
      version: 1,
      vendor: 'test',
      validate:
        ms === undefined
          ? (value) => ({ value })
          : async (value) => {
              await delay(ms);
              return { value };
            },
    },
  };
}

describe('inbox bound', () => {
  it('holds for any frames, chunking, reader speed and schema latency', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        let release!: () => void;
        const started = new Promise<void>((r) => {
          release = r;
        });
        const handled: unknown[] = [];
        const take = async (m: unknown, send: (x: unknown) => Promise<void>) => {
          if (s.readerDelay > 0) await delay(s.readerDelay);
          handled.push(m);
          await send({ ok: true }); // small: an echo of a full frame would not fit in one
        };
        const peaks = { entries: 0, bytes: 0 };
        const server: SockServer<unknown, unknown> = createServer<unknown, unknown>({
          framing: lengthPrefixed({ maxFrameBytes: MAX_FRAME }),
          codec: json({ schema: schemaFor(s.schemaDelay) }),
          maxQueuedMessages: s.maxQueuedMessages,
          maxQueuedBytes: s.maxQueuedBytes,
          onInvalidMessage: 'reply',
          errorReply: () => ({ error: true }),
          observers: [
            (e) => {
              if (e.type !== 'close') return;
              const { inbox } = e.conn as unknown as Inspectable;
              peaks.entries = Math.max(peaks.entries, inbox.peakEntries);
              peaks.bytes = Math.max(peaks.bytes, inbox.peakBytes);
            },
          ],
          ...(s.style === 'onMessage'
            ? {
                onMessage: async (m, conn) => {
                  if (s.readerDelay === -1) await started;
                  await take(m, (x) => conn.send(x));
                },
              }
            : {
                async handler(conn) {
                  if (s.readerDelay === -1) await started;
                  for await (const m of conn) await take(m, (x) => conn.send(x));
                },
              }),
        });
        try {
          const { port } = await server.listen();
          const socket = await rawClient(port);
          const replies = readAll(socket);
          const wire = Buffer.concat(s.frames.map((f) => u32(f.body)));
          let at = 0;
          for (const cut of s.cuts) {
            if (at >= wire.length) break;
            socket.write(wire.subarray(at, at + cut));
            at += cut;
            await delay(0);
          }
          socket.write(wire.subarray(at));
          await delay(5);
          release();
          socket.end();
          const text = (await replies).toString();
          // Nothing lost or reordered: every valid message handled in order, every invalid one answered.
          const valid = s.frames.filter((f) => f.kind === 'valid').map((f) => JSON.parse(f.body));
          expect(handled).toEqual(valid);
          expect(text.split('"error":true').length - 1).toBe(s.frames.length - valid.length);
          // The bound, from the inbox's own accounting.
          expect(peaks.entries).toBeLessThanOrEqual(s.maxQueuedMessages);
          expect(peaks.bytes).toBeLessThan(s.maxQueuedBytes + MAX_FRAME);
        } finally {
          release();
          await server.close({ drainMs: 200 });
        }
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 40) },
    );
  }, 120_000);
});
