import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect as netConnect } from 'node:net';

/** Where redis-server is, or undefined (tests then skip with a reason; under CI=true that is a failure). */
const REDIS_SERVER: string | undefined = (() => {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    try {
      execFileSync(p, ['--version'], { stdio: 'ignore' });
      return p;
    } catch {}
  }
  try {
    return execFileSync('which', ['redis-server'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
})();

export const SKIP_REDIS =
  REDIS_SERVER === undefined && process.env.CI !== 'true' ? 'redis-server is not installed' : false;

if (REDIS_SERVER === undefined && process.env.CI === 'true')
  throw new Error('CI=true and redis-server is not installed: the Redis store tests cannot run');

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, 'close');
  return port;
}

/** A real redis-server on loopback, no persistence; `stop()` kills it, `start()` starts it again on the same port. */
export interface RedisServer {
  readonly port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** One command through a raw connection (RESP), answering the raw reply text. */
  command(...args: string[]): Promise<string>;
}

export async function startRedis(extra: string[] = []): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    port,
    async start() {
      const c = spawn(
        REDIS_SERVER!,
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra],
        { stdio: 'ignore' },
      );
      child = c;
      const end = Date.now() + 5000;
      for (;;) {
        try {
          if ((await server.command('PING')).startsWith('+PONG')) return;
        } catch {}
        if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode}`);
        if (Date.now() > end) throw new Error('redis-server did not start in 5 s');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = once(c, 'exit');
      c.kill('SIGKILL');
      await exited;
    },
    command(...args: string[]) {
      return new Promise<string>((resolve, reject) => {
        const s = netConnect({ port, host: '127.0.0.1' });
        let text = '';
        const timer = setTimeout(() => {
          s.destroy();
          reject(new Error('redis command timed out'));
        }, 2000);
        s.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        s.on('data', (d) => {
          text += d.toString();
          // Good enough for the replies tests read: one line, or a bulk/array that ends in CRLF.
          if (text.endsWith('\r\n') && complete(text)) {
            clearTimeout(timer);
            s.end();
            resolve(text);
          }
        });
        s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
      });
    },
  };
  await server.start();
  return server;
}

/** Whether a RESP reply is complete (enough for the replies the tests read). */
function complete(text: string): boolean {
  let i = 0;
  const line = () => {
    const end = text.indexOf('\r\n', i);
    if (end < 0) return undefined;
    const l = text.slice(i, end);
    i = end + 2;
    return l;
  };
  const value = (): boolean => {
    const l = line();
    if (l === undefined) return false;
    const t = l[0];
    if (t === '+' || t === '-' || t === ':') return true;
    const n = Number(l.slice(1));
    if (t === '$') {
      if (n < 0) return true;
      if (text.length < i + n + 2) return false;
      i += n + 2;
      return true;
    }
    if (t === '*') {
      for (let k = 0; k < n; k++) if (!value()) return false;
      return true;
    }
    return true;
  };
  return value() && i === text.length;
}
