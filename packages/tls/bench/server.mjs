// One benchmark server in its own process (so client load and server work do not share a thread).
// argv[2]: 'raw' (node:tls with Node's defaults) or 'sock' (@sock/core + tlsTransport from dist).
// The parent sends { cert, key } over IPC; we answer { port } and serve until disconnected.
import { createServer as createTlsServer } from 'node:tls';
import { createServer, raw } from '@sock/core';
import { tlsTransport } from '../dist/index.js';

const mode = process.argv[2];

process.once('message', async ({ cert, key }) => {
  let port;
  if (mode === 'raw') {
    const server = createTlsServer({ cert, key, noDelay: true }, (socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    server.on('tlsClientError', () => {});
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    port = server.address().port;
  } else {
    const server = createServer({
      transport: tlsTransport({ cert, key }),
      framing: raw(),
      async handler(conn) {
        for await (const chunk of conn) await conn.send(chunk);
      },
    });
    ({ port } = await server.listen({ host: '127.0.0.1', port: 0 }));
  }
  process.send({ port });
});
// CPU time this server has used, for per-operation cost (robust to a busy machine, unlike wall time).
process.on('message', (m) => {
  if (m === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send({ cpu: user + system });
  }
});
process.on('disconnect', () => process.exit(0));
