import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { built, listen, run, until } from './helpers.js';

beforeAll(() => {
  expect(built(), 'build the CLI first: pnpm build').toBe(true);
});

describe('sock listen + sock connect', () => {
  it('echoes lines and exits 0 when the connection ends cleanly', async () => {
    const server = await listen(['0']);
    expect(server.line).toMatch(
      /^listening on 127\.0\.0\.1:\d+ \(tcp, echo, line ≤ 65536 B, guards: off, max-conns 100 \(default\)\)$/,
    );
    const r = await run(['connect', '127.0.0.1', String(server.port), '--json'], { input: 'hello\nworld\n' });
    expect(r.stdout).toBe('hello\nworld\n');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stderr.trim())).toMatchObject({
      event: 'end',
      ok: true,
      reason: 'peer-closed',
      framesIn: 2,
    });
  });

  it('listens on [::1] with host and port, and prints the ready line as JSON', async () => {
    const server = await listen(['::1', '0', '--json']);
    expect(JSON.parse(server.line)).toMatchObject({
      event: 'listening',
      address: '::1',
      transport: 'tcp',
      mode: 'echo',
    });
    const r = await run(['connect', '::1', String(server.port)], { input: 'v6\n' });
    expect(r.stdout).toBe('v6\n');
  });

  it('length-prefixed and raw framings round-trip', async () => {
    for (const framing of ['length', 'raw']) {
      const server = await listen(['0', '--framing', framing]);
      const r = await run(['connect', '127.0.0.1', String(server.port), '--framing', framing], {
        input: framing === 'raw' ? 'abc' : 'a\nb\n',
      });
      expect(r.stdout).toBe(framing === 'raw' ? 'abc' : 'a\nb\n');
      expect(r.code).toBe(0);
      await server.stop();
    }
  });

  it('chat broadcasts each line to the other peers, prefixed <userN>', async () => {
    const server = await listen(['0', '--chat']);
    const bob = netConnect(server.port, '127.0.0.1');
    await once(bob, 'connect');
    let got = '';
    bob.on('data', (d) => {
      got += d;
    });
    const r = await run(['connect', '127.0.0.1', String(server.port)], { input: 'hi all\n' });
    expect(r.code).toBe(0);
    await until(() => got.includes('hi all'), 3000, 'the broadcast');
    expect(got).toMatch(/^<user\d+> hi all$/m);
    expect(r.stdout).not.toContain('hi all'); // a chat does not echo to the sender
    bob.destroy();
  });

  it('--max-frame: an oversize line closes that connection and the server runs on', async () => {
    const server = await listen(['0', '--max-frame', '16']);
    const big = await run(['connect', '127.0.0.1', String(server.port)], { input: `${'x'.repeat(100)}\n` });
    expect(big.code).toBe(0); // the server closed with a FIN after refusing the frame
    expect(big.stdout).toBe('');
    const ok = await run(['connect', '127.0.0.1', String(server.port)], { input: 'small\n' });
    expect(ok.stdout).toBe('small\n');
  });

  it('exit 1 with sock: <message> when nothing listens; -w bounds the connect', async () => {
    const r = await run(['connect', '127.0.0.1', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^sock: connect to 127\.0\.0\.1:1: connection refused \(ERR_SOCK_CONNECTION_REFUSED\)\n$/,
    );
    // 192.0.2.1 (TEST-NET-1) is never routed here: the SYN goes nowhere, and -w gives up.
    const t = Date.now();
    const w = await run(['connect', '127.0.0.1', '1', '-w', '300ms']);
    expect(w.code).toBe(1);
    expect(Date.now() - t).toBeLessThan(5000);
  });

  it('exits cleanly on SIGINT and SIGTERM after draining', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const server = await listen(['0', '--log', 'json']);
      const { code } = await server.stop(signal);
      expect(code).toBe(0);
      const lines = server
        .stderr()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { msg: string; signal?: string });
      expect(lines.some((l) => l.msg === 'draining' && l.signal === signal)).toBe(true);
      expect(lines.at(-1)?.msg).toBe('stopped');
    }
  });

  it('UDP: echo with -u on both sides', async () => {
    const server = await listen(['0', '-u']);
    expect(server.line).toContain('(udp, echo');
    const r = await run(['connect', '-u', '127.0.0.1', String(server.port), '-w', '300ms'], {
      input: 'ping\npong\n',
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('ping\npong\n');
    const raw = createSocket('udp4');
    raw.send('direct', server.port, '127.0.0.1');
    const [msg] = await once(raw, 'message');
    expect(String(msg)).toBe('direct');
    raw.close();
  });
});

describe('usage errors exit 2 with a helpful message', () => {
  const cases: Array<[string[], RegExp]> = [
    [['listen'], /needs a port/],
    [['listen', '70000'], /port must be an integer from 0 to 65535/],
    [['listen', '0', '--framing', 'xml'], /--framing must be one of line, length, raw/],
    [['listen', '0', '--max-frame', 'lots'], /--max-frame must be a size/],
    [['listen', '0', '--echo', '--chat'], /--echo and --chat exclude each other/],
    [['listen', '0', '--bogus'], /unknown option '--bogus'/],
    [['connect', 'localhost'], /missing required argument 'port'/],
    [['connect', 'localhost', '0'], /port must be an integer from 1 to 65535/],
    [['connect', 'localhost', '80', '-w', 'soon'], /--wait must be a duration/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ];
  for (const [args, message] of cases) {
    it(`sock ${args.join(' ')}`, async () => {
      const r = await run(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^sock: /);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    });
  }

  it('--help works on every command and exits 0', async () => {
    for (const args of [['--help'], ['listen', '--help'], ['connect', '--help']]) {
      const r = await run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: sock/);
    }
  });
});
