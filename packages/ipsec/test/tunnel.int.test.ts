import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capture, type Lab, startLab } from '../../../test-support/ipsec-lab.mjs';
import { runReadmeUsage } from '../../../test-support/readme-usage.js';
import { createFailClosed, createIpsec, type Ipsec, type LogLine, type UpDownEvent } from '../src/index.js';
import { connectionFor, datagramFrom, echoFrom, echoServer, labUnavailable, notIkeOrEsp } from './helpers.js';
import { type LabPki, labPki } from './pki.js';

const missing = labUnavailable();

// One pair of charons for the whole file: starting and stopping them costs ~2 s each time.
describe.skipIf(missing)('a tunnel between two namespaces', () => {
  let lab: Lab;
  let pki: LabPki;
  let a: Ipsec;
  let b: Ipsec;
  let echo: Awaited<ReturnType<typeof echoServer>>;

  beforeAll(async () => {
    [lab, pki] = await Promise.all([startLab(), labPki()]);
    a = createIpsec({ socket: lab.a.vici });
    b = createIpsec({ socket: lab.b.vici });
    echo = await echoServer(lab.b);
  }, 30_000);

  afterAll(async () => {
    await echo?.stop().catch(() => undefined);
    await a?.close();
    await b?.close();
    await lab?.stop();
  }, 30_000);

  it('comes up through the package; the echo crosses the wire only as IKE and ESP-in-UDP', async () => {
    const events: UpDownEvent[] = [];
    const watching = (async () => {
      for await (const e of a.events()) {
        events.push(e);
        if (e.type === 'child-updown' && e.up) break;
      }
    })();
    const loaded = await a.loadConnection(connectionFor(lab, pki, 'a'));
    expect(loaded).toEqual({ name: 'net', localTs: ['10.1.0.1/32'], remoteTs: ['10.2.0.1/32'] });
    await b.loadConnection(connectionFor(lab, pki, 'b'));
    expect((await a.listConnections()).map((c) => [c.name, c.version, c.children])).toEqual([
      ['net', 'IKEv2', ['net']],
    ]);

    const wire = await capture(lab.a);
    const log: LogLine[] = [];
    await a.initiate('net', { onLog: (l) => log.push(l) });
    expect(log.some((l) => /CHILD_SA net\{\d+\} established/.test(l.message))).toBe(true);
    await watching;
    expect(events.map((e) => [e.type, e.up, e.ike])).toEqual([
      ['ike-updown', true, 'net'],
      ['child-updown', true, 'net'],
    ]);

    const secret = `payload-${randomBytes(8).toString('hex')}`;
    expect(await echoFrom(lab.a, lab.b.inner, echo.port, secret)).toEqual({ reply: secret });
    const { raw, lines } = await wire.stop();

    expect(raw.includes(secret)).toBe(false);
    expect(lines.length).toBeGreaterThan(4);
    expect(notIkeOrEsp(lines)).toEqual([]);
    expect(lines.some((l) => /\.500 > /.test(l))).toBe(true); // IKE_SA_INIT
    expect(lines.some((l) => /\.4500 > .*UDP-encap: ESP\(spi=/.test(l))).toBe(true); // the echo, as ESP in UDP 4500

    const [sa] = await a.listSas();
    expect(sa).toMatchObject({ name: 'net', state: 'ESTABLISHED', version: '2', keyExchange: 'CURVE_25519' });
    expect(sa!.encryption).toMatch(/^AES_GCM_16-256$/);
    expect(sa!.children[0]).toMatchObject({ name: 'net', state: 'INSTALLED', mode: 'TUNNEL' });
    expect(sa!.children[0]!.bytesOut).toBeGreaterThan(secret.length);
  }, 30_000);

  it('fails closed: after down, protected traffic errors out instead of leaving in the clear', async () => {
    const down: UpDownEvent[] = [];
    const watching = (async () => {
      for await (const e of a.events()) {
        down.push(e);
        if (e.type === 'child-updown' && !e.up) break;
      }
    })();
    await a.terminate('net');
    await watching;
    expect(down.some((e) => e.type === 'child-updown' && !e.up)).toBe(true);
    expect(await a.listSas()).toEqual([]);

    // Without the guard the lab's cleartext route carries the traffic: the capture sees it (so this
    // check can fail).
    const leak = `leak-${randomBytes(8).toString('hex')}`;
    let wire = await capture(lab.a);
    expect(await datagramFrom(lab.a, lab.b.inner, leak)).toEqual({ sent: true });
    expect((await wire.stop()).raw.includes(leak)).toBe(true);

    const guard = createFailClosed({ prefixes: ['10.2.0.1/32'], netns: lab.a.netns });
    await guard.install();
    const secret = `closed-${randomBytes(8).toString('hex')}`;
    wire = await capture(lab.a);
    const udp = await datagramFrom(lab.a, lab.b.inner, secret);
    const tcp = await echoFrom(lab.a, lab.b.inner, echo.port, secret);
    const after = await wire.stop();
    expect(after.raw.includes(secret)).toBe(false);
    expect(udp.error).toBe('EHOSTUNREACH');
    expect(tcp.reply).toBeUndefined();
    expect(tcp.error).toBeDefined();

    // The guard does not disturb the tunnel: bring it up again and the echo works, still encrypted.
    wire = await capture(lab.a);
    await a.initiate('net');
    const again = `again-${randomBytes(8).toString('hex')}`;
    expect(await echoFrom(lab.a, lab.b.inner, echo.port, again)).toEqual({ reply: again });
    const third = await wire.stop();
    expect(third.raw.includes(again)).toBe(false);
    expect(notIkeOrEsp(third.lines)).toEqual([]);
    await a.terminate('net');
    await guard.remove();
    await guard.remove(); // idempotent
  }, 30_000);

  it('loads certificates and keys on their own', async () => {
    await b.loadCertificate(pki.ca.cert, { ca: true });
    await b.loadKey(pki.b.key);
    const listed: string[] = [];
    await b.vici.streamed('list-certs', 'list-cert', { type: 'X509', flag: 'CA' }, (m) =>
      listed.push(String(m.flag)),
    );
    expect(listed).toContain('CA');
    await expect(b.loadCertificate(pki.b.cert, { ca: true })).rejects.toMatchObject({
      code: 'ERR_SOCK_IPSEC_INVALID_OPTION',
    });
    await expect(b.loadKey('not a key')).rejects.toMatchObject({ code: 'ERR_SOCK_IPSEC_INVALID_OPTION' });
  });

  it('reports what charon refused, with its reason', async () => {
    await expect(a.initiate('nosuchconn', { timeoutMs: 2000 })).rejects.toMatchObject({
      code: 'ERR_SOCK_IPSEC_COMMAND_FAILED',
    });
    const unknown = a.vici.request('no-such-command');
    await expect(unknown).rejects.toMatchObject({ code: 'ERR_SOCK_IPSEC_UNKNOWN_COMMAND' });
    expect((await a.version()).daemon).toBe('charon');
  });

  it("runs the README's Usage example as written", async () => {
    const dir = join(lab.dir, 'readme-pki');
    mkdirSync(dir);
    writeFileSync(join(dir, 'ca.crt'), pki.ca.cert);
    writeFileSync(join(dir, 'a.crt'), pki.a.cert);
    writeFileSync(join(dir, 'a.key'), pki.a.key, { mode: 0o600 });
    const env = { PKI_DIR: dir, VICI_SOCKET: lab.a.vici, NETNS: lab.a.netns };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const logs = await runReadmeUsage(import.meta.url, 'ipsec-usage');
      expect(logs[0]).toBe('ESTABLISHED AES_GCM_16-256 CURVE_25519');
      expect(logs[1]).toMatch(/^CHILD_SA site-b\{\d+\} established with SPIs/);
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
    await createFailClosed({ prefixes: ['10.2.0.1/32'], netns: lab.a.netns }).remove();
    await a.unloadConnection('site-b');
  }, 30_000);

  it('re-registers its events after charon restarts and sees the next tunnel come up', async () => {
    const events: UpDownEvent[] = [];
    const iterator = a.events();
    const watching = (async () => {
      for await (const e of iterator) {
        events.push(e);
        if (e.type === 'ike-updown' && e.up) break;
      }
    })();
    // Seen by `await watching` below; this only keeps an early failure from being reported as unhandled.
    watching.catch(() => {});
    await a.version(); // the registration is confirmed before the restart
    const reconnectsBefore = a.stats().reconnects;
    await lab.restartCharon('a');
    // The client reconnects by itself once it has seen the old socket close. A command sent before that
    // goes to the dying socket and fails DISCONNECTED (never retried: it may have run), so wait for it.
    for (const deadline = Date.now() + 10_000; a.stats().reconnects <= reconnectsBefore; ) {
      if (Date.now() > deadline) throw new Error('the client did not reconnect within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // The restarted charon knows nothing: load again.
    await a.loadConnection(connectionFor(lab, pki, 'a'));
    await a.initiate('net');
    await watching;
    expect(events.some((e) => e.type === 'ike-updown' && e.up)).toBe(true);
    await a.terminate('net');
  }, 30_000);
});
