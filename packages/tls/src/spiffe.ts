import { SockError, SockErrorCode } from '@sock/core';

/** A parsed SPIFFE ID: `spiffe://<trustDomain><path>`. */
export interface SpiffeId {
  /** The whole ID, as given (it is already canonical when it parses). */
  readonly id: string;
  /** Lowercase trust domain, e.g. `prod.example.org`. */
  readonly trustDomain: string;
  /** `''` or a path starting with `/`, e.g. `/ns/web/sa/frontend`. */
  readonly path: string;
}

const PREFIX = 'spiffe://';
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[a-zA-Z0-9._-]+$/;
/** SPIFFE-ID spec §2.3: URIs longer than 2048 bytes are not SPIFFE IDs. */
const MAX_BYTES = 2048;

function invalid(value: string, why: string): never {
  throw new SockError(
    SockErrorCode.INVALID_OPTION,
    `"${value.length > 80 ? `${value.slice(0, 80)}…` : value}" is not a SPIFFE ID: ${why}`,
  );
}

/**
 * Parse a SPIFFE ID strictly (SPIFFE-ID spec): lowercase `spiffe` scheme, a trust domain of
 * `[a-z0-9._-]`, no port, user info, query or fragment, path segments of `[a-zA-Z0-9._-]` that are
 * neither empty, `.` nor `..`, no trailing slash. Throws ERR_SOCK_INVALID_OPTION otherwise.
 */
export function parseSpiffeId(value: string): SpiffeId {
  if (typeof value !== 'string') invalid(String(value), 'not a string');
  if (Buffer.byteLength(value) > MAX_BYTES) invalid(value, `longer than ${MAX_BYTES} bytes`);
  if (!value.startsWith(PREFIX)) invalid(value, 'the scheme must be "spiffe://" (lowercase)');
  const rest = value.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain.length === 0) invalid(value, 'the trust domain is empty');
  if (!TRUST_DOMAIN.test(trustDomain)) {
    invalid(value, 'the trust domain may hold only lowercase letters, digits, ".", "-" and "_"');
  }
  if (path !== '') {
    const segments = path.slice(1).split('/');
    for (const segment of segments) {
      if (segment === '') invalid(value, 'the path has an empty segment or a trailing "/"');
      if (segment === '.' || segment === '..') invalid(value, 'the path has a "." or ".." segment');
      if (!SEGMENT.test(segment)) {
        invalid(value, 'path segments may hold only letters, digits, ".", "-" and "_"');
      }
    }
  }
  return { id: value, trustDomain, path };
}

/** `parseSpiffeId` without throwing: undefined for anything that is not a SPIFFE ID. */
export function trySpiffeId(value: string): SpiffeId | undefined {
  try {
    return parseSpiffeId(value);
  } catch {
    return undefined;
  }
}

/** Check a trust domain name (`example.org`) as it appears in a SPIFFE ID. */
export function checkTrustDomain(value: string): string {
  if (typeof value !== 'string' || value.length === 0 || !TRUST_DOMAIN.test(value)) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `"${value}" is not a SPIFFE trust domain: use lowercase letters, digits, ".", "-" and "_"`,
    );
  }
  return value;
}
