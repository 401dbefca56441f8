import { connect, createServer, delimited, json } from '@sock/core';
import { peerIdentity, tlsClient, tlsTransport } from '../src/index.js';
import { createCA, issueClientCert, issueServerCert } from '../src/pki.js';

// A development PKI: use your organisation's CA in production.
const ca = await createCA();
const serverCert = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });
const clientCert = await issueClientCert(ca, {
  commonName: 'worker',
  spiffeId: 'spiffe://example.org/worker',
});

// Mutual TLS: only clients of trust domain example.org get in.
const transport = tlsTransport({
  cert: serverCert.cert,
  key: serverCert.key,
  ca: ca.cert,
  clientAuth: 'require',
  authorize: { trustDomain: 'example.org' },
});
const server = createServer<unknown, unknown>({
  transport,
  framing: delimited(),
  codec: json(),
  async handler(conn) {
    const who = peerIdentity(conn)?.spiffeId;
    for await (const message of conn) await conn.send({ from: who, echo: message });
  },
  observers: [(e) => e.type === 'reject' && console.log('refused:', e.reason)],
});
const { port } = await server.listen({ host: '127.0.0.1', port: 0 });

const conn = await connect<unknown, unknown>({
  port,
  framing: delimited(),
  codec: json(),
  transport: tlsClient({ ca: ca.cert, cert: clientCert.cert, key: clientCert.key }),
});
await conn.send({ hello: 'world' });
for await (const reply of conn) {
  console.log(reply); // { from: 'spiffe://example.org/worker', echo: { hello: 'world' } }
  break;
}
await conn.close();
await server.close();
transport.close();
