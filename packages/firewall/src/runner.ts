import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FirewallError, FirewallErrorCode, quote, throwIfAborted } from './errors.js';

/** External programs this package may run. Nothing else is ever executed. */
export type BinaryName =
  | 'nft'
  | 'iptables'
  | 'ip6tables'
  | 'iptables-restore'
  | 'ip6tables-restore'
  | 'ipset'
  | 'ip';

/** Placeholder argument replaced by the path of a 0600 temp file holding `input`. */
export const INPUT_FILE = '<input-file>';

/** One external command: a binary, its argv (never a shell string), and optional file input. */
export interface Command {
  readonly bin: BinaryName;
  readonly args: readonly string[];
  /** Written to a 0600 temp file whose path replaces the {@link INPUT_FILE} argument. */
  readonly input?: string;
  /** True for read-only commands (listing, checks); a plan leaves them out. */
  readonly query?: boolean;
}

/** What a command returned. A non-zero exit is reported, not thrown. */
export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs commands. Inject your own to add logging, sudo-less helpers or a test double. */
export interface CommandRunner {
  /** Run one command (argv, optional stdin) without a shell and report its exit status and output. */
  run(command: Command, options?: { signal?: AbortSignal }): Promise<CommandResult>;
}

/** Options of {@link createCommandRunner}. */
export interface CommandRunnerOptions {
  /** Run every command inside this network namespace (`ip netns exec <netns> …`). */
  netns?: string;
  /** Absolute paths of binaries; by default looked up in /usr/sbin, /sbin, /usr/local/sbin, /usr/bin, /bin. */
  binaries?: Partial<Record<BinaryName, string>>;
  /** Kill a command that runs longer than this. Default 60 000 ms. */
  timeoutMs?: number;
  /** Directory for temp files (a private 0700 directory is made inside it). Default os.tmpdir(). */
  tmpDir?: string;
}

const SEARCH = ['/usr/sbin', '/sbin', '/usr/local/sbin', '/usr/bin', '/bin'];
const NETNS_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const CHILD_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

function invalidOption(name: string, value: unknown, hint: string): FirewallError {
  return new FirewallError(FirewallErrorCode.INVALID_OPTION, `invalid ${name} ${quote(value)}: ${hint}`, {
    details: { option: name, value },
  });
}

/** Validate a network namespace name as `ip netns` accepts it. */
export function validateNetns(name: unknown): string {
  if (typeof name !== 'string' || !NETNS_RE.test(name) || name === '.' || name === '..') {
    throw invalidOption('netns', name, 'use 1-64 characters from A-Z a-z 0-9 _ . - (not "." or "..")');
  }
  return name;
}

/** Find a binary: an explicit absolute path, else the first executable in the standard sbin/bin dirs. */
export function resolveBinary(name: BinaryName, explicit?: string): string {
  if (explicit !== undefined) {
    if (typeof explicit !== 'string' || !explicit.startsWith('/') || explicit.includes('\0')) {
      throw invalidOption(`binaries.${name}`, explicit, 'pass an absolute path');
    }
    try {
      accessSync(explicit, fsConstants.X_OK);
    } catch (cause) {
      throw new FirewallError(
        FirewallErrorCode.BINARY_MISSING,
        `${name} is not an executable file at ${quote(explicit)} (options.binaries.${name}); fix the path or install it`,
        { cause, details: { binary: name, path: explicit } },
      );
    }
    return explicit;
  }
  for (const dir of SEARCH) {
    const path = join(dir, name);
    try {
      accessSync(path, fsConstants.X_OK);
      return path;
    } catch {
      // not here; keep looking
    }
  }
  throw new FirewallError(
    FirewallErrorCode.BINARY_MISSING,
    `${name} was not found in ${SEARCH.join(', ')}; install it (Debian/Ubuntu: apt-get install nftables iptables ipset iproute2) or pass its absolute path in options.binaries`,
    { details: { binary: name } },
  );
}

/** True if the binary can be found (no throw). */
export function hasBinary(name: BinaryName, explicit?: string): boolean {
  try {
    resolveBinary(name, explicit);
    return true;
  } catch {
    return false;
  }
}

/**
 * The default runner: `execFile` with an argv array (never a shell), a fixed PATH and LC_ALL=C,
 * a timeout, abort support, and input passed through a 0600 temp file in a private 0700 directory.
 */
