import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import {
  type AdoptedPeer,
  type CloseOptions,
  type ConnectionControl,
  createServer,
  type ListenOptions,
  type Observer,
  type Plugin,
  raw,
  type ServerAddress,
  type SockServer,
} from '@sock/core';
import type { AuthContext, Connection as Ssh2Connection, Server as Ssh2ServerType } from 'ssh2';
import { DEFAULT_ALGORITHMS, type SshAlgorithms, toSsh2Algorithms } from './algorithms.js';
import { type AuthorizedKey, keyAllowsAddress, keyAllowsForward } from './authorized-keys.js';
import { type AuthorizedKeysSource, authorizedKeysFile } from './authorized-keys-file.js';
import { sha256Fingerprint } from './fingerprint.js';
import type { SshIdentity } from './identity.js';
import { invalidOption, SshReason, sshError } from './reasons.js';
import { Server as Ssh2Server, utils } from './ssh2.js';

/** Where an authenticated channel goes: a `direct-tcpip` destination or a subsystem, served by a core server. */
export type SshRoute =
  | { readonly host: string; readonly port: number; readonly server: AdoptingServer }
  | { readonly subsystem: string; readonly server: AdoptingServer };

/** Any core server: channels are handed to its `adopt(stream, peer)`. */
// biome-ignore lint/suspicious/noExplicitAny: a route's server may use any codec
export type AdoptingServer = Pick<SockServer<any, any>, 'adopt'>;

export interface SshServerOptions {
  /** Private host keys (OpenSSH or PEM, contents). `sock ssh keygen` writes an Ed25519 one. */
  hostKeys: readonly (string | Buffer)[];
  /** An authorized_keys path (re-read when it changes) or a source. Password authentication is never offered. */
  authorizedKeys: string | AuthorizedKeysSource;
  /** The permit list: a channel to anything else is refused. */
  routes: readonly SshRoute[];
  /** Core plug-ins (guards) run at TCP accept, before a byte of SSH is read. */
  plugins?: readonly Plugin[];
  observers?: readonly Observer[];
  /** From TCP accept to successful authentication. Default 10000 ms (OpenSSH's LoginGraceTime is 120 s). */
  authTimeoutMs?: number;
  /** Failed authentication attempts (public keys offered and refused) before the connection is closed. Default 6. */
  maxAuthTries?: number;
  /** Channels open at once on one SSH connection. Default 10. */
  maxChannels?: number;
  /** Default `DEFAULT_ALGORITHMS`. */
  algorithms?: SshAlgorithms;
  /** SSH keepalive to authenticated clients, in ms; three unanswered end the connection. Default 15000. */
  keepaliveMs?: number;
  /** Told about unreadable authorized_keys files and refused lines. */
  onError?: (message: string) => void;
}

export interface SshServerStats {
  /** SSH key exchanges completed. */
  readonly handshakes: number;
  /** Connections that failed to authenticate (each one a `ssh-auth-failed` strike). */
  readonly authFailures: number;
  readonly channelsOpen: number;
  readonly channelsTotal: number;
}

export interface SshServer {
  listen(options?: ListenOptions): Promise<ServerAddress>;
  address(): ServerAddress | null;
  /** Stop accepting and close every SSH connection (the services' own servers are closed by their owner). */
  close(options?: CloseOptions): Promise<void>;
  /** The outer core server: one connection per SSH client, where guards act. */
  readonly tcp: SockServer;
  stats(): SshServerStats;
}

/**
 * An SSH server whose channels are core connections. The TCP side is a core server (guards run at accept);
 * its transport runs the SSH handshake and public-key authentication within `authTimeoutMs`; a failure is
 * that connection's rejection reason (`ssh-auth-failed`, `ssh-auth-timeout`, `ssh-handshake-failed`), so
 * guards strike and ban as for any other violation. Each permitted channel is adopted by its route's server
 * with the client's `SshIdentity`.
 */
