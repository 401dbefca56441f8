import { Writable } from 'node:stream';
import { createServer, delimited } from '@sock/core';
import { createGuards } from '@sock/guards';
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { decisionLog } from '../src/pino.js';
import { exchange, until } from './helpers.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A real pino logger writing JSON lines into memory. */
function memoryLogger(level = 'info') {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

it('one line per decision with stable fields, then a budget: a flood of refusals is summarised, not written', {
  timeout: 30_000,
}, async () => {
  const { logger, lines } = memoryLogger();
  const log = decisionLog(logger, { maxLines: 10, interval: '1h', listener: 'edge' });
  cleanup.push(() => log.close());
  const guards = createGuards({ ip: { deny: ['127.0.0.77'] }, strikes: { threshold: 1000 } });
  cleanup.push(() => guards.close());
  const server = createServer({
    framing: delimited({ maxFrameBytes: 64 }),
    plugins: [guards.plugin],
    observers: [log.observer],
    async handler(conn) {
      for await (const m of conn) await conn.send(m);
    },
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  cleanup.push(() => server.close({ drainMs: 0 }));

  expect(await exchange(port, 'hi\n', { replies: 1 })).toBe('hi\n');
  await until(() => lines.some((l) => l.event === 'close'), 'the close line');
  expect(lines[0]).toMatchObject({ event: 'open', listener: 'edge', transport: 'tcp', msg: 'open' });
  expect(lines[0]!.peer).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(lines[1]).toMatchObject({ event: 'close', reason: 'peer-closed', bytesIn: 3, bytesOut: 3 });

  const flood = 200;
  for (let i = 0; i < flood; i++) await exchange(port, 'x\n', { localAddress: '127.0.0.77' });
  // Refused as ip-denied, then (once its strikes earn a ban) as banned: the reasons depend on guards' weights.
  const refusals = () => Object.values(server.stats().rejected).reduce((a, b) => a + b, 0);
  await until(() => refusals() === flood, 'every refusal');
  const rejects = lines.filter((l) => l.event === 'reject');
  expect(rejects).toHaveLength(8); // 10 lines: open, close, then 8 refusals
  expect(rejects[0]).toMatchObject({
    listener: 'edge',
    stage: 'accept',
    plugin: 'guards',
    reason: 'ip-denied',
    key: '127.0.0.77',
    level: 30,
  });
  expect(lines).toHaveLength(10);

  log.flush();
  const summary = lines.at(-1)!;
  expect(summary).toMatchObject({
    event: 'suppressed',
    listener: 'edge',
    suppressed: flood - 8,
    byEvent: { reject: flood - 8 },
  });
  // By reason: exactly the refusals that were not written.
  const written: Record<string, number> = {};
  for (const r of rejects) written[r.reason as string] = (written[r.reason as string] ?? 0) + 1;
  const byReason = summary.byReason as Record<string, number>;
  for (const [reason, n] of Object.entries(server.stats().rejected)) {
    expect([reason, (byReason[reason] ?? 0) + (written[reason] ?? 0)]).toEqual([reason, n]);
  }
  // The next interval has its budget again.
  await exchange(port, 'x\n', { localAddress: '127.0.0.77' });
  await until(() => lines.at(-1)?.event === 'reject', 'a line in the new interval');
});

it('bans are logged at warn; lines below the level spend no budget; messages stay on one line', async () => {
  const { logger, lines } = memoryLogger('warn');
  const log = decisionLog(logger, { maxLines: 2, interval: '1h' });
  cleanup.push(() => log.close());
  const conn = {
    id: 1,
    remoteAddress: '::1',
    remotePort: 5,
    transport: 'tls',
    stats: { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0 },
  };
  for (let i = 0; i < 50; i++) {
    log.observer({
      type: 'reject',
      conn: conn as never,
      stage: 'handshake',
      plugin: 'tls',
      reason: 'tls-not-tls',
      message: 'tls: handshake failed: 80:error:0A00010B:SSL routines:wrong version number:\n',
      closed: true,
      shadow: false,
    });
  }
  expect(lines).toHaveLength(0);
  log.ban({ key: '203.0.113.9', reason: 'rate-messages', durationMs: 600_000, offences: 1 });
  expect(lines[0]).toMatchObject({
    event: 'ban',
    level: 40,
    key: '203.0.113.9',
    reason: 'rate-messages',
    durationMs: 600_000,
    msg: 'banned',
  });

  const { logger: infoLogger, lines: infoLines } = memoryLogger('info');
  const info = decisionLog(infoLogger, { interval: '1h' });
  cleanup.push(() => info.close());
  info.observer({
    type: 'reject',
    conn: conn as never,
    stage: 'handshake',
    plugin: 'tls',
    reason: 'tls-not-tls',
    message: 'line one\nline two\n',
    closed: true,
    shadow: false,
  });
  expect(infoLines[0]).toMatchObject({ msg: 'line one line two', peer: '[::1]:5' });
  expect(() => decisionLog(infoLogger, { maxLines: -1 })).toThrow(/maxLines must be an integer ≥ 0/);
  expect(() => decisionLog(infoLogger, { interval: 0 })).toThrow(/interval must be at least 1 ms/);
});
