// All of them together: a TLS chat server (client certificates name the users) behind a load balancer
// that speaks PROXY protocol, with guards (size limit strikes, bans) whose bans go to the firewall in
// plan mode: the iptables/ipset commands are printed, nothing is applied. `node main.mjs`
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createServer, delimited } from '@sock/core';
import { createFirewall } from '@sock/firewall';
import { createGuards } from '@sock/guards';
import { peerIdentity, tlsTransport } from '@sock/tls';
import { createCA, issueClientCert, issueServerCert } from '@sock/tls/pki';

const ca = await createCA();
const serverCert = await issueServerCert(ca, { names: ['localhost'] });
const users = {};
for (const name of ['alice', 'bob', 'mallory']) users[name] = await issueClientCert(ca, { commonName: name });

const firewall = createFirewall({ backend: 'plan', planDialect: 'iptables' });
const guards = createGuards(
  {
    proxy: { trusted: ['127.0.0.1'] }, // the load balancer; it tells us the real client address
    strikes: { threshold: 2 },
    bans: { duration: '10m' },
  },
  {
    async onBan(e) {
      const plan = await firewall.ban(e.key, { ttl: e.durationMs, reason: e.reason });
      console.log(`banned ${e.key} (${e.reason}); the firewall would run:`);
      for (const c of plan.commands) {
        console.log(`  ${c.bin} ${c.args.join(' ')}`);
        if (c.input) console.log(`    ${c.input.trimEnd().replaceAll('\n', '\n    ')}`); // the file it reads
      }
    },
  },
);

const transport = tlsTransport({
  cert: serverCert.cert,
  key: serverCert.key,
  ca: ca.cert,
  clientAuth: 'require',
});
const room = new Set();
const server = createServer({
  transport,
  plugins: [guards.plugin],
  framing: delimited({ maxFrameBytes: 256 }), // a longer line is refused: a strike
  async handler(conn) {
    const name = peerIdentity(conn)?.commonName ?? 'anonymous';
    room.add(conn);
    try {
      for await (const line of conn) {
        for (const other of room)
          if (other !== conn) other.send(Buffer.from(`<${name}> ${line}`)).catch(() => {});
      }
    } finally {
      room.delete(conn);
    }
  },
});
const { port } = await server.listen({ host: '127.0.0.1', port: 0 });

/** A client as the load balancer forwards it: a PROXY v1 header with its address, then TLS. */
async function join(name, address) {
  const raw = tcpConnect({ host: '127.0.0.1', port });
  await once(raw, 'connect');
  raw.write(`PROXY TCP4 ${address} 127.0.0.1 40000 443\r\n`);
  const tls = tlsConnect({ socket: raw, servername: 'localhost', ca: ca.cert, ...users[name] });
  tls.on('error', () => {});
  await once(tls, 'secureConnect');
  let received = '';
  tls.on('data', (d) => {
    received += d;
  });
  return { tls, received: () => received };
}

const until = async (check) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

const alice = await join('alice', '198.51.100.1');
const bob = await join('bob', '198.51.100.2');
await until(() => room.size === 2);
alice.tls.write('hi bob\n');
await until(() => bob.received().includes('hi bob'));
console.log(`bob got: ${bob.received().trim()}`); // <alice> hi bob

// mallory sends lines over the limit until banned.
for (let i = 0; i < 3 && !(await guards.isBanned('203.0.113.66')); i++) {
  const mallory = await join('mallory', '203.0.113.66').catch(() => undefined);
  if (!mallory) break;
  mallory.tls.write(`${'x'.repeat(1000)}\n`);
  await once(mallory.tls, 'close');
}
console.log(`203.0.113.66 banned: ${await guards.isBanned('203.0.113.66')}`);

alice.tls.destroy();
bob.tls.destroy();
await server.close();
guards.close();
transport.close();
