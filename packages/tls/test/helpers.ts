import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import {
  createServer,
  type RejectEvent,
  type ServerOptions,
  type SockEvent,
  type SockServer,
} from '@sock/core';

export interface Started {
  server: SockServer<Buffer, Uint8Array>;
  port: number;
  events: SockEvent[];
  rejects: () => RejectEvent[];
  /** Wait until a reject event with `reason` arrives (or fail after `ms`). */
  waitReject: (reason?: string, ms?: number) => Promise<RejectEvent>;
}

/** A core server (echo handler by default) on 127.0.0.1:0 that records every observer event. */
export async function start(options: Partial<ServerOptions<Buffer, Uint8Array>>): Promise<Started> {
  const events: SockEvent[] = [];
  const waiters: Array<() => void> = [];
  const server = createServer<Buffer, Uint8Array>({
    async handler(conn) {
      for await (const m of conn) await conn.send(m);
    },
    ...options,
    observers: [
      (e) => {
        events.push(e);
        for (const w of waiters.splice(0)) w();
      },
      ...(options.observers ?? []),
    ],
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  const rejects = () => events.filter((e): e is RejectEvent => e.type === 'reject');
  const waitReject = async (reason?: string, ms = 5000): Promise<RejectEvent> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = rejects().find((e) => reason === undefined || e.reason === reason);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `no reject ${reason ?? ''} within ${ms} ms; got ${
            rejects()
              .map((e) => e.reason)
              .join(', ') || 'none'
          }`,
        );
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  return { server, port, events, rejects, waitReject };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run a command with argv (never a shell); its stdin is closed after `holdMs` (so a refusal that follows
 * the handshake, as TLS 1.3 client auth does, is still seen); killed after `timeoutMs`.
 */
export async function run(
  cmd: string,
  args: readonly string[],
  holdMs = 0,
  timeoutMs = 10_000,
): Promise<RunResult> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  child.stdin.on('error', () => {});
  const hold = setTimeout(() => child.stdin.end(), holdMs);
  const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stdout, stderr };
  } finally {
    clearTimeout(hold);
    clearTimeout(kill);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

export interface SClientResult extends RunResult {
  connected: boolean;
  protocol?: string;
  cipher?: string;
}

/** `openssl s_client -connect 127.0.0.1:port …`, bounded in time. */
export async function sClient(port: number, args: readonly string[], holdMs = 300): Promise<SClientResult> {
  const result = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], holdMs);
  const protocol = /Protocol\s*:\s*(\S+)/.exec(result.stdout)?.[1];
  const cipher = /Cipher is (\S+)/.exec(result.stdout)?.[1];
  return {
    ...result,
    connected: cipher !== undefined && cipher !== '(NONE)',
    ...(protocol ? { protocol } : {}),
    ...(cipher ? { cipher } : {}),
  };
}

export async function rawTcp(port: number): Promise<Socket> {
  const socket = netConnect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  return socket;
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface LiveSClient {
  /** Resolves with everything printed so far once stdout+stderr match `pattern` (fails after `ms`). */
  waitFor(pattern: RegExp, ms?: number): Promise<string>;
  /** Type one line (s_client reads commands such as `R` line by line). */
  line(text: string): void;
  /** Resolves with the exit code when s_client ends; killed after `ms`. */
  exited(ms?: number): Promise<number | null>;
  output(): string;
  kill(): void;
}

/** An `openssl s_client` kept open, to drive it line by line (`R` renegotiates). Kill it in cleanup. */
export function liveSClient(port: number, args: readonly string[]): LiveSClient {
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (c: Buffer) => {
    out += c.toString();
    for (const l of listeners) l();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  child.stdin.on('error', () => {});
  const closed = once(child, 'close').then(([code]) => code as number | null);
  return {
    waitFor(pattern, ms = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(out)) return;
          done();
          resolve(out);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`s_client never printed ${pattern} within ${ms} ms; got:\n${out}`));
        }, ms);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    line(text) {
      child.stdin.write(`${text}\n`);
    },
    async exited(ms = 5000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      try {
        return await closed;
      } finally {
        clearTimeout(timer);
      }
    },
    output: () => out,
    kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
