/** Who opened an SSH channel: on every connection the SSH server adopts into a service. */
export interface SshIdentity {
  readonly kind: 'ssh';
  readonly user: string;
  /** e.g. `ssh-ed25519`. */
  readonly keyType: string;
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
  /** The comment of the matching authorized_keys line. */
  readonly comment: string;
}

/** The SSH identity of a connection the SSH server adopted, or undefined for any other connection. */
export function sshIdentity(conn: { readonly identity?: unknown }): SshIdentity | undefined {
  const identity = conn.identity as SshIdentity | undefined;
  return identity && typeof identity === 'object' && identity.kind === 'ssh' ? identity : undefined;
}
