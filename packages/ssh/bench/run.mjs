// @sock/ssh benchmark, one run, rounds interleaved:
// 1. echo throughput through sshTransport vs the same traffic through OpenSSH's own `ssh -L` forward, both
//    through one real sshd to one node:net echo server, both with aes128-gcm@openssh.com (target >= 0.8x);
// 2. SSH handshakes/s (key exchange + Ed25519 public-key authentication + disconnect) of sock's SSH server
//    vs sshd, driven by the same ssh2 client, with sock's server CPU per handshake.
// Usage: node bench/run.mjs [--json] [--rounds 6] [--mb 8] [--seconds 1]

import { execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import { freePort, sshClientArgs, startSshd } from '../../../test-support/openssh.mjs';
import { DEFAULT_ALGORITHMS, generateSshKey, sshTransport } from '../dist/index.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const rounds = Math.min(opt('--rounds', 6), 30);
const echoBytes = Math.min(opt('--mb', 8), 64) * 1024 * 1024;
const seconds = Math.min(opt('--seconds', 1), 5);
const concurrency = 4;
const cipher = 'aes128-gcm@openssh.com';
const chunk = Buffer.alloc(64 * 1024, 7);
const user = userInfo().username;
const serverScript = fileURLToPath(new URL('./server.mjs', import.meta.url));

function startChild(mode, config = {}) {
  const child = fork(serverScript, [mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.send(config);
  return once(child, 'message').then(([{ port }]) => ({
    port,
    cpu: async () => {
      child.send('cpu');
      const [m] = await once(child, 'message');
      return m.cpu;
    },
    stop: () => child.disconnect(),
  }));
}

/** Send `echoBytes` through a duplex and wait for all of them to come back; MB/s. */
async function echoThrough(stream) {
  const started = performance.now();
  let received = 0;
  const done = new Promise((resolve, reject) => {
    stream.on('data', (d) => {
      received += d.length;
      if (received >= echoBytes) resolve();
    });
    stream.once('error', reject);
  });
  for (let sent = 0; sent < echoBytes; sent += chunk.length) {
    if (!stream.write(chunk)) await once(stream, 'drain');
  }
  await done;
  return echoBytes / 1e6 / ((performance.now() - started) / 1000);
}

// CPU time of a child process (user + system, ms) from /proc: the forwarders' cost per MB beside their
// throughput. Linux only; elsewhere the CPU rows are left out.
const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
function processCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return Number.NaN;
  }
}
const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r3 = (x) => Math.round(x * 1000) / 1000;
const r1 = (x) => Math.round(x * 10) / 10;

const sshd = await startSshd(['MaxStartups 500:30:1000', 'MaxSessions 100', `Ciphers ${cipher}`]);
const echo = await startChild('echo');
const hostKey = generateSshKey('bench-host');
const sockSsh = await startChild('ssh', { hostKey: hostKey.privateKey, authorizedKey: sshd.clientKeyPub });
const clientKey = readFileSync(sshd.clientKey);
const [kt, kb] = sshd.hostKeyPub.split(' ');
const knownHosts = `${sshd.dir}/bench_known_hosts`;
(await import('node:fs')).writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${kt} ${kb}\n`);

const localPort = await freePort();
const forward = spawn(
  'ssh',
  [
    ...sshClientArgs({ knownHosts, key: sshd.clientKey, port: sshd.port }),
    ...[
      '-o',
      'ExitOnForwardFailure=yes',
      '-c',
      cipher,
      '-N',
      '-L',
      `127.0.0.1:${localPort}:127.0.0.1:${echo.port}`,
    ],
    `${user}@127.0.0.1`,
  ],
  { stdio: 'ignore' },
);
const transport = sshTransport({
  via: `ssh://${user}@127.0.0.1:${sshd.port}`,
  privateKey: clientKey,
  agent: false,
  knownHosts,
  algorithms: { ...DEFAULT_ALGORITHMS, cipher: [cipher] },
});

// The same sshTransport as a tunnel in its own process (`sock tunnel -L`, like `ssh -L`): the crypto then
// runs beside the load generator rather than in its thread, as it does for OpenSSH's client.
const tunnelScript = fileURLToPath(new URL('../../../apps/cli/dist/index.js', import.meta.url));
const tunnel = spawn(
  process.execPath,
  [
    tunnelScript,
    'tunnel',
    '-L',
    `127.0.0.1:0:127.0.0.1:${echo.port}`,
    `ssh://${user}@127.0.0.1:${sshd.port}`,
    '--ssh-key',
    sshd.clientKey,
    '--ssh-known-hosts',
    knownHosts,
    '--json',
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const tunnelPort = await new Promise((resolve, reject) => {
  let out = '';
  tunnel.stdout.on('data', (d) => {
    out += d;
    const nl = out.indexOf('\n');
    if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)).port);
  });
  tunnel.once('exit', (code) => reject(new Error(`sock tunnel exited ${code}`)));
});

const viaOpenSsh = () => viaLocalPort(localPort, 'ssh -L');
const viaSockTunnel = () => viaLocalPort(tunnelPort, 'sock tunnel');

