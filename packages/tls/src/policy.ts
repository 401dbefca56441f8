import type { ConnectionInfo } from '@sock/core';
import { SockError, SockErrorCode } from '@sock/core';
import { normalizePin, type PeerIdentity } from './identity.js';
import { checkTrustDomain, parseSpiffeId } from './spiffe.js';

/**
 * One allow rule: every field given must match (AND). Fields naming SPIFFE need a valid X509-SVID
 * (exactly one URI SAN, not a CA).
 */
export interface AuthorizationRule {
  /** Exact SPIFFE ID, e.g. `spiffe://prod.example.org/ns/web/sa/api`. */
  readonly spiffeId?: string;
  /** Any SVID of this trust domain, e.g. `prod.example.org`. */
  readonly trustDomain?: string;
  /** A DNS SAN, exact, or `*.example.org` for any one label under it. */
  readonly dnsName?: string;
  /** The subject's common name, exact. */
  readonly commonName?: string;
  /** SHA-256 of the peer's SubjectPublicKeyInfo, base64 (`sha256/` prefix allowed). */
  readonly spkiSha256?: string;
  /** The issuer's DN, e.g. `CN=Internal CA, O=Example` (compared attribute by attribute). */
  readonly issuer?: string;
}

/** Decide in code: return true to allow. Throwing counts as a refusal. */
export type AuthorizeFunction = (identity: PeerIdentity, conn: ConnectionInfo) => boolean | Promise<boolean>;

/** Rules (a peer is allowed when ANY rule matches) or a function. */
export type AuthorizationPolicy = AuthorizationRule | readonly AuthorizationRule[] | AuthorizeFunction;

export type CompiledPolicy = (identity: PeerIdentity, conn: ConnectionInfo) => boolean | Promise<boolean>;

const KEYS = new Set(['spiffeId', 'trustDomain', 'dnsName', 'commonName', 'spkiSha256', 'issuer']);

/** Normalise a DN for comparison: attributes trimmed, types uppercased, `, ` between them. */
export function normalizeDn(dn: string): string {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i]!;
    if (c === '\\' && i + 1 < dn.length) {
      current += c + dn[++i];
    } else if (c === ',' || c === '+') {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts
    .map((p) => {
      const eq = p.indexOf('=');
      if (eq === -1) return p.trim();
      return `${p.slice(0, eq).trim().toUpperCase()}=${p.slice(eq + 1).trim()}`;
    })
    .join(', ');
}

function dnsMatches(pattern: string, names: readonly string[]): boolean {
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1); // ".example.org"
    return names.some(
      (n) => n.endsWith(suffix) && !n.slice(0, -suffix.length).includes('.') && n.length > suffix.length,
    );
  }
  return names.includes(pattern);
}

function compileRule(rule: AuthorizationRule): (id: PeerIdentity) => boolean {
  if (typeof rule !== 'object' || rule === null) {
    throw new SockError(SockErrorCode.INVALID_OPTION, 'authorize: a rule must be an object');
  }
  const keys = Object.keys(rule).filter((k) => (rule as Record<string, unknown>)[k] !== undefined);
  const unknown = keys.filter((k) => !KEYS.has(k));
  if (unknown.length > 0) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `authorize: unknown rule field(s) ${unknown.join(', ')}; use ${[...KEYS].join(', ')}`,
    );
  }
  if (keys.length === 0) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      'authorize: an empty rule would allow everyone; name a field',
    );
  }
  const spiffeId = rule.spiffeId === undefined ? undefined : parseSpiffeId(rule.spiffeId).id;
  const trustDomain = rule.trustDomain === undefined ? undefined : checkTrustDomain(rule.trustDomain);
  const dnsName = rule.dnsName?.toLowerCase().replace(/\.$/, '');
  const pin = rule.spkiSha256 === undefined ? undefined : normalizePin(rule.spkiSha256);
  const issuer = rule.issuer === undefined ? undefined : normalizeDn(rule.issuer);
  const { commonName } = rule;
  return (id) =>
    (spiffeId === undefined || id.spiffeId === spiffeId) &&
    (trustDomain === undefined || id.trustDomain === trustDomain) &&
    (dnsName === undefined || dnsMatches(dnsName, id.dnsNames)) &&
    (commonName === undefined || id.commonName === commonName) &&
    (pin === undefined || id.spkiSha256 === pin) &&
    (issuer === undefined || normalizeDn(id.issuer) === issuer);
}

/** Check a policy once, at startup, and return the function that applies it. */
export function compilePolicy(policy: AuthorizationPolicy): CompiledPolicy {
  if (typeof policy === 'function') return policy;
  const rules = (Array.isArray(policy) ? policy : [policy]) as readonly AuthorizationRule[];
  if (rules.length === 0) {
    throw new SockError(SockErrorCode.INVALID_OPTION, 'authorize: an empty rule list would refuse everyone');
  }
  const compiled = rules.map(compileRule);
  return (id) => compiled.some((match) => match(id));
}
