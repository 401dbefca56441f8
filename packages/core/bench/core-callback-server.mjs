// @sock/core echo server delivering messages by callback (`onMessage`), the fastest documented path.
import { createServer, lengthPrefixed } from '../dist/index.js';
import { serveForBench } from './serve.mjs';

const server = createServer({
  framing: lengthPrefixed(),
  onMessage: (message, conn) => void conn.send(message),
});
await serveForBench(server);
