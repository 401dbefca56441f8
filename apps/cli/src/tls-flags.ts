import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parseSpiffeId, type TlsClientOptions, type TlsProfile, type TlsTransportOptions } from '@sock/tls';
import type { Command } from 'commander';
import { UsageError } from './errors.js';
import type { ConfigTls } from './listen-config.js';
import { collect, oneOf } from './parse.js';

export interface ServerTlsFlags {
  tls?: boolean;
  ssl?: boolean;
  tlsCert?: string;
  sslCert?: string;
  tlsKey?: string;
  sslKey?: string;
  tlsCa?: string;
  sslTrustfile?: string;
  requireClientCert?: boolean;
  allowSpiffe?: string[];
  tlsProfile?: string;
  config?: string;
}

export function addServerTlsFlags(cmd: Command): Command {
  return cmd
    .option('--tls', 'serve TLS (Mozilla intermediate by default); needs --tls-cert and --tls-key')
    .option('--ssl', 'alias of --tls (ncat)')
    .option('--tls-cert <file>', 'certificate chain (PEM)')
    .option('--ssl-cert <file>', 'alias of --tls-cert (ncat)')
    .option('--tls-key <file>', 'private key (PEM)')
    .option('--ssl-key <file>', 'alias of --tls-key (ncat)')
    .option('--tls-ca <file>', 'CA bundle that client certificates must chain to (asks for one)')
    .option('--ssl-trustfile <file>', 'alias of --tls-ca (ncat)')
    .option('--require-client-cert', 'refuse clients without a valid certificate (mutual TLS)')
    .option(
      '--allow-spiffe <id>',
      'allow only clients whose certificate holds this SPIFFE ID (repeatable)',
      collect,
    )
    .option('--tls-profile <profile>', 'intermediate (TLS 1.2+1.3, default) or modern (TLS 1.3 only)');
}

function existing(path: string | undefined, flag: string): { path: string } | undefined {
  if (path === undefined) return undefined;
  // A missing file and a directory are the same mistake: a usage error (status 2), before anything starts.
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) throw new UsageError(`${flag}: no such file: ${path}`);
  if (!stat.isFile()) throw new UsageError(`${flag}: not a file: ${path} (give the PEM file inside it)`);
  return { path };
}

/**
 * The TLS transport options the flags ask for, on top of a `--config` file's `tls` section (which turns
 * TLS on by itself); flags override the file. Undefined for plain TCP.
 */
export function serverTls(
  flags: ServerTlsFlags,
  handshakeTimeout?: number,
  fromFile?: ConfigTls,
): { options: TlsTransportOptions; summary: string } | undefined {
  const file = fromFile ?? {};
  const cert = flags.tlsCert ?? flags.sslCert ?? file.cert;
  const key = flags.tlsKey ?? flags.sslKey ?? file.key;
  const ca = flags.tlsCa ?? flags.sslTrustfile ?? file.ca;
  const allowSpiffe = flags.allowSpiffe ?? file.allowSpiffe;
  const on = flags.tls || flags.ssl || fromFile !== undefined;
  if (!on) {
    if (cert || key || ca || flags.requireClientCert || flags.allowSpiffe || flags.tlsProfile) {
      throw new UsageError('TLS flags given without --tls (or --ssl)');
    }
    return undefined;
  }
  if (!cert || !key)
    throw new UsageError(
      '--tls needs --tls-cert <file> and --tls-key <file> (or tls.cert and tls.key in --config; make them with `sock cert`)',
    );
  let clientAuth = flags.requireClientCert ? 'require' : file.clientAuth;
  if (allowSpiffe) {
    if (clientAuth !== undefined && clientAuth !== 'require') {
      throw new UsageError(
        `--config: ${flags.config}: config.tls.clientAuth: must be require with allowSpiffe (or --allow-spiffe), got ${JSON.stringify(clientAuth)}`,
      );
    }
    clientAuth = 'require';
  }
  if (clientAuth !== undefined && clientAuth !== 'none' && !ca) {
    throw new UsageError(
      '--require-client-cert, --allow-spiffe and tls.clientAuth optional|require need --tls-ca <file> (or tls.ca): the CA client certificates chain to',
    );
  }
  for (const id of flags.allowSpiffe ?? []) {
    try {
      parseSpiffeId(id);
    } catch (err) {
      throw new UsageError(`--allow-spiffe: ${(err as Error).message}`);
    }
  }
  const profile = flags.tlsProfile
    ? oneOf(flags.tlsProfile, ['intermediate', 'modern'] as const, '--tls-profile')
    : file.profile;
  const caFile = existing(ca, '--tls-ca');
  const options: TlsTransportOptions = {
    cert: existing(cert, '--tls-cert')!,
    key: existing(key, '--tls-key')!,
    ...(caFile ? { ca: caFile } : {}),
    clientAuth: clientAuth ?? (caFile ? 'optional' : 'none'),
    ...(allowSpiffe ? { authorize: allowSpiffe.map((spiffeId) => ({ spiffeId })) } : {}),
    ...(profile ? { profile: profile as TlsProfile } : {}),
    ...(handshakeTimeout !== undefined ? { handshakeTimeout } : {}),
  };
  warnIfEd25519(options.cert as { path: string });
  const parts = [`tls ${profile ?? 'intermediate'}`];
  if (options.clientAuth !== 'none') parts.push(`client-cert ${options.clientAuth}`);
  if (allowSpiffe) parts.push(`spiffe ${allowSpiffe.join(',')}`);
  return { options, summary: parts.join(', ') };
}

