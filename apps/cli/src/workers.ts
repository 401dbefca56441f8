/**
 * `sock listen --workers N`: the node:cluster primary (forks N workers, holds guards' shared state,
 * prints one ready line, restarts a crashed worker with bounded backoff, stops every worker on
 * SIGTERM/SIGINT) and the worker's side (the cluster store, the ready line sent to the primary).
 * Each worker runs the ordinary `sock listen` with the same flags; the listener is shared by node:cluster.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { createClusterStore, type GuardStore, serveClusterPrimary } from '@sock/guards';
import { UsageError } from './errors.js';
import { createLogger, type LogFormat } from './log.js';
import { parseCount, parseDur } from './parse.js';

/** Most workers: beyond a few per core they only cost memory. */
const MAX_WORKERS = Math.max(4, availableParallelism() * 4);
/** How long a worker's guard decision waits for the primary before deciding alone (guards' fail-open). */
const STORE_TIMEOUT = '500ms';
/** Restart backoff: 100 ms doubled per crash in the window, at most 5 s; more than 5 crashes a minute is fatal. */
const BACKOFF_MS = 100;
const BACKOFF_MAX_MS = 5000;
const CRASH_WINDOW_MS = 60_000;
const MAX_CRASHES = 5;

export interface WorkerFlags {
  workers?: string;
  chat?: boolean;
  udp?: boolean;
  metrics?: string;
  status?: string;
  ssh?: boolean;
  firewall?: string;
  drain?: string;
  log?: string;
  logLevel?: string;
}

/** True in a worker forked by `sock listen --workers`. */
export const isListenWorker = (): boolean => cluster.isWorker && process.env.SOCK_LISTEN_WORKER === '1';

/** The guards store for this process: the cluster store in a worker, none (memory) otherwise. */
export async function workerGuardStore(): Promise<{ store?: GuardStore }> {
  if (!isListenWorker()) return {};
  return { store: (await createClusterStore({ timeout: STORE_TIMEOUT })) as unknown as GuardStore };
}

/** The worker count asked for, checked; combinations a cluster would silently get wrong are refused. */
export function workerCount(flags: WorkerFlags): number | undefined {
  if (flags.workers === undefined) return undefined;
  const n = parseCount(flags.workers, '--workers');
  if (n < 1 || n > MAX_WORKERS)
    throw new UsageError(`--workers must be between 1 and ${MAX_WORKERS}, got ${flags.workers}`);
  const refuse = (flag: string, why: string) => {
    throw new UsageError(`--workers with ${flag} is not supported: ${why}`);
  };
  if (flags.chat) refuse('--chat', 'a chat room would be split between the workers');
  if (flags.udp) refuse('--udp', 'use one process for UDP');
  if (flags.metrics) refuse('--metrics', 'each worker would report only its own counters');
  if (flags.status) refuse('--status', 'each worker would show only its own connections');
  if (flags.ssh) refuse('--ssh', 'run the SSH listener in one process');
  if (flags.firewall) refuse('--firewall', 'every worker would apply the same bans');
  return n;
}

/**
 * Run the primary: fork `count` workers with this process's arguments, print one ready line when all
 * listen, and resolve with the exit status once every worker has stopped.
 */
export async function runPrimary(count: number, flags: WorkerFlags): Promise<number> {
  const shared = await serveClusterPrimary();
  const graceMs = parseDur(flags.drain ?? '5s', '--drain') + 5000;
  const workers = new Set<Worker>();
  const crashes: number[] = [];
  let stopping = false;
  let announced = false;
  let firstLine: string | undefined;
  let readyCount = 0;
  let finish: (status: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });
  let status = 0;

  // listen() has already checked --log; the primary logs in the same format as its workers.
  const log = createLogger(flags.log as LogFormat | undefined, flags.logLevel);

  const fork = () => {
    const w = cluster.fork({ SOCK_LISTEN_WORKER: '1' });
    workers.add(w);
    let ready = false;
    // Workers run silent: their first stdout line is their ready line (the primary prints one for all),
    // anything after it and all of stderr pass through.
    w.process.stderr?.pipe(process.stderr, { end: false });
    const lines = createInterface({ input: w.process.stdout! });
    lines.on('line', (line) => {
      if (ready) {
        process.stdout.write(`${line}\n`);
        return;
      }
      ready = true;
      readyCount++;
      firstLine ??= line;
      if (!announced && readyCount === count) {
        announced = true;
        process.stdout.write(`${withWorkers(firstLine, count)}\n`);
      }
      log.info({ worker: w.process.pid }, 'worker listening');
    });
    w.on('exit', (code, signal) => {
      workers.delete(w);
      if (ready) readyCount--;
      if (stopping) {
        if (workers.size === 0) finish(status);
        return;
      }
      // A worker that stops before it ever listened (bad flags, port in use) would fail the same way
      // again: stop with its status instead of restarting it.
      if (!ready && !announced) {
        status = code && code > 0 ? code : 1;
        stop(undefined);
        if (workers.size === 0) finish(status);
        return;
      }
      const now = Date.now();
      crashes.push(now);
      while (crashes.length > 0 && crashes[0]! < now - CRASH_WINDOW_MS) crashes.shift();
      if (crashes.length > MAX_CRASHES) {
        log.error(
          { crashes: crashes.length },
          `workers crashed ${crashes.length} times within a minute; stopping`,
        );
        status = 1;
        stop(undefined);
        if (workers.size === 0) finish(status);
        return;
      }
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MS * 2 ** (crashes.length - 1));
      log.warn(
        { worker: w.process.pid, code, signal, delayMs: delay, crashes: crashes.length },
        `worker exited (${signal ?? `code ${code}`}); restarting in ${delay} ms`,
      );
      setTimeout(() => {
        if (!stopping) fork();
      }, delay).unref();
    });
  };

  /** SIGTERM to every worker (each drains as a single `sock listen` does); SIGKILL after a grace. */
  const stop = (signal: NodeJS.Signals | undefined) => {
    if (stopping) return;
    stopping = true;
    if (signal) log.info({ signal, workers: workers.size }, 'stopping workers');
    for (const w of workers) w.process.kill('SIGTERM');
    setTimeout(() => {
      for (const w of workers) w.process.kill('SIGKILL');
    }, graceMs).unref();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));

  cluster.setupPrimary({ silent: true });
  for (let i = 0; i < count; i++) fork();
  const result = await done;
  shared.close();
  return result;
}

/** The first worker's ready line with the worker count added (JSON field or text item). */
function withWorkers(line: string, count: number): string {
  if (line.startsWith('{')) return JSON.stringify({ ...JSON.parse(line), workers: count });
  return line.endsWith(')') ? `${line.slice(0, -1)}, workers ${count})` : `${line} (workers ${count})`;
}