async function viaLocalPort(port, what) {
  for (let i = 0; i < 400; i++) {
    const socket = netConnect({ host: '127.0.0.1', port, noDelay: true });
    const ok = await new Promise((r) => {
      socket.once('connect', () => r(true));
      socket.once('error', () => r(false));
    });
    if (ok) {
      const rate = await echoThrough(socket);
      socket.destroy();
      return rate;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} never listened`);
}

async function viaSshTransport() {
  const channel = await transport.dial({
    host: '127.0.0.1',
    port: echo.port,
    signal: AbortSignal.timeout(30_000),
  });
  const rate = await echoThrough(channel);
  channel.destroy();
  return rate;
}

function handshake(port) {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once('ready', () => {
      client.end();
      resolve();
    });
    client.once('error', reject);
    client.connect({
      host: '127.0.0.1',
      port,
      username: user,
      privateKey: clientKey,
      hostVerifier: () => true, // a benchmark of handshakes, not of host-key policy
      algorithms: { cipher: [cipher], kex: ['curve25519-sha256'], serverHostKey: ['ssh-ed25519'] },
    });
  });
}

async function handshakes(port) {
  let count = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await handshake(port);
        count++;
      }
    }),
  );
  return { rate: count / ((performance.now() - started) / 1000), ops: count };
}

const results = [];
try {
  // Warm-up: both paths, both servers, before anything is measured.
  await viaOpenSsh();
  await viaSshTransport();
  await viaSockTunnel();
  await handshake(sshd.port);
  await handshake(sockSsh.port);

  const throughput = { openssh: [], sock: [], tunnel: [] };
  // CPU ms per MB echoed: the forwarding process of each path, and this process (the load generator,
  // plus sshTransport itself on the sshTransport rounds).
  const cpu = {
    openssh: { forwarder: () => processCpuMs(forward.pid), ms: 0, ownMs: 0 },
    sock: { forwarder: () => 0, ms: 0, ownMs: 0 },
    tunnel: { forwarder: () => processCpuMs(tunnel.pid), ms: 0, ownMs: 0 },
  };
  const shakes = { sshd: [], sock: [] };
  let sockCpu = 0;
  let sockOps = 0;
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 ? ['tunnel', 'sock', 'openssh'] : ['openssh', 'sock', 'tunnel'];
    const paths = { openssh: viaOpenSsh, sock: viaSshTransport, tunnel: viaSockTunnel };
    for (const side of order) {
      const [f0, o0] = [cpu[side].forwarder(), ownCpuMs()];
      throughput[side].push(await paths[side]());
      cpu[side].ms += cpu[side].forwarder() - f0;
      cpu[side].ownMs += ownCpuMs() - o0;
    }
    for (const side of i % 2 ? ['sock', 'sshd'] : ['sshd', 'sock']) {
      if (side === 'sock') {
        const before = await sockSsh.cpu();
        const r = await handshakes(sockSsh.port);
        sockCpu += (await sockSsh.cpu()) - before;
        sockOps += r.ops;
        shakes.sock.push(r.rate);
      } else shakes.sshd.push((await handshakes(sshd.port)).rate);
    }
  }
  const tRatio = median(throughput.sock.map((x, i) => x / throughput.openssh[i]));
  const hRatio = median(shakes.sock.map((x, i) => x / shakes.sshd[i]));
  const tunnelRatio = median(throughput.tunnel.map((x, i) => x / throughput.openssh[i]));
  results.push(
    {
      name: `echo MB/s through SSH (${cipher}): sshTransport / OpenSSH ssh -L, both via sshd`,
      unit: 'MB/s',
      baseline: r1(median(throughput.openssh)),
      value: r1(median(throughput.sock)),
      ratio: r3(tRatio),
      target: 0.8,
      targetKind: 'min',
      met: tRatio >= 0.8,
    },
    {
      name: `echo MB/s through SSH (${cipher}): sock tunnel -L (sshTransport in its own process) / OpenSSH ssh -L`,
      unit: 'MB/s',
      baseline: r1(median(throughput.openssh)),
      value: r1(median(throughput.tunnel)),
      ratio: r3(tunnelRatio),
    },
    {
      name: 'SSH handshakes/s (kex + Ed25519 auth): sock SSH server / sshd',
      unit: 'handshake/s',
      baseline: r1(median(shakes.sshd)),
      value: r1(median(shakes.sock)),
      ratio: r3(hRatio),
    },
    { name: 'sock SSH server CPU per handshake (µs)', unit: 'µs', value: r1(sockCpu / sockOps) },
  );
  const mb = (rounds * echoBytes) / 1e6;
  const perMb = (ms) => Math.round((ms / mb) * 100) / 100;
  const cpuRows = [
    ['OpenSSH ssh -L client process', cpu.openssh.ms],
    ['sock tunnel -L process', cpu.tunnel.ms],
    ['bench process on sshTransport rounds (load generator + sshTransport)', cpu.sock.ownMs],
    ['bench process on ssh -L rounds (load generator alone)', cpu.openssh.ownMs],
  ];
  for (const [what, ms] of cpuRows) {
    if (Number.isFinite(ms))
      results.push({ name: `CPU per MB echoed: ${what}`, unit: 'ms/MB', value: perMb(ms) });
  }
} finally {
  forward.kill();
  tunnel.kill();
  await transport.close();
  echo.stop();
  sockSsh.stop();
  await sshd.stop();
}

if (json)
  console.log(JSON.stringify({ package: '@sock/ssh', rounds, echoBytes, concurrency, results }, null, 2));
else
  for (const r of results)
    console.log(
      `${r.name}: ${r.baseline ?? ''} -> ${r.value} ${r.unit}${r.ratio ? ` ratio ${r.ratio}` : ''}${r.target ? ` (target >= ${r.target}: ${r.met ? 'met' : 'MISSED'})` : ''}`,
    );
