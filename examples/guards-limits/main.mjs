// @sock/guards: one connection per address; the extra ones are refused and, after two strikes, banned.
import { once } from 'node:events';
import { connect } from 'node:net';
import { createServer } from '@sock/core';
import { createGuards } from '@sock/guards';

const guards = createGuards(
  { connections: { perKey: 1 }, strikes: { threshold: 2 }, bans: { duration: '10m' } },
  { onBan: (e) => console.log(`banned ${e.key} after ${e.reason}`) },
);
const server = createServer({
  plugins: [guards.plugin],
  async handler(conn) {
    for await (const message of conn) await conn.send(message);
  },
});
const { port } = await server.listen({ host: '127.0.0.1', port: 0 });

const sockets = [];
for (let i = 0; i < 3; i++) {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await once(socket, 'connect');
  sockets.push(socket);
  await new Promise((resolve) => setTimeout(resolve, 20));
}
console.log(`127.0.0.1 banned: ${await guards.isBanned('127.0.0.1')}`); // true
for (const socket of sockets) socket.destroy();
await server.close();
guards.close();
