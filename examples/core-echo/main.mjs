// @sock/core: a JSON-lines echo server with a size limit, and a client. `node main.mjs`
import { connect, createServer, delimited, json } from '@sock/core';

const server = createServer({
  framing: delimited({ maxFrameBytes: 1024 }), // a longer line closes the connection
  codec: json(),
  async handler(conn) {
    for await (const message of conn) await conn.send({ echo: message });
  },
});
const { port } = await server.listen({ host: '127.0.0.1', port: 0 });

const client = await connect({ port, framing: delimited(), codec: json() });
await client.send({ hello: 'core' });
for await (const reply of client) {
  console.log(JSON.stringify(reply)); // {"echo":{"hello":"core"}}
  break;
}
await client.close();
await server.close();
