// @sock/core echo server with the same framing as raw-server.mjs, written the way the README says.
import { createServer, lengthPrefixed } from '../dist/index.js';

const server = createServer({
  framing: lengthPrefixed(),
  async handler(conn) {
    for await (const message of conn) await conn.send(message);
  },
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
