/**
 * `pnpm demo`: starts the secure chat service, then scripted clients show each defence. Prints a table of
 * scenario / expected / observed and exits 0 only if every row matched.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { connect, delimited, json } from '@sock/core';
import { proxyV1Header } from '@sock/guards';
import { tlsClient } from '@sock/tls';
import { createUdpClient } from '@sock/udp';
import { pino } from 'pino';
import type { ChatOut } from './chat-server.js';
import { printTable, runScenario, type ScenarioResult } from './scenario.js';
import { LIMITS, startService } from './service.js';
import { stateDir } from './state.js';

const started = Date.now();
const dir = stateDir();
const logFile = join(dir, 'tour.log');
const log = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true, append: false }));
const service = await startService({ stateDir: dir, log });
const { pki } = service;
const port = service.tcp.port;
console.log(`sock demo: secure chat on 127.0.0.1:${port} (TLS, client certificates from ${pki.dir})`);
console.log(`  edge listener behind a PROXY-protocol load balancer: 127.0.0.1:${service.edge.port}`);
console.log(
  `  UDP presence pings: 127.0.0.1:${service.udp.port}   metrics: ${service.metrics.url}   logs: ${logFile}`,
);
console.log(
  `  limits: ${LIMITS.maxFrameBytes} B per message, ${LIMITS.messagesPerSecond} messages/s, first message within ${LIMITS.handshake}, ` +
    `${LIMITS.maxConnsPerIp} connections per IP, ban after ${LIMITS.banAfterStrikes} strikes for ${LIMITS.banTime}, firewall: ${service.firewall}\n`,
);

const pem = (file: string) => readFileSync(file);
const user = (name: string) => ({ cert: { path: pki.user(name).cert }, key: { path: pki.user(name).key } });
const client = (name: string, localAddress?: string) =>
  connect<ChatOut, unknown>({
    port,
    framing: delimited({ maxFrameBytes: 1 << 20 }),
    codec: json(),
    timeoutMs: 3000,
    ...(localAddress ? { localAddress } : {}),
    transport: tlsClient({ ca: { path: pki.ca }, servername: 'localhost', ...user(name) }),
  });

async function next(conn: AsyncIterable<ChatOut>): Promise<ChatOut | undefined> {
  for await (const m of conn) return m;
  return undefined;
}

/** Wait for the server to report a rejection of `address` (its reason), bounded. */
async function rejectionOf(address: string, reasons: string[], timeoutMs = 5000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const e = service.events.find(
      (ev) => ev.type === 'reject' && ev.remoteAddress === address && reasons.includes(ev.reason ?? ''),
    );
    if (e) return e.reason ?? 'none';
    if (Date.now() > end) return 'none';
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A raw TLS client (node:tls) for what a well-behaved client library would not do. */
function rawTls(
  options: ConnectionOptions & { localAddress?: string },
): Promise<{ socket: TLSSocket; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: pem(pki.ca),
      ...options,
    });
    socket.once('secureConnect', () => resolve({ socket }));
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ socket, error }));
  });
}

const results: ScenarioResult[] = [];

results.push(
  await runScenario(
    'two certified users chat',
    'bob receives alice’s line, names from certificates',
    async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      await alice.send({ type: 'hello', name: 'someone-else' });
      const welcome = await next(alice);
      await bob.send({ type: 'hello', name: 'bob' });
      await next(bob);
      await alice.send({ type: 'say', text: 'hi bob' });
      const got = await next(bob);
      await Promise.all([alice.close(), bob.close()]);
      const ok =
        welcome?.type === 'welcome' &&
        welcome.name === 'alice' &&
        got?.type === 'said' &&
        got.from === 'alice' &&
        got.text === 'hi bob';
      return { observed: `${got?.type === 'said' ? `${got.from}: ${got.text}` : JSON.stringify(got)}`, ok };
    },
  ),
);

