import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createServer, delimited, type SockServer } from '@sock/core';
import { createGuards } from '@sock/guards';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createSockMetrics } from '../src/collector.js';
import { serveStatus } from '../src/status/server.js';
import { exchange, until } from './helpers.js';

/** The page's DOM, as the functions run inside Chromium see it (the package is typed for Node only). */
declare const document: { getElementById(id: string): { textContent: string | null } | null };

const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

let browser: Browser;
beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});
afterAll(async () => {
  await browser?.close();
});

/** A guarded echo server: 127.0.0.66 is denied; 2 strikes ban; frames over 16 bytes are refused. */
async function liveServer() {
  const guards = createGuards({
    ip: { deny: ['127.0.0.66'] },
    strikes: { threshold: 2 },
    bans: { duration: '10m' },
  });
  cleanup.push(() => guards.close());
  const metrics = createSockMetrics({ components: { guards } });
  const server: SockServer = createServer({
    framing: delimited({ maxFrameBytes: 16 }),
    plugins: [guards.plugin, metrics.plugin('echo')],
    observers: [metrics.observer('echo')],
    async handler(conn) {
      for await (const m of conn) await conn.send(m);
    },
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  cleanup.push(() => server.close({ drainMs: 0 }));
  return { guards, metrics, server, port };
}

/** A client that stays connected (after one echo) until the test ends. */
async function held(port: number): Promise<void> {
  const { connect } = await import('node:net');
  await new Promise<void>((resolve) => {
    const s = connect({ port, host: '127.0.0.1' }, () => s.write('hold\n'));
    s.once('data', () => resolve());
    cleanup.push(() => s.destroy());
  });
}

const text = async (page: import('playwright-core').Page, selector: string) =>
  (await page.locator(selector).textContent())?.trim();
const num = (s: string | undefined) => Number(String(s).replace(/,/g, ''));

it("the page, opened in Chromium against a live server under traffic, shows the server's own counters", async () => {
  const { server, metrics, port, guards } = await liveServer();
  const status = await serveStatus(metrics, { sampleEveryMs: 200 });
  cleanup.push(() => status.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  cleanup.push(() => page.close());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(status.url);

  // Traffic while the page watches: echoes, held connections, a denied address, an oversize sender
  // (two strikes: banned), and refused attempts from the banned address.
  for (let i = 0; i < 5; i++) expect(await exchange(port, 'hi\n', { replies: 1 })).toBe('hi\n');
  await held(port);
  await held(port);
  for (let i = 0; i < 7; i++) await exchange(port, 'x\n', { localAddress: '127.0.0.66' });
  await exchange(port, `${'y'.repeat(64)}\n`, { localAddress: '127.0.0.77' });
  await until(async () => await guards.isBanned('127.0.0.77'), 'the ban');
  for (let i = 0; i < 3; i++) await exchange(port, 'z\n', { localAddress: '127.0.0.77' });
  await until(() => server.connections.size === 2, 'only the held connections left');

  const stats = server.stats();
  const rejected = Object.values(stats.rejected).reduce((a, b) => a + b, 0);
  await page.waitForFunction(
    ([opened, refused]) =>
      document.getElementById('opened-total')?.textContent === String(opened) &&
      document.getElementById('rejected-total')?.textContent === String(refused),
    [stats.open, rejected] as const,
    { timeout: 10_000 },
  );
  expect(num(await text(page, '#open-now'))).toBe(stats.active);
  expect(stats.active).toBe(2);
  expect(num(await text(page, '#opened-total'))).toBe(stats.open);
  expect(num(await text(page, '#rejected-total'))).toBe(rejected);
  const snapshot = await guards.snapshot();
  expect(num(await text(page, '#bans-active'))).toBe(snapshot.bans.active.length);
  expect(await page.locator('#bans tr[data-key]').count()).toBe(snapshot.bans.active.length);
  // Per listener, per reason, top keys and bans agree with the server's own figures.
  const row = page.locator('#listeners tr[data-listener="echo"]');
  expect(num((await row.locator('td.opened').textContent()) ?? '')).toBe(stats.open);
  expect(num((await row.locator('td.open').textContent()) ?? '')).toBe(stats.active);
  for (const [reason, n] of Object.entries(stats.rejected)) {
    expect([
      reason,
      num((await page.locator(`#reasons tr[data-reason="${reason}"] td.n`).textContent()) ?? ''),
    ]).toEqual([reason, n]);
  }
  expect(num((await page.locator('#top-keys tr[data-key="127.0.0.66"] td.count').textContent()) ?? '')).toBe(
    7,
  );
  const ban = page.locator('#bans tr[data-key="127.0.0.77"]');
  expect(await ban.locator('td').nth(1).textContent()).toMatch(/^(9m \d+s|10m 0s)$/);
  expect(await page.locator('#legend span').count()).toBe(Object.keys(stats.rejected).length);
  expect(await page.locator('#chart-rejected rect').count()).toBeGreaterThan(0);
  expect(await text(page, '#state')).toBe('live');
  expect(errors).toEqual([]);

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}status-page.png`, fullPage: true });
}, 60_000);

it('binds to loopback unless told otherwise, requires the bearer token when set, and refuses rebinding Host headers', async () => {
  const metrics = createSockMetrics();
  await expect(serveStatus(metrics, { host: '0.0.0.0' })).rejects.toThrow(/not a loopback address/);
  await expect(serveStatus(metrics, { token: 'short' })).rejects.toThrow(/at least 16 characters/);

  const token = 'a'.repeat(8) + 'b'.repeat(24);
  const status = await serveStatus(metrics, { token });
  cleanup.push(() => status.close());
  const base = `http://127.0.0.1:${status.port}`;
  expect(status.url).toBe(`${base}/#token=${token}`);
  expect((await fetch(`${base}/status.json`)).status).toBe(401);
  expect(
    (await fetch(`${base}/status.json`, { headers: { authorization: `Bearer ${token}x` } })).status,
  ).toBe(401);
  const ok = await fetch(`${base}/status.json`, { headers: { authorization: `Bearer ${token}` } });
  expect(ok.status).toBe(200);
  expect(await ok.json()).toMatchObject({ totals: { opened: 0 } });
  const head = await fetch(`${base}/status.json`, {
    method: 'HEAD',
    headers: { authorization: `Bearer ${token}` },
  });
  expect([head.status, await head.text()]).toEqual([200, '']);
  const html = await fetch(`${base}/`);
  expect(html.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'sha256-/);
  expect(await html.text()).not.toMatch(/<script src|<link /);
  // The page, given the token in its fragment, shows live data; without it, the reason.
  const page = await browser.newPage();
  cleanup.push(() => page.close());
  await page.goto(status.url);
  await page.waitForFunction(() => document.getElementById('state')?.textContent === 'live');
  await page.goto(`${base}/`);
  await page.waitForFunction(() => document.getElementById('state')?.textContent?.startsWith('unauthorized'));

  const open = await serveStatus(metrics);
  cleanup.push(() => open.close());
  const withHost = (host: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: open.port, path: '/status.json', headers: { host } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
  expect(await withHost(`localhost:${open.port}`)).toBe(200);
  expect(await withHost(`attacker.example:${open.port}`)).toBe(403);
});
