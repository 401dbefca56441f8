// @sock/core echo server with the same framing as raw-server.mjs, written the way the README says.
import { createServer, lengthPrefixed } from '../dist/index.js';
import { serveForBench } from './serve.mjs';

const server = createServer({
  framing: lengthPrefixed(),
  async handler(conn) {
    for await (const message of conn) await conn.send(message);
  },
});
await serveForBench(server);
