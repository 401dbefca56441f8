import { randomBytes } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { type ClientTransport, type DialOptions, SockError, SockErrorCode } from '@sock/core';
import type { ClientChannel, ConnectConfig, Client as SshClient } from 'ssh2';
import { DEFAULT_ALGORITHMS, type SshAlgorithms, toSsh2Algorithms } from './algorithms.js';
import { normalizeFingerprint, sha256Fingerprint } from './fingerprint.js';
import {
  checkHostKey,
  hashedKnownHostLine,
  hostFieldMatches,
  type KnownHostEntry,
  knownHostName,
  parseKnownHosts,
} from './known-hosts.js';
import { invalidOption, SshReason, socketError, sshError } from './reasons.js';
import { Client } from './ssh2.js';
import { parseSshUrl, type SshTarget } from './url.js';

export interface SshTransportOptions {
  /** The SSH server to go through: `ssh://user@host:port` (port 22 by default). */
  via: string;
  /** A private key (OpenSSH or PEM format, contents not a path). Default: none (the agent only). */
  privateKey?: string | Buffer;
  /** For an encrypted `privateKey`. */
  passphrase?: string;
  /** ssh-agent socket. Default `SSH_AUTH_SOCK`; `false` never asks an agent. */
  agent?: string | false;
  /** Password authentication is off unless a password is given here explicitly. */
  password?: string;
  /** known_hosts file (OpenSSH format, hashed entries included). Default `~/.ssh/known_hosts`. */
  knownHosts?: string;
  /** Accept exactly these host keys (`SHA256:…` as `ssh-keygen -l` prints): known_hosts is then not read. */
  fingerprints?: readonly string[];
  /**
   * Accept a host with no known_hosts entry and append its key (hashed) to `knownHosts`. A changed key is
   * still refused. Off by default: the first connection is the one an attacker intercepts.
   */
  insecureTrustOnFirstUse?: boolean;
  /** SSH keepalive interval in ms (0 disables). Default 15000; 3 unanswered close the connection. */
  keepaliveMs?: number;
  /** Handshake and authentication deadline. Default 10000 ms. */
  readyTimeoutMs?: number;
  /** Default `DEFAULT_ALGORITHMS`. */
  algorithms?: SshAlgorithms;
}

/** A client transport that also owns one SSH connection. */
export interface SshClientTransport extends ClientTransport {
  /** SHA256 fingerprint of the host key the current (or last) connection verified. */
  readonly hostFingerprint: string | undefined;
  /** SSH connections opened so far, and channels opened over them. */
  stats(): { connections: number; channels: number };
  /** Close the SSH connection (and every channel on it). The next dial opens a new one. */
  close(): Promise<void>;
}

/**
 * A core `ClientTransport` that reaches `host:port` through an SSH server, one `direct-tcpip` channel per
 * connection (like `ssh -W`), all channels on one SSH connection. When that connection drops, its channels
 * close and the next dial (core's `reconnect()` backoff) opens a new one.
 */
