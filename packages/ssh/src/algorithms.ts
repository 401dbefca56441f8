/**
 * The algorithm lists negotiated by default, client and server alike. Each one passes ssh-audit's
 * hardening guidance with no [fail] or [warn]: no SHA-1, CBC, NIST curves or small DH groups. Strict key
 * exchange (the Terrapin countermeasure) is added by ssh2 on its own.
 */
export interface SshAlgorithms {
  readonly kex: readonly string[];
  readonly cipher: readonly string[];
  readonly mac: readonly string[];
  readonly serverHostKey: readonly string[];
  readonly compress: readonly string[];
}

export const DEFAULT_ALGORITHMS: SshAlgorithms = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org'],
  // AES-GCM first: Node's OpenSSL does it in hardware; ssh2's chacha20-poly1305 runs in JavaScript
  // unless its optional native part is built.
  cipher: ['aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com'],
  // Only consulted for ciphers without their own integrity (none of the defaults).
  mac: ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com'],
  serverHostKey: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'],
  compress: ['none'],
};

/** ssh2's `algorithms` option from ours (it wants mutable arrays). */
export function toSsh2Algorithms(a: SshAlgorithms) {
  return {
    kex: [...a.kex],
    cipher: [...a.cipher],
    hmac: [...a.mac],
    serverHostKey: [...a.serverHostKey],
    compress: [...a.compress],
  };
}
