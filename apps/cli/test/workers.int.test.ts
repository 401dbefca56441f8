import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isAlive as alive } from '../../../test-support/processes.js';
import { type Listener, listen, logs, run, until } from './helpers.js';

/** One connection that sends a line and reports whether it was echoed or closed; left open if echoed. */
function attempt(port: number): Promise<'echo' | 'closed'> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d;
      if (got.includes('\n')) resolve('echo');
    });
    s.on('close', () => resolve('closed'));
    s.on('error', () => {});
    s.write('hi\n');
  });
}

/** Pids of the workers that logged 'worker listening' (in the primary's log), in order. */
const listening = (server: Listener) =>
  logs(server)
    .filter((r) => r.msg === 'worker listening')
    .map((r) => r.worker as number);

// Every worker is a full `sock` process: allow for a slow start on a loaded machine.
const START = { timeoutMs: 30_000 };

describe('sock listen --workers', () => {
  it('a per-IP connection limit of N holds across 2 workers: exactly N of N+4 are served', async () => {
    const server = await listen(['0', '--workers', '2', '--max-conns-per-ip', '3', '--log', 'json'], START);
    expect(server.line).toContain('workers 2)');
    const outcomes: string[] = [];
    // One at a time, so the count is deterministic; node:cluster hands them round-robin to the workers.
    for (let i = 0; i < 7; i++) outcomes.push(await attempt(server.port));
    expect(outcomes.filter((o) => o === 'echo')).toHaveLength(3);
    expect(outcomes.slice(3)).toEqual(['closed', 'closed', 'closed', 'closed']);
    await until(
      () => logs(server).filter((r) => r.reason === 'conn-limit-ip').length === 4,
      5000,
      'four refusals',
    );
    // Both workers refused someone: the limit was shared, not merely reached in one process.
    const refusers = new Set(
      logs(server)
        .filter((r) => r.reason === 'conn-limit-ip')
        .map((r) => r.pid),
    );
    expect(refusers.size).toBe(2);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('SIGTERM (and SIGINT) stop every worker and the primary exits 0', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const server = await listen(['0', '--workers', '2', '--log', 'json'], START);
      await until(() => listening(server).length === 2, 5000, 'two workers');
      const pids = listening(server);
      expect(await attempt(server.port)).toBe('echo');
      expect(await server.stop(signal)).toEqual({ code: 0, signal: null });
      await until(() => pids.every((p) => !alive(p)), 5000, 'workers gone');
    }
  }, 90_000);

  it('a crashed worker is restarted with doubling backoff; crashing more than 5 times a minute stops all', async () => {
    const server = await listen(['0', '--workers', '2', '--log', 'json'], START);
    await until(() => listening(server).length === 2, 5000, 'two workers');
    const exited = new Promise<number | null>((r) => server.child.on('close', (code) => r(code)));
    for (let crash = 1; crash <= 6; crash++) {
      const victim = listening(server).at(-1)!;
      process.kill(victim, 'SIGKILL');
      if (crash === 6) break;
      await until(() => listening(server).length === 2 + crash, 30_000, `restart ${crash}`);
      expect(await attempt(server.port)).toBe('echo');
    }
    expect(await exited).toBe(1);
    const restarts = logs(server).filter((r) => typeof r.delayMs === 'number');
    expect(restarts.map((r) => r.delayMs)).toEqual([100, 200, 400, 800, 1600]);
    expect(server.stderr()).toContain('workers crashed 6 times within a minute; stopping');
    for (const pid of listening(server)) await until(() => !alive(pid), 5000, 'workers gone');
  }, 120_000);

  it('refuses a bad worker count and combinations a cluster would get wrong', async () => {
    for (const args of [
      ['--workers', '0'],
      ['--workers', 'two'],
      ['--workers', '2', '--chat'],
      ['--workers', '2', '--udp'],
      ['--workers', '2', '--status', '127.0.0.1:0'],
    ]) {
      const r = await run(['listen', '0', ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^sock: --workers/);
    }
  });
});
