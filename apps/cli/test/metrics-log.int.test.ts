import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { listen, run, tempDir } from './helpers.js';

/** Send bytes that are not TLS and wait for the server to close: one refused handshake. */
function notTls(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' }, () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('error', () => {});
    s.on('close', () => resolve());
  });
}

function promtool(body: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile('/usr/bin/promtool', ['check', 'metrics'], (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
    child.stdin!.end(body);
  });
}

it("--metrics serves the adapter's Prometheus metrics (GET and HEAD, promtool clean); --log json logs decisions", async () => {
  const server = await listen(['0', '--metrics', '127.0.0.1:0', '--max-frame', '8', '--log', 'json']);
  const url = /metrics (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(server.line)?.[1];
  expect(url).toBeDefined();
  await run(['connect', '127.0.0.1', String(server.port)], { input: 'ok\n' });
  await run(['connect', '127.0.0.1', String(server.port)], { input: 'far too long\n' });
  const res = await fetch(url!);
  const body = await res.text();
  expect(body).toMatch(/^sock_connections_opened_total\{listener="default",transport="tcp"\} 2$/m);
  expect(body).toMatch(/^sock_connections_closed_total\{listener="default",reason="frame-too-large"\} 1$/m);
  expect(body).toMatch(
    /^sock_rejections_total\{listener="default",reason="frame-too-large",stage="frame",plugin="core",closed="true"\} 1$/m,
  );
  expect(body).toMatch(/^sock_connections_open\{listener="default"\} 0$/m);
  expect(body).toMatch(/^sock_received_bytes_total\{listener="default",transport="tcp"\} \d+$/m);
  expect(body).toMatch(/^sock_handshake_duration_seconds_count\{listener="default",transport="tcp"\} 2$/m);
  expect(await promtool(body)).toEqual({ code: 0, out: '' });
  const head = await fetch(url!, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(head.headers.get('content-type')).toBe(res.headers.get('content-type'));
  expect(await head.text()).toBe('');
  expect((await fetch(url!.replace('/metrics', '/other'))).status).toBe(404);
  expect((await fetch(url!, { method: 'POST' })).status).toBe(405);
  const logs = server
    .stderr()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(logs.filter((l) => l.event === 'open')).toHaveLength(2);
  expect(logs.some((l) => l.event === 'close' && l.reason === 'frame-too-large')).toBe(true);
  expect(logs.some((l) => l.event === 'reject' && l.stage === 'frame' && l.plugin === 'core')).toBe(true);
  expect((await server.stop()).code).toBe(0);
});

it('--log pretty writes readable lines without colour when NO_COLOR is set', async () => {
  const server = await listen(['0', '--log', 'pretty']);
  await run(['connect', '127.0.0.1', String(server.port)], { input: 'x\n' });
  await server.stop();
  expect(server.stderr()).toMatch(
    /^\d\d:\d\d:\d\d\.\d{3} INFO open event=open conn=\d+ peer=127\.0\.0\.1:\d+ transport=tcp$/m,
  );
  expect(server.stderr()).not.toContain('\u001b[');
});

it('a scan of refused TLS handshakes writes nothing without --log, and a bounded log plus a summary with it', async () => {
  const dir = tempDir();
  await run(['cert', 'init', '--dir', dir]);
  await run(['cert', 'issue', '--dir', dir, '--server', 'localhost', '127.0.0.1']);
  const tlsArgs = ['--tls', '--tls-cert', join(dir, 'server.crt'), '--tls-key', join(dir, 'server.key')];
  const scans = 120;

  const quiet = await listen(['0', ...tlsArgs]);
  for (let i = 0; i < scans; i++) await notTls(quiet.port);
  expect((await quiet.stop()).code).toBe(0);
  // Before: two WARN lines per refused handshake (OpenSSL's message ends in a newline).
  expect(quiet.stderr()).toBe('');

  const logged = await listen(['0', ...tlsArgs, '--log', 'json']);
  for (let i = 0; i < scans; i++) await notTls(logged.port);
  expect((await logged.stop()).code).toBe(0);
  const lines = logged.stderr().trim().split('\n');
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const rejects = records.filter((r) => r.event === 'reject');
  expect(rejects.length).toBeGreaterThan(0);
  expect(rejects.length).toBeLessThanOrEqual(50);
  expect(rejects[0]).toMatchObject({ stage: 'handshake', plugin: 'tls', reason: 'tls-not-tls' });
  expect(String(rejects[0]!.msg)).not.toContain('\n');
  const summary = records.filter((r) => r.event === 'suppressed');
  const suppressed = summary.reduce((n, r) => n + Number(r.suppressed), 0);
  // Every refusal is either a line or counted in a summary line: nothing vanishes, nothing floods.
  expect(
    rejects.length + summary.reduce((n, r) => n + ((r.byEvent as Record<string, number>).reject ?? 0), 0),
  ).toBe(scans);
  expect(suppressed).toBeGreaterThan(0);
  expect(lines.length).toBeLessThan(60);
});
