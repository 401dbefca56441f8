// One benchmark server in its own process, so client work and server work do not share a thread.
// argv[2]: 'echo' (node:net, bytes straight back) or 'ssh' (@sock/ssh from dist: an SSH server whose one
// route is a raw core echo service). The parent sends { hostKey, authorizedKey } for 'ssh'; we answer
// { port } and serve until disconnected; 'cpu' asks for the CPU time used so far.
import { createServer as createNetServer } from 'node:net';
import { createServer, raw } from '@sock/core';
import { authorizedKeysText, createSshServer } from '../dist/index.js';

const mode = process.argv[2];

process.once('message', async (config) => {
  let port;
  if (mode === 'echo') {
    const server = createNetServer({ noDelay: true }, (socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    port = server.address().port;
  } else {
    const echo = createServer({
      framing: raw(),
      async handler(conn) {
        for await (const chunk of conn) await conn.send(chunk);
      },
    });
    const server = createSshServer({
      hostKeys: [config.hostKey],
      authorizedKeys: authorizedKeysText(config.authorizedKey),
      routes: [{ host: 'echo', port: 7, server: echo }],
      maxChannels: 100,
    });
    ({ port } = await server.listen({ host: '127.0.0.1', port: 0 }));
  }
  process.send({ port });
});
process.on('message', (m) => {
  if (m === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send({ cpu: user + system });
  }
});
process.on('disconnect', () => process.exit(0));
