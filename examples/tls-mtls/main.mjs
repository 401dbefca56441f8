// @sock/tls: a dev PKI and a mutual-TLS echo server; the client is known by its SPIFFE ID.
import { connect, createServer, delimited, json } from '@sock/core';
import { peerIdentity, tlsClient, tlsTransport } from '@sock/tls';
import { createCA, issueClientCert, issueServerCert } from '@sock/tls/pki';

const ca = await createCA();
const server = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });
const client = await issueClientCert(ca, { commonName: 'worker', spiffeId: 'spiffe://example.org/worker' });

const transport = tlsTransport({ cert: server.cert, key: server.key, ca: ca.cert, clientAuth: 'require' });
const echo = createServer({
  transport,
  framing: delimited(),
  codec: json(),
  async handler(conn) {
    for await (const message of conn) await conn.send({ from: peerIdentity(conn)?.spiffeId, message });
  },
});
const { port } = await echo.listen({ host: '127.0.0.1', port: 0 });

const conn = await connect({
  port,
  framing: delimited(),
  codec: json(),
  transport: tlsClient({ ca: ca.cert, cert: client.cert, key: client.key }),
});
await conn.send('hello over mTLS');
for await (const reply of conn) {
  console.log(JSON.stringify(reply)); // {"from":"spiffe://example.org/worker","message":"hello over mTLS"}
  break;
}
await conn.close();
await echo.close();
transport.close();
