import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { u32 } from '../../../test-support/bytes.js';
import { isAlive as alive } from '../../../test-support/processes.js';
import { readmeExample } from '../../../test-support/readme-example.js';

// The README's "Across cores" recipe is examples/cluster-server.mjs, run here as a user would run it:
// real node:cluster workers, real sockets, signals.
const example = fileURLToPath(new URL('../examples/cluster-server.mjs', import.meta.url));
const readme = new URL('../README.md', import.meta.url);

let child: ChildProcess | undefined;
let out = '';
let err = '';
afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function start(): Promise<number> {
  out = '';
  err = '';
  const c = spawn(process.execPath, [example], {
    env: { ...process.env, PORT: '0', WORKERS: '2' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = c;
  c.stderr!.on('data', (d: Buffer) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    c.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    c.on('exit', (code) => reject(new Error(`example exited ${code}: ${err}`)));
  });
}

const workerPids = () => [...out.matchAll(/worker (\d+) listening/g)].map((m) => Number(m[1]));
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\nstdout: ${out}\nstderr: ${err}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A connection that sends one frame: 'echo' (and stays open) or 'closed'. */
function attempt(port: number): Promise<'echo' | 'closed'> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    const frame = u32('hi');
    let got = 0;
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= frame.length) resolve('echo');
    });
    s.on('close', () => resolve('closed'));
    s.on('error', () => {});
    s.write(frame);
  });
}

describe('README: across cores with node:cluster (examples/cluster-server.mjs)', () => {
  it('the README shows the example program as it is', () => {
    expect(readmeExample(readme, 'guards-cluster')).toBe(readFileSync(example, 'utf8'));
  });

  it('20 connections per IP across 2 workers: exactly 20 of 24 served; a killed worker is replaced; SIGTERM stops all', async () => {
    const port = await start();
    const outcomes: string[] = [];
    for (let i = 0; i < 24; i++) outcomes.push(await attempt(port));
    expect(outcomes.slice(0, 20).every((o) => o === 'echo')).toBe(true);
    expect(outcomes.slice(20)).toEqual(['closed', 'closed', 'closed', 'closed']);

    const [first] = workerPids();
    process.kill(first!, 'SIGKILL');
    await until(() => workerPids().length === 3, 30_000, 'a replacement worker');
    expect(err).toMatch(/died \(SIGKILL\); restarting in 100 ms/);
    // The dead worker's connections were released in the primary: there is room again.
    expect(await attempt(port)).toBe('echo');

    const exited = new Promise((r) => child!.on('exit', (code, signal) => r({ code, signal })));
    child!.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    for (const pid of workerPids()) await until(() => !alive(pid), 5000, `worker ${pid} gone`);
  }, 60_000);
});
