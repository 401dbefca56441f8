// @sock/udp: a JSON request/response server with address-validation cookies and guards per datagram.
import { json } from '@sock/core';
import { createGuards } from '@sock/guards';
import { createUdpClient, createUdpServer } from '@sock/udp';

const guards = createGuards({ rates: { datagrams: { perKey: { rate: 100, burst: 200 } } } });
const server = createUdpServer({
  codec: json(),
  cookies: {},
  guards: [guards],
  handler: (request) => ({ sum: request.a + request.b }),
});
const { port } = await server.bind({ host: '127.0.0.1', port: 0 });

const client = createUdpClient({ host: '127.0.0.1', port, codec: json() });
console.log(JSON.stringify(await client.request({ a: 2, b: 3 }))); // {"sum":5}
await client.close();
await server.close();
guards.close();
