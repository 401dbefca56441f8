import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { echoes, listen, logs, peer, rejections, run, tempDir, until } from './helpers.js';

const L = ['0', '--log', 'json'];

describe('guard flags, each observed from a client', () => {
  it('--allow lets only the listed sources in; --deny refuses a source', async () => {
    const server = await listen([
      ...L,
      '--allow',
      '127.0.0.2',
      '--allow',
      '127.0.0.3/32',
      '--deny',
      '127.0.0.3',
    ]);
    expect(server.line).toContain('guards: allow 127.0.0.2,127.0.0.3/32, deny 127.0.0.3');
    expect(await echoes(server.port, '127.0.0.2')).toBe(true);
    expect(await echoes(server.port, '127.0.0.1')).toBe(false);
    expect(await echoes(server.port, '127.0.0.3')).toBe(false);
    await until(
      () => rejections(server).filter((r) => r === 'ip-denied').length === 2,
      3000,
      'two ip-denied',
    );
  });

  it('--allowfile and --denyfile read address lists', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'allow.txt'), '# who may connect\n127.0.0.0/8\n');
    writeFileSync(join(dir, 'deny.txt'), '127.0.0.9\n');
    const server = await listen([
      ...L,
      '--allowfile',
      join(dir, 'allow.txt'),
      '--denyfile',
      join(dir, 'deny.txt'),
    ]);
    expect(await echoes(server.port, '127.0.0.8')).toBe(true);
    expect(await echoes(server.port, '127.0.0.9')).toBe(false);
  });

  it('-m/--max-conns caps open connections', async () => {
    const server = await listen([...L, '-m', '1']);
    const first = await peer(server.port);
    first.socket.write('a\n');
    await until(() => first.received() === 'a\n', 3000, 'first echo');
    expect(await echoes(server.port, '127.0.0.4')).toBe(false);
    first.socket.destroy();
    await until(() => logs(server).some((r) => r.msg === 'close'), 3000, 'first close');
    expect(await echoes(server.port, '127.0.0.4')).toBe(true);
    expect(rejections(server)).toContain('conn-limit');
  });

  it('--max-conns-per-ip caps connections per source address', async () => {
    const server = await listen([...L, '--max-conns-per-ip', '1']);
    const first = await peer(server.port, { localAddress: '127.0.0.5' });
    first.socket.write('a\n');
    await until(() => first.received() === 'a\n', 3000, 'first echo');
    expect(await echoes(server.port, '127.0.0.5')).toBe(false);
    expect(await echoes(server.port, '127.0.0.6')).toBe(true);
    expect(rejections(server)).toContain('conn-limit-ip');
    first.socket.destroy();
  });

  it('--conn-rate refuses connections beyond the rate', async () => {
    const server = await listen([...L, '--conn-rate', '2/m']);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await echoes(server.port, '127.0.0.7'));
    expect(results).toEqual([true, true, false, false]);
    expect(rejections(server)).toContain('rate-connections');
  });

  it('--msg-rate closes a connection that floods', async () => {
    const server = await listen([...L, '--msg-rate', '5/s']);
    expect(server.line).toContain('msg-rate 5/s (close)');
    const p = await peer(server.port);
    p.socket.write('x\n'.repeat(50));
    await p.closed;
    expect(p.received().split('\n').length - 1).toBeLessThan(50);
    await until(() => rejections(server).includes('rate-messages'), 3000, 'rate-messages');
  });

  it('-i/--idle-timeout closes a silent connection', async () => {
    const server = await listen([...L, '-i', '400ms']);
    const p = await peer(server.port);
    p.socket.write('hello\n');
    const ms = await p.closed;
    expect(ms).toBeGreaterThanOrEqual(350);
    expect(ms).toBeLessThan(5000);
    await until(() => rejections(server).includes('idle-timeout'), 3000, 'idle-timeout');
  });

  it('--handshake-timeout cuts a slowloris client that never completes a line', async () => {
    const server = await listen([...L, '--handshake-timeout', '500ms']);
    const p = await peer(server.port);
    const drip = setInterval(() => p.socket.write('x'), 100);
    const ms = await p.closed;
    clearInterval(drip);
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(5000);
    await until(() => rejections(server).includes('handshake-timeout'), 3000, 'handshake-timeout');
  });

  it('--ban-after and --ban-time ban a source after its strikes', async () => {
    const server = await listen([...L, '--max-frame', '8', '--ban-after', '2', '--ban-time', '1m']);
    const p = await peer(server.port, { localAddress: '127.0.0.10' });
    p.socket.write(`${'x'.repeat(64)}\n`); // frame-too-large weighs 2 strikes
    await p.closed;
    await until(() => logs(server).some((r) => r.msg === 'banned'), 3000, 'the ban');
    expect(logs(server).find((r) => r.msg === 'banned')).toMatchObject({
      key: '127.0.0.10',
      durationMs: 60_000,
    });
    expect(await echoes(server.port, '127.0.0.10')).toBe(false);
    expect(rejections(server)).toContain('banned');
    expect(await echoes(server.port, '127.0.0.11')).toBe(true);
  });

  it('--proxy-protocol believes headers from --trusted-proxy only; --firewall plan prints the ban it would apply', async () => {
    const server = await listen([
      ...L,
      '--proxy-protocol',
      '--trusted-proxy',
      '127.0.0.1',
      '--max-frame',
      '8',
      '--ban-after',
      '1',
      '--firewall',
      'plan',
    ]);
    expect(server.line).toContain('firewall: plan');
    const p = await peer(server.port);
    p.socket.write('PROXY TCP4 198.51.100.7 127.0.0.1 5555 7000\r\nhello\n');
    await until(() => p.received() === 'hello\n', 3000, 'echo through the proxy header');
    p.socket.write(`${'y'.repeat(64)}\n`);
    await p.closed;
    await until(
      () => logs(server).some((r) => r.msg === 'firewall plan (not applied)'),
      5000,
      'the firewall plan',
    );
    const plan = logs(server).find((r) => r.msg === 'firewall plan (not applied)')!;
    expect(plan.key).toBe('198.51.100.7');
    expect(JSON.stringify(plan.commands)).toContain('198.51.100.7');
    expect(logs(server).some((r) => r.msg === 'open' && String(r.peer).startsWith('198.51.100.7:'))).toBe(
      true,
    );
    // Another peer without a trusted source address is refused.
    const untrusted = await peer(server.port, { localAddress: '127.0.0.12' });
    untrusted.socket.write('PROXY TCP4 198.51.100.8 127.0.0.1 5555 7000\r\n');
    await untrusted.closed;
    await until(() => rejections(server).includes('proxy-untrusted'), 3000, 'proxy-untrusted');
  });

  it('--config reads a YAML policy; flags override it', async () => {
    const dir = tempDir();
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, 'connections:\n  perKey: 1\nip:\n  deny: [127.0.0.13]\n');
    const server = await listen([...L, '--config', file]);
    expect(await echoes(server.port, '127.0.0.13')).toBe(false);
    const first = await peer(server.port, { localAddress: '127.0.0.14' });
    first.socket.write('a\n');
    await until(() => first.received() === 'a\n', 3000, 'first echo');
    expect(await echoes(server.port, '127.0.0.14')).toBe(false);
    first.socket.destroy();
  });
});

describe('guard flag usage errors exit 2', () => {
  const cases: Array<[string[], RegExp]> = [
    [['listen', '0', '--allow', 'not-an-ip'], /not an IP address or CIDR/],
    [['listen', '0', '--conn-rate', 'fast'], /--conn-rate must be a rate like 10\/s/],
    [['listen', '0', '-m', '0'], /--max-conns must be an integer of at least 1/],
    [['listen', '0', '-i', 'forever'], /--idle-timeout must be a duration/],
    [['listen', '0', '--proxy-protocol'], /--proxy-protocol needs --trusted-proxy/],
    [['listen', '0', '--trusted-proxy', '10.0.0.1'], /--trusted-proxy needs --proxy-protocol/],
    [['listen', '0', '--firewall', 'plan'], /--firewall bans what guards ban/],
    [
      ['listen', '0', '--firewall', 'pf', '--ban-after', '3'],
      /--firewall must be one of nft, iptables, plan/,
    ],
    [['listen', '0', '--config', '/nonexistent/policy.yaml'], /--config: /],
  ];
  for (const [args, message] of cases) {
    it(`sock ${args.join(' ')}`, async () => {
      const r = await run(args);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/^sock: /);
      expect(r.code).toBe(2);
    });
  }
});
