import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { lstat, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { isIP } from 'node:net';
import { basename, join } from 'node:path';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  type Extension,
  type JsonGeneralName,
  KeyUsageFlags,
  KeyUsagesExtension,
  PemConverter,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';
import { SockError, SockErrorCode } from '@sock/core';
import { parseSpiffeId } from './spiffe.js';
import { warnOnce } from './warn.js';

const DAY = 86_400_000;
/** Default lifetime of a leaf certificate (what public CAs move to; short lives limit a leaked key). */
export const DEFAULT_LEAF_VALIDITY_DAYS = 90;
/**
 * Longest leaf lifetime without `insecureAllowLongValidity` (Mozilla's root store policy: 366 days).
 * With that option the ceiling is 825 days (Apple's; clients refuse longer).
 */
export const MAX_LEAF_VALIDITY_DAYS = 366;
const ABSOLUTE_MAX_LEAF_DAYS = 825;

/**
 * `p256` (ECDSA P-256 with SHA-256, the default), `ed25519`, or `rsa2048` (RSA 2048 with SHA-256, for
 * testing peers and suites that need an RSA certificate).
 */
export type DevKeyType = 'p256' | 'ed25519' | 'rsa2048';

/** A certificate and its private key, both PEM. */
export interface DevCertificate {
  /** PEM certificate. */
  readonly cert: string;
  /** PEM PKCS#8 private key. Keep it secret: written with mode 0600. */
  readonly key: string;
}

/** A development certificate authority. */
export interface DevCA extends DevCertificate {}

/** When a development certificate is valid. */
export interface ValidityOptions {
  /** Default: now (minus one minute of clock-skew slack). */
  notBefore?: Date;
  /** Default: `notBefore` + `validityDays`. Past dates give expired certificates (for tests). */
  notAfter?: Date;
  /** Used when `notAfter` is not given. Default 90 days for leaves, 10 years for a CA. */
  validityDays?: number;
  /**
   * Allow a leaf valid for more than 366 days (up to 825): browsers and Mozilla's policy refuse those.
   * Warns once per process.
   */
  insecureAllowLongValidity?: boolean;
  keyType?: DevKeyType;
  signal?: AbortSignal;
}

/** Options of `createCA()`. */
export interface CreateCAOptions extends ValidityOptions {
  /** Common name. Default `sock development CA`. */
  commonName?: string;
  /** Organization. Default `sock dev PKI`. */
  organization?: string;
}

/** Options of `issueServerCert()`: the names the certificate holds. */
export interface IssueServerOptions extends ValidityOptions {
  /**
   * Names the certificate is valid for, typed automatically: IP literals become IP SANs, `scheme://…`
   * URI SANs, anything else a DNS SAN (a leading `*.` wildcard allowed). The first is the common name.
   */
  names: readonly string[];
  /** Default `names[0]`. */
  commonName?: string;
}

/** Options of `issueClientCert()`: the client's name and optional SPIFFE ID. */
export interface IssueClientOptions extends ValidityOptions {
  /** Common name (the client's name). */
  commonName: string;
  /** A SPIFFE ID (`spiffe://trust.domain/path`), written as the one URI SAN: an X509-SVID. */
  spiffeId?: string;
  /** More SANs, typed like `IssueServerOptions.names`. Not allowed with `spiffeId` when it holds a URI. */
  names?: readonly string[];
}

const subtle = webcrypto.subtle;

type Algo = webcrypto.EcKeyGenParams | webcrypto.EcdsaParams | webcrypto.Algorithm;

function keyAlgorithm(type: DevKeyType): { gen: Algo; sign: Algo } {
  if (type === 'ed25519') return { gen: { name: 'Ed25519' }, sign: { name: 'Ed25519' } };
  if (type === 'rsa2048') {
    const rsa = {
      name: 'RSASSA-PKCS1-v1_5',
      hash: 'SHA-256',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
    };
    return { gen: rsa, sign: rsa };
  }
  return { gen: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } };
}

