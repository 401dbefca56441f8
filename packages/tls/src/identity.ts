import { createHash, X509Certificate as NodeX509 } from 'node:crypto';
import type { X509Certificate } from '@peculiar/x509';
import { SockError, SockErrorCode } from '@sock/core';
import { trySpiffeId } from './spiffe.js';
import { x509 } from './x509-lib.js';

/** Who the peer is, as its certificate (verified against your `ca`) says. */
export interface PeerIdentity {
  /** Subject DN, RFC 4514 style (`CN=web, O=Example`). */
  readonly subject: string;
  /** Subject common name (the first CN), if any. */
  readonly commonName: string | undefined;
  /** Issuer DN, RFC 4514 style. */
  readonly issuer: string;
  readonly issuerCommonName: string | undefined;
  /** Hex serial number. */
  readonly serialNumber: string;
  /** DNS SANs, lowercase. */
  readonly dnsNames: readonly string[];
  /** IP SANs. */
  readonly ipAddresses: readonly string[];
  /** URI SANs. */
  readonly uris: readonly string[];
  readonly emails: readonly string[];
  /**
   * The SPIFFE ID when the certificate is a valid X509-SVID leaf: exactly one URI SAN, a valid SPIFFE
   * ID, not a CA, no certificate-signing key usage. Undefined otherwise.
   */
  readonly spiffeId: string | undefined;
  /** The SVID's trust domain. */
  readonly trustDomain: string | undefined;
  /** SHA-256 of the DER SubjectPublicKeyInfo, base64 (the value an SPKI pin holds). */
  readonly spkiSha256: string;
  /** SHA-256 of the whole DER certificate, colon-separated uppercase hex. */
  readonly fingerprintSha256: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Basic constraints say CA. */
  readonly isCA: boolean;
  /** Extended key usage OIDs; empty when the extension is absent (any purpose). */
  readonly extendedKeyUsages: readonly string[];
  /** The DER certificate. */
  readonly raw: Buffer;
}

export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** SHA-256 of the DER SubjectPublicKeyInfo, base64: the form SPKI pins take. */
export function spkiSha256(cert: NodeX509): string {
  const der = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

/** Normalise an SPKI pin: base64 SHA-256, optionally written `sha256/…` or `sha256//…` (curl, HPKP). */
export function normalizePin(pin: string): string {
  const value = pin.replace(/^sha256\/\/?/i, '');
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length !== 32 || bytes.toString('base64') !== value) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `SPKI pin ${JSON.stringify(pin)} is not a base64 SHA-256 (44 characters ending in "=")`,
    );
  }
  return value;
}

function firstCn(fields: string[]): string | undefined {
  return fields[0];
}

/** Parse a DER certificate into a `PeerIdentity`: SANs come from the DER itself, not Node's escaped string. */
export function identityFromCertificate(raw: Buffer | Uint8Array): PeerIdentity {
  try {
    return readIdentity(raw);
  } catch (err) {
    // A corrupted certificate may pass the outer parse and fail later (its key, an extension): still a
    // certificate that does not parse, never a raw OpenSSL or ASN.1 error.
    if (SockError.isInstance(err)) throw err;
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `certificate does not parse: ${(err as Error).message}`,
      {
        cause: err,
        reason: 'tls-cert-invalid',
      },
    );
  }
}

function readIdentity(raw: Buffer | Uint8Array): PeerIdentity {
  const der = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const {
    BasicConstraintsExtension,
    ExtendedKeyUsageExtension,
    KeyUsageFlags,
    KeyUsagesExtension,
    SubjectAlternativeNameExtension,
    X509Certificate: PeculiarX509,
  } = x509();
  let cert: X509Certificate;
  let node: NodeX509;
  try {
    cert = new PeculiarX509(der);
    node = new NodeX509(der);
  } catch (err) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `certificate does not parse: ${(err as Error).message}`,
      {
        cause: err,
        reason: 'tls-cert-invalid',
      },
    );
  }
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  const uris: string[] = [];
  const emails: string[] = [];
  for (const ext of cert.getExtensions(SubjectAlternativeNameExtension)) {
    for (const name of ext.names.items) {
      if (name.type === 'dns') dnsNames.push(name.value.toLowerCase());
      else if (name.type === 'ip') ipAddresses.push(name.value);
      else if (name.type === 'url') uris.push(name.value);
      else if (name.type === 'email') emails.push(name.value);
    }
  }
  const basic = cert.getExtension(BasicConstraintsExtension);
  const isCA = basic?.ca === true;
  const keyUsage = cert.getExtension(KeyUsagesExtension);
  const signsCerts = keyUsage !== null && (keyUsage.usages & KeyUsageFlags.keyCertSign) !== 0;
  const eku = cert.getExtension(ExtendedKeyUsageExtension);
  const svid = uris.length === 1 && !isCA && !signsCerts ? trySpiffeId(uris[0]!) : undefined;
  return {
    subject: cert.subject,
    commonName: firstCn(cert.subjectName.getField('CN')),
    issuer: cert.issuer,
    issuerCommonName: firstCn(cert.issuerName.getField('CN')),
    serialNumber: cert.serialNumber,
    dnsNames,
    ipAddresses,
    uris,
    emails,
    spiffeId: svid?.id,
    trustDomain: svid?.trustDomain,
    spkiSha256: spkiSha256(node),
    fingerprintSha256: node.fingerprint256,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    isCA,
    extendedKeyUsages: eku ? eku.usages.map(String) : [],
    raw: der,
  };
}
