import { describe, expect, it } from 'vitest';
import {
  type ClientTransport,
  connect,
  delimited,
  lengthPrefixed,
  type Plugin,
  reject,
  text,
} from '../src/index.js';
import { createHarness, createVirtualClock } from '../src/testing/index.js';
import { u32 } from './helpers.js';

// Core's timing behaviour on the socket-free harness: virtual time, so no test waits on the wall clock
// and none can flake under load. What needs a kernel (buffers, resets, real FINs) stays in *.int.test.ts.

const echoLines = {
  framing: delimited(),
  codec: text(),
  async handler(conn: AsyncIterable<string> & { send(m: string): Promise<void> }) {
    for await (const m of conn) await conn.send(m);
  },
};

describe('virtual clock', () => {
  it('fires timers in due order (ties in the order set), including ones set while advancing', () => {
    const clock = createVirtualClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@20'), 20);
    clock.setTimeout(() => {
      fired.push(`a@10 now=${clock.now()}`);
      clock.setTimeout(() => fired.push('c@15'), 5);
    }, 10);
    clock.setTimeout(() => fired.push('b2@20'), 20);
    const cleared = clock.setTimeout(() => fired.push('never'), 1);
    clock.clearTimeout(cleared);
    clock.advance(19);
    expect(fired).toEqual(['a@10 now=1010', 'c@15']);
    clock.advance(1);
    expect(fired).toEqual(['a@10 now=1010', 'c@15', 'b@20', 'b2@20']);
    expect(clock.now()).toBe(1020);
    expect(clock.pending).toBe(0);
  });

  it('refuses to go backwards', () => {
    expect(() => createVirtualClock().advance(-1)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCK_INVALID_OPTION' }),
    );
  });
});

describe('harness', () => {
  it('delivers bytes in any chunking and shows what the server wrote', async () => {
    const h = createHarness({ ...echoLines });
    const peer = h.connect({ remoteAddress: '::ffff:198.51.100.9', remotePort: 5555 });
    for (const byte of Buffer.from('hello\nworld\n')) peer.write(Buffer.of(byte));
    await h.settle();
    expect(peer.read().toString()).toBe('hello\nworld\n');
    expect(peer.conn).toMatchObject({ remoteAddress: '198.51.100.9', remotePort: 5555, transport: 'tcp' });
    peer.end();
    await h.settle();
    expect(peer.closeInfo).toMatchObject({ reason: 'peer-closed', rejectedEarly: false });
    await h.close();
  });

  it('the server and its plug-ins read the harness clock', async () => {
    const clock = createVirtualClock(5_000);
    let seen = -1;
    const h = createHarness({
      ...echoLines,
      clock,
      plugins: [
        {
          name: 'reads-time',
          accept: (c) => {
            seen = c.clock.now();
          },
        },
      ],
    });
    const peer = h.connect();
    await h.settle();
    expect(seen).toBe(5_000);
    expect(peer.conn.openedAt).toBe(5_000);
    await h.close();
  });

  it('records core violations on the peer and in the harness', async () => {
    const h = createHarness({ framing: lengthPrefixed({ maxFrameBytes: 8 }), handler() {} });
    const peer = h.connect();
    peer.write(u32('far too long for eight bytes'));
    await h.settle();
    expect(peer.violations).toMatchObject([{ stage: 'frame', plugin: 'core', reason: 'frame-too-large' }]);
    expect(h.rejections).toMatchObject([{ reason: 'frame-too-large', closed: true }]);
    expect(peer.destroyed).toBe(true);
    expect(peer.closeInfo?.reason).toBe('frame-too-large');
  });
});

