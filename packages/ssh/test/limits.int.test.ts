import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect, delimited, text } from '@sock/core';
import ssh2 from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import { SshReason, sshTransport } from '../src/index.js';
import { startSockSsh } from './sock-ssh.js';

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function setup(extra: Parameters<typeof startSockSsh>[0] = {}) {
  const s = await startSockSsh(extra);
  stops.push(() => s.stop());
  const transport = sshTransport({
    via: `ssh://carol@127.0.0.1:${s.port}`,
    privateKey: readFileSync(s.clientKey),
    agent: false,
    knownHosts: s.knownHosts,
  });
  stops.push(() => transport.close());
  const open = () =>
    connect<string, string>({ host: 'echo', port: 7, transport, framing: delimited(), codec: text() });
  return { s, transport, open };
}

describe('per-connection limits of the SSH server', () => {
  it('refuses channels beyond maxChannels on one SSH connection, and frees the slot on close', async () => {
    const { s, open } = await setup({ maxChannels: 2 });
    const a = await open();
    const b = await open();
    await expect(open()).rejects.toMatchObject({ reason: SshReason.CHANNEL_REFUSED });
    expect(s.server.stats()).toMatchObject({ channelsOpen: 2, channelsTotal: 2 });
    await a.send('hi');
    for await (const m of a) {
      expect(m).toMatch(/^carol SHA256:\S+ ssh hi$/);
      break;
    }
    await a.close();
    for (let i = 0; i < 200 && s.server.stats().channelsOpen > 1; i++)
      await new Promise((r) => setTimeout(r, 10));
    const c = await open();
    expect(s.server.stats()).toMatchObject({ channelsOpen: 2, channelsTotal: 3 });
    await Promise.all([b.close(), c.close()]);
  });

  it('a destination outside the routes is refused with ssh-channel-refused', async () => {
    const { transport } = await setup();
    await expect(connect({ host: '127.0.0.1', port: 22, transport })).rejects.toMatchObject({
      reason: SshReason.CHANNEL_REFUSED,
    });
  });

  it('sessions count from their opening: refused exec requests cannot pile up idle sessions', async () => {
    const s = await startSockSsh({ maxChannels: 2 });
    stops.push(() => s.stop());
    const client = new ssh2.Client();
    client.on('error', () => {});
    stops.push(() => {
      client.end();
    });
    await new Promise<void>((resolve) => {
      client.once('ready', () => resolve());
      client.connect({
        host: '127.0.0.1',
        port: s.port,
        username: 'x',
        privateKey: readFileSync(s.clientKey),
      });
    });
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        await new Promise<string>((r) => client.exec('id', (err) => r(err ? err.message : 'ran'))),
      );
    }
    // No command ever runs; the first two sessions stay open (the client keeps them), the rest are refused.
    expect(outcomes.slice(0, 2)).toEqual(['Unable to exec', 'Unable to exec']);
    expect(outcomes.slice(2).every((o) => o.includes('Channel open failure'))).toBe(true);
    expect(s.server.stats()).toMatchObject({ channelsOpen: 2, channelsTotal: 2 });
  });

  it('a client that stops answering keepalives is dropped with its channels', async () => {
    const s = await startSockSsh({ keepaliveMs: 100 });
    stops.push(() => s.stop());
    const socket = netConnect({ host: '127.0.0.1', port: s.port });
    const client = new ssh2.Client();
    client.on('error', () => {});
    stops.push(() => {
      client.end();
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.connect({
        sock: socket,
        username: 'frozen',
        privateKey: readFileSync(s.clientKey),
        keepaliveInterval: 0,
      });
    });
    await new Promise<void>((resolve, reject) =>
      client.forwardOut('127.0.0.1', 0, 'echo', 7, (err) => (err ? reject(err) : resolve())),
    );
    expect(s.server.stats().channelsOpen).toBe(1);
    // The client stops reading: the server's pings go unanswered.
    socket.pause();
    for (let i = 0; i < 500 && s.server.tcp.connections.size > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(s.server.tcp.connections.size).toBe(0);
    expect(s.server.stats().channelsOpen).toBe(0);
  });

  it('close() ends live SSH sessions and their channels within the drain time', async () => {
    const { s, open } = await setup();
    const conn = await open();
    await s.server.close({ drainMs: 500 });
    const info = await conn.closed;
    expect(info.reason).toBeDefined();
    await s.echo.close({ drainMs: 500 });
    expect(s.echo.connections.size).toBe(0);
  });
});
