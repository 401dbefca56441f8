import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createGuards, proxyV1Header, proxyV2Header } from '../src/index.js';
import { PROXY_V2_SIGNATURE } from '../src/proxy-protocol.js';
import { attempt, guardedServer, reasons, u32 } from './helpers.js';

const noRates = { connections: false as const };
const dst = { address: '127.0.0.1', port: 9 };

describe('PROXY protocol', () => {
  it('v1 from a trusted proxy: the carried address is the peer, bytes after the header are the stream', async () => {
    const guards = createGuards({ proxy: { trusted: ['127.0.0.0/30'] }, rates: noRates });
    const { port } = await guardedServer(guards);
    const header = proxyV1Header({ address: '198.51.100.20', port: 5555 }, dst);
    // Header and the first frame in one write: the leftover must be given back to the stream.
    const { socket, admitted, greeting, rest } = await attempt(
      port,
      '127.0.0.1',
      '127.0.0.2',
      Buffer.concat([header, u32('echo me')]),
    );
    expect(admitted).toBe(true);
    expect(greeting).toBe('198.51.100.20 5555');
    const echo = rest.length > 0 ? rest : await new Promise<Buffer>((r) => socket.once('data', r));
    expect(echo.subarray(4).toString()).toBe('echo me');
  });

  it('v2 with IPv6: every guard sees the carried address (and its /64)', async () => {
    const guards = createGuards({
      proxy: { trusted: ['127.0.0.1'] },
      ip: { deny: ['2001:db8:bad::/48'] },
      rates: noRates,
    });
    const { port, rejects } = await guardedServer(guards);
    const good = proxyV2Header({ address: '2001:db8:1::5', port: 7 }, { address: '2001:db8::1', port: 9 });
    expect((await attempt(port, '127.0.0.1', '127.0.0.1', good)).greeting).toBe('2001:db8:1::5 7');
    const bad = proxyV2Header({ address: '2001:db8:bad::5', port: 7 }, { address: '2001:db8::1', port: 9 });
    expect((await attempt(port, '127.0.0.1', '127.0.0.1', bad)).admitted).toBe(false);
    expect(rejects.map((r) => [r.reason, r.key])).toEqual([['ip-denied', '2001:db8:bad::/64']]);
  });

  it('v2 mapped IPv4 and LOCAL; v1 UNKNOWN keeps the socket address', async () => {
    const guards = createGuards({ proxy: { trusted: ['127.0.0.1'] }, rates: noRates });
    const { port } = await guardedServer(guards);
    const local = await attempt(port, '127.0.0.1', '127.0.0.1', proxyV2Header());
    expect(local.greeting).toMatch(/^127\.0\.0\.1 \d+$/);
    const unknown = await attempt(port, '127.0.0.1', '127.0.0.1', Buffer.from('PROXY UNKNOWN\r\n'));
    expect(unknown.greeting).toMatch(/^127\.0\.0\.1 /);
    const v1mapped = await attempt(
      port,
      '127.0.0.1',
      '127.0.0.1',
      Buffer.from('PROXY TCP6 ::ffff:192.0.2.9 ::1 80 81\r\n'),
    );
    expect(v1mapped.greeting).toBe('192.0.2.9 80');
  });

  it('v2 with an IPv4-mapped IPv6 source (TCP over IPv6): the peer and its key are the IPv4 client', async () => {
    const guards = createGuards({
      proxy: { trusted: ['127.0.0.1'] },
      connections: { perKey: 1 },
      rates: noRates,
    });
    const { port, rejects } = await guardedServer(guards);
    const mapped = (client: string) =>
      proxyV2Header({ address: `::ffff:${client}`, port: 7 }, { address: '2001:db8::1', port: 9 });
    // A real v2 header of family AF_INET6 (0x21), 16-byte addresses.
    expect(mapped('192.0.2.7').subarray(12, 14)).toEqual(Buffer.from([0x21, 0x21]));
    const first = await attempt(port, '127.0.0.1', '127.0.0.1', mapped('192.0.2.7'));
    expect(first.greeting).toBe('192.0.2.7 7');
    // Keyed as IPv4, not as the /64 every mapped client would share: another client still gets in.
    expect((await attempt(port, '127.0.0.1', '127.0.0.1', mapped('192.0.2.8'))).admitted).toBe(true);
    expect((await attempt(port, '127.0.0.1', '127.0.0.1', mapped('192.0.2.7'))).admitted).toBe(false);
    expect(rejects.map((r) => [r.reason, r.key])).toEqual([['conn-limit-ip', '192.0.2.7']]);
  });

  it('rejects untrusted peers without reading, and bad or slow headers', async () => {
    const guards = createGuards({ proxy: { trusted: ['127.0.0.1'], timeout: '200ms' }, rates: noRates });
    const { port, rejects } = await guardedServer(guards);
    const header = proxyV1Header({ address: '198.51.100.20', port: 5555 }, dst);
    expect((await attempt(port, '127.0.0.1', '127.0.0.9', header)).admitted).toBe(false);
    expect(
      (await attempt(port, '127.0.0.1', '127.0.0.1', Buffer.from('GET / HTTP/1.1\r\n\r\n'))).admitted,
    ).toBe(false);
    expect(
      (await attempt(port, '127.0.0.1', '127.0.0.1', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(200)}`)))
        .admitted,
    ).toBe(false);
    expect((await attempt(port, '127.0.0.1', '127.0.0.1', PROXY_V2_SIGNATURE.subarray(0, 8))).admitted).toBe(
      false,
    );
    expect(reasons(rejects)).toEqual(['proxy-untrusted', 'proxy-invalid', 'proxy-invalid', 'proxy-timeout']);
    expect(rejects[0]).toMatchObject({ stage: 'preface', plugin: 'guards', key: '127.0.0.9' });
    expect((await guards.snapshot()).rejected).toMatchObject({
      'proxy-untrusted': 1,
      'proxy-invalid': 2,
      'proxy-timeout': 1,
    });
  });

  it('is never sniffed: a plug-in without PROXY treats a header as stream bytes', async () => {
    const guards = createGuards({ proxy: { trusted: ['127.0.0.1'] }, rates: noRates });
    const { port } = await guardedServer(
      guards,
      '127.0.0.1',
      undefined,
      guards.createPlugin({ proxy: false }),
    );
    const { socket, greeting } = await attempt(port, '127.0.0.1', '127.0.0.1');
    expect(greeting).toMatch(/^127\.0\.0\.1 /);
    socket.write(proxyV1Header({ address: '198.51.100.20', port: 5555 }, dst));
    // 'PROX' read as a u32 length prefix: far over the frame limit, so core closes the connection.
    await once(socket, 'close');
  });
});
