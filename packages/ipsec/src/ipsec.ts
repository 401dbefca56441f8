import { type ConnectionOptions, prepareConnection } from './connection.js';
import { IpsecError, IpsecErrorCode, throwIfAborted } from './errors.js';
import { loadCertificate, loadPrivateKey, type PemInput } from './material.js';
import {
  type ConnectionInfo,
  type IkeSaInfo,
  parseConnections,
  parseSas,
  parseUpDown,
  type UpDownEvent,
} from './sa-list.js';
import { checkName } from './validate.js';
import {
  createViciClient,
  type ViciClient,
  type ViciClientOptions,
  type ViciClientStats,
} from './vici-client.js';
import type { DecodedMessage, ViciMessage } from './vici-wire.js';

/** One line of the daemon's log, streamed while it initiates or terminates. */
export interface LogLine {
  group: string;
  level: number;
  /** The IKE SA it concerns, when there is one. */
  ike: string;
  message: string;
}

/** Options of {@link Ipsec.initiate} and {@link Ipsec.terminate}. */
export interface ControlOptions {
  signal?: AbortSignal;
  /** How long the daemon may take (it is told, and the client waits that long plus 1 s). Default 30 000 ms. */
  timeoutMs?: number;
  /** Receives the daemon's log as progress. */
  onLog?: (line: LogLine) => void;
}

/** Options of {@link createIpsec}: those of the VICI client underneath (socket path, timeouts, limits). */
export interface IpsecOptions extends ViciClientOptions {}

/** Control of a running strongSwan charon over its VICI socket, returned by {@link createIpsec}. */
export interface Ipsec {
  /** The daemon's name and version. */
  version(options?: { signal?: AbortSignal }): Promise<{ daemon: string; version: string }>;
  /** Validate, load the private key and the connection. Returns the canonical traffic selectors. */
  loadConnection(
    options: ConnectionOptions,
    control?: { signal?: AbortSignal },
  ): Promise<{ name: string; localTs: string[]; remoteTs: string[] }>;
  /** Unload the named connection from charon; rejects with COMMAND_FAILED if charon refuses (e.g. unknown name). */
  unloadConnection(name: string, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Load one certificate into charon's credential store: a CA to trust (`ca: true`, which must be a CA
   * certificate) or an end-entity certificate. `loadConnection` already sends what a connection needs.
   */
  loadCertificate(source: PemInput, options?: { ca?: boolean; signal?: AbortSignal }): Promise<void>;
  /** Load a private key (PEM text or `{ path }`), re-encoded as PKCS#8. */
  loadKey(source: PemInput, options?: { signal?: AbortSignal }): Promise<void>;
  /** Bring the connection's IKE SA and CHILD SA up; resolves when both are established. */
  initiate(name: string, options?: ControlOptions): Promise<void>;
  /** Tear down every SA of the connection; resolves when they are gone. */
  terminate(name: string, options?: ControlOptions): Promise<void>;
  /** The connections charon has loaded (at most 10 000 entries; more rejects with PROTOCOL). */
  listConnections(options?: { signal?: AbortSignal }): Promise<ConnectionInfo[]>;
  /** The IKE SAs (with their CHILD SAs), all or those of connection `name`; at most 10 000 entries. */
  listSas(options?: { signal?: AbortSignal; name?: string }): Promise<IkeSaInfo[]>;
  /** `ike-updown` and `child-updown` events until `return()`/`break` or the signal. */
  events(options?: { signal?: AbortSignal }): AsyncIterableIterator<UpDownEvent>;
  /** The VICI client underneath, for commands this API does not wrap. */
  readonly vici: ViciClient;
  /** Counters of the VICI client underneath. */
  stats(): ViciClientStats;
  /** Close the VICI connection; pending operations fail with CLOSED and event iterators end. */
  close(): Promise<void>;
}

/** Cap on streamed list entries kept in memory (one event per SA or connection). */
const MAX_LISTED = 10_000;

/**
 * Create an {@link Ipsec} controller. Connects lazily: nothing is opened until the first operation, which
 * rejects with CONNECT_FAILED if charon's VICI socket cannot be reached. Throws IpsecError INVALID_OPTION
 * for a non-positive timeout or limit.
 */
