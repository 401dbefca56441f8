import { IpsecError, IpsecErrorCode } from './errors.js';
import { loadCertificate, loadPrivateKey, type PemInput } from './material.js';
import { checkProposals, DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS } from './proposals.js';
import { checkAddress, checkCidrs, checkIdentity, checkName, checkSeconds } from './validate.js';
import type { ViciMessage } from './vici-wire.js';

/**
 * An IKEv2 connection with X.509 authentication on both sides and one child SA (named like the
 * connection). There is no field for IKEv1 or pre-shared keys: they cannot be asked for.
 */
export interface ConnectionOptions {
  /** Connection (and child SA) name: 1-64 of [A-Za-z0-9._-]. */
  name: string;
  /** This host's outer (IKE/ESP) address. */
  localAddress: string;
  /** The peer's outer address. */
  remoteAddress: string;
  local: {
    /** Our certificate: PEM text or `{ path }`. */
    cert: PemInput;
    /** Its private key (checked against the certificate before anything is sent). */
    key: PemInput;
    /** Our IKE identity. Default: the certificate's first DNS name, else its subject. */
    id?: string;
  };
  remote: {
    /** The identity the peer's certificate must carry (required: no wildcard peers). */
    id: string;
    /** The CA the peer's certificate must chain to. */
    ca: PemInput;
  };
  /** Traffic selectors (addresses or CIDRs) on this side and the peer's side. */
  localTs: string[];
  remoteTs: string[];
  /** `tunnel` (default) or `transport`. */
  mode?: 'tunnel' | 'transport';
  /** IKE proposals. Default {@link DEFAULT_IKE_PROPOSALS}. */
  ikeProposals?: string[];
  /** ESP proposals. Default {@link DEFAULT_ESP_PROPOSALS}. */
  espProposals?: string[];
  /** IKE SA rekeying interval. Default 14 400 s (4 h); 60 s to 7 days. Rekeying cannot be turned off. */
  ikeRekeySeconds?: number;
  /** CHILD SA rekeying interval. Default 3600 s (1 h); 60 s to 1 day. */
  childRekeySeconds?: number;
  /** Dead peer detection interval. Default 30 s. */
  dpdDelaySeconds?: number;
  /** What charon does on load: nothing (`none`, default), install a trap (`trap`), or initiate (`start`). */
  startAction?: 'none' | 'trap' | 'start';
  /** Accept proposals outside the safe set (SHA-1, MODP-2048, CBC…). Only for a legacy peer. */
  dangerouslyAllowWeakProposals?: boolean;
}

/** What loadConnection sends: validated, with key material in memory. */
export interface PreparedConnection {
  name: string;
  key: string;
  message: ViciMessage;
  localTs: string[];
  remoteTs: string[];
}

const MODES = ['tunnel', 'transport'] as const;
const START = ['none', 'trap', 'start'] as const;

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
    throw new IpsecError(
      IpsecErrorCode.INVALID_OPTION,
      `${field}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
      { details: { field } },
    );
  return value as T;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const KNOWN = new Set([
  'name',
  'localAddress',
  'remoteAddress',
  'local',
  'remote',
  'localTs',
  'remoteTs',
  'mode',
  'ikeProposals',
  'espProposals',
  'ikeRekeySeconds',
  'childRekeySeconds',
  'dpdDelaySeconds',
  'startAction',
  'dangerouslyAllowWeakProposals',
]);

/** Validate everything and read the certificates; nothing reaches the daemon before this passed. */
export async function prepareConnection(
  options: ConnectionOptions,
  signal?: AbortSignal,
): Promise<PreparedConnection> {
  if (!isObject(options))
    throw new IpsecError(IpsecErrorCode.INVALID_OPTION, 'connection: expected an options object');
  for (const key of Object.keys(options))
    if (!KNOWN.has(key))
      throw new IpsecError(IpsecErrorCode.INVALID_OPTION, `${key}: unknown connection option`, {
        details: { field: key },
      });
  const name = checkName('name', options.name);
  const localAddress = checkAddress('localAddress', options.localAddress);
  const remoteAddress = checkAddress('remoteAddress', options.remoteAddress);
  if (!isObject(options.local))
    throw new IpsecError(IpsecErrorCode.INVALID_OPTION, 'local: expected { cert, key, id? }', {
      details: { field: 'local' },
    });
  if (!isObject(options.remote))
    throw new IpsecError(IpsecErrorCode.INVALID_OPTION, 'remote: expected { id, ca }', {
      details: { field: 'remote' },
    });
  const remoteId = checkIdentity('remote.id', options.remote.id);
  const localTs = checkCidrs('localTs', options.localTs).map((t) => `${t.address}/${t.prefix}`);
  const remoteTs = checkCidrs('remoteTs', options.remoteTs).map((t) => `${t.address}/${t.prefix}`);
  const mode = oneOf('mode', options.mode, MODES, 'tunnel');
  const startAction = oneOf('startAction', options.startAction, START, 'none');
  const weak = options.dangerouslyAllowWeakProposals === true;
  const ikeProposals = checkProposals(
    'ikeProposals',
    options.ikeProposals ?? [...DEFAULT_IKE_PROPOSALS],
    weak,
  );
  const espProposals = checkProposals(
    'espProposals',
    options.espProposals ?? [...DEFAULT_ESP_PROPOSALS],
    weak,
  );
  const ikeRekey = checkSeconds('ikeRekeySeconds', options.ikeRekeySeconds ?? 14_400, 60, 7 * 86_400);
  const childRekey = checkSeconds('childRekeySeconds', options.childRekeySeconds ?? 3600, 60, 86_400);
  const dpd = checkSeconds('dpdDelaySeconds', options.dpdDelaySeconds ?? 30, 1, 3600);

  const cert = await loadCertificate('local.cert', options.local.cert as PemInput, signal);
  const key = await loadPrivateKey('local.key', options.local.key as PemInput, cert.cert, signal);
  const ca = await loadCertificate('remote.ca', options.remote.ca as PemInput, signal);
  if (!ca.cert.ca)
    throw new IpsecError(
      IpsecErrorCode.INVALID_OPTION,
      'remote.ca: the certificate is not a CA (basicConstraints CA:FALSE)',
      {
        details: { field: 'remote.ca' },
      },
    );
  const localId =
    options.local.id === undefined ? defaultIdentity(cert.cert) : checkIdentity('local.id', options.local.id);

  const message: ViciMessage = {
    [name]: {
      version: '2',
      local_addrs: [localAddress],
      remote_addrs: [remoteAddress],
      proposals: ikeProposals,
      rekey_time: `${ikeRekey}s`,
      dpd_delay: `${dpd}s`,
      unique: 'replace',
      local: { auth: 'pubkey', id: localId, certs: [cert.pem] },
      remote: { auth: 'pubkey', id: remoteId, cacerts: [ca.pem] },
      children: {
        [name]: {
          local_ts: localTs,
          remote_ts: remoteTs,
          mode,
          esp_proposals: espProposals,
          rekey_time: `${childRekey}s`,
          start_action: startAction,
          dpd_action: 'clear',
        },
      },
    },
  };
  return { name, key, message, localTs, remoteTs };
}

function defaultIdentity(cert: import('node:crypto').X509Certificate): string {
  const dns = /(?:^|, )DNS:([^,]+)/.exec(cert.subjectAltName ?? '')?.[1];
  if (dns) return checkIdentity('local.id (from the certificate)', dns);
  return checkIdentity('local.id (from the certificate subject)', cert.subject.split('\n').join(', '));
}
