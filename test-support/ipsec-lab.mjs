// Two network namespaces joined by a veth pair, one strongSwan charon in each (own mount namespace with
// its own tmpfs /run, own STRONGSWAN_CONF with kernel-libipsec, VICI socket and log), and a dev PKI.
// Used by @sock/ipsec's tests, the CLI's `sock ipsec` tests and the benchmark. Needs root.
// Everything it creates is removed by stop(), which never throws and also runs on a failed start.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const IP = existsSync('/usr/sbin/ip') ? '/usr/sbin/ip' : '/sbin/ip';
export const CHARON = '/usr/lib/ipsec/charon';

/** What a CI run must have; a missing piece is a failure under CI=true, a skip elsewhere. */
export function labMissing() {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  for (const bin of [IP, CHARON, '/usr/bin/tcpdump', '/usr/bin/unshare'])
    if (!existsSync(bin)) return `${bin} is missing`;
  if (!existsSync('/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so'))
    return 'strongSwan kernel-libipsec plugin missing (libcharon-extra-plugins)';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun missing';
  return undefined;
}

const PLUGINS =
  'random nonce openssl pem pkcs1 pkcs8 x509 pubkey constraints curve25519 gcm aes sha2 hmac kdf kernel-libipsec kernel-netlink socket-default vici';

const OUTER = { a: '192.0.2.1', b: '192.0.2.2' };
const INNER = { a: '10.1.0.1', b: '10.2.0.1' };

/**
 * Start the lab. `cleartextRoutes` (default true) gives each side a plain route to the other's inner
 * prefix through the veth: the leak path that fail-closed must shut.
 */
export async function startLab(options = {}) {
  const id = randomBytes(3).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'sock-ipsec-lab-'));
  const side = (s) => ({
    name: s,
    netns: `sipsec-${s}-${id}`,
    veth: `sip${s}${id}`,
    outer: OUTER[s],
    inner: INNER[s],
    innerPrefix: `${INNER[s].split('.').slice(0, 3).join('.')}.0/24`,
    dir: join(dir, s),
    vici: join(dir, s, 'vici.sock'),
    log: join(dir, s, 'charon.log'),
    conf: join(dir, s, 'strongswan.conf'),
    charon: undefined,
  });
  const lab = { id, dir, a: side('a'), b: side('b'), pki: join(dir, 'pki') };
  lab.stop = () => stopLab(lab);
  lab.restartCharon = async (s) => {
    await stopCharon(lab[s]);
    await startCharon(lab[s]);
  };
  try {
    const sh = (...args) => run(IP, args);
    await sh('netns', 'add', lab.a.netns);
    await sh('netns', 'add', lab.b.netns);
    await sh('link', 'add', lab.a.veth, 'type', 'veth', 'peer', 'name', lab.b.veth);
    for (const s of [lab.a, lab.b]) {
      const other = s === lab.a ? lab.b : lab.a;
      await sh('link', 'set', s.veth, 'netns', s.netns);
      await sh('-n', s.netns, 'addr', 'add', `${s.outer}/24`, 'dev', s.veth);
      await sh('-n', s.netns, 'link', 'set', s.veth, 'up');
      await sh('-n', s.netns, 'link', 'set', 'lo', 'up');
      await sh('-n', s.netns, 'addr', 'add', `${s.inner}/32`, 'dev', 'lo');
      if (options.cleartextRoutes !== false)
        await sh('-n', s.netns, 'route', 'add', other.innerPrefix, 'via', other.outer);
      await run('mkdir', ['-p', s.dir]);
      writeFileSync(
        s.conf,
        `charon {
  load = ${PLUGINS}
  plugins {
    vici { socket = unix://${s.vici} }
  }
  filelog {
    lab { path = ${s.log}
      default = 1
      ike = 1 }
  }
}
`,
      );
      await startCharon(s);
    }
    return lab;
  } catch (err) {
    await stopLab(lab);
    throw err;
  }
}

async function startCharon(s) {
  rmSync(s.vici, { force: true });
  // unshare execs sh, which execs charon: the pid we hold is charon's, so SIGTERM reaches it.
  const child = spawn(
    IP,
    [
      'netns',
      'exec',
      s.netns,
      'unshare',
      '--mount',
      'sh',
      '-c',
      `mount -t tmpfs tmpfs /run && exec ${CHARON}`,
    ],
    { env: { ...process.env, STRONGSWAN_CONF: s.conf }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  s.charon = child;
  const exited = new Promise((r) => child.once('exit', r));
  s.charonExited = exited;
  const end = Date.now() + 10_000;
  // The socket file appears at bind(), a moment before charon accepts: wait for a connection to succeed.
  while (!existsSync(s.vici) || !(await accepts(s.vici))) {
    if (child.exitCode !== null) throw new Error(`charon in ${s.netns} exited: ${stderr}`);
    if (Date.now() > end)
      throw new Error(`charon in ${s.netns} opened no VICI socket within 10 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function accepts(path) {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** SIGTERM and wait (charon takes 1-2 s); SIGKILL after 6 s. */
async function stopCharon(s) {
  const child = s.charon;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 6000);
  await s.charonExited;
  clearTimeout(timer);
}

async function stopLab(lab) {
  await Promise.all([stopCharon(lab.a), stopCharon(lab.b)]).catch(() => undefined);
  for (const s of [lab.a, lab.b]) await run(IP, ['netns', 'del', s.netns]).catch(() => undefined);
  rmSync(lab.dir, { recursive: true, force: true });
}

/** Run `argv` inside a side's namespace (no shell). */
export function inNetns(s, argv, options = {}) {
  return run(IP, ['netns', 'exec', s.netns, ...argv], { timeout: 20_000, ...options });
}

/**
 * tcpdump on a side's veth (`--immediate-mode`: without it nothing is saved when stopped right after the
 * traffic). stop() ends it and returns the capture's packets as tcpdump prints them and the raw file.
 */
export async function capture(s) {
  const file = join(s.dir, `capture-${randomBytes(3).toString('hex')}.pcap`);
  const child = spawn(
    IP,
    ['netns', 'exec', s.netns, 'tcpdump', '-i', s.veth, '--immediate-mode', '-U', '-n', '-w', file],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const end = Date.now() + 10_000;
  while (!stderr.includes('listening on')) {
    if (child.exitCode !== null) throw new Error(`tcpdump exited: ${stderr}`);
    if (Date.now() > end) throw new Error(`tcpdump did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
      const raw = existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
      const { stdout } = await run('tcpdump', ['-r', file, '-n', 'ip'], {
        maxBuffer: 16 * 1024 * 1024,
      }).catch((err) => ({ stdout: String(err.stdout ?? '') }));
      return { raw, lines: stdout.split('\n').filter(Boolean) };
    },
  };
}
