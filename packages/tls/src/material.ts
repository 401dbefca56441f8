import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { SockError, SockErrorCode } from '@sock/core';

/**
 * Certificates and keys: PEM text (a string or Buffer holding `-----BEGIN …`), or `{ path }` to read a
 * PEM file. Files are read again on every reload.
 */
export type PemSource = string | Buffer | { readonly path: string };

/** A certificate chain (leaf first, then intermediates) and its private key. */
export interface KeyPair {
  cert: PemSource;
  key: PemSource;
  /** For an encrypted private key. */
  passphrase?: string;
}

/** @internal Loaded bytes of one key pair. */
export interface LoadedPair {
  cert: Buffer;
  key: Buffer;
  passphrase?: string | undefined;
  /** The leaf, parsed. */
  leaf: X509Certificate;
}

function isPath(source: PemSource): source is { readonly path: string } {
  return typeof source === 'object' && !Buffer.isBuffer(source) && source !== null && 'path' in source;
}

function inline(source: string | Buffer, what: string): Buffer {
  const buf = Buffer.isBuffer(source) ? source : Buffer.from(source);
  if (!buf.includes('-----BEGIN ')) {
    const hint =
      typeof source === 'string' && source.length < 4096 && !source.includes('\n')
        ? ` (it looks like a file path: pass { path: ${JSON.stringify(source)} })`
        : '';
    throw new SockError(SockErrorCode.INVALID_OPTION, `${what}: expected PEM text${hint}`, {
      reason: 'tls-cert-invalid',
    });
  }
  return buf;
}

/** @internal Read a source now (startup). */
export function readPemSync(source: PemSource, what: string): Buffer {
  if (!isPath(source)) return inline(source, what);
  try {
    return inline(readFileSync(source.path), `${what} (${source.path})`);
  } catch (err) {
    if (SockError.isInstance(err)) throw err;
    throw unreadable(source.path, what, err);
  }
}

/** @internal Read a source (reload). */
export async function readPem(source: PemSource, what: string): Promise<Buffer> {
  if (!isPath(source)) return inline(source, what);
  let buf: Buffer;
  try {
    buf = await readFile(source.path);
  } catch (err) {
    throw unreadable(source.path, what, err);
  }
  return inline(buf, `${what} (${source.path})`);
}

function unreadable(path: string, what: string, err: unknown): SockError {
  return new SockError(
    SockErrorCode.INVALID_OPTION,
    `${what}: cannot read ${path}: ${(err as Error)?.message ?? String(err)}`,
    { cause: err, reason: 'tls-cert-unreadable' },
  );
}

/** @internal Directories holding file sources (watched for reloads). */
export function sourceDirs(sources: readonly (PemSource | undefined)[]): string[] {
  const dirs = new Set<string>();
  for (const s of sources) if (s !== undefined && isPath(s)) dirs.add(dirname(resolve(s.path)));
  return [...dirs];
}

/** @internal Every PEM certificate block in a bundle, parsed. Throws on none or on a malformed one. */
export function parseCertificates(pem: Buffer, what: string): X509Certificate[] {
  const text = pem.toString('latin1');
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `${what}: no complete PEM certificate found (truncated?)`,
      {
        reason: 'tls-cert-invalid',
      },
    );
  }
  // A BEGIN without its END means a truncated file: refuse it rather than use a prefix of it.
  const begins = text.split('-----BEGIN CERTIFICATE-----').length - 1;
  if (begins !== blocks.length) {
    throw new SockError(SockErrorCode.INVALID_OPTION, `${what}: a PEM certificate is truncated`, {
      reason: 'tls-cert-invalid',
    });
  }
  return blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `${what}: a certificate does not parse: ${(err as Error).message}`,
        { cause: err, reason: 'tls-cert-invalid' },
      );
    }
  });
}

/**
 * @internal Check a key pair before it is used: the certificate parses, the key parses and matches it
 * (Node would accept a mismatched pair and fail every handshake), and `now` is within its validity.
 */
export function checkPair(
  cert: Buffer,
  key: Buffer,
  passphrase: string | undefined,
  what: string,
  now: number,
): LoadedPair {
  const chain = parseCertificates(cert, `${what} certificate`);
  const leaf = chain[0]!;
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(passphrase === undefined ? key : { key, passphrase });
  } catch (err) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `${what} key: does not parse (truncated, or a wrong passphrase?): ${(err as Error).message}`,
      { cause: err, reason: 'tls-key-invalid' },
    );
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `${what}: the private key does not match the certificate (${leaf.subject.replace(/\n/g, ', ')}); every handshake would fail`,
      { reason: 'tls-key-mismatch' },
    );
  }
  const from = Date.parse(leaf.validFrom);
  const to = Date.parse(leaf.validTo);
  if (now < from) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `${what}: the certificate is not valid before ${leaf.validFrom}`,
      {
        reason: 'tls-cert-not-yet-valid',
      },
    );
  }
  if (now > to) {
    throw new SockError(SockErrorCode.INVALID_OPTION, `${what}: the certificate expired at ${leaf.validTo}`, {
      reason: 'tls-cert-expired',
    });
  }
  return { cert, key, passphrase, leaf };
}
