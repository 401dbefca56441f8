/**
 * @packageDocumentation
 * IKEv2/IPsec through strongSwan's VICI socket: a hand-written VICI client (wire format with hard
 * limits, streamed events, reconnect), a typed API with safe defaults (IKEv2, X.509, AES-GCM with
 * Curve25519/ECP), and fail-closed routes so protected traffic never leaves in the clear.
 *
 * @example
 * ```ts
 * import { createIpsec } from '@sock/ipsec';
 *
 * const ipsec = createIpsec({ socket: '/var/run/charon.vici' });
 * await ipsec.loadConnection({ name: 'site-b', localAddress: '192.0.2.1', remoteAddress: '192.0.2.2',
 *   local: { cert: { path: '/etc/sock/a.crt' }, key: { path: '/etc/sock/a.key' } },
 *   remote: { id: 'b.example', ca: { path: '/etc/sock/ca.crt' } },
 *   localTs: ['10.1.0.0/24'], remoteTs: ['10.2.0.0/24'] });
 * await ipsec.initiate('site-b', { onLog: (l) => console.log(l.message) });
 * ```
 */
export type { ConnectionOptions } from './connection.js';
export { IpsecError, IpsecErrorCode, type IpsecErrorOptions } from './errors.js';
export { createFailClosed, type FailClosed, type FailClosedOptions } from './fail-closed.js';
export {
  type ControlOptions,
  createIpsec,
  type Ipsec,
  type IpsecOptions,
  type LogLine,
} from './ipsec.js';
export type { PemInput } from './material.js';
export { DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS } from './proposals.js';
export type { ChildSaInfo, ConnectionInfo, IkeSaInfo, UpDownEvent } from './sa-list.js';
export {
  createViciClient,
  DEFAULT_VICI_SOCKET,
  type RequestOptions,
  type ViciClient,
  type ViciClientOptions,
  type ViciClientStats,
  type ViciEvent,
} from './vici-client.js';
export type { DecodedMessage, ViciMessage, ViciValue } from './vici-wire.js';