/** Say it at start-up, where the operator looks: browsers and most clients cannot use such a server. */
function warnIfEd25519(cert: { path: string }): void {
  let type: string | undefined;
  try {
    type = new X509Certificate(readFileSync(cert.path)).publicKey.asymmetricKeyType;
  } catch {
    return; // the transport reports an unreadable certificate with its own error
  }
  if (type === 'ed25519') {
    process.stderr.write(
      'sock: warning: the server certificate is Ed25519: browsers and most TLS clients cannot connect; issue an ECDSA P-256 one (sock cert issue without --ed25519)\n',
    );
  }
}

export interface ClientTlsFlags {
  tls?: boolean;
  ssl?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  sslTrustfile?: string;
  sslCert?: string;
  sslKey?: string;
  sslVerify?: boolean;
  servername?: string;
  pin?: string[];
  insecure?: boolean;
}

export function addClientTlsFlags(cmd: Command): Command {
  return cmd
    .option('--tls', 'connect with TLS (verifies the server against --tls-ca or the public roots)')
    .option('--ssl', 'alias of --tls (ncat)')
    .option('--tls-ca <file>', 'CA bundle the server certificate must chain to')
    .option('--tls-cert <file>', 'client certificate for mutual TLS (PEM)')
    .option('--tls-key <file>', 'client private key (PEM)')
    .option('--ssl-trustfile <file>', 'alias of --tls-ca (ncat)')
    .option('--ssl-cert <file>', 'alias of --tls-cert (ncat)')
    .option('--ssl-key <file>', 'alias of --tls-key (ncat)')
    .option('--ssl-verify', 'accepted for ncat habits: sock always verifies the server (see --insecure)')
    .option('--servername <name>', 'name the server certificate must hold (and SNI); default the host')
    .option(
      '--pin <sha256>',
      "server key pin: base64 SHA-256 of its SPKI (repeatable; see 'sock cert pin')",
      collect,
    )
    .option('--insecure', 'skip certificate verification (warns; pins still apply)');
}

export function clientTls(given: ClientTlsFlags): TlsClientOptions | undefined {
  // ncat's names are aliases; the sock names win when both are given.
  const flags: ClientTlsFlags = {
    ...given,
    tlsCa: given.tlsCa ?? given.sslTrustfile,
    tlsCert: given.tlsCert ?? given.sslCert,
    tlsKey: given.tlsKey ?? given.sslKey,
  };
  // As in ncat, an --ssl-* flag implies --ssl.
  const on =
    flags.tls ||
    flags.ssl ||
    [given.sslVerify, given.sslTrustfile, given.sslCert, given.sslKey].some((f) => f !== undefined);
  if (!on) {
    if (flags.tlsCa || flags.tlsCert || flags.tlsKey || flags.servername || flags.pin || flags.insecure) {
      throw new UsageError('TLS flags given without --tls (or --ssl)');
    }
    return undefined;
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new UsageError('--tls-cert and --tls-key go together');
  }
  const caFile = existing(flags.tlsCa, '--tls-ca');
  const certFile = existing(flags.tlsCert, '--tls-cert');
  const keyFile = existing(flags.tlsKey, '--tls-key');
  return {
    ...(caFile ? { ca: caFile } : {}),
    ...(certFile ? { cert: certFile } : {}),
    ...(keyFile ? { key: keyFile } : {}),
    ...(flags.servername ? { servername: flags.servername } : {}),
    ...(flags.pin ? { pins: flags.pin } : {}),
    ...(flags.insecure ? { insecureSkipVerify: true } : {}),
  };
}
