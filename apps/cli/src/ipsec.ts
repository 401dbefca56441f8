import { resolve } from 'node:path';
import {
  createFailClosed,
  createIpsec,
  DEFAULT_VICI_SOCKET,
  type Ipsec,
  IpsecError,
  type LogLine,
} from '@sock/ipsec';
import type { Command } from 'commander';
import { UsageError } from './errors.js';
import { loadIpsecConfig } from './ipsec-config.js';
import { parseDur } from './parse.js';

interface IpsecFlags {
  vici?: string;
  json?: boolean;
  timeout?: string;
  quiet?: boolean;
}

const print = (flags: IpsecFlags, json: unknown, line: string) =>
  process.stdout.write(flags.json ? `${JSON.stringify(json)}\n` : `${line}\n`);

/** The daemon's log, as progress on stderr (stdout stays for the result). */
const progress = (flags: IpsecFlags) =>
  flags.quiet ? undefined : (l: LogLine) => process.stderr.write(`charon: ${l.message}\n`);

async function withIpsec<T>(flags: IpsecFlags, fn: (ipsec: Ipsec) => Promise<T>): Promise<T> {
  const ipsec = createIpsec({ socket: resolve(flags.vici ?? DEFAULT_VICI_SOCKET) });
  try {
    return await fn(ipsec);
  } finally {
    await ipsec.close();
  }
}

/** Invalid or insecure settings are the user's to fix: a usage error that names the field. */
function asUsage(path: string, err: unknown): never {
  if (
    IpsecError.isInstance(err) &&
    (err.code === 'ERR_SOCK_IPSEC_INVALID_OPTION' || err.code === 'ERR_SOCK_IPSEC_INSECURE')
  )
    throw new UsageError(`${path}: config.${err.message} (${err.code})`);
  throw err;
}

export function ipsecCommand(program: Command): void {
  const ipsec = program
    .command('ipsec')
    .description("IKEv2/IPsec tunnels through strongSwan's VICI socket (charon must be running)");
  const common = (cmd: Command) =>
    cmd
      .option('--vici <socket>', `charon's VICI socket (default ${DEFAULT_VICI_SOCKET})`)
      .option('--json', 'JSON output');

  common(ipsec.command('up'))
    .description('load a connection from a YAML file, install its fail-closed routes, and bring it up')
    .argument('<config.yaml>')
    .option('--timeout <dur>', 'how long the IKE exchange may take', '30s')
    .option('--quiet', "do not print charon's log on stderr")
    .action(async (path: string, flags: IpsecFlags) => {
      const config = await loadIpsecConfig(path);
      const timeoutMs = parseDur(flags.timeout ?? '30s', '--timeout');
      await withIpsec(flags, async (ipsec) => {
        const loaded = await ipsec.loadConnection(config.connection).catch((err) => asUsage(path, err));
        if (config.failClosed) await createFailClosed({ prefixes: loaded.remoteTs }).install();
        if (config.initiate) {
          const onLog = progress(flags);
          await ipsec.initiate(loaded.name, { timeoutMs, ...(onLog ? { onLog } : {}) });
        }
        const sa = (await ipsec.listSas({ name: loaded.name }))[0];
        print(
          flags,
          {
            name: loaded.name,
            loaded: true,
            initiated: config.initiate,
            failClosed: config.failClosed,
            sa: sa ?? null,
          },
          config.initiate
            ? `up ${loaded.name}: ${sa?.state ?? 'no SA'} ${sa ? `${sa.encryption} ${sa.keyExchange}` : ''} ${loaded.localTs.join(',')} <=> ${loaded.remoteTs.join(',')}${config.failClosed ? ' (fail-closed routes installed)' : ''}`
            : `loaded ${loaded.name} (waiting for the peer)${config.failClosed ? ', fail-closed routes installed' : ''}`,
        );
      });
    });

  common(ipsec.command('down'))
    .description(
      'terminate the SAs of a connection (its fail-closed routes stay: traffic is refused, not leaked)',
    )
    .argument('<name>')
    .option('--timeout <dur>', 'how long the teardown may take', '30s')
    .option('--quiet', "do not print charon's log on stderr")
    .action(async (name: string, flags: IpsecFlags) => {
      const timeoutMs = parseDur(flags.timeout ?? '30s', '--timeout');
      await withIpsec(flags, async (ipsec) => {
        const onLog = progress(flags);
        await ipsec.terminate(name, { timeoutMs, ...(onLog ? { onLog } : {}) }).catch((err) => {
          if (IpsecError.isInstance(err) && err.code === 'ERR_SOCK_IPSEC_INVALID_OPTION')
            throw new UsageError(err.message);
          throw err;
        });
        print(flags, { name, down: true }, `down ${name}`);
      });
    });

  common(ipsec.command('status'))
    .description('loaded connections and their SAs')
    .action(async (flags: IpsecFlags) => {
      await withIpsec(flags, async (ipsec) => {
        const connections = await ipsec.listConnections();
        const sas = await ipsec.listSas();
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ connections, sas })}\n`);
          return;
        }
        if (connections.length === 0) process.stdout.write('no connections loaded\n');
        for (const c of connections) {
          const sa = sas.find((s) => s.name === c.name);
          const state = sa
            ? `${sa.state} ${sa.localHost} <=> ${sa.remoteHost} ${sa.encryption} ${sa.keyExchange}`
            : 'down';
          process.stdout.write(`${c.name}: ${state}\n`);
          for (const child of sa?.children ?? [])
            process.stdout.write(
              `  ${child.name}: ${child.state} ${child.mode} ${child.localTs.join(',')} <=> ${child.remoteTs.join(',')} in ${child.bytesIn} B, out ${child.bytesOut} B\n`,
            );
        }
      });
    });

  common(ipsec.command('watch'))
    .description('print ike-updown and child-updown events until interrupted (reconnects if charon restarts)')
    .action(async (flags: IpsecFlags) => {
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      process.once('SIGTERM', () => stop.abort());
      await withIpsec(flags, async (ipsec) => {
        const events = ipsec.events({ signal: stop.signal });
        // Answered after the registration: once it is back, no event can be missed.
        await ipsec.version({ signal: stop.signal });
        process.stderr.write('watching (Ctrl-C to stop)\n');
        try {
          for await (const e of events)
            print(
              flags,
              e,
              `${e.type} ${e.ike}${e.children.length ? ` (${e.children.join(',')})` : ''} ${e.up ? 'up' : 'down'}`,
            );
        } catch (err) {
          if (!stop.signal.aborted) throw err;
        }
      });
    });
}