results.push(
  await runScenario('invalid message', 'error reply, connection stays open', async () => {
    const eve = await client('bob');
    await eve.send({ type: 'shout', text: 42 });
    const reply = await next(eve);
    await eve.send({ type: 'hello', name: 'bob' });
    const welcome = await next(eve);
    await eve.close();
    const ok =
      reply?.type === 'error' && reply.code === 'ERR_SOCK_VALIDATION_FAILED' && welcome?.type === 'welcome';
    return {
      observed: `${reply?.type === 'error' ? reply.code : 'no error'}, then ${welcome?.type ?? 'nothing'}`,
      ok,
    };
  }),
);

results.push(
  await runScenario('client without a certificate', 'refused: tls-no-client-cert', async () => {
    const { socket } = await rawTls({ localAddress: '127.0.0.2' });
    socket.on('error', () => {});
    socket.write('{"type":"hello","name":"anon"}\n');
    const reason = await rejectionOf('127.0.0.2', ['tls-no-client-cert']);
    socket.destroy();
    return { observed: `refused: ${reason}`, ok: reason === 'tls-no-client-cert' };
  }),
);

results.push(
  await runScenario('TLS 1.1 client', 'refused: tls-protocol-version', async () => {
    const { socket, error } = await rawTls({
      localAddress: '127.0.0.3',
      minVersion: 'TLSv1.1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
      cert: pem(pki.user('alice').cert),
      key: pem(pki.user('alice').key),
    });
    socket.destroy();
    const reason = await rejectionOf('127.0.0.3', ['tls-protocol-version']);
    return {
      observed: `client: ${error?.code ?? 'connected!'}; server: ${reason}`,
      ok: !!error && reason === 'tls-protocol-version',
    };
  }),
);

results.push(
  await runScenario(
    `oversize message (4 KiB > ${LIMITS.maxFrameBytes} B)`,
    'error frame, connection closed, server runs on',
    async () => {
      const mallory = await client('mallory', '127.0.0.4');
      mallory.socket.write(`{"type":"say","text":"${'x'.repeat(4096)}"}\n`);
      const reply = await next(mallory);
      const info = await mallory.closed;
      const probe = await client('alice');
      await probe.send({ type: 'hello', name: 'alice' });
      const welcome = await next(probe);
      await probe.close();
      const ok =
        reply?.type === 'error' && reply.code === 'ERR_SOCK_FRAME_TOO_LARGE' && welcome?.type === 'welcome';
      return {
        observed: `${reply?.type === 'error' ? reply.code : 'no error'}, closed (${info.reason}), server answers`,
        ok,
      };
    },
  ),
);

const FLOODER = '203.0.113.66';
results.push(
  await runScenario(
    `flooder ${FLOODER} via the load balancer`,
    `rate-limited ${LIMITS.banAfterStrikes}×, banned, firewall plan`,
    async () => {
      const reasons: string[] = [];
      for (let attempt = 1; attempt <= LIMITS.banAfterStrikes + 1; attempt++) {
        const raw = netConnect({ port: service.edge.port, host: '127.0.0.1' });
        await once(raw, 'connect');
        raw.write(
          proxyV1Header(
            { address: FLOODER, port: 40_000 + attempt },
            { address: '127.0.0.1', port: service.edge.port },
          ),
        );
        const tls = tlsConnect({
          socket: raw,
          servername: 'localhost',
          ca: pem(pki.ca),
          cert: pem(pki.user('mallory').cert),
          key: pem(pki.user('mallory').key),
        });
        tls.on('error', () => {});
        tls.once('secureConnect', () =>
          tls.write(
            '{"type":"hello","name":"mallory"}\n'.concat('{"type":"say","text":"spam"}\n'.repeat(50)),
          ),
        );
        await new Promise((resolve) => tls.once('close', resolve));
        raw.destroy();
        const before = reasons.length;
        const end = Date.now() + 3000;
        while (reasons.length === before && Date.now() < end) {
          const seen = service.events.filter(
            (e) => e.type === 'reject' && e.remoteAddress === FLOODER && e.closed,
          );
          if (seen.length > before) reasons.push(seen[before]!.reason ?? '');
          else await new Promise((r) => setTimeout(r, 20));
        }
      }
      const end = Date.now() + 3000;
      while (
        service.plans.length === 0 &&
        service.firewallErrors.length === 0 &&
        service.firewall === 'plan' &&
        Date.now() < end
      ) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const banned = service.bans.some((b) => b.key === FLOODER);
      const planned = service.firewall !== 'plan' || service.plans.some((p) => p.key === FLOODER);
      const expected = [...Array(LIMITS.banAfterStrikes).fill('rate-messages'), 'banned'];
      const ok = banned && planned && JSON.stringify(reasons) === JSON.stringify(expected);
      return {
        observed: `${reasons.join(', ')}; ${banned ? 'banned' : 'not banned'}${planned ? ', plan below' : ''}`,
        ok,
      };
    },
    15_000,
  ),
);