async function generateKeys(type: DevKeyType): Promise<webcrypto.CryptoKeyPair> {
  const { gen } = keyAlgorithm(type);
  return (await subtle.generateKey(gen, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function exportKey(key: webcrypto.CryptoKey): Promise<string> {
  const der = await subtle.exportKey('pkcs8', key);
  return PemConverter.encode(der, 'PRIVATE KEY');
}

async function importSigningKey(
  pem: string,
  cert: X509Certificate,
): Promise<{ key: webcrypto.CryptoKey; type: DevKeyType }> {
  const der = PemConverter.decodeFirst(pem);
  const algorithm = cert.publicKey.algorithm.name;
  const type: DevKeyType =
    algorithm === 'Ed25519' ? 'ed25519' : algorithm === 'RSASSA-PKCS1-v1_5' ? 'rsa2048' : 'p256';
  const { gen } = keyAlgorithm(type);
  const key = await subtle.importKey('pkcs8', der, gen, false, ['sign']);
  return { key, type };
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive, and never a leading zero byte
  return b.toString('hex');
}

function dates(
  options: ValidityOptions,
  defaultDays: number,
  leaf = false,
): { notBefore: Date; notAfter: Date } {
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  const days = options.validityDays ?? defaultDays;
  if (!(days > 0)) {
    throw new SockError(SockErrorCode.INVALID_OPTION, `validityDays must be a positive number, got ${days}`);
  }
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + days * DAY);
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new SockError(SockErrorCode.INVALID_OPTION, 'notAfter must be later than notBefore');
  }
  if (leaf) {
    const span = notAfter.getTime() - notBefore.getTime();
    const long = options.insecureAllowLongValidity === true;
    if (span > MAX_LEAF_VALIDITY_DAYS * DAY && !long) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `a leaf certificate may be valid for at most ${MAX_LEAF_VALIDITY_DAYS} days (Mozilla's limit; browsers refuse longer), got ${Math.ceil(span / DAY)}; shorten validityDays or notAfter, or set insecureAllowLongValidity`,
      );
    }
    if (span >= ABSOLUTE_MAX_LEAF_DAYS * DAY) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `a leaf certificate must be valid for less than ${ABSOLUTE_MAX_LEAF_DAYS} days (clients refuse longer); shorten validityDays or notAfter`,
      );
    }
    if (span > MAX_LEAF_VALIDITY_DAYS * DAY) {
      warnOnce(
        'long-validity',
        `insecureAllowLongValidity: issuing a leaf valid for ${Math.ceil(span / DAY)} days; browsers refuse more than ${MAX_LEAF_VALIDITY_DAYS}`,
      );
    }
  }
  return { notBefore, notAfter };
}

/** DN attribute values are escaped per RFC 4514 so a name cannot smuggle extra attributes. */
function escapeDn(value: string): string {
  return value.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`).replace(/^[ #]|[ ]$/g, (c) => `\\${c}`);
}

/** Type a name as the SAN it is: IP literal, URI (`scheme://`), or DNS name. */
export function sanFor(name: string): JsonGeneralName {
  if (isIP(name)) return { type: 'ip', value: name };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(name)) {
    if (name.toLowerCase().startsWith('spiffe://')) parseSpiffeId(name);
    return { type: 'url', value: name };
  }
  const dns = name.toLowerCase().replace(/\.$/, '');
  if (
    dns.length > 253 ||
    !/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(dns)
  ) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `"${name}" is neither an IP address, a URI nor a valid DNS name (a leading "*." wildcard is allowed)`,
    );
  }
  return { type: 'dns', value: dns };
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new SockError(SockErrorCode.ABORTED, 'dev PKI operation aborted', { cause: signal.reason });
  }
}

/**
 * A development CA: ECDSA P-256 (or Ed25519), valid 10 years, `pathLen` 0 (it signs leaves only).
 * Trust its `cert` in your clients and servers' `ca`; never ship it.
 */
