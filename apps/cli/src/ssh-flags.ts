import { existsSync, readFileSync } from 'node:fs';
import type { Plugin, SockEvent, SockServer } from '@sock/core';
// Types only: @sock/ssh (and ssh2) load when an SSH flag is used, not on every `sock` start.
import type { SshClientTransport, SshServer, SshTransportOptions } from '@sock/ssh';
import type { Command } from 'commander';
import { UsageError } from './errors.js';
import type { GuardFlags } from './guard-flags.js';
import { collect, parseDur, parseHostPort } from './parse.js';

export interface ClientSshFlags {
  via?: string;
  sshKey?: string;
  sshKnownHosts?: string;
  sshFingerprint?: string[];
}

/** `--via ssh://user@bastion` and its companions, for `sock connect` and `sock tunnel`. */
export function addClientSshFlags(cmd: Command, withVia = true): Command {
  if (withVia)
    cmd.option('--via <ssh-url>', 'reach the server through an SSH server: ssh://user@bastion[:port]');
  return cmd
    .option(
      '--ssh-key <file>',
      'private key for the SSH server (OpenSSH format; passphrase from SOCK_SSH_PASSPHRASE); default: ssh-agent',
    )
    .option('--ssh-known-hosts <file>', 'known_hosts for the SSH server (default ~/.ssh/known_hosts)')
    .option(
      '--ssh-fingerprint <sha256>',
      'accept only this SSH host key (SHA256:…, repeatable; instead of known_hosts)',
      collect,
    );
}

function readable(path: string, flag: string): Buffer {
  if (!existsSync(path)) throw new UsageError(`${flag}: no such file: ${path}`);
  return readFileSync(path);
}

/** The SSH client transport the flags ask for, or undefined without `via`. */
export async function clientSsh(
  flags: ClientSshFlags,
  via = flags.via,
): Promise<SshClientTransport | undefined> {
  if (via === undefined) {
    if (flags.sshKey || flags.sshKnownHosts || flags.sshFingerprint) {
      throw new UsageError('SSH flags given without --via ssh://user@host');
    }
    return undefined;
  }
  const { normalizeFingerprint, sshTransport } = await import('@sock/ssh');
  for (const f of flags.sshFingerprint ?? []) {
    if (!normalizeFingerprint(f))
      throw new UsageError(
        `--ssh-fingerprint must be SHA256:<base64> as ssh-keygen -l prints it, got ${JSON.stringify(f)}`,
      );
  }
  if (flags.sshFingerprint && flags.sshKnownHosts) {
    throw new UsageError('--ssh-fingerprint and --ssh-known-hosts exclude each other');
  }
  const options: SshTransportOptions = {
    via,
    ...(flags.sshKey ? { privateKey: readable(flags.sshKey, '--ssh-key') } : {}),
    ...(process.env.SOCK_SSH_PASSPHRASE ? { passphrase: process.env.SOCK_SSH_PASSPHRASE } : {}),
    ...(flags.sshKnownHosts ? { knownHosts: flags.sshKnownHosts } : {}),
    ...(flags.sshFingerprint ? { fingerprints: flags.sshFingerprint } : {}),
  };
  try {
    return sshTransport(options);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export interface ServerSshFlags {
  ssh?: boolean;
  sshHostKey?: string;
  sshAuthorizedKeys?: string;
  sshService?: string;
  sshAuthTimeout?: string;
}

export function addServerSshFlags(cmd: Command): Command {
  return cmd
    .option(
      '--ssh',
      'serve over SSH: each authenticated direct-tcpip channel is one connection (needs --ssh-host-key, --ssh-authorized-keys)',
    )
    .option('--ssh-host-key <file>', "SSH host private key (make one with 'sock ssh keygen')")
    .option(
      '--ssh-authorized-keys <file>',
      'authorized_keys of the clients allowed in (from=, restrict, permitopen honoured; reloaded on change)',
    )
    .option(
      '--ssh-service <host:port>',
      'the destination clients name for the service (default localhost:<port>)',
    )
    .option('--ssh-auth-timeout <dur>', 'from TCP accept to successful SSH authentication (default 10s)');
}

export interface SshListen {
  /** Parsed and checked flags; `start` binds. */
  start(
    service: SockServer<Buffer, Uint8Array>,
    at: { host: string; port: number },
    wiring: { plugins: Plugin[]; observers: ((e: SockEvent) => void)[]; onError: (message: string) => void },
  ): Promise<{ address: string; port: number; server: SshServer; service: string }>;
  readonly summary: string;
}

/** What `--ssh` asks for, validated before anything binds; undefined without `--ssh`. */
export function serverSsh(
  flags: ServerSshFlags & GuardFlags,
  excludes: { tls: boolean; udp: boolean },
): SshListen | undefined {
  if (!flags.ssh) {
    if (flags.sshHostKey || flags.sshAuthorizedKeys || flags.sshService || flags.sshAuthTimeout) {
      throw new UsageError('SSH flags given without --ssh');
    }
    return undefined;
  }
  if (excludes.tls) throw new UsageError('--ssh and --tls exclude each other (SSH encrypts already)');
  if (excludes.udp) throw new UsageError('--ssh is for TCP listeners, not --udp');
  // Guards' timeouts and per-message rates read the TCP connection's traffic, which SSH owns: they would
  // cut every SSH session. The SSH listener has its own deadline (--ssh-auth-timeout).
  for (const [flag, set] of [
    ['--idle-timeout', flags.idleTimeout],
    ['--handshake-timeout', flags.handshakeTimeout],
    ['--msg-rate', flags.msgRate],
    ['--proxy-protocol', flags.proxyProtocol],
  ] as const) {
    if (set !== undefined)
      throw new UsageError(`${flag} does not apply to an --ssh listener (use --ssh-auth-timeout)`);
  }
  if (!flags.sshHostKey || !flags.sshAuthorizedKeys) {
    throw new UsageError(
      "--ssh needs --ssh-host-key <file> (make one with 'sock ssh keygen') and --ssh-authorized-keys <file>",
    );
  }
  const hostKey = readable(flags.sshHostKey, '--ssh-host-key');
  if (!existsSync(flags.sshAuthorizedKeys))
    throw new UsageError(`--ssh-authorized-keys: no such file: ${flags.sshAuthorizedKeys}`);
  const authorizedKeys = flags.sshAuthorizedKeys;
  const named = flags.sshService === undefined ? undefined : parseHostPort(flags.sshService, '--ssh-service');
  const authTimeoutMs =
    flags.sshAuthTimeout === undefined ? 10_000 : parseDur(flags.sshAuthTimeout, '--ssh-auth-timeout');
  return {
    summary: 'ssh',
    async start(service, at, wiring) {
      // Routes are read per channel: the default destination needs the port, known once bound.
      const routes: { host: string; port: number; server: SockServer<Buffer, Uint8Array> }[] = [];
      const { createSshServer } = await import('@sock/ssh');
      let server: SshServer;
      try {
        server = createSshServer({
          hostKeys: [hostKey],
          authorizedKeys,
          routes,
          plugins: wiring.plugins,
          observers: wiring.observers,
          authTimeoutMs,
          onError: wiring.onError,
        });
      } catch (err) {
        throw new UsageError(`--ssh-host-key: ${(err as Error).message}`);
      }
      const bound = await server.listen(at);
      const dest = named ?? { host: 'localhost', port: bound.port };
      routes.push({ ...dest, server: service });
      return { address: bound.address, port: bound.port, server, service: `${dest.host}:${dest.port}` };
    },
  };
}