export function createSshServer(options: SshServerOptions): SshServer {
  if (options.hostKeys.length === 0) throw invalidOption('createSshServer: give at least one host key');
  const authTimeoutMs = options.authTimeoutMs ?? 10_000;
  const maxAuthTries = options.maxAuthTries ?? 6;
  const maxChannels = options.maxChannels ?? 10;
  const keepaliveMs = options.keepaliveMs ?? 15_000;
  for (const [name, value] of [
    ['keepaliveMs', keepaliveMs],
    ['authTimeoutMs', authTimeoutMs],
    ['maxAuthTries', maxAuthTries],
    ['maxChannels', maxChannels],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw invalidOption(`createSshServer: ${name} must be a positive integer, got ${value}`);
    }
  }
  const source =
    typeof options.authorizedKeys === 'string'
      ? authorizedKeysFile(options.authorizedKeys, { onError: options.onError })
      : options.authorizedKeys;
  const counters = { handshakes: 0, authFailures: 0, channelsOpen: 0, channelsTotal: 0 };
  const pending = new WeakMap<Socket, (client: Ssh2Connection) => void>();
  let ssh2: Ssh2ServerType;
  try {
    ssh2 = new Ssh2Server({
      hostKeys: [...options.hostKeys],
      algorithms: toSsh2Algorithms(options.algorithms ?? DEFAULT_ALGORITHMS) as never,
      ident: 'sock',
      // A peer that vanished without a FIN would otherwise hold its session and channels for ever.
      keepaliveInterval: keepaliveMs,
      keepaliveCountMax: 3,
    });
  } catch (err) {
    throw invalidOption(`createSshServer: ${(err as Error).message}`);
  }
  ssh2.on('connection', (client) => {
    // ssh2 creates its client object inside; its socket is how we find the core connection it belongs to.
    const socket = (client as unknown as { _sock: Socket })._sock;
    pending.get(socket)?.(client);
  });

  const session = (socket: Socket, conn: ConnectionControl): Promise<Duplex> =>
    new Promise<Duplex>((resolve, reject) => {
      let attempts = 0;
      let settled = false;
      let client: Ssh2Connection | undefined;
      let channels = 0;
      let identity: (SshIdentity & { key: AuthorizedKey }) | undefined;
      const finish = (err: Error | undefined, stream?: Duplex) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (err) {
          const reason = (err as { reason?: string }).reason ?? SshReason.HANDSHAKE_FAILED;
          if (reason === SshReason.AUTH_FAILED) counters.authFailures++;
          // Reject synchronously, before the socket's 'close' (one tick away) finishes the connection as
          // merely closed: guards must see the reason to strike.
          conn.reject({ reason, message: err.message }, 'handshake', 'ssh');
          client?.end();
          socket.destroy();
          // Settle after 'close', when core's own handling of the failure is a no-op: one strike, not two.
          if (closeSeen) reject(err);
          else socket.once('close', () => reject(err));
        } else resolve(stream as Duplex);
      };
      const deadline = setTimeout(
        () =>
          finish(sshError(SshReason.AUTH_TIMEOUT, `no successful authentication within ${authTimeoutMs} ms`)),
        authTimeoutMs,
      );
      let closeSeen = false;
      socket.once('close', () => {
        closeSeen = true;
      });
      const left = () => {
        if (attempts > 0)
          finish(
            sshError(
              SshReason.AUTH_FAILED,
              `${attempts} failed authentication attempt(s), then the client left`,
            ),
          );
        else
          finish(
            sshError(SshReason.HANDSHAKE_FAILED, 'the client closed the connection before authenticating'),
          );
      };
      // 'end' (FIN) and 'error' (RST) come before 'close'; 'close' catches whatever is left.
      socket.once('end', left);
      socket.once('error', left);
      socket.once('close', left);
      pending.set(socket, (c) => {
        client = c;
        c.on('error', () => {
          // Protocol errors end in 'close', which settles the handshake or closes the session stream.
        });
        c.once('handshake', () => counters.handshakes++);
        c.on('authentication', (ctx) => {
          authenticate(ctx, conn.remoteAddress).then(
            (match) => {
              if (settled) return;
              if (match) {
                // Only a verified signature names who is in; a bare key query ("would this key do?") does not.
                if (ctx.method === 'publickey' && ctx.signature) identity = match;
                ctx.accept();
                return;
              }
              if (ctx.method !== 'none') attempts++;
              if (attempts >= maxAuthTries) {
                finish(
                  sshError(
                    SshReason.AUTH_FAILED,
                    `${attempts} failed authentication attempts (maxAuthTries ${maxAuthTries})`,
                  ),
                );
              } else ctx.reject(['publickey']);
            },
            () => {
              if (!settled) ctx.reject(['publickey']);
            },
          );
        });
        c.once('ready', () => {
          finish(undefined, sessionStream(c));
        });
        const peer = (): AdoptedPeer => {
          const { key: _key, ...id } = identity!;
          return {
            remoteAddress: conn.remoteAddress,
            remotePort: conn.remotePort,
            localAddress: conn.localAddress,
            localPort: conn.localPort,
            transport: 'ssh',
            identity: { ...id },
          };
        };
        /** Count a channel from open to close: sessions count from their opening, used or not. */
        const open = new Set<object>();
        const untrack = (channel: object) => {
          if (!open.delete(channel)) return;
          channels--;
          counters.channelsOpen--;
        };
        const track = (channel: { once(event: 'close', listener: () => void): unknown }) => {
          open.add(channel);
          channels++;
          counters.channelsOpen++;
          counters.channelsTotal++;
          channel.once('close', () => untrack(channel));
        };
        // A dropped connection does not always emit 'close' on every session: settle the count here.
        c.once('close', () => {
          for (const channel of [...open]) untrack(channel);
        });
        c.on('tcpip', (accept, rejectChannel, info) => {
          const route = options.routes.find(
            (r) =>
              'host' in r && r.host.toLowerCase() === info.destIP.toLowerCase() && r.port === info.destPort,
          );
          if (!identity || !route || channels >= maxChannels) return rejectChannel();
          if (!keyAllowsForward(identity.key, info.destIP, info.destPort)) return rejectChannel();
          const channel = accept();
          track(channel);
          route.server.adopt(channel, peer());
        });
        c.on('session', (accept, rejectSession) => {
          if (!identity || channels >= maxChannels) return rejectSession();
          const session = accept();
          track(session);
          let used = false;
          // Only subsystems are served; shells, exec, ptys, env and agent requests have no listener, so
          // ssh2 refuses them.
          session.on('subsystem', (acceptSub, rejectSub, info) => {
            const route = options.routes.find((r) => 'subsystem' in r && r.subsystem === info.name);
            if (!route || used) return rejectSub();
            used = true;
            route.server.adopt(acceptSub(), peer());
          });
        });
      });
      // Core's listener keeps half-open sockets; ssh2 expects the socket to close when the peer's FIN comes.
      socket.once('end', () => socket.end());
      // When ssh2 ends the connection itself (keepalive timeout, protocol error), a peer that never sends
      // its FIN must not hold the socket: destroy it shortly after ours is sent.
      socket.once('finish', () => setTimeout(() => socket.destroy(), 1000).unref());
      ssh2.injectSocket(socket);
      socket.resume();
    });

  const authenticate = async (
    ctx: AuthContext,
    address: string,
  ): Promise<(SshIdentity & { key: AuthorizedKey }) | undefined> => {
    if (ctx.method !== 'publickey') return undefined;
    const keys = await source.keys();
    const key = keys.find((k) => k.keyType === ctx.key.algo && k.key.equals(ctx.key.data));
    if (!key || !keyAllowsAddress(key, address)) return undefined;
    if (ctx.signature) {
      const parsed = utils.parseKey(`${key.keyType} ${key.key.toString('base64')}`);
      if (parsed instanceof Error) return undefined;
      if (parsed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) return undefined;
    }
    // Without a signature this only answers "this key would do" (RFC 4252 §7); ssh2 then asks again, signed.
    return {
      kind: 'ssh',
      user: ctx.username,
      keyType: key.keyType,
      fingerprint: sha256Fingerprint(key.key),
      comment: key.comment,
      key,
    };
  };

  const tcp = createServer({
    framing: raw(),
    plugins: options.plugins,
    observers: options.observers,
    transport: { name: 'ssh', upgrade: session },
    // The outer connection only lives as long as its SSH session; channels carry the traffic.
    handler: (conn) => new Promise<void>((resolve) => void conn.closed.then(() => resolve())),
  });

  return {
    tcp,
    listen: (o) => tcp.listen(o),
    address: () => tcp.address(),
    close: (o) => tcp.close(o),
    stats: () => ({ ...counters }),
  };
}

/**
 * What the outer core connection holds after authentication: no bytes of its own (channels carry the
 * traffic); it ends when the SSH client goes away, and closing it ends the SSH connection.
 */
function sessionStream(client: Ssh2Connection): Duplex {
  const stream = new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      callback();
    },
    final(callback) {
      client.end();
      callback();
    },
    destroy(err, callback) {
      client.end();
      callback(err);
    },
  });
  client.once('close', () => {
    stream.push(null);
    stream.destroy();
  });
  return stream;
}
