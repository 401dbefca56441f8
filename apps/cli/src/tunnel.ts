import { type Connection, createServer, raw, type SockEvent, type SockServer } from '@sock/core';
import { createGuards, type Guards } from '@sock/guards';
import type { SshClientTransport } from '@sock/ssh';
import type { Command } from 'commander';
import { describeError, UsageError } from './errors.js';
import { addGuardFlags, type GuardFlags, guardPolicy } from './guard-flags.js';
import { collect, parsePort } from './parse.js';
import { addClientSshFlags, type ClientSshFlags, clientSsh } from './ssh-flags.js';
import { pipeTunnel } from './tunnel-pipe.js';

interface TunnelFlags extends GuardFlags, ClientSshFlags {
  local: string[];
  json?: boolean;
}

interface Forward {
  bindHost: string;
  bindPort: number;
  host: string;
  port: number;
}

/** `[bind:]port:host:hostport` as ssh -L takes it; IPv6 in brackets. */
function parseForward(spec: string): Forward {
  const parts: string[] = [];
  const re = /\[([^\]]*)\]|([^:]+)/g;
  for (const m of spec.matchAll(re)) parts.push(m[1] ?? m[2]!);
  const shape = /^(\[[^\]]*\]|[^:[\]]+)(:(\[[^\]]*\]|[^:[\]]+)){2,3}$/;
  if (!shape.test(spec) || (parts.length !== 3 && parts.length !== 4)) {
    throw new UsageError(`-L must be [bind:]port:host:hostport, got ${JSON.stringify(spec)}`);
  }
  const [bindHost, bindPort, host, port] = parts.length === 4 ? parts : ['127.0.0.1', ...parts];
  return {
    bindHost: bindHost!,
    bindPort: parsePort(bindPort!, '-L port', true),
    host: host!,
    port: parsePort(port!, '-L hostport'),
  };
}

/** The local side carries bytes as they come (raw framing); one framing for every listener. */
const TUNNEL_FRAMING = raw();

export function tunnelCommand(program: Command): void {
  const cmd = program
    .command('tunnel')
    .description(
      'forward local ports through an SSH server (like ssh -L), with the guard flags on the local listener',
    )
    .argument('<ssh-url>', 'ssh://user@bastion[:port]')
    .requiredOption(
      '-L, --local <spec>',
      '[bind:]port:host:hostport (repeatable; bind defaults to 127.0.0.1)',
      collect,
    )
    .option('--json', 'print the ready line as JSON');
  addClientSshFlags(cmd, false);
  addGuardFlags(cmd);
  cmd.addHelpText(
    'after',
    `
Example:
  sock tunnel -L 5432:db.internal:5432 ssh://deploy@bastion.example --ssh-key ~/.ssh/id_ed25519

Prints one line when ready: "tunnel <bind>:<port> -> <host>:<hostport> via <ssh-url>" per -L.`,
  );
  cmd.action(async (via: string, flags: TunnelFlags) => {
    const forwards = flags.local.map(parseForward);
    const transport = (await clientSsh(flags, via))!;
    const guarded = guardPolicy(flags);
    let guards: Guards | undefined;
    try {
      guards = guarded ? createGuards(guarded.policy) : undefined;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const servers: SockServer[] = [];
    const observers = [
      (e: SockEvent) => {
        if (e.type === 'reject' && e.closed)
          process.stderr.write(`sock: ${e.conn.remoteAddress} refused: ${e.reason}\n`);
      },
    ];
    for (const f of forwards) {
      const server = createServer({
        framing: TUNNEL_FRAMING,
        plugins: guards ? [guards.plugin] : [],
        observers,
        handler: (conn) => forward(conn, transport, f),
      });
      const bound = await server.listen({ host: f.bindHost, port: f.bindPort });
      servers.push(server);
      const line = {
        event: 'tunnel',
        address: bound.address,
        port: bound.port,
        host: f.host,
        hostPort: f.port,
        via,
      };
      const shown = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(line)}\n`
          : `tunnel ${shown}:${bound.port} -> ${f.host}:${f.port} via ${via}\n`,
      );
    }
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await Promise.all(servers.map((s) => s.close({ drainMs: 2000 })));
    guards?.close();
    await transport.close();
  });
}

/** Open the SSH channel for one accepted local connection and pipe the two (see `pipeTunnel`). */
async function forward(conn: Connection, transport: SshClientTransport, f: Forward): Promise<void> {
  let channel: Awaited<ReturnType<typeof transport.dial>>;
  try {
    channel = await transport.dial({ host: f.host, port: f.port, signal: conn.signal });
  } catch (err) {
    process.stderr.write(`sock: tunnel to ${f.host}:${f.port}: ${describeError(err)}\n`);
    return;
  }
  // A forward that breaks says why, once, and closes only its own connection.
  const broken = (err: unknown) => {
    if (conn.closing) return;
    process.stderr.write(`sock: tunnel to ${f.host}:${f.port}: ${describeError(err)}\n`);
    conn.destroy();
  };
  channel.on('error', broken);
  await pipeTunnel(conn, channel);
}
