import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFirewall, type Firewall, FirewallError, type FirewallOptions } from '../src/index.js';
import { createLab, kernelSkipReason, type Lab, nsExec, until } from './netns.js';

/**
 * The same behaviour, proven against the real kernel for one backend, inside namespaces made for
 * this run. In CI a missing prerequisite is a failure, elsewhere a skip with the reason.
 */
export function kernelSuite(backend: 'nftables' | 'iptables'): void {
  const tools =
    backend === 'nftables' ? (['nft'] as const) : (['iptables', 'iptables-restore', 'ipset', 'nft'] as const);
  const reason = kernelSkipReason([...tools]);
  if (reason && process.env.CI === 'true') {
    it(`${backend} kernel tests have their prerequisites in CI`, () => {
      throw new Error(`kernel tests cannot run: ${reason}`);
    });
    return;
  }

  describe.skipIf(reason !== undefined)(
    `${backend} backend in a network namespace${reason ? ` (skipped: ${reason})` : ''}`,
    // Each probe of a blocked source waits 1 s; a loaded machine needs headroom.
    { timeout: 30_000 },
    () => {
      let lab: Lab;
      let dir: string;
      let port: number;
      let fw: Firewall;
      const otherTable = `other_${process.pid}`;
      let otherBefore = '';
      const make = (extra: Partial<FirewallOptions> = {}) =>
        createFirewall({
          backend,
          netns: lab.server,
          env: {},
          table: 'sockfwt',
          stateFile: join(dir, 'state.json'),
          ...extra,
        });
      const reach = (from: string, host = from.includes(':') ? lab.serverV6 : lab.serverV4, p = port) =>
        lab.probe(host, p, from);

      beforeAll(async () => {
        lab = await createLab();
        dir = await mkdtemp(join(tmpdir(), 'sockfw-test-'));
        port = await lab.listen();
        // Someone else's table: must never change.
        await nsExec(lab.server, 'nft', ['add', 'table', 'inet', otherTable]);
        await nsExec(lab.server, 'nft', ['add', 'set', 'inet', otherTable, 's', '{ type ipv4_addr; }']);
        await nsExec(lab.server, 'nft', ['add', 'element', 'inet', otherTable, 's', '{ 192.0.2.99 }']);
        await nsExec(lab.server, 'nft', ['add', 'chain', 'inet', otherTable, 'c']);
        await nsExec(lab.server, 'nft', [
          'add',
          'rule',
          'inet',
          otherTable,
          'c',
          'ip',
          'saddr',
          '@s',
          'counter',
        ]);
        otherBefore = await nsExec(lab.server, 'nft', ['list', 'table', 'inet', otherTable]);
        fw = make();
        await fw.init();
      }, 30_000);

      afterAll(async () => {
        await fw?.destroy().catch(() => undefined);
        await lab?.close();
        if (dir) await rm(dir, { recursive: true, force: true });
      });

      it('uses the requested backend and both sources reach the server at first', async () => {
        expect(await fw.backend()).toBe(backend);
        expect(await reach(lab.clientA4)).toBe('ok');
        expect(await reach(lab.clientB4)).toBe('ok');
        expect(await reach(lab.clientA6)).toBe('ok');
      });

      it('a banned source cannot connect while another source can (IPv4 and IPv6)', async () => {
        await fw.ban(lab.clientA4, { ttl: '1m', reason: 'test ban' });
        await fw.ban(lab.clientA6, { ttl: '1m', reason: 'test ban v6' });
        expect(await reach(lab.clientA4)).toBe('timeout');
        expect(await reach(lab.clientB4)).toBe('ok');
        expect(await reach(lab.clientA6)).toBe('timeout');
        expect(await reach(lab.clientB6)).toBe('ok');
        const list = await fw.list();
        const a = list.find((b) => b.target === lab.clientA4);
        expect(a?.reason).toBe('test ban');
        expect(a?.ttlMs).toBeGreaterThan(50_000);
        expect(a?.ttlMs).toBeLessThanOrEqual(60_000);
        await fw.unbanMany([lab.clientA4, lab.clientA6]);
        expect(await reach(lab.clientA4)).toBe('ok');
        expect(await reach(lab.clientA6)).toBe('ok');
      });

      it('bans also apply to forwarded traffic (the forward hook)', async () => {
        const innerPort = await lab.listen(lab.inner);
        expect(await reach(lab.clientA4, lab.innerV4, innerPort)).toBe('ok');
        await fw.ban(lab.clientA4, { ttl: '1m', reason: 'forwarded' });
        expect(await reach(lab.clientA4, lab.innerV4, innerPort)).toBe('timeout');
        expect(await reach(lab.clientB4, lab.innerV4, innerPort)).toBe('ok');
        await fw.unban(lab.clientA4);
      });

      it('the ban expires after its TTL and the source gets back in', async () => {
        await fw.ban(lab.clientB4, { ttl: 3000, reason: 'short' });
        expect(await reach(lab.clientB4)).toBe('timeout');
        expect(await until(() => reach(lab.clientB4), 'ok', 8000)).toBe('ok');
        expect((await fw.list()).some((b) => b.target === lab.clientB4)).toBe(false);
      }, 15_000);

      it('a CIDR ban blocks every address inside it (and an IPv6 /64)', async () => {
        const [a, b, c] = lab.serverV4.split('.');
        await fw.ban(`${a}.${b}.${c}.0/30`, { ttl: '1m', reason: 'cidr' }); // .0-.3: both clients
        await fw.ban(`${lab.clientA6.slice(0, lab.clientA6.lastIndexOf('::'))}::/64`, { ttl: '1m' });
        expect(await reach(lab.clientA4)).toBe('timeout');
        expect(await reach(lab.clientB4)).toBe('timeout');
        expect(await reach(lab.clientB6)).toBe('timeout');
        await fw.unbanMany([
          `${a}.${b}.${c}.0/30`,
          `${lab.clientA6.slice(0, lab.clientA6.lastIndexOf('::'))}::/64`,
        ]);
        expect(await reach(lab.clientB4)).toBe('ok');
        expect(await reach(lab.clientB6)).toBe('ok');
      });

      it('the allow set wins over a ban', async () => {
        await fw.ban(lab.clientA4, { ttl: '1m' });
        expect(await reach(lab.clientA4)).toBe('timeout');
        await fw.allow(lab.clientA4);
        expect(await reach(lab.clientA4)).toBe('ok');
        await fw.disallow(lab.clientA4);
        expect(await reach(lab.clientA4)).toBe('timeout');
        await fw.unban(lab.clientA4);
      });

      it('port rules: deny a port, allow it from one source only', async () => {
        const other = await lab.listen();
        await fw.denyPort(port, 'tcp');
        await fw.allowPort(port, 'tcp', { from: lab.clientA4 });
        expect(await reach(lab.clientA4)).toBe('ok');
        expect(await reach(lab.clientB4)).toBe('timeout');
        expect(await reach(lab.clientB6)).toBe('timeout');
        expect(await reach(lab.clientB4, lab.serverV4, other)).toBe('ok');
        await fw.removePortRule(port, 'tcp');
        expect(await reach(lab.clientB4)).toBe('ok');
      });

      it('one bad element in a batch applies nothing', async () => {
        const before = await fw.list();
        for (const bad of [
          '1.2.3.4; touch /tmp/x',
          '{ 1.2.3.4 }; flush ruleset',
          'fe80::1%x; touch /tmp/x',
          '\u0661\u0662\u0663.1.1.1',
        ]) {
          const err = await fw.banMany([{ target: lab.clientA4 }, { target: bad }]).catch((e: unknown) => e);
          expect(FirewallError.isInstance(err) && err.code).toBe('ERR_SOCK_FW_INVALID_ADDRESS');
        }
        expect(await fw.list()).toEqual(before);
        expect(await reach(lab.clientA4)).toBe('ok');
        await expect(stat('/tmp/x')).rejects.toThrow();
      });

      if (backend === 'nftables') {
        it('a batch the kernel refuses is atomic and the error names the failing element', async () => {
          // A CIDR put in behind our back makes the kernel refuse an overlapping one.
          await nsExec(lab.server, 'nft', [
            'add',
            'element',
            'inet',
            'sockfwt',
            'net4',
            '{ 203.0.113.0/24 }',
          ]);
          const err = await fw
            .banMany([{ target: lab.clientA4 }, { target: lab.clientB4 }, { target: '203.0.113.0/25' }])
            .catch((e: unknown) => e);
          expect(FirewallError.isInstance(err) && err.code).toBe('ERR_SOCK_FW_COMMAND_FAILED');
          expect((err as Error).message).toMatch(/203\.0\.113\.0.*25|"len": ?25/);
          expect(await reach(lab.clientA4)).toBe('ok');
          expect(await reach(lab.clientB4)).toBe('ok');
          await nsExec(lab.server, 'nft', [
            'delete',
            'element',
            'inet',
            'sockfwt',
            'net4',
            '{ 203.0.113.0/24 }',
          ]);
        });
      }

      it('restore() after our table was removed re-applies live bans with their remaining TTL', async () => {
        await fw.banMany([
          { target: lab.clientA4, ttl: '5m', reason: 'persisted' },
          { target: lab.clientA6, ttl: '5m', reason: 'persisted v6' },
        ]);
        const mode = (await stat(join(dir, 'state.json'))).mode & 0o777;
        expect(mode).toBe(0o600);
        await fw.destroy();
        expect(await reach(lab.clientA4)).toBe('ok');
        const fresh = make();
        const result = await fresh.restore();
        expect(result.applied).toBe(true);
        expect(await reach(lab.clientA4)).toBe('timeout');
        expect(await reach(lab.clientA6)).toBe('timeout');
        expect(await reach(lab.clientB4)).toBe('ok');
        const a = (await fresh.list()).find((b) => b.target === lab.clientA4);
        expect(a?.reason).toBe('persisted');
        expect(a?.ttlMs).toBeGreaterThan(200_000);
        fw = fresh;
      });

      if (backend === 'nftables') {
        it('recreates our table when it was removed behind our back', async () => {
          await nsExec(lab.server, 'nft', ['delete', 'table', 'inet', 'sockfwt']);
          await fw.ban(lab.clientB6, { ttl: '1m' });
          expect(await reach(lab.clientB6)).toBe('timeout');
          await fw.unban(lab.clientB6);
          expect(await reach(lab.clientB6)).toBe('ok');
        });
      }

      it('flush() empties our bans only; init() and destroy() are idempotent', async () => {
        await fw.flush();
        expect(await fw.list()).toEqual([]);
        expect(await reach(lab.clientA4)).toBe('ok');
        await fw.init();
        await fw.init();
        await fw.destroy();
        await fw.destroy();
        await fw.init();
      });

      it('other tables are untouched', async () => {
        expect(await nsExec(lab.server, 'nft', ['list', 'table', 'inet', otherTable])).toBe(otherBefore);
      });
    },
  );
}
