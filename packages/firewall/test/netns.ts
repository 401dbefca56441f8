import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { hasBinary } from '../src/runner.js';

const run = promisify(execFile);
const IP = '/usr/sbin/ip';

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelSkipReason(
  tools: ('nft' | 'iptables' | 'ipset' | 'iptables-restore')[],
): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and firewall changes)';
  for (const t of ['ip', ...tools] as const)
    if (!hasBinary(t)) return `needs ${t} (apt-get install -y nftables iptables ipset iproute2)`;
  return undefined;
}

/** Execute a command inside a namespace (argv, no shell). */
export async function nsExec(ns: string, file: string, args: string[]): Promise<string> {
  const { stdout } = await run(IP, ['netns', 'exec', ns, file, ...args], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  return stdout;
}

const SERVER = `
const net = require('node:net');
const s = net.createServer((c) => { c.on('error', () => {}); c.end('hi'); });
s.listen({ host: '::', port: 0, ipv6Only: false }, () => { process.stdout.write(JSON.stringify({ port: s.address().port }) + '\\n'); });
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
`;

const PROBE = `
const net = require('node:net');
const [host, port, localAddress, ms] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), localAddress });
const t = setTimeout(() => { process.stdout.write('timeout'); process.exit(0); }, Number(ms));
s.on('data', () => { clearTimeout(t); process.stdout.write('ok'); process.exit(0); });
s.on('error', (e) => { clearTimeout(t); process.stdout.write(e.code || 'error'); process.exit(0); });
`;

/**
 * Two namespaces joined by a veth pair: `server` (one address per family) and `client` (two
 * addresses per family, A and B). All names are unique per run; `close()` deletes everything.
 */
export interface Lab {
  server: string;
  client: string;
  serverV4: string;
  serverV6: string;
  clientA4: string;
  clientB4: string;
  clientA6: string;
  clientB6: string;
  /** A third namespace routed through the server namespace: its traffic crosses the forward hook. */
  inner: string;
  innerV4: string;
  /** A TCP server inside the server namespace (or `inner`); returns its port. */
  listen(ns?: string): Promise<number>;
  /** Try to connect from `localAddress` (client namespace) to host:port: 'ok', 'timeout' or an error code. */
  probe(host: string, port: number, localAddress: string, ms?: number): Promise<string>;
  close(): Promise<void>;
}

export async function createLab(): Promise<Lab> {
  const id = randomBytes(3).toString('hex');
  const octet = randomBytes(1)[0]!;
  const server = `sfw-s-${id}`;
  const client = `sfw-c-${id}`;
  const inner = `sfw-i-${id}`;
  const vs = `sfs${id}`;
  const vc = `sfc${id}`;
  const vr = `sfr${id}`;
  const vi = `sfi${id}`;
  const innerNet = `198.19.${octet}`;
  const net4 = `198.18.${octet}`;
  const net6 = `fd5f:${id.slice(0, 4)}:${octet.toString(16)}::`;
  const children = new Set<ChildProcess>();
  const lab: Lab = {
    server,
    client,
    serverV4: `${net4}.1`,
    serverV6: `${net6}1`,
    clientA4: `${net4}.2`,
    clientB4: `${net4}.3`,
    clientA6: `${net6}2`,
    clientB6: `${net6}3`,
    inner,
    innerV4: `${innerNet}.2`,
    async listen(ns = server) {
      const child = spawn(IP, ['netns', 'exec', ns, process.execPath, '-e', SERVER], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.add(child);
      child.on('exit', () => children.delete(child));
      const rl = createInterface({ input: child.stdout! });
      const [line] = (await once(rl, 'line')) as [string];
      rl.close();
      return (JSON.parse(line) as { port: number }).port;
    },
    async probe(host, port, localAddress, ms = 1000) {
      const out = await nsExec(client, process.execPath, [
        '-e',
        PROBE,
        host,
        String(port),
        localAddress,
        String(ms),
      ]);
      return out.trim();
    },
    async close() {
      for (const c of children) {
        c.stdin?.end();
        c.kill('SIGKILL');
      }
      for (const ns of [server, client, inner]) await run(IP, ['netns', 'del', ns]).catch(() => undefined);
    },
  };
  try {
    await run(IP, ['netns', 'add', server]);
    await run(IP, ['netns', 'add', client]);
    await run(IP, ['link', 'add', vs, 'netns', server, 'type', 'veth', 'peer', 'name', vc, 'netns', client]);
    const inNs = (ns: string, args: string[]) => run(IP, ['-n', ns, ...args]);
    await inNs(server, ['link', 'set', 'lo', 'up']);
    await inNs(client, ['link', 'set', 'lo', 'up']);
    await inNs(server, ['addr', 'add', `${lab.serverV4}/24`, 'dev', vs]);
    await inNs(server, ['addr', 'add', `${lab.serverV6}/64`, 'dev', vs, 'nodad']);
    for (const a of [lab.clientA4, lab.clientB4]) await inNs(client, ['addr', 'add', `${a}/24`, 'dev', vc]);
    for (const a of [lab.clientA6, lab.clientB6])
      await inNs(client, ['addr', 'add', `${a}/64`, 'dev', vc, 'nodad']);
    await inNs(server, ['link', 'set', vs, 'up']);
    await inNs(client, ['link', 'set', vc, 'up']);
    // inner <-> server, routed: client -> server -> inner crosses the server's forward hook.
    await run(IP, ['netns', 'add', inner]);
    await run(IP, ['link', 'add', vr, 'netns', server, 'type', 'veth', 'peer', 'name', vi, 'netns', inner]);
    await inNs(inner, ['link', 'set', 'lo', 'up']);
    await inNs(server, ['addr', 'add', `${innerNet}.1/24`, 'dev', vr]);
    await inNs(inner, ['addr', 'add', `${lab.innerV4}/24`, 'dev', vi]);
    await inNs(server, ['link', 'set', vr, 'up']);
    await inNs(inner, ['link', 'set', vi, 'up']);
    await inNs(inner, ['route', 'add', 'default', 'via', `${innerNet}.1`]);
    await inNs(client, ['route', 'add', `${innerNet}.0/24`, 'via', lab.serverV4]);
    await nsExec(server, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  } catch (e) {
    await lab.close();
    throw e;
  }
  return lab;
}

/** Poll until `fn` returns `want` or the deadline passes; returns the last value. */
export async function until(fn: () => Promise<string>, want: string, deadlineMs: number): Promise<string> {
  const end = Date.now() + deadlineMs;
  let last = await fn();
  while (last !== want && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    last = await fn();
  }
  return last;
}