export function createCommandRunner(options: CommandRunnerOptions = {}): CommandRunner {
  const netns = options.netns === undefined ? undefined : validateNetns(options.netns);
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw invalidOption('timeoutMs', timeoutMs, 'pass a positive integer number of milliseconds');
  }
  const paths = new Map<BinaryName, string>();
  const pathOf = (bin: BinaryName): string => {
    let p = paths.get(bin);
    if (!p) {
      p = resolveBinary(bin, options.binaries?.[bin]);
      paths.set(bin, p);
    }
    return p;
  };
  let dir: Promise<string> | undefined;
  const privateDir = () => {
    dir ??= mkdtemp(join(options.tmpDir ?? tmpdir(), 'sockfw-'));
    return dir;
  };

  return {
    async run(command, runOptions = {}) {
      const signal = runOptions.signal;
      throwIfAborted(signal);
      let file: string | undefined;
      let args = [...command.args];
      if (command.input !== undefined) {
        file = join(await privateDir(), `${randomBytes(8).toString('hex')}.in`);
        await writeFile(file, command.input, { mode: 0o600, flag: 'wx' });
        const path = file;
        args = args.map((a) => (a === INPUT_FILE ? path : a));
      }
      let bin = pathOf(command.bin);
      if (netns !== undefined) {
        args = ['netns', 'exec', netns, bin, ...args];
        bin = pathOf('ip');
      }
      try {
        return await new Promise<CommandResult>((resolve, reject) => {
          execFile(
            bin,
            args,
            {
              shell: false,
              env: CHILD_ENV,
              timeout: timeoutMs,
              maxBuffer: 512 * 1024 * 1024,
              windowsHide: true,
              ...(signal ? { signal } : {}),
            },
            (error, stdout, stderr) => {
              if (!error) return resolve({ exitCode: 0, stdout, stderr });
              const e = error as NodeJS.ErrnoException & { code?: unknown; killed?: boolean };
              if (e.name === 'AbortError') {
                return reject(
                  new FirewallError(FirewallErrorCode.ABORTED, `${command.bin} was aborted by its signal`, {
                    cause: error,
                  }),
                );
              }
              if (typeof e.code === 'number') return resolve({ exitCode: e.code, stdout, stderr });
              if (e.killed) {
                return reject(
                  new FirewallError(
                    FirewallErrorCode.COMMAND_FAILED,
                    `${command.bin} did not finish within ${timeoutMs} ms and was killed; raise timeoutMs or check the system`,
                    { cause: error, details: { bin: command.bin } },
                  ),
                );
              }
              reject(
                new FirewallError(
                  FirewallErrorCode.COMMAND_FAILED,
                  `could not start ${bin}: ${e.message}; check that it is installed and executable`,
                  { cause: error, details: { bin: command.bin } },
                ),
              );
            },
          );
        });
      } finally {
        if (file) await rm(file, { force: true });
      }
    },
  };
}

const PERMISSION_RE = /operation not permitted|permission denied|you must be root|must be root/i;

/** Run a command and throw `ERR_SOCK_FW_COMMAND_FAILED` (or `NOT_PERMITTED`) on a non-zero exit. */
export async function runChecked(
  runner: CommandRunner,
  command: Command,
  signal?: AbortSignal,
): Promise<CommandResult> {
  const result = await runner.run(command, signal ? { signal } : {});
  if (result.exitCode !== 0) throw commandFailed(command, result);
  return result;
}

/** The error for a command that exited non-zero: what failed, its stderr, and what to do. */
export function commandFailed(
  command: Command,
  result: CommandResult,
  detail = '',
  advice = 'check the message above, fix the input or the system, and retry',
): FirewallError {
  const stderr = result.stderr.trim().split('\n').slice(0, 5).join(' | ');
  const denied = PERMISSION_RE.test(result.stderr);
  const shown = command.args.filter((a) => a !== INPUT_FILE).join(' ');
  return new FirewallError(
    denied ? FirewallErrorCode.NOT_PERMITTED : FirewallErrorCode.COMMAND_FAILED,
    `${command.bin} ${shown} exited with ${result.exitCode}: ${stderr || '(no output)'}${detail}; ${
      denied ? 'run as root or grant CAP_NET_ADMIN' : advice
    }`,
    { details: { bin: command.bin, args: command.args, exitCode: result.exitCode, stderr: result.stderr } },
  );
}
