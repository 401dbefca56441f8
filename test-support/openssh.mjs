import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A throwaway directory removed by `cleanup()`. */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), `sock-ssh-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `ssh-keygen -t ed25519` into `path` (and `path.pub`); returns the public line. */
export async function sshKeygen(path, options = {}) {
  const type = options.type ?? 'ed25519';
  await run('ssh-keygen', [
    '-q',
    '-t',
    type,
    '-a',
    String(options.rounds ?? 16),
    '-N',
    options.passphrase ?? '',
    '-C',
    'test',
    '-f',
    path,
  ]);
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

/** A free loopback port (for sshd, which cannot listen on port 0 and report back). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A real OpenSSH sshd in the foreground, with its own config, host key and authorized_keys, on a free
 * loopback port. The user is whoever runs the tests (root here and in CI). Shared by the tests and the
 * benchmark (plain JavaScript, so `node bench/run.mjs` can import it; types in openssh.d.mts).
 */
export async function startSshd(extraConfig = []) {
  const { dir, cleanup } = tempDir('sshd');
  const hostKeyPub = await sshKeygen(join(dir, 'host'));
  const clientKeyPub = await sshKeygen(join(dir, 'client'));
  writeFileSync(join(dir, 'authorized_keys'), `${clientKeyPub}\n`);
  mkdirSync('/run/sshd', { recursive: true });
  let child;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    writeFileSync(
      join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'host')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        'StrictModes no',
        'UsePAM no',
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'AllowTcpForwarding yes',
        'MaxStartups 100:30:200',
        'LogLevel ERROR',
        ...extraConfig,
        '',
      ].join('\n'),
    );
    child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const ok = await new Promise((resolve) => {
      let err = '';
      const timer = setTimeout(() => resolve(true), 20_000);
      child.stderr.on('data', (d) => {
        err += d.toString();
      });
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
      // sshd prints nothing at LogLevel ERROR once listening: poll the port instead.
      const poll = async () => {
        for (let i = 0; i < 200 && child.exitCode === null; i++) {
          if (await canConnect(port)) {
            clearTimeout(timer);
            return resolve(true);
          }
          await new Promise((r) => setTimeout(r, 25));
        }
      };
      void poll();
      child.once('exit', () => {
        if (err && attempt === 2) process.stderr.write(err);
      });
    });
    if (ok) {
      const proc = child;
      return {
        port,
        hostKeyPub,
        clientKey: join(dir, 'client'),
        clientKeyPub,
        dir,
        async stop() {
          if (proc.exitCode === null) {
            const exited = new Promise((r) => proc.once('exit', r));
            proc.kill('SIGTERM');
            await exited;
          }
          cleanup();
        },
      };
    }
  }
  cleanup();
  throw new Error('sshd did not start');
}

/**
 * OpenSSH `ssh` arguments for a test: no user config, BatchMode, its own known_hosts, only `key`, no agent,
 * and the strict host-key check. Append `-W`/`-L`/`-s` and the destination.
 */
export function sshClientArgs({ knownHosts, key, port }) {
  return [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
    ...(key ? ['-i', key] : []),
    ...(port ? ['-p', String(port)] : []),
  ];
}

/** Run `ssh` (see `sshClientArgs`) with `args`, feeding `input`; resolves with exit code and output. */
export function runSsh(args, { knownHosts, key, port, input, timeoutMs = 20_000 }) {
  return new Promise((resolve) => {
    const child = execFile(
      'ssh',
      [...sshClientArgs({ knownHosts, key, port }), ...args],
      { timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
