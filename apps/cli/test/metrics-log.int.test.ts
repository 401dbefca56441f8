import { expect, it } from 'vitest';
import { listen, run } from './helpers.js';

it('--metrics serves Prometheus counters from the observer events; --log json logs them', async () => {
  const server = await listen(['0', '--metrics', '127.0.0.1:0', '--max-frame', '8', '--log', 'json']);
  const url = /metrics (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(server.line)?.[1];
  expect(url).toBeDefined();
  await run(['connect', '127.0.0.1', String(server.port)], { input: 'ok\n' });
  await run(['connect', '127.0.0.1', String(server.port)], { input: 'far too long\n' });
  const body = await (await fetch(url!)).text();
  expect(body).toMatch(/^sock_connections_opened_total 2$/m);
  expect(body).toMatch(/^sock_connections_closed_total\{reason="frame-too-large"\} 1$/m);
  expect(body).toMatch(
    /^sock_rejections_total\{reason="frame-too-large",stage="frame",plugin="core",closed="true"\} 1$/m,
  );
  expect(body).toMatch(/^sock_connections_open 0$/m);
  expect((await fetch(url!.replace('/metrics', '/other'))).status).toBe(404);
  const logs = server
    .stderr()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(logs.filter((l) => l.msg === 'open')).toHaveLength(2);
  expect(logs.some((l) => l.msg === 'close' && l.reason === 'frame-too-large')).toBe(true);
  expect((await server.stop()).code).toBe(0);
});

it('--log pretty writes readable lines without colour when NO_COLOR is set', async () => {
  const server = await listen(['0', '--log', 'pretty']);
  await run(['connect', '127.0.0.1', String(server.port)], { input: 'x\n' });
  await server.stop();
  expect(server.stderr()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO open peer=127\.0\.0\.1:\d+ id=\d+$/m);
  expect(server.stderr()).not.toContain('\u001b[');
});