export function sshTransport(options: SshTransportOptions): SshClientTransport {
  const target = parseSshUrl(options.via);
  if (options.insecureTrustOnFirstUse && options.fingerprints) {
    throw invalidOption('sshTransport: insecureTrustOnFirstUse and fingerprints exclude each other');
  }
  const pins = options.fingerprints?.map((f) => {
    const pin = normalizeFingerprint(f);
    if (!pin) throw invalidOption(`sshTransport: fingerprint "${f}" is not SHA256:<43 base64 characters>`);
    return pin;
  });
  if (pins && pins.length === 0)
    throw invalidOption('sshTransport: an empty fingerprints list would refuse every host');
  const knownHostsPath = options.knownHosts ?? join(homedir(), '.ssh', 'known_hosts');
  const agent = options.agent === false ? undefined : (options.agent ?? process.env.SSH_AUTH_SOCK);
  if (!options.privateKey && !agent && options.password === undefined) {
    throw invalidOption(
      'sshTransport: give privateKey, an ssh-agent (SSH_AUTH_SOCK) or an explicit password',
    );
  }
  let current: Promise<SshClient> | undefined;
  let fingerprint: string | undefined;
  const counts = { connections: 0, channels: 0 };

  const open = async (signal: AbortSignal): Promise<SshClient> => {
    const known = pins ? [] : parseKnownHosts(await readKnownHosts(knownHostsPath));
    return new Promise<SshClient>((resolve, reject) => {
      const client = new Client();
      let hostKeyError: SockError | undefined;
      let settled = false;
      const fail = (err: SockError) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        client.end();
        reject(err);
      };
      const onAbort = () =>
        fail(new SockError(SockErrorCode.ABORTED, `ssh: connect to ${target.host} aborted`));
      signal.addEventListener('abort', onAbort, { once: true });
      const verify = (key: Buffer, done: (ok: boolean) => void) => {
        const fp = sha256Fingerprint(key);
        const checked = verifyHostKey(
          target,
          key,
          fp,
          pins,
          known,
          knownHostsPath,
          options.insecureTrustOnFirstUse,
        );
        checked.then(
          () => {
            fingerprint = fp;
            done(true);
          },
          (err: SockError) => {
            hostKeyError = err;
            done(false);
          },
        );
      };
      const config: ConnectConfig = {
        host: target.host,
        port: target.port,
        username: target.user,
        readyTimeout: options.readyTimeoutMs ?? 10_000,
        keepaliveInterval: options.keepaliveMs ?? 15_000,
        keepaliveCountMax: 3,
        algorithms: toSsh2Algorithms(
          preferKnownTypes(options.algorithms ?? DEFAULT_ALGORITHMS, known, target),
        ) as ConnectConfig['algorithms'],
        hostVerifier: verify as unknown as ConnectConfig['hostVerifier'],
        tryKeyboard: false,
      };
      if (options.privateKey) config.privateKey = options.privateKey;
      if (options.passphrase !== undefined) config.passphrase = options.passphrase;
      if (agent) config.agent = agent;
      if (options.password !== undefined) config.password = options.password;
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        client.on('error', () => {});
        resolve(client);
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (hostKeyError) return fail(hostKeyError);
        if (err.level === 'client-authentication') {
          return fail(
            sshError(
              SshReason.AUTH_REJECTED,
              `${target.user}@${target.host} refused every authentication method we offered`,
              err,
            ),
          );
        }
        if (err.level === 'client-socket' || (err as NodeJS.ErrnoException).code) {
          return fail(socketError(err, `ssh: connect to ${target.host}:${target.port}`));
        }
        if (/timed out/i.test(err.message)) {
          return fail(
            new SockError(
              SockErrorCode.CONNECT_TIMEOUT,
              `ssh: ${target.host}:${target.port}: ${err.message}`,
              { cause: err },
            ),
          );
        }
        fail(sshError(SshReason.CONNECTION_FAILED, `${target.host}:${target.port}: ${err.message}`, err));
      });
      client.once('close', () => {
        if (current && !settled)
          fail(
            sshError(
              SshReason.CONNECTION_FAILED,
              `${target.host}:${target.port} closed the connection during the handshake`,
            ),
          );
        // A dead connection is never handed out again.
        current = undefined;
      });
      try {
        counts.connections++;
        config.sock = coalescedSocket(target.host, target.port);
        client.connect(config);
      } catch (err) {
        fail(invalidOption(`sshTransport: ${(err as Error).message}`));
      }
    });
  };

  const connection = (signal: AbortSignal): Promise<SshClient> => {
    if (!current) {
      const opening = open(signal);
      current = opening;
      opening.catch(() => {
        if (current === opening) current = undefined;
      });
    }
    return current;
  };

  return {
    name: 'ssh',
    get hostFingerprint() {
      return fingerprint;
    },
    stats: () => ({ ...counts }),
    async dial(dial: DialOptions): Promise<Duplex> {
      const client = await connection(dial.signal);
      const channel = await new Promise<ClientChannel>((resolve, reject) => {
        client.forwardOut('127.0.0.1', 0, dial.host, dial.port, (err, ch) => {
          if (err) {
            reject(
              sshError(
                SshReason.CHANNEL_REFUSED,
                `${target.host} refused a channel to ${dial.host}:${dial.port}: ${err.message}`,
                err,
              ),
            );
          } else {
            counts.channels++;
            resolve(ch);
          }
        });
      });
      if (dial.signal.aborted) {
        channel.destroy();
        throw dial.signal.reason;
      }
      // Keep one listener until the connection attaches its own: an 'error' with none would throw.
      channel.on('error', () => {});
      return channel;
    },
    async close() {
      const opening = current;
      current = undefined;
      if (!opening) return;
      const client = await opening.catch(() => undefined);
      if (!client) return;
      await new Promise<void>((resolve) => {
        client.once('close', () => resolve());
        client.end();
      });
    },
  };
}

