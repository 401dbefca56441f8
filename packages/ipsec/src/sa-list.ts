import type { DecodedMessage } from './vici-wire.js';

/** One CHILD SA as list-sas reports it. */
export interface ChildSaInfo {
  name: string;
  state: string;
  mode: string;
  localTs: string[];
  remoteTs: string[];
  bytesIn: number;
  bytesOut: number;
}

/** One IKE SA as list-sas reports it. */
export interface IkeSaInfo {
  name: string;
  uniqueId: string;
  state: string;
  version: string;
  localHost: string;
  remoteHost: string;
  localId: string;
  remoteId: string;
  encryption: string;
  keyExchange: string;
  children: ChildSaInfo[];
}

/** One loaded connection as list-conns reports it. */
export interface ConnectionInfo {
  name: string;
  version: string;
  localAddrs: string[];
  remoteAddrs: string[];
  children: string[];
}

const text = (v: unknown) => (typeof v === 'string' ? v : '');
const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const section = (v: unknown): DecodedMessage =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as DecodedMessage) : Object.create(null);
const count = (v: unknown) => {
  const n = Number(text(v));
  return Number.isFinite(n) ? n : 0;
};

/** A list-sa event: one section per IKE SA, keyed by its name. */
export function parseSas(event: DecodedMessage): IkeSaInfo[] {
  return Object.entries(event).map(([name, raw]) => {
    const sa = section(raw);
    const kids = section(sa['child-sas']);
    return {
      name,
      uniqueId: text(sa.uniqueid),
      state: text(sa.state),
      version: text(sa.version),
      localHost: text(sa['local-host']),
      remoteHost: text(sa['remote-host']),
      localId: text(sa['local-id']),
      remoteId: text(sa['remote-id']),
      encryption: [text(sa['encr-alg']), text(sa['encr-keysize'])].filter(Boolean).join('-'),
      keyExchange: text(sa['dh-group']),
      children: Object.values(kids).map((k) => {
        const c = section(k);
        return {
          name: text(c.name),
          state: text(c.state),
          mode: text(c.mode),
          localTs: list(c['local-ts']),
          remoteTs: list(c['remote-ts']),
          bytesIn: count(c['bytes-in']),
          bytesOut: count(c['bytes-out']),
        };
      }),
    };
  });
}

/** A list-conn event: one section per connection. */
export function parseConnections(event: DecodedMessage): ConnectionInfo[] {
  return Object.entries(event).map(([name, raw]) => {
    const c = section(raw);
    return {
      name,
      version: text(c.version),
      localAddrs: list(c.local_addrs),
      remoteAddrs: list(c.remote_addrs),
      children: Object.keys(section(c.children)),
    };
  });
}

/** An `ike-updown` or `child-updown` event, typed. */
export interface UpDownEvent {
  type: 'ike-updown' | 'child-updown';
  up: boolean;
  /** The IKE SA (connection) name. */
  ike: string;
  /** The CHILD SA names concerned (child-updown). */
  children: string[];
  state: string;
}

export function parseUpDown(type: UpDownEvent['type'], message: DecodedMessage): UpDownEvent {
  const up = message.up === 'yes';
  const [ike = '', raw] =
    Object.entries(message).find(([k, v]) => k !== 'up' && typeof v === 'object' && !Array.isArray(v)) ?? [];
  const sa = section(raw);
  return {
    type,
    up,
    ike,
    children: Object.values(section(sa['child-sas'])).map((c) => text(section(c).name)),
    state: text(sa.state),
  };
}
