import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { built, run, SOCK } from './helpers.js';

interface Finding {
  id: string;
  status: 'ok' | 'info' | 'warn' | 'fail';
  value: string;
  reason: string;
  fix?: string;
}

const root = process.getuid?.() === 0;
// In CI a missing prerequisite is a failure, elsewhere a skip.
if (process.env.CI === 'true' && !root) throw new Error('sock doctor tests need root (ip netns) in CI');

const ns = `sockdoc${randomBytes(4).toString('hex')}`;

function inNs(args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });
}

/** `sock doctor <args>` inside the namespace, with an open-file limit of 512. */
function doctor(
  args: string[],
): Promise<{ code: number | null; json: { ok: boolean; findings: Finding[] } }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'prlimit',
        '--nofile=512:512',
        process.execPath,
        SOCK,
        'doctor',
        '--json',
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ code, json: JSON.parse(out) as { ok: boolean; findings: Finding[] } });
      } catch {
        reject(new Error(`sock doctor printed no JSON (exit ${code}): ${out}\n${err}`));
      }
    });
  });
}

const byId = (findings: Finding[], id: string) => {
  const f = findings.find((x) => x.id === id);
  expect(f, id).toBeDefined();
  return f!;
};

describe.skipIf(!root)('sock doctor in a network namespace with poor settings', () => {
  beforeAll(() => {
    expect(built(), 'build the CLI first: pnpm build').toBe(true);
    execFileSync('ip', ['netns', 'add', ns]);
    // Per-namespace sysctls: these change only the namespace the test created.
    inNs(['sysctl', '-q', '-w', 'net.core.somaxconn=64']);
    inNs(['sysctl', '-q', '-w', 'net.ipv4.tcp_max_syn_backlog=32']);
    inNs(['sysctl', '-q', '-w', 'net.ipv4.tcp_syncookies=0']);
    inNs(['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=7000 7100']);
  });
  afterAll(() => {
    execFileSync('ip', ['netns', 'del', ns]);
  });

  it('finds each poor value, says why and gives the fix; the listen line does not fit', async () => {
    const { code, json } = await doctor(['--', 'sock', 'listen', '0.0.0.0', '7050', '--max-conns', '5000']);
    expect(code).toBe(1);
    expect(json.ok).toBe(false);
    expect(byId(json.findings, 'somaxconn')).toMatchObject({
      status: 'warn',
      value: '64',
      fix: 'sysctl -w net.core.somaxconn=4096',
    });
    expect(byId(json.findings, 'somaxconn').reason).toContain('at most 64');
    expect(byId(json.findings, 'tcp_max_syn_backlog')).toMatchObject({ status: 'warn', value: '32' });
    expect(byId(json.findings, 'tcp_syncookies')).toMatchObject({
      status: 'warn',
      fix: 'sysctl -w net.ipv4.tcp_syncookies=1',
    });
    expect(byId(json.findings, 'ip_local_port_range')).toMatchObject({ status: 'warn', value: '7000-7100' });
    expect(byId(json.findings, 'listen-port-ephemeral')).toMatchObject({ status: 'warn', value: '7050' });
    expect(byId(json.findings, 'nofile-shell')).toMatchObject({ status: 'warn', value: '512 (hard 512)' });
    const fit = byId(json.findings, 'listen-nofile');
    expect(fit.status).toBe('fail');
    expect(fit.reason).toContain('--max-conns 5000');
    for (const f of json.findings) {
      expect(f.reason.length, f.id).toBeGreaterThan(0);
      if (f.status === 'warn' || f.status === 'fail') expect(f.fix, f.id).toBeTruthy();
    }
  });

  it('the default --max-conns (100) fits 512 files; the printed fixes, applied, clear the findings', async () => {
    const before = await doctor(['--', 'sock', 'listen', '7200']);
    expect(byId(before.json.findings, 'listen-nofile').status).toBe('ok');
    expect(before.code).toBe(0);
    for (const id of ['somaxconn', 'tcp_max_syn_backlog', 'tcp_syncookies', 'ip_local_port_range']) {
      const fix = byId(before.json.findings, id).fix!;
      const m = /^sysctl -w ([\w.]+)=(?:"([^"]+)"|(\S+))$/.exec(fix);
      expect(m, fix).not.toBeNull();
      inNs(['sysctl', '-q', '-w', `${m![1]}=${m![2] ?? m![3]}`]);
    }
    const after = await doctor([]);
    for (const id of ['somaxconn', 'tcp_max_syn_backlog', 'tcp_syncookies', 'ip_local_port_range'])
      expect(byId(after.json.findings, id).status, id).toBe('ok');
    expect(after.code).toBe(0);
  });

  it('a --firewall the namespace can apply passes; nft and iptables are reported', async () => {
    const { json } = await doctor(['--', 'sock', 'listen', '7200', '--ban-after', '3', '--firewall', 'nft']);
    expect(byId(json.findings, 'nft').status).toBe('ok');
    expect(byId(json.findings, 'listen-firewall')).toMatchObject({ status: 'ok', value: 'nft' });
  });
});

describe('sock doctor usage', () => {
  it('prints a table with the fixes, and refuses a line that is not sock listen', async () => {
    const r = await run(['doctor']);
    expect(r.stdout).toMatch(/^status\s+check\s+value\s+why/);
    expect(r.code).toBe(0);
    const bad = await run(['doctor', '--', 'sock', 'connect', 'x', '1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('give a sock listen command line');
    const unit = await run(['doctor', '--unit', 'a b;c', '--json']);
    expect(unit.code).toBe(2);
  });
});
