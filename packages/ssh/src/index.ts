/**
 * @packageDocumentation
 * SSH as a transport for @sock/core: `sshTransport()` reaches a service through an SSH server (one
 * `direct-tcpip` channel per connection), `createSshServer()` serves each authenticated SSH channel as a
 * core connection, with guards at TCP accept and a strike for every failed authentication.
 *
 * @example
 * ```ts
 * import { connect } from '@sock/core';
 * import { sshTransport } from '@sock/ssh';
 *
 * const conn = await connect({
 *   host: 'db.internal',
 *   port: 7000,
 *   transport: sshTransport({ via: 'ssh://deploy@bastion.example:22', knownHosts: '/etc/ssh/ssh_known_hosts' }),
 * });
 * ```
 */
export { DEFAULT_ALGORITHMS, type SshAlgorithms } from './algorithms.js';
export {
  type AuthorizedKey,
  type AuthorizedKeysParse,
  parseAuthorizedKeys,
} from './authorized-keys.js';
export {
  type AuthorizedKeysFileOptions,
  type AuthorizedKeysSource,
  authorizedKeysFile,
  authorizedKeysText,
} from './authorized-keys-file.js';
export { type SshClientTransport, type SshTransportOptions, sshTransport } from './client.js';
export { normalizeFingerprint, sha256Fingerprint } from './fingerprint.js';
export { type SshIdentity, sshIdentity } from './identity.js';
export { generateSshKey, type SshKeyPair } from './keygen.js';
export {
  checkHostKey,
  type HostKeyVerdict,
  type KnownHostEntry,
  parseKnownHosts,
} from './known-hosts.js';
export { SshReason } from './reasons.js';
export {
  type AdoptingServer,
  createSshServer,
  type SshRoute,
  type SshServer,
  type SshServerOptions,
  type SshServerStats,
} from './server.js';
export { parseSshUrl, type SshTarget } from './url.js';
