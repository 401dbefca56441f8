// Benchmark of @sock/ipsec between two network namespaces with one charon each (kernel-libipsec).
// Run: pnpm --filter @sock/ipsec bench [-- --json] [-- --rounds 20]. Needs root; builds dist/ first.
//   - tunnel up (IKE_SA + CHILD_SA) through the package vs `swanctl --initiate`, same charons, same run
//   - VICI commands/s (sequential `version` round trips on one connection)
//   - throughput over the tunnel (the daemon's ESP in user space) beside plain TCP on the same veth
// charon's CPU time (utime+stime from /proc) is reported per operation beside each figure.
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { IP, labMissing, startLab } from '../../../test-support/ipsec-lab.mjs';
import { createIpsec } from '../dist/index.js';

const run = promisify(execFile);
const args = process.argv.slice(2);
const json = args.includes('--json');
const opt = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const ROUNDS = opt('--rounds', 20);
const VICI_COMMANDS = opt('--commands', 5000);
const BYTES = opt('--mib', 64) * 1024 * 1024;
const PEER = fileURLToPath(new URL('../test/fixtures/peer.mjs', import.meta.url));

const missing = labMissing();
if (missing) {
  console.error(`bench: ${missing}; skipped`);
  process.exit(process.env.CI === 'true' ? 1 : 0);
}

