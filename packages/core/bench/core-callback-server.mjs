// @sock/core echo server delivering messages by callback (`onMessage`), the fastest documented path.
import { createServer, lengthPrefixed } from '../dist/index.js';

const server = createServer({
  framing: lengthPrefixed(),
  onMessage: (message, conn) => void conn.send(message),
});
const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('message', async (m) => {
  if (m === 'stop') {
    await server.close({ drainMs: 1000 });
    process.exit(0);
  }
});
process.on('SIGTERM', () => process.exit(0));