/**
 * The TCP connection to the SSH server, with every write made in one tick sent as one `writev`: ssh2
 * writes each packet in four pieces (length, ciphertext, final block, tag), one syscall each otherwise.
 */
function coalescedSocket(host: string, port: number): Socket {
  const socket = netConnect({ host, port, noDelay: true });
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Socket['write'];
  return socket;
}

/**
 * Ask first for the host key types known_hosts already has for this host, as ssh(1) does: a server with an
 * RSA and an Ed25519 key, known by its RSA key, must not be refused for showing the other one.
 */
function preferKnownTypes(
  algorithms: SshAlgorithms,
  known: readonly KnownHostEntry[],
  target: SshTarget,
): SshAlgorithms {
  const types = new Set<string>();
  for (const e of known) {
    if (e.marker === undefined && hostFieldMatches(e.hosts, target.host, target.port)) {
      if (e.keyType === 'ssh-rsa') types.add('rsa-sha2-512').add('rsa-sha2-256');
      else types.add(e.keyType);
    }
  }
  if (types.size === 0) return algorithms;
  const first = algorithms.serverHostKey.filter((a) => types.has(a));
  return {
    ...algorithms,
    serverHostKey: [...first, ...algorithms.serverHostKey.filter((a) => !types.has(a))],
  };
}

async function readKnownHosts(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw invalidOption(`sshTransport: cannot read known_hosts ${path}: ${(err as Error).message}`);
  }
}

async function verifyHostKey(
  target: SshTarget,
  key: Buffer,
  fp: string,
  pins: readonly string[] | undefined,
  known: ReturnType<typeof parseKnownHosts>,
  knownHostsPath: string,
  trustOnFirstUse: boolean | undefined,
): Promise<void> {
  const name = knownHostName(target.host, target.port);
  if (pins) {
    if (pins.includes(fp)) return;
    throw sshError(
      SshReason.HOST_KEY_MISMATCH,
      `${name} presented host key ${fp}, which is not a pinned fingerprint`,
    );
  }
  const verdict = checkHostKey(known, target.host, target.port, key);
  if (verdict.status === 'match') return;
  if (verdict.status === 'revoked') {
    throw sshError(
      SshReason.HOST_KEY_MISMATCH,
      `${name} presented host key ${fp}, which ${knownHostsPath}:${verdict.entry.line} marks @revoked`,
    );
  }
  if (verdict.status === 'mismatch') {
    const lines = verdict.known.map((e) => e.line).join(', ');
    throw sshError(
      SshReason.HOST_KEY_MISMATCH,
      `the host key of ${name} changed: it presented ${fp}, ${knownHostsPath} line ${lines} has another key. Someone may be intercepting the connection; if the key was rotated, replace that line`,
    );
  }
  if (trustOnFirstUse) {
    const type = key.subarray(4, 4 + key.readUInt32BE(0)).toString('latin1');
    await appendFile(
      knownHostsPath,
      hashedKnownHostLine(target.host, target.port, type, key, randomBytes(20)),
      { mode: 0o600 },
    );
    return;
  }
  throw sshError(
    SshReason.HOST_KEY_UNKNOWN,
    `${name} is not in ${knownHostsPath} (it presented ${fp}); add its key there (ssh-keyscan) or pin the fingerprint`,
  );
}
