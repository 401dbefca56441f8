import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { IpsecError, IpsecErrorCode } from './errors.js';
import { checkPath } from './validate.js';

/**
 * A certificate or key: PEM text (`-----BEGIN …`, what @sock/tls's dev PKI returns) or `{ path }` of a
 * PEM file (absolute). The shape matches @sock/tls's `PemSource`, so its material can be passed as is.
 */
export type PemInput = string | Buffer | { readonly path: string };

const MAX_PEM_BYTES = 64 * 1024;

function bad(field: string, why: string, cause?: unknown): IpsecError {
  return new IpsecError(IpsecErrorCode.INVALID_OPTION, `${field}: ${why}`, {
    details: { field },
    ...(cause === undefined ? {} : { cause }),
  });
}

async function readPem(field: string, source: PemInput, signal?: AbortSignal): Promise<Buffer> {
  if (typeof source === 'string' || Buffer.isBuffer(source)) {
    const buf = Buffer.isBuffer(source) ? source : Buffer.from(source);
    if (buf.length > MAX_PEM_BYTES) throw bad(field, `PEM of ${buf.length} bytes is over ${MAX_PEM_BYTES}`);
    if (!buf.includes('-----BEGIN '))
      throw bad(field, 'is not PEM text (-----BEGIN …); pass { path: "/abs/file.pem" } to read a file');
    return buf;
  }
  if (typeof source !== 'object' || source === null || !('path' in source))
    throw bad(field, 'must be PEM text or { path }');
  const path = checkPath(`${field}.path`, source.path);
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw bad(`${field}.path`, `${path} is not a regular file`);
    size = s.size;
  } catch (err) {
    if (IpsecError.isInstance(err)) throw err;
    throw bad(`${field}.path`, `cannot read ${path}: ${(err as Error).message}`, err);
  }
  if (size > MAX_PEM_BYTES) throw bad(`${field}.path`, `${path} is ${size} bytes, over ${MAX_PEM_BYTES}`);
  try {
    return await readFile(path, { signal });
  } catch (err) {
    throw bad(`${field}.path`, `cannot read ${path}: ${(err as Error).message}`, err);
  }
}

export interface LoadedCertificate {
  pem: string;
  cert: X509Certificate;
}

/** Read and parse one certificate (the first in the PEM). */
export async function loadCertificate(
  field: string,
  source: PemInput,
  signal?: AbortSignal,
): Promise<LoadedCertificate> {
  const buf = await readPem(field, source, signal);
  try {
    const cert = new X509Certificate(buf);
    return { pem: cert.toString(), cert };
  } catch (err) {
    throw bad(field, `is not a valid X.509 certificate (${(err as Error).message})`, err);
  }
}

/** Read a private key, checked against its certificate, returned as unencrypted PKCS#8 PEM for charon. */
export async function loadPrivateKey(
  field: string,
  source: PemInput,
  cert: X509Certificate | undefined,
  signal?: AbortSignal,
): Promise<string> {
  const buf = await readPem(field, source, signal);
  let key: KeyObject;
  try {
    key = createPrivateKey(buf);
  } catch (err) {
    throw bad(field, `is not a usable unencrypted private key (${(err as Error).message})`, err);
  }
  // A key that does not match its certificate would only fail later, at every authentication.
  if (cert && !cert.checkPrivateKey(key))
    throw bad(field, 'does not match the certificate (its public key differs); pass the key issued with it');
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}
