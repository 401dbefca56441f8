import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

/** The built CLI: tests run it as a child process, exactly as a user would. */
export const SOCK = fileURLToPath(new URL('../dist/index.js', import.meta.url));

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

afterEach(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
});

/** A temporary directory removed after the test (or, with `suite`, by the caller's afterAll). */
export function tempDir(options: { suite?: boolean } = {}): string {
  const d = mkdtempSync(join(tmpdir(), 'sock-cli-'));
  if (!options.suite) dirs.add(d);
  return d;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function built(): boolean {
  return existsSync(SOCK);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const ENV = { ...process.env, NO_COLOR: '1', NODE_NO_WARNINGS: '1' };

/** Run `sock <args>` to completion, feeding `input` on stdin; killed after `timeoutMs`. */
export function run(
  args: string[],
  options: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SOCK, ...args], {
      env: { ...ENV, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `sock ${args.join(' ')} did not finish within ${options.timeoutMs ?? 10_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, options.timeoutMs ?? 10_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

export interface Listener {
  child: ChildProcess;
  line: string;
  host: string;
  port: number;
  stderr(): string;
  stdout(): string;
  /** SIGTERM (or another signal) and wait for the exit status. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start `sock listen <args>` and wait for its ready line. */
export function listen(
  args: string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SOCK, 'listen', ...args], {
      env: { ...ENV, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let out = '';
    let err = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.on('close', (code, signal) => r({ code, signal })),
    );
    const timer = setTimeout(
      () =>
        reject(
          new Error(`no ready line within ${options.timeoutMs ?? 10_000} ms\nstdout: ${out}\nstderr: ${err}`),
        ),
      options.timeoutMs ?? 10_000,
    );
    let ready = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      if (ready) return;
      const first = out.split('\n')[0]!;
      if (!out.includes('\n')) return;
      ready = true;
      clearTimeout(timer);
      let host = '';
      let port = 0;
      if (first.startsWith('{')) {
        const j = JSON.parse(first) as { address: string; port: number };
        host = j.address;
        port = j.port;
      } else {
        const m = /^listening on \[?([^\]]+?)\]?:(\d+) \(/.exec(first);
        if (!m) {
          reject(new Error(`unexpected ready line: ${first}`));
          return;
        }
        host = m[1]!;
        port = Number(m[2]);
      }
      resolve({
        child,
        line: first,
        host,
        port,
        stderr: () => err,
        stdout: () => out,
        stop: (signal = 'SIGTERM') => {
          child.kill(signal);
          return exited;
        },
      });
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (!ready)
        reject(new Error(`sock listen exited with ${code} before ready\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}

/** Poll until `check` is true (bounded). */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

import { connect as netConnect, type Socket } from 'node:net';

export interface Peer {
  socket: Socket;
  received(): string;
  /** Resolves with ms from connect to close. */
  closed: Promise<number>;
  isClosed(): boolean;
}

/** A raw TCP client (optionally from another loopback source address) that records what it gets. */
export function peer(port: number, options: { localAddress?: string; host?: string } = {}): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({
      port,
      host: options.host ?? '127.0.0.1',
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    let data = '';
    let closedFlag = false;
    const t0 = Date.now();
    socket.on('data', (d: Buffer) => {
      data += d;
    });
    socket.on('error', () => {});
    const closed = new Promise<number>((r) =>
      socket.on('close', () => {
        closedFlag = true;
        r(Date.now() - t0);
      }),
    );
    socket.once('connect', () =>
      resolve({ socket, received: () => data, closed, isClosed: () => closedFlag }),
    );
    socket.once('error', reject);
  });
}

/** Does an echo round trip work from this source address? True, or false when the server closed on us. */
export async function echoes(port: number, localAddress?: string): Promise<boolean> {
  const p = await peer(port, localAddress ? { localAddress } : {});
  p.socket.write('ping\n');
  const ok = await Promise.race([
    (async () => {
      await until(() => p.received().includes('ping') || p.isClosed(), 5000, 'echo or close');
      return p.received().includes('ping');
    })(),
  ]);
  p.socket.destroy();
  return ok;
}

/** The JSON log records of a listener started with --log json. */
export function logs(l: Listener): Array<Record<string, unknown>> {
  return l
    .stderr()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

export function rejections(l: Listener): string[] {
  return logs(l)
    .filter((r) => r.msg !== 'banned' && typeof r.reason === 'string' && r.stage !== undefined)
    .map((r) => r.reason as string);
}
