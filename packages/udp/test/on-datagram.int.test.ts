import { createSocket } from 'node:dgram';
import { json, SockError, SockErrorCode, type SockEvent } from '@sock/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createUdpSocket, type Datagram, type DatagramGuard } from '../src/index.js';
import { until } from './helpers.js';

/** A plain node:dgram sender on loopback (it never needs to prove its address: sources are trusted). */
async function sender() {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  onTestFinished(() => new Promise<void>((r) => s.close(() => r())));
  return {
    port: s.address().port,
    send: (payload: string | Buffer, port: number) =>
      new Promise<void>((r, j) => s.send(payload, port, '127.0.0.1', (e) => (e ? j(e) : r()))),
  };
}

describe('onDatagram: callback delivery', () => {
  it('hands every admitted datagram over in order, decoded, with its source; iterating ends at once', async () => {
    const got: Datagram<{ n: number }>[] = [];
    const socket = createUdpSocket<{ n: number }, { n: number }>({
      codec: json(),
      dangerouslyTrustSourceAddresses: true,
      onDatagram: (d) => {
        got.push(d);
      },
    });
    onTestFinished(() => socket.close());
    const { port } = await socket.bind({ host: '127.0.0.1', port: 0 });
    const peer = await sender();
    for (let n = 0; n < 50; n++) await peer.send(JSON.stringify({ n }), port);
    await until(() => got.length === 50);
    expect(got.map((d) => d.message.n)).toEqual(Array.from({ length: 50 }, (_, n) => n));
    expect(got[0]).toMatchObject({ address: '127.0.0.1', port: peer.port, family: 'IPv4', size: 7 });
    // Nothing was queued for an iterator, and an iterator finds the socket's datagrams are not its own.
    expect(socket.stats().queued).toBe(0);
    expect(await socket[Symbol.asyncIterator]().next()).toEqual({ value: undefined, done: true });
  });

  it('a throwing or rejecting callback is reported as an error, and the socket keeps receiving', async () => {
    const events: SockEvent[] = [];
    const seen: string[] = [];
    const socket = createUdpSocket({
      dangerouslyTrustSourceAddresses: true,
      observers: [(e) => events.push(e)],
      onDatagram: (d) => {
        const text = d.message.toString();
        seen.push(text);
        if (text === 'throw') throw new Error('boom');
        if (text === 'reject') return Promise.reject(new Error('later boom'));
      },
    });
    onTestFinished(() => socket.close());
    const { port } = await socket.bind({ host: '127.0.0.1', port: 0 });
    const peer = await sender();
    for (const m of ['a', 'throw', 'b', 'reject', 'c']) await peer.send(m, port);
    await until(() => seen.length === 5 && events.filter((e) => e.type === 'error').length === 2);
    expect(seen).toEqual(['a', 'throw', 'b', 'reject', 'c']);
    const errors = events.flatMap((e) => (e.type === 'error' ? [e.error] : []));
    expect(errors.map((e) => [e.code, e.reason, e.message])).toEqual([
      [SockErrorCode.HANDLER_FAILED, 'handler-error', 'onDatagram failed: boom'],
      [SockErrorCode.HANDLER_FAILED, 'handler-error', 'onDatagram failed: later boom'],
    ]);
    expect(socket.stats().errors).toBe(2);
  });

  it('guards, size limits and the codec still decide first: the callback sees only what they admit', async () => {
    const refuseOdd: DatagramGuard = {
      name: 'odd',
      admit: (source) => (source.size % 2 === 1 ? { reason: 'odd', message: 'odd size' } : undefined),
    };
    const got: unknown[] = [];
    const socket = createUdpSocket<{ n: number }, unknown>({
      codec: json(),
      maxPayloadBytes: 64,
      guards: [refuseOdd],
      dangerouslyTrustSourceAddresses: true,
      onDatagram: (d) => {
        got.push(d.message);
      },
    });
    onTestFinished(() => socket.close());
    const { port } = await socket.bind({ host: '127.0.0.1', port: 0 });
    const peer = await sender();
    await peer.send('{"n":1}', port); // 7 bytes: refused by the guard
    await peer.send(`{"n":"${'x'.repeat(80)}"}`, port); // over maxPayloadBytes
    await peer.send('{"n":', port); // 5 bytes: odd, refused before decoding
    await peer.send('{"n":"', port); // 6 bytes: admitted, invalid JSON
    await peer.send('{"n":22}', port); // 8 bytes: delivered
    await until(() => got.length === 1 && socket.stats().dropped === 4);
    expect(got).toEqual([{ n: 22 }]);
  });

  it('refuses an onDatagram that is not a function', () => {
    expect(() => createUdpSocket({ onDatagram: 'nope' as never })).toThrow(SockError);
  });
});