describe('timing in virtual time', () => {
  it('tarpit holds the rejected stream open, paused, for exactly tarpitMs', async () => {
    const h = createHarness({
      plugins: [{ name: 'tar', accept: () => reject('conn-rate', { tarpitMs: 300 }) }],
      handler() {},
    });
    const peer = h.connect();
    await h.settle();
    expect(h.rejections).toMatchObject([
      { stage: 'accept', plugin: 'tar', reason: 'conn-rate', closed: true },
    ]);
    await h.advance(299);
    expect(peer.destroyed).toBe(false);
    await h.advance(1);
    expect(peer.destroyed).toBe(true);
    expect(peer.closeInfo).toMatchObject({ reason: 'conn-rate', rejectedEarly: true });
  });

  it('pauseReading(ms) from a frame hook stops delivery until the time has passed', async () => {
    const got: string[] = [];
    const shaper: Plugin = {
      name: 'shaper',
      frame: (conn) => {
        if (conn.stats.framesIn === 2) conn.pauseReading(200);
      },
    };
    const h = createHarness({
      framing: delimited(),
      codec: text(),
      plugins: [shaper],
      async handler(conn) {
        for await (const m of conn) got.push(m);
      },
    });
    const peer = h.connect();
    peer.write('1\n2\n');
    await h.settle();
    peer.write('3\n');
    await h.advance(199);
    expect(got).toEqual(['1', '2']);
    await h.advance(1);
    expect(got).toEqual(['1', '2', '3']);
    await h.close();
  });

  it('pauseReading() from a frame hook stops the rest of the same read too, until resumed', async () => {
    const got: string[] = [];
    const pauseAtTwo: Plugin = {
      name: 'pause-at-two',
      frame: (c) => {
        if (c.stats.framesIn === 2) c.pauseReading();
      },
    };
    const h = createHarness({
      plugins: [pauseAtTwo],
      async handler(c) {
        for await (const m of c) got.push(String(m));
      },
    });
    const peer = h.connect();
    peer.write(Buffer.concat(Array.from({ length: 10 }, (_, i) => u32(String(i))))); // ten frames, one read
    await h.advance(60_000);
    expect(got).toEqual(['0', '1']);
    peer.conn.resumeReading();
    await h.settle();
    expect(got).toHaveLength(10);
    await h.close();
  });

  it('close({ drainMs }) destroys a connection still busy at the deadline, not before', async () => {
    const h = createHarness({
      async handler(conn) {
        for await (const _ of conn) await new Promise(() => {}); // busy for ever
      },
    });
    const peer = h.connect();
    peer.write(u32('x'));
    await h.settle();
    let closed = false;
    const closing = h.server.close({ drainMs: 100 }).then(() => {
      closed = true;
    });
    await h.advance(99);
    expect(closed).toBe(false);
    expect(peer.destroyed).toBe(false);
    await h.advance(1);
    expect(closed).toBe(true);
    expect(peer.closeInfo?.reason).toBe('drain-timeout');
    await closing;
  });

  it('a peer that never answers our FIN is destroyed after closeTimeoutMs', async () => {
    const h = createHarness({
      closeTimeoutMs: 5_000,
      async handler(conn) {
        await conn.close();
      },
    });
    const peer = h.connect({ halfOpen: true });
    await h.advance(4_999);
    expect(peer.serverEnded).toBe(true);
    expect(peer.destroyed).toBe(false);
    await h.advance(1);
    expect(peer.destroyed).toBe(true);
    expect(peer.closeInfo?.reason).toBe('closed');
  });

  it('a peer that stops reading fills the write buffer and is closed with write-buffer-full', async () => {
    let failure: unknown;
    const h = createHarness({
      maxWriteBufferBytes: 64 * 1024,
      async handler(conn) {
        for await (const _ of conn) {
          // A broadcaster that trusts the cap: 256 KiB, not awaited.
          for (let i = 0; i < 64; i++) {
            void conn.send(Buffer.alloc(4096)).catch((err) => {
              failure ??= err;
            });
          }
        }
      },
    });
    const peer = h.connect();
    peer.stopReading();
    peer.write(u32('go'));
    await h.settle();
    expect(failure).toMatchObject({ code: 'ERR_SOCK_WRITE_BUFFER_FULL' });
    expect(peer.violations).toMatchObject([{ reason: 'write-buffer-full', closed: true }]);
    expect(peer.destroyed).toBe(true);
  });
});

describe('client in virtual time', () => {
  const turns = async () => {
    for (let i = 0; i < 4; i++) await new Promise<void>((r) => setImmediate(r));
  };
  const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

  it('the connect timeout runs on the injected clock', async () => {
    const clock = createVirtualClock();
    const stalling: ClientTransport = {
      name: 'stalling',
      dial: (o) =>
        new Promise((_resolve, fail) => o.signal.addEventListener('abort', () => fail(o.signal.reason))),
    };
    let outcome: unknown;
    void connect({ port: 7, transport: stalling, timeoutMs: 10_000, clock }).catch((err) => {
      outcome = err;
    });
    await turns();
    clock.advance(9_999);
    await turns();
    expect(outcome).toBeUndefined();
    clock.advance(1);
    await turns();
    expect(outcome).toMatchObject({ code: 'ERR_SOCK_CONNECT_TIMEOUT' });
    expect(clock.pending).toBe(0);
  });

  it('retry backoff waits on the injected clock: 100, 200, 400 ms without jitter', async () => {
    const clock = createVirtualClock();
    const dials: number[] = [];
    const failing: ClientTransport = {
      name: 'failing',
      dial: async () => {
        dials.push(clock.now());
        throw refused();
      },
    };
    let outcome: unknown;
    void connect({ port: 7, transport: failing, clock, retry: { attempts: 4, jitter: 0 } }).catch((err) => {
      outcome = err;
    });
    for (let i = 0; i < 8; i++) {
      await turns();
      const next = clock.nextTimerAt();
      if (next !== undefined) clock.advance(next - clock.now());
    }
    expect(dials).toEqual([0, 100, 300, 700]);
    expect(outcome).toMatchObject({ code: 'ERR_SOCK_CONNECTION_REFUSED' });
  });
});
