import { once } from 'node:events';
import { createServer, connect as netConnect } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { built, listen, run } from './helpers.js';

beforeAll(() => {
  expect(built(), 'build the CLI first: pnpm build').toBe(true);
});

/** A free port: bind 0, read it, release it. */
async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('ncat fidelity: source port and last line', () => {
  it('a last line without a newline sent to `sock listen --echo` comes back', async () => {
    const server = await listen(['0']);
    const r = await run(['connect', '127.0.0.1', String(server.port)], { input: 'a\nb' });
    expect(r.stdout).toBe('a\nb\n');
    expect(r.code).toBe(0);
  });

  it('a raw client ending on a line without a newline gets it echoed by `sock listen --echo`', async () => {
    const server = await listen(['0']);
    const socket = netConnect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
    await once(socket, 'connect');
    socket.end('a\nb');
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString();
    });
    await once(socket, 'end');
    socket.destroy();
    expect(got).toBe('a\nb\n');
  });

  it("`sock connect` prints a server's last line without a newline", async () => {
    const server = createServer((s) => s.end('x\ny'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as { port: number };
      const r = await run(['connect', '127.0.0.1', String(port)], { input: '' });
      expect(r.stdout).toBe('x\ny\n');
    } finally {
      server.close();
    }
  });

  it('connect -p <port> connects from that source port', async () => {
    const seen: (number | undefined)[] = [];
    const server = createServer((s) => {
      seen.push(s.remotePort);
      s.end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as { port: number };
      const source = await freePort();
      const r = await run(['connect', '127.0.0.1', String(port), '-p', String(source)], { input: '' });
      expect(r.code).toBe(0);
      expect(seen).toEqual([source]);
    } finally {
      server.close();
    }
  });

  it('connect -p with a bad port is a usage error', async () => {
    const r = await run(['connect', '127.0.0.1', '9', '-p', '70000'], { input: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('-p');
  });

  it('connect -p is never ignored: with --tls or --udp it is a usage error', async () => {
    for (const extra of [['--tls', '--insecure'], ['--udp']]) {
      const r = await run(['connect', '127.0.0.1', '9', '-p', '40000', ...extra], { input: '' });
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.stderr).toContain('-p (source port) works with');
    }
  });
});
