// Type tests (vitest typecheck): the inference the public types promise. Each `@ts-expect-error` line is an
// assertion too: if the line stops being an error, the check fails.
import {
  bytes,
  type Codec,
  type Connection,
  type ConnectionControl,
  connect,
  createServer,
  json,
  type Plugin,
  SockReason,
  text,
} from '@sock/core';
import { createHarness, type TestPeer } from '@sock/core/testing';
import * as v from 'valibot';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

const Point = z.object({ x: z.number(), y: z.number() });

describe('codecs', () => {
  it('json() with a Standard Schema decodes to the schema output', () => {
    expectTypeOf(json({ schema: Point })).toEqualTypeOf<Codec<{ x: number; y: number }, unknown>>();
    const byValibot = json({ schema: v.object({ name: v.string() }) });
    expectTypeOf(byValibot).toEqualTypeOf<Codec<{ name: string }, unknown>>();
    // Without a schema nothing is claimed about the value.
    expectTypeOf(json()).toEqualTypeOf<Codec<unknown, unknown>>();
  });

  it('text() and bytes() carry strings and buffers', () => {
    expectTypeOf(text()).toEqualTypeOf<Codec<string>>();
    expectTypeOf(bytes()).toEqualTypeOf<Codec<Buffer, Uint8Array>>();
  });
});

describe('messages', () => {
  it('onMessage receives the codec’s decoded type, and its connection sends the encoded type', () => {
    createServer({
      codec: json<z.infer<typeof Point>, { ok: boolean }>({ schema: Point }),
      onMessage(message, conn) {
        expectTypeOf(message).toEqualTypeOf<{ x: number; y: number }>();
        expectTypeOf(conn.send).parameter(0).toEqualTypeOf<{ ok: boolean }>();
        // @ts-expect-error a string is not the encoded type
        void conn.send('ok');
      },
    });
  });

  it('a handler iterates decoded messages', () => {
    createServer({
      codec: text(),
      async handler(conn) {
        for await (const m of conn) expectTypeOf(m).toEqualTypeOf<string>();
      },
    });
  });

  it('a client connection is typed by its codec too', async () => {
    const conn = await connect({ host: '127.0.0.1', port: 1, codec: json({ schema: Point }) });
    for await (const m of conn) expectTypeOf(m).toEqualTypeOf<{ x: number; y: number }>();
  });

  it('the harness keeps the server’s types', () => {
    const h = createHarness({ codec: text(), onMessage: () => {} });
    expectTypeOf(h.connect()).toEqualTypeOf<TestPeer<string, string>>();
  });
});

describe('the handler-facing connection', () => {
  it('carries no plug-in tools; plug-ins get them through ConnectionControl', () => {
    expectTypeOf<Connection>().not.toHaveProperty('reject');
    expectTypeOf<Connection>().not.toHaveProperty('report');
    expectTypeOf<ConnectionControl>().toHaveProperty('reject');
    expectTypeOf<Parameters<NonNullable<Plugin['frame']>>[0]>().toEqualTypeOf<ConnectionControl>();
  });
});

describe('reasons', () => {
  it('SockReason is a union of string literals, not string', () => {
    expectTypeOf(SockReason.FRAME_TOO_LARGE).toEqualTypeOf<'frame-too-large'>();
    expectTypeOf<SockReason>().toExtend<string>();
    expectTypeOf<string>().not.toExtend<SockReason>();
  });
});
