import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';

/** A line client: sends `lines`, waits for the server to close or for `replies` lines back. */
export function exchange(
  port: number,
  payload: string,
  options: { localAddress?: string; replies?: number } = {},
): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s: Socket = connect(
      { port, host: '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) },
      () => s.write(payload),
    );
    s.on('data', (d) => {
      got += d;
      if (options.replies !== undefined && got.split('\n').length > options.replies) s.end();
    });
    s.on('error', () => {});
    s.on('close', () => resolve(got));
  });
}

/** `promtool check metrics` on a scrape; resolves with its exit code and output (empty when clean). */
export function promtool(body: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile('/usr/bin/promtool', ['check', 'metrics'], (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
    child.stdin!.end(body);
  });
}

/** The value of one sample line in a text exposition, or undefined. */
export function sample(body: string, series: string): number | undefined {
  for (const line of body.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
