import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';

const serve = fileURLToPath(new URL('../dist/serve.js', import.meta.url));
const sock = fileURLToPath(new URL('../../cli/dist/index.js', import.meta.url));
let child: ChildProcess | undefined;
let state: string | undefined;

afterEach(() => {
  child?.kill('SIGKILL');
  if (state) rmSync(state, { recursive: true, force: true });
});

it('pnpm demo:serve prints a sock connect line that works for a certified user', async () => {
  state = mkdtempSync(join(tmpdir(), 'sock-demo-'));
  child = spawn(process.execPath, [serve], {
    env: {
      ...process.env,
      SOCK_DEMO_STATE: state,
      PORT: '0',
      EDGE_PORT: '0',
      UDP_PORT: '0',
      METRICS_PORT: '0',
      STATUS_PORT: '0',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connect line: ${err}`)), 20_000);
    child!.stderr!.on('data', (d: Buffer) => {
      err += d;
      const m = /pnpm sock (connect localhost \d+ .*alice\.key)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  const args = line.split(' ');
  const input = '{"type":"hello","name":"x"}\n';
  const result = await new Promise<{ stdout: string; code: number | null }>((resolve) => {
    const c = execFile(process.execPath, [sock, ...args], (error, stdout) =>
      resolve({ stdout, code: error ? ((error as { code?: number }).code ?? 1) : 0 }),
    );
    c.stdin!.end(input);
  });
  expect(JSON.parse(result.stdout.split('\n')[0]!)).toMatchObject({ type: 'welcome', name: 'alice' });
  expect(result.code).toBe(0);
  // The live status page's data: alice's connection on the direct listener, beside the edge and UDP ones.
  const statusUrl = /live status page: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(err)?.[1];
  expect(statusUrl).toBeDefined();
  const report = (await (await fetch(`${statusUrl}status.json`)).json()) as {
    listeners: Array<{ listener: string; opened: number }>;
  };
  expect(report.listeners.map((l) => l.listener).sort()).toEqual(['direct', 'edge', 'udp']);
  expect(report.listeners.find((l) => l.listener === 'direct')?.opened).toBe(1);
  child.kill('SIGTERM');
  const code = await new Promise((r) => child!.on('close', r));
  expect(code).toBe(0);
}, 60_000);