results.push(
  await runScenario(
    'slowloris (one byte / 200 ms)',
    `cut at the ${LIMITS.handshake} first-message deadline`,
    async () => {
      const { socket, error } = await rawTls({
        localAddress: '127.0.0.5',
        cert: pem(pki.user('bob').cert),
        key: pem(pki.user('bob').key),
      });
      if (error) throw error;
      socket.on('error', () => {});
      const t0 = Date.now();
      const drip = setInterval(() => socket.write('{'), 200);
      await once(socket, 'close');
      clearInterval(drip);
      const ms = Date.now() - t0;
      const reason = await rejectionOf('127.0.0.5', [
        'handshake-timeout',
        'tls-handshake-timeout',
        'min-rate',
      ]);
      return {
        observed: `closed after ${(ms / 1000).toFixed(1)} s: ${reason}`,
        ok: reason === 'handshake-timeout' && ms < 4000,
      };
    },
  ),
);

results.push(
  await runScenario('UDP presence ping', 'cookie challenge, then a validated pong', async () => {
    const udp = createUdpClient<
      { type: 'ping'; name: string },
      { type: string; validated: boolean; online: number }
    >({
      host: '127.0.0.1',
      port: service.udp.port,
      codec: json(),
      timeout: 2000,
    });
    const pong = await udp.request({ type: 'ping', name: 'alice' });
    const challenges = udp.stats().challenges;
    await udp.close();
    return {
      observed: `${challenges} challenge(s), ${pong.type} validated=${pong.validated}`,
      ok: pong.type === 'pong' && pong.validated && challenges >= 1,
    };
  }),
);

results.push(
  await runScenario('Prometheus /metrics', 'counts each refusal by reason', async () => {
    const body = await (await fetch(service.metrics.url)).text();
    const want = [
      'tls-no-client-cert',
      'tls-protocol-version',
      'frame-too-large',
      'rate-messages',
      'banned',
      'handshake-timeout',
    ];
    const missing = want.filter((r) => !body.includes(`reason="${r}"`));
    return {
      observed: missing.length
        ? `missing: ${missing.join(', ')}`
        : `${want.length} reasons counted, ${/sock_demo_presence_pings_total (\d+)/.exec(body)?.[1] ?? 0} ping(s)`,
      ok: missing.length === 0,
    };
  }),
);

await service.close(1000);
console.log(printTable(results));
for (const plan of service.plans) {
  console.log(`\nfirewall (plan mode, nothing applied): banning ${plan.key} would run`);
  for (const c of plan.result.commands) {
    console.log(`  ${c.bin} ${c.args.join(' ')}`);
    if (c.input) console.log(`    ${c.input.trim().split('\n').join('\n    ')}`);
  }
}
for (const e of service.firewallErrors) console.log(`\nfirewall: ${e}`);
const failed = results.filter((r) => !r.ok).length;
console.log(`\ntour took ${((Date.now() - started) / 1000).toFixed(1)} s; logs in ${logFile}`);
console.log(failed === 0 ? 'every defence behaved as expected' : `${failed} scenario(s) did not match`);
process.exit(failed === 0 ? 0 : 1);