// The dev PKI (@sock/tls/pki) makes the lab's certificates.
const devPki = await import('@sock/tls/pki');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ticks = Number(
  (await run('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }))).stdout.trim() || 100,
);
/** charon's CPU time so far, in ms. */
function charonCpuMs(side) {
  const stat = readFileSync(`/proc/${side.charon.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
}

const lab = await startLab();
const deadline = setTimeout(() => {
  console.error('bench: took longer than 5 minutes, giving up');
  void lab.stop().then(() => process.exit(1));
}, 300_000);
const results = [];
try {
  const ca = await devPki.createCA({ commonName: 'sock ipsec bench CA' });
  const certs = {
    a: await devPki.issueServerCert(ca, { names: ['a.ipsec.test'] }),
    b: await devPki.issueServerCert(ca, { names: ['b.ipsec.test'] }),
  };
  const clients = { a: createIpsec({ socket: lab.a.vici }), b: createIpsec({ socket: lab.b.vici }) };
  for (const [me, peer] of [
    ['a', 'b'],
    ['b', 'a'],
  ])
    await clients[me].loadConnection({
      name: 'net',
      localAddress: lab[me].outer,
      remoteAddress: lab[peer].outer,
      local: { cert: certs[me].cert, key: certs[me].key },
      remote: { id: `${peer}.ipsec.test`, ca: ca.cert },
      localTs: [`${lab[me].inner}/32`],
      remoteTs: [`${lab[peer].inner}/32`],
    });
  const a = clients.a;
  const uri = `unix://${lab.a.vici}`;

  // Tunnel up: alternate package and swanctl so load drifts hit both alike.
  const ours = [];
  const theirs = [];
  const oursCpu = [];
  const theirsCpu = [];
  for (let i = 0; i < ROUNDS; i++) {
    let cpu = charonCpuMs(lab.a) + charonCpuMs(lab.b);
    let t = performance.now();
    await a.initiate('net');
    ours.push(performance.now() - t);
    oursCpu.push(charonCpuMs(lab.a) + charonCpuMs(lab.b) - cpu);
    await a.terminate('net');
    cpu = charonCpuMs(lab.a) + charonCpuMs(lab.b);
    t = performance.now();
    await run('swanctl', ['--initiate', '--child', 'net', '--uri', uri, '--loglevel', '-1']);
    theirs.push(performance.now() - t);
    theirsCpu.push(charonCpuMs(lab.a) + charonCpuMs(lab.b) - cpu);
    await a.terminate('net');
  }
  results.push({
    name: 'tunnel up, IKE_SA + CHILD_SA (swanctl --initiate / @sock/ipsec initiate), median ms',
    unit: 'ms',
    baseline: median(theirs),
    value: median(ours),
    ratio: median(theirs) / median(ours),
  });
  // CPU time comes in clock ticks (10 ms): average over all rounds rather than a median of ticks.
  const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
  results.push({
    name: 'tunnel up: both charons CPU per tunnel, mean (swanctl / @sock/ipsec)',
    unit: 'ms',
    baseline: mean(theirsCpu),
    value: mean(oursCpu),
    ratio: mean(theirsCpu) / Math.max(mean(oursCpu), 0.001),
  });

  // VICI commands/s on one connection, with charon's CPU per command.
  let cpu = charonCpuMs(lab.a);
  let t = performance.now();
  for (let i = 0; i < VICI_COMMANDS; i++) await a.vici.request('version');
  const seconds = (performance.now() - t) / 1000;
  results.push({
    name: 'VICI commands/s (version, sequential, one connection)',
    unit: 'cmd/s',
    value: VICI_COMMANDS / seconds,
  });
  results.push({
    name: 'VICI: charon CPU per command',
    unit: 'µs',
    value: ((charonCpuMs(lab.a) - cpu) * 1000) / VICI_COMMANDS,
  });
  cpu = charonCpuMs(lab.a);
  t = performance.now();
  for (let i = 0; i < 200; i++) await a.listSas();
  results.push({
    name: 'VICI list-sas/s (streamed, no SA)',
    unit: 'cmd/s',
    value: 200 / ((performance.now() - t) / 1000),
  });

  // Throughput: plain TCP on the veth (outer addresses) vs TCP over the tunnel (inner addresses).
  await a.initiate('net');
  const sink = spawn(IP, ['netns', 'exec', lab.b.netns, process.execPath, PEER, 'sink', '0.0.0.0'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = [];
  sink.stdout.on('data', (d) => lines.push(...String(d).trim().split('\n')));
  while (lines.length === 0) await new Promise((r) => setTimeout(r, 20));
  const { port } = JSON.parse(lines.shift());
  const blast = async (host) => {
    const cpuBefore = charonCpuMs(lab.a) + charonCpuMs(lab.b);
    const { stdout } = await run(
      IP,
      ['netns', 'exec', lab.a.netns, process.execPath, PEER, 'blast', host, String(port), String(BYTES)],
      {
        timeout: 120_000,
      },
    );
    const { ms, error } = JSON.parse(stdout.trim().split('\n').pop());
    if (error) throw new Error(`blast to ${host}: ${error}`);
    return {
      mbps: (BYTES * 8) / 1e6 / (ms / 1000),
      cpuMsPerMiB: (charonCpuMs(lab.a) + charonCpuMs(lab.b) - cpuBefore) / (BYTES / 2 ** 20),
    };
  };
  const plain = await blast(lab.b.outer);
  const tunnel = await blast(lab.b.inner);
  sink.stdin.end();
  results.push({
    name: 'TCP throughput over the tunnel (kernel-libipsec ESP-in-UDP) / plain TCP on the veth',
    unit: 'Mbit/s',
    baseline: plain.mbps,
    value: tunnel.mbps,
    ratio: tunnel.mbps / plain.mbps,
  });
  results.push({ name: 'tunnel: charon CPU per MiB carried', unit: 'ms', value: tunnel.cpuMsPerMiB });
  const [sa] = await a.listSas();
  if (!(sa?.children[0]?.bytesOut >= BYTES)) throw new Error('the tunnel did not carry the tunnel run');
  await a.terminate('net');
  await clients.a.close();
  await clients.b.close();
} finally {
  clearTimeout(deadline);
  await lab.stop();
}

const round = (v) => (typeof v === 'number' ? Number(v.toPrecision(4)) : v);
const out = results.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)])));
if (json) console.log(JSON.stringify({ package: '@sock/ipsec', results: out }));
else {
  for (const r of out)
    console.log(
      `${r.name}: ${r.value} ${r.unit}${r.baseline !== undefined ? ` (baseline ${r.baseline}, ratio ${r.ratio})` : ''}`,
    );
}