export function createIpsec(options: IpsecOptions = {}): Ipsec {
  const vici = createViciClient(options);

  const check = (command: string, reply: DecodedMessage, what: string) => {
    if (reply.success === 'yes') return;
    const errmsg = typeof reply.errmsg === 'string' ? reply.errmsg : 'no reason given';
    throw new IpsecError(IpsecErrorCode.COMMAND_FAILED, `${what}: charon refused ${command}: ${errmsg}`, {
      details: { command, errmsg },
    });
  };

  const control = async (command: 'initiate' | 'terminate', name: string, opts: ControlOptions) => {
    checkName('name', name);
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const message: ViciMessage = { ike: name, timeout: String(timeoutMs), loglevel: '1' };
    if (command === 'initiate') message.child = name;
    const onLog = (m: DecodedMessage) =>
      opts.onLog?.({
        group: typeof m.group === 'string' ? m.group : '',
        level: Number(m.level) || 0,
        ike: typeof m['ikesa-name'] === 'string' ? m['ikesa-name'] : '',
        message: typeof m.msg === 'string' ? m.msg : '',
      });
    const reply = await vici.streamed(command, 'control-log', message, onLog, {
      timeoutMs: timeoutMs + 1000,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    check(command, reply, `${command} ${name}`);
  };

  const collect = async <T>(
    command: string,
    event: string,
    parse: (m: DecodedMessage) => T[],
    message: ViciMessage,
    signal?: AbortSignal,
  ) => {
    const out: T[] = [];
    let overflow = false;
    await vici.streamed(
      command,
      event,
      message,
      (m) => {
        if (out.length >= MAX_LISTED) overflow = true;
        else out.push(...parse(m));
      },
      signal ? { signal } : {},
    );
    if (overflow)
      throw new IpsecError(
        IpsecErrorCode.PROTOCOL,
        `${command}: the daemon listed more than ${MAX_LISTED} entries`,
      );
    return out;
  };

  return {
    vici,
    stats: () => vici.stats(),
    close: () => vici.close(),
    async version(opts = {}) {
      const reply = await vici.request('version', {}, opts);
      return { daemon: String(reply.daemon ?? ''), version: String(reply.version ?? '') };
    },
    async loadConnection(connection, opts = {}) {
      const prepared = await prepareConnection(connection, opts.signal);
      throwIfAborted(opts.signal, `loadConnection ${prepared.name}`);
      check(
        'load-key',
        await vici.request('load-key', { type: 'any', data: prepared.key }, opts),
        `loadConnection ${prepared.name}`,
      );
      check(
        'load-conn',
        await vici.request('load-conn', prepared.message, opts),
        `loadConnection ${prepared.name}`,
      );
      return { name: prepared.name, localTs: prepared.localTs, remoteTs: prepared.remoteTs };
    },
    async loadCertificate(source, opts = {}) {
      const { pem, cert } = await loadCertificate('certificate', source, opts.signal);
      if (opts.ca && !cert.ca)
        throw new IpsecError(
          IpsecErrorCode.INVALID_OPTION,
          'certificate: ca: true, but it is not a CA certificate',
          {
            details: { field: 'certificate' },
          },
        );
      const message = { type: 'X509', flag: opts.ca ? 'CA' : 'NONE', data: pem };
      check('load-cert', await vici.request('load-cert', message, opts), 'loadCertificate');
    },
    async loadKey(source, opts = {}) {
      const key = await loadPrivateKey('key', source, undefined, opts.signal);
      check('load-key', await vici.request('load-key', { type: 'any', data: key }, opts), 'loadKey');
    },
    async unloadConnection(name, opts = {}) {
      checkName('name', name);
      check('unload-conn', await vici.request('unload-conn', { name }, opts), `unloadConnection ${name}`);
    },
    initiate: (name, opts = {}) => control('initiate', name, opts),
    terminate: (name, opts = {}) => control('terminate', name, opts),
    listConnections: (opts = {}) => collect('list-conns', 'list-conn', parseConnections, {}, opts.signal),
    listSas: (opts = {}) =>
      collect(
        'list-sas',
        'list-sa',
        parseSas,
        opts.name ? { ike: checkName('name', opts.name) } : {},
        opts.signal,
      ),
    events(opts = {}) {
      const inner = vici.subscribe(['ike-updown', 'child-updown'], opts);
      const iterator: AsyncIterableIterator<UpDownEvent> = {
        [Symbol.asyncIterator]: () => iterator,
        next: async () => {
          const r = await inner.next();
          if (r.done) return { value: undefined, done: true };
          return { value: parseUpDown(r.value.name as UpDownEvent['type'], r.value.message), done: false };
        },
        return: async () => {
          await inner.return?.();
          return { value: undefined, done: true };
        },
      };
      return iterator;
    },
  };
}
