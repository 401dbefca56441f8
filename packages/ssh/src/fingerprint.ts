import { createHash } from 'node:crypto';

/**
 * The SHA256 fingerprint of an SSH public key blob, as `ssh-keygen -l` and OpenSSH print it:
 * `SHA256:` + unpadded base64 of the SHA-256 of the wire-format key.
 */
export function sha256Fingerprint(keyBlob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Canonical form of a user-supplied fingerprint (`SHA256:…`, padding optional), or undefined if malformed. */
export function normalizeFingerprint(input: string): string | undefined {
  const match = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(input.trim());
  return match ? `SHA256:${match[1]}` : undefined;
}
