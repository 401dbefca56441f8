import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createBanBridge,
  createFirewall,
  type Firewall,
  FirewallError,
  type FirewallOptions,
} from '../src/index.js';
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
      /** Someone else's iptables chains, rules and ipset, as `iptables -S` / `ipset save` print them. */
      const foreignIptables = async () => {
        const out: string[] = [];
        for (const ipt of ['iptables', 'ip6tables']) {
          out.push(await nsExec(lab.server, ipt, ['-w', '-S', 'FOREIGN']));
          out.push(await nsExec(lab.server, ipt, ['-w', '-t', 'nat', '-S']));
          // INPUT without our own jump: the host's rules, in order.
          const input = await nsExec(lab.server, ipt, ['-w', '-S', 'INPUT']);
          out.push(
            input
              .split('\n')
              .filter((l) => !l.includes('sockfwt'))
              .join('\n'),
          );
        }
        out.push(await nsExec(lab.server, 'ipset', ['save', 'foreign-set']));
        return out.join('\n---\n');
      };
      let foreignBefore = '';
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
        if (backend === 'iptables') {
          // Someone else's chain with rules, a rule in INPUT and in another table, and an ipset.
          await nsExec(lab.server, 'ipset', ['create', 'foreign-set', 'hash:ip', 'timeout', '0']);
          await nsExec(lab.server, 'ipset', ['add', 'foreign-set', '192.0.2.77', 'timeout', '0']);
          for (const ipt of ['iptables', 'ip6tables']) {
            await nsExec(lab.server, ipt, ['-w', '-N', 'FOREIGN']);
            await nsExec(lab.server, ipt, [
              '-w',
              '-A',
              'FOREIGN',
              '-p',
              'tcp',
              '--dport',
              '9',
              '-j',
              'REJECT',
            ]);
            await nsExec(lab.server, ipt, ['-w', '-A', 'FOREIGN', '-p', 'udp', '--dport', '9', '-j', 'DROP']);
            await nsExec(lab.server, ipt, [
              '-w',
              '-A',
              'INPUT',
              '-p',
              'tcp',
              '--dport',
              '9',
              '-j',
              'FOREIGN',
            ]);
            await nsExec(lab.server, ipt, [
              '-w',
              '-t',
              'nat',
              '-A',
              'PREROUTING',
              '-p',
              'tcp',
              '--dport',
              '9',
              '-j',
              'RETURN',
            ]);
          }
          await nsExec(lab.server, 'iptables', [
            '-w',
            '-A',
            'FOREIGN',
            '-m',
            'set',
            '--match-set',
            'foreign-set',
            'src',
            '-j',
            'DROP',
          ]);
          foreignBefore = await foreignIptables();
        }
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
        // A path of this run only: a shell that ran the injected `touch` would create it.
        const marker = join(tmpdir(), `sock-fw-injected-${randomBytes(6).toString('hex')}`);
        for (const bad of [
          `1.2.3.4; touch ${marker}`,
          '{ 1.2.3.4 }; flush ruleset',
          `fe80::1%x; touch ${marker}`,
          '\u0661\u0662\u0663.1.1.1',
        ]) {
          const err = await fw.banMany([{ target: lab.clientA4 }, { target: bad }]).catch((e: unknown) => e);
          expect(FirewallError.isInstance(err) && err.code).toBe('ERR_SOCK_FW_INVALID_ADDRESS');
        }
        expect(await fw.list()).toEqual(before);
        expect(await reach(lab.clientA4)).toBe('ok');
        await expect(stat(marker)).rejects.toThrow();
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

      it('creates a missing state directory (0700) on the first ban, and the ban is in both', async () => {
        const stateDir = join(dir, 'fresh', 'sock');
        const f = make({ stateFile: join(stateDir, 'firewall.json') });
        const result = await f.ban(lab.clientB4, { ttl: '5m', reason: 'fresh machine' });
        expect(result.applied).toBe(true);
        expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
        const saved = JSON.parse(await readFile(join(stateDir, 'firewall.json'), 'utf8'));
        expect(saved.bans.map((b: { target: string }) => b.target)).toEqual([lab.clientB4]);
        expect(await reach(lab.clientB4)).toBe('timeout');
        await f.unban(lab.clientB4);
        expect(await reach(lab.clientB4)).toBe('ok');
      });

      it('a state write that fails after the kernel change rolls the kernel back', async () => {
        const roDir = join(dir, 'readonly');
        await mkdir(roDir, { recursive: true });
        const fixture = fileURLToPath(new URL('./fixtures/readonly-state.mjs', import.meta.url));
        const { stdout } = await promisify(execFile)(
          '/usr/bin/unshare',
          [
            '--mount',
            '--propagation',
            'private',
            process.execPath,
            fixture,
            backend,
            lab.server,
            'sockfwt',
            roDir,
            lab.clientA4,
          ],
          { cwd: fileURLToPath(new URL('..', import.meta.url)) },
        );
        const outcome = JSON.parse(stdout.trim()) as { code: string; rolledBack?: boolean; message: string };
        expect(outcome).toMatchObject({ code: 'ERR_SOCK_FW_STATE_FILE', rolledBack: true });
        expect(outcome.message).toMatch(/rolled back/);
        // The kernel holds no ban of clientA4: the change was undone, as the (unwritten) state says.
        expect((await fw.list()).map((b) => b.target)).not.toContain(lab.clientA4);
        expect(await reach(lab.clientA4)).toBe('ok');
      });

      it('unbannable addresses are refused up front and the rest of a bridged batch is applied', async () => {
        const errors: string[] = [];
        const bridge = createBanBridge(fw, { windowMs: 10_000, onError: (e) => errors.push(e.code) });
        for (const key of ['0.0.0.0', lab.clientA4, '::', '224.0.0.1', 'ff02::1', '255.255.255.255']) {
          bridge.onBan({ key, durationMs: 60_000, reason: 'bridge batch' });
        }
        await bridge.flush();
        expect(bridge.stats()).toMatchObject({ applied: 1, rejected: 5, failed: 0, batches: 1, pending: 0 });
        expect(errors).toEqual(Array(5).fill('ERR_SOCK_FW_UNBANNABLE'));
        expect(await reach(lab.clientA4)).toBe('timeout');
        for (const t of ['0.0.0.0', '::']) {
          const err = await fw.ban(t).catch((e: unknown) => e);
          expect(FirewallError.isInstance(err) && err.code).toBe('ERR_SOCK_FW_UNBANNABLE');
        }
        await fw.unban(lab.clientA4);
        expect(await reach(lab.clientA4)).toBe('ok');
      });

      if (backend === 'iptables') {
        it('allowPort opens the port on a host whose INPUT drops by default (our chain jumped to first)', async () => {
          const ipt = (args: string[]) => nsExec(lab.server, 'iptables', ['-w', ...args]);
          // The host's own firewall: policy DROP, and a rule of its own in front of ours.
          await ipt(['-I', 'INPUT', '1', '-p', 'tcp', '--dport', String(port), '-j', 'DROP']);
          await ipt(['-P', 'INPUT', 'DROP']);
          try {
            expect(await reach(lab.clientA4)).toBe('timeout');
            const f = make();
            await f.init(); // our jump goes back to the top of INPUT
            expect((await ipt(['-S', 'INPUT'])).split('\n')[1]).toBe('-A INPUT -j sockfwt');
            await f.allowPort(port, 'tcp');
            expect(await reach(lab.clientA4)).toBe('ok');
            // A ban still beats the allow.
            await f.ban(lab.clientB4, { ttl: '1m' });
            expect(await reach(lab.clientB4)).toBe('timeout');
            await f.unban(lab.clientB4);
            await f.removePortRule(port, 'tcp');
            expect(await reach(lab.clientA4)).toBe('timeout');
            fw = f;
          } finally {
            await ipt(['-P', 'INPUT', 'ACCEPT']);
            await ipt(['-D', 'INPUT', '-p', 'tcp', '--dport', String(port), '-j', 'DROP']);
          }
          expect(await reach(lab.clientA4)).toBe('ok');
        });
      } else {
        it("allowPort names another table's dropping input chain instead of reporting success", async () => {
          const nft = (args: string[]) => nsExec(lab.server, 'nft', args);
          await nft(['add', 'table', 'inet', 'hostfw']);
          await nft([
            'add',
            'chain',
            'inet',
            'hostfw',
            'input',
            '{ type filter hook input priority 0; policy drop; }',
          ]);
          try {
            expect(await reach(lab.clientA4)).toBe('timeout');
            const err = await fw.allowPort(port, 'tcp').catch((e: unknown) => e);
            expect(FirewallError.isInstance(err) && err.code).toBe('ERR_SOCK_FW_ALLOW_SHADOWED');
            expect((err as Error).message).toContain('table inet hostfw chain input');
            expect((err as FirewallError).details.chains).toEqual([
              { family: 'inet', table: 'hostfw', chain: 'input', hook: 'input', priority: 0 },
            ]);
            // Nothing was applied; with onShadowed: 'apply' the rule goes in, and the warning comes back.
            const applied = await fw.allowPort(port, 'tcp', { onShadowed: 'apply' });
            expect(applied.warnings?.map((w) => w.code)).toEqual(['ERR_SOCK_FW_ALLOW_SHADOWED']);
            expect(await reach(lab.clientA4)).toBe('timeout');
            await fw.removePortRule(port, 'tcp');
          } finally {
            await nft(['delete', 'table', 'inet', 'hostfw']);
          }
          expect(await reach(lab.clientA4)).toBe('ok');
          expect(await fw.allowPort(port, 'tcp')).toMatchObject({ applied: true });
          await fw.removePortRule(port, 'tcp');
        });
      }

      it('other tables are untouched', async () => {
        expect(await nsExec(lab.server, 'nft', ['list', 'table', 'inet', otherTable])).toBe(otherBefore);
        // iptables: someone else's chains, rules (INPUT's included, in order), nat table and ipset, byte for byte.
        if (backend === 'iptables') expect(await foreignIptables()).toBe(foreignBefore);
      });
    },
  );
}
