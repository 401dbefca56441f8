import { afterEach, describe, expect, it } from 'vitest';
import { connect, createServer, delimited, json, type SockServer } from '../src/index.js';

let server: SockServer<unknown, unknown> | undefined;
afterEach(async () => {
  await server?.close({ drainMs: 100 });
  server = undefined;
});

describe('smoke', () => {
  it('echoes json lines', async () => {
    server = createServer<unknown, unknown>({
      framing: delimited(),
      codec: json(),
      async handler(conn) {
        for await (const m of conn) await conn.send({ echo: m });
      },
    });
    const { port } = await server.listen({ port: 0 });
    const client = await connect<unknown, unknown>({ port, framing: delimited(), codec: json() });
    await client.send({ a: 1 });
    const it = client[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ echo: { a: 1 } });
    await client.close();
  });
});
