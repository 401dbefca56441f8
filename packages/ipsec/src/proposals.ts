import { IpsecError, IpsecErrorCode, quote } from './errors.js';

/**
 * Safe defaults: AEAD (AES-GCM with a 16-byte ICV, or ChaCha20-Poly1305), SHA-2 PRFs, and Curve25519 or
 * NIST P-256/P-384 key exchange. Nothing of SHA-1, MD5, (3)DES, CBC without SHA-2, or MODP below 3072.
 */
export const DEFAULT_IKE_PROPOSALS: readonly string[] = [
  'aes256gcm16-aes128gcm16-prfsha384-prfsha256-curve25519-ecp384-ecp256',
];
/** ESP with perfect forward secrecy on rekey (a key exchange group in the proposal). */
export const DEFAULT_ESP_PROPOSALS: readonly string[] = ['aes256gcm16-aes128gcm16-curve25519-ecp384-ecp256'];

const SAFE = new Set([
  // encryption (AEAD)
  'aes128gcm16',
  'aes192gcm16',
  'aes256gcm16',
  'aes128gcm',
  'aes256gcm',
  'chacha20poly1305',
  // encryption (non-AEAD, only with a SHA-2 integrity algorithm below)
  'aes128',
  'aes192',
  'aes256',
  // integrity
  'sha256',
  'sha384',
  'sha512',
  // PRF
  'prfsha256',
  'prfsha384',
  'prfsha512',
  // key exchange
  'curve25519',
  'x25519',
  'curve448',
  'x448',
  'ecp256',
  'ecp384',
  'ecp521',
  'ecp256bp',
  'ecp384bp',
  'ecp512bp',
  'modp3072',
  'modp4096',
  'modp6144',
  'modp8192',
]);
const SYNTAX = /^[a-z0-9_]{1,32}$/;
const CBC = new Set(['aes128', 'aes192', 'aes256']);
const INTEGRITY = new Set(['sha256', 'sha384', 'sha512']);

/**
 * Check proposals: every algorithm token must be one of the safe set unless `allowWeak` (the caller's
 * `dangerouslyAllowWeakProposals`), in which case only the syntax is checked and charon decides.
 */
export function checkProposals(field: string, input: unknown, allowWeak: boolean): string[] {
  if (!Array.isArray(input) || input.length === 0 || input.length > 16)
    throw new IpsecError(IpsecErrorCode.INVALID_OPTION, `${field}: must be a list of 1 to 16 proposals`, {
      details: { field },
    });
  return input.map((proposal, i) => {
    const where = `${field}[${i}]`;
    if (typeof proposal !== 'string' || proposal.length > 512)
      throw new IpsecError(IpsecErrorCode.INVALID_OPTION, `${where}: ${quote(proposal)} is not a proposal`, {
        details: { field: where },
      });
    const tokens = proposal.split('-');
    for (const token of tokens) {
      if (!SYNTAX.test(token))
        throw new IpsecError(
          IpsecErrorCode.INVALID_OPTION,
          `${where}: ${quote(token)} is not an algorithm name (strongSwan's lowercase keywords, e.g. aes256gcm16-prfsha384-ecp384)`,
          { details: { field: where } },
        );
      if (!allowWeak && !SAFE.has(token))
        throw new IpsecError(
          IpsecErrorCode.INSECURE,
          `${where}: ${quote(token)} is not in the safe set (AES-GCM/ChaCha20-Poly1305, SHA-2, Curve25519/ECP-256+/MODP-3072+); use the defaults, or set dangerouslyAllowWeakProposals: true if a legacy peer leaves no choice`,
          { details: { field: where, token } },
        );
    }
    if (!allowWeak && tokens.some((t) => CBC.has(t)) && !tokens.some((t) => INTEGRITY.has(t)))
      throw new IpsecError(
        IpsecErrorCode.INSECURE,
        `${where}: AES-CBC needs a SHA-2 integrity algorithm (sha256, sha384, sha512) in the same proposal`,
        { details: { field: where } },
      );
    return proposal;
  });
}