export async function createCA(options: CreateCAOptions = {}): Promise<DevCA> {
  aborted(options.signal);
  const type = options.keyType ?? 'p256';
  const keys = await generateKeys(type);
  const { notBefore, notAfter } = dates(options, 3650);
  const name = `CN=${escapeDn(options.commonName ?? 'sock development CA')}, O=${escapeDn(options.organization ?? 'sock dev PKI')}`;
  const cert = await X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name,
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: keyAlgorithm(type).sign,
    extensions: [
      new BasicConstraintsExtension(true, 0, true),
      new KeyUsagesExtension(
        KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature,
        true,
      ),
      await SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  aborted(options.signal);
  return { cert: cert.toString('pem'), key: await exportKey(keys.privateKey) };
}

async function issue(
  ca: DevCA,
  options: ValidityOptions,
  commonName: string,
  sans: JsonGeneralName[],
  usage: ExtendedKeyUsage,
): Promise<DevCertificate> {
  aborted(options.signal);
  const caCert = new X509Certificate(ca.cert);
  const signer = await importSigningKey(ca.key, caCert);
  const keys = await generateKeys(options.keyType ?? 'p256');
  const { notBefore, notAfter } = dates(options, DEFAULT_LEAF_VALIDITY_DAYS, true);
  const extensions: Extension[] = [
    new BasicConstraintsExtension(false, undefined, true),
    new KeyUsagesExtension(
      options.keyType === 'rsa2048'
        ? KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment
        : KeyUsageFlags.digitalSignature,
      true,
    ),
    new ExtendedKeyUsageExtension([usage], false),
    await SubjectKeyIdentifierExtension.create(keys.publicKey),
    await AuthorityKeyIdentifierExtension.create(caCert.publicKey),
  ];
  if (sans.length > 0) extensions.push(new SubjectAlternativeNameExtension(sans, false));
  const cert = await X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${escapeDn(commonName)}`,
    issuer: caCert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: signer.key,
    signingAlgorithm: keyAlgorithm(signer.type).sign,
    extensions,
  });
  aborted(options.signal);
  return { cert: cert.toString('pem'), key: await exportKey(keys.privateKey) };
}

/**
 * A server certificate (EKU serverAuth) for `names`, signed by `ca`. Default validity 90 days, at most
 * 366 (825 with `insecureAllowLongValidity`).
 */
export async function issueServerCert(ca: DevCA, options: IssueServerOptions): Promise<DevCertificate> {
  if (!options.names || options.names.length === 0) {
    throw new SockError(SockErrorCode.INVALID_OPTION, 'issueServerCert: give at least one name');
  }
  const sans = options.names.map(sanFor);
  return issue(ca, options, options.commonName ?? options.names[0]!, sans, ExtendedKeyUsage.serverAuth);
}

/** A client certificate (EKU clientAuth, validity as for server certificates), optionally an X509-SVID carrying `spiffeId` as its only URI SAN. */
export async function issueClientCert(ca: DevCA, options: IssueClientOptions): Promise<DevCertificate> {
  if (!options.commonName) {
    throw new SockError(SockErrorCode.INVALID_OPTION, 'issueClientCert: commonName is required');
  }
  const sans = (options.names ?? []).map(sanFor);
  if (options.spiffeId !== undefined) {
    parseSpiffeId(options.spiffeId);
    if (sans.some((s) => s.type === 'url')) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        'issueClientCert: an X509-SVID carries exactly one URI SAN; drop the URIs from names or the spiffeId',
      );
    }
    sans.unshift({ type: 'url', value: options.spiffeId });
  }
  return issue(ca, options, options.commonName, sans, ExtendedKeyUsage.clientAuth);
}

/** Options of `writeCertificate()`: file names inside the directory. */
export interface WriteOptions {
  /** File name of the certificate. Default `tls.crt` (`ca.crt` for a CA). */
  certFile?: string;
  /** File name of the key. Default `tls.key` (`ca.key` for a CA). */
  keyFile?: string;
  /**
   * Write into a directory other users may write to (group- or world-writable, e.g. /tmp). Refused by
   * default: another user could swap the files between our writes. Warns once per process.
   */
  insecureAllowSharedDirectory?: boolean;
  signal?: AbortSignal;
}

/** The paths `writeCertificate()` wrote. */
export interface WrittenFiles {
  readonly certPath: string;
  readonly keyPath: string;
}

function fileName(name: string, what: string): string {
  if (name.length === 0 || name !== basename(name) || name === '.' || name === '..') {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `${what} must be a plain file name (no directory), got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** Refuse a target directory another local user can write to (they could plant or swap files). */
async function checkDirectory(dir: string, shared: boolean): Promise<void> {
  const info = await stat(dir);
  if (!info.isDirectory()) {
    throw new SockError(SockErrorCode.INVALID_OPTION, `${dir} is not a directory`);
  }
  if ((info.mode & 0o022) === 0) return;
  if (!shared) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `${dir} is writable by other users (mode ${(info.mode & 0o777).toString(8)}): they could read or replace the private key; use a directory only you can write (chmod go-w), or set insecureAllowSharedDirectory`,
    );
  }
  warnOnce(
    'shared-pki-dir',
    `insecureAllowSharedDirectory: writing private keys into ${dir}, which other users can write to`,
  );
}

/**
 * Write `data` to `path` atomically: a new temporary file created exclusively (O_EXCL, never through a
 * symlink, with its final mode from the start), flushed, then renamed over `path`. A file or symlink
 * someone planted at `path` is replaced, never written through, and never keeps its owner.
 */
async function writeExclusive(path: string, data: string, mode: number, signal?: AbortSignal): Promise<void> {
  const temp = join(path, '..', `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
  const handle = await open(temp, flags, mode);
  try {
    try {
      await handle.chmod(mode); // the umask may have narrowed a 0644 certificate
      await handle.writeFile(data, { signal });
      await handle.sync();
    } finally {
      await handle.close();
    }
    const target = await lstat(path).catch(() => undefined);
    if (target?.isDirectory()) {
      throw new SockError(SockErrorCode.INVALID_OPTION, `${path} is a directory; cannot write a file there`);
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

/**
 * Write a certificate (mode 0644) and its key (mode 0600) into `dir`, creating it (mode 0700) if needed.
 * Each file is written to a new temporary file (created exclusively, no symlink followed) and renamed
 * into place: a pre-created file or a planted symlink is replaced, never written through. A directory
 * other users can write to is refused unless `insecureAllowSharedDirectory`.
 */
export async function writeCertificate(
  dir: string,
  material: DevCertificate,
  options: WriteOptions = {},
): Promise<WrittenFiles> {
  aborted(options.signal);
  const certName = fileName(options.certFile ?? 'tls.crt', 'certFile');
  const keyName = fileName(options.keyFile ?? 'tls.key', 'keyFile');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await checkDirectory(dir, options.insecureAllowSharedDirectory === true);
  const certPath = join(dir, certName);
  const keyPath = join(dir, keyName);
  await writeExclusive(keyPath, material.key, 0o600, options.signal);
  await writeExclusive(certPath, material.cert, 0o644, options.signal);
  return { certPath, keyPath };
}

/** Write a CA as `ca.crt` (0644) and `ca.key` (0600) into `dir`, like `writeCertificate`. */
export function writeCA(dir: string, ca: DevCA, options: WriteOptions = {}): Promise<WrittenFiles> {
  return writeCertificate(dir, ca, { certFile: 'ca.crt', keyFile: 'ca.key', ...options });
}
