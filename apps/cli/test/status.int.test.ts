import { expect, it } from 'vitest';
import { listen, peer, run } from './helpers.js';

it('--status serves the live page and its data on loopback; a token guards the data; remote needs a flag', async () => {
  const token = 'c'.repeat(32);
  const server = await listen([
    '0',
    '--max-conns-per-ip',
    '1',
    '--status',
    '127.0.0.1:0',
    '--status-token',
    token,
  ]);
  const url = /status (http:\/\/127\.0\.0\.1:\d+\/) \(bearer token\)/.exec(server.line)?.[1];
  expect(url).toBeDefined();
  expect(server.line).not.toContain(token);
  const first = await peer(server.port);
  const second = await peer(server.port, { localAddress: '127.0.0.1' });
  await second.closed; // conn-limit-ip
  first.socket.destroy();
  expect((await fetch(`${url}status.json`)).status).toBe(401);
  const report = (await (
    await fetch(`${url}status.json`, { headers: { authorization: `Bearer ${token}` } })
  ).json()) as {
    totals: { rejected: number };
    rejectedByReason: Record<string, number>;
    topKeys: Array<{ key: string }>;
  };
  expect(report.totals.rejected).toBe(1);
  expect(report.rejectedByReason).toEqual({ 'conn-limit-ip': 1 });
  expect(report.topKeys[0]?.key).toBe('127.0.0.1');
  const page = await fetch(url!);
  expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect((await server.stop()).code).toBe(0);

  const remote = await run(['listen', '0', '--status', '0.0.0.0:0']);
  expect(remote.code).toBe(2);
  expect(remote.stderr).toMatch(
    /--status: 0\.0\.0\.0 is not a loopback address.*--status-allow-remote is given/,
  );
  const stray = await run(['listen', '0', '--status-token', token]);
  expect(stray.code).toBe(2);
  expect(stray.stderr).toContain('--status-token goes with --status');
});
