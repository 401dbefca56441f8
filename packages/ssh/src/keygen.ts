import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { sha256Fingerprint } from './fingerprint.js';

export interface SshKeyPair {
  /** OpenSSH private key format (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted: keep it 0600. */
  readonly privateKey: string;
  /** One authorized_keys / known_hosts style line: `ssh-ed25519 AAAA… comment`. */
  readonly publicKey: string;
  readonly fingerprint: string;
}

/**
 * A new Ed25519 key pair in OpenSSH's own format (PROTOCOL.key), as `ssh-keygen -t ed25519 -N ''` writes
 * it. Written here because Node exports Ed25519 only as PKCS#8, which neither ssh2 nor OpenSSH reads.
 */
export function generateSshKey(comment = 'sock'): SshKeyPair {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d as string, 'base64url');
  const pub = Buffer.from(jwk.x as string, 'base64url');
  const type = Buffer.from('ssh-ed25519');
  const publicBlob = Buffer.concat([sshString(type), sshString(pub)]);
  const check = randomBytes(4);
  const body = [
    check,
    check,
    sshString(type),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(Buffer.from(comment)),
  ];
  let privateSection = Buffer.concat(body);
  const padding = (8 - (privateSection.length % 8)) % 8;
  privateSection = Buffer.concat([
    privateSection,
    Buffer.from(Array.from({ length: padding }, (_, i) => i + 1)),
  ]);
  const file = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString(Buffer.from('none')),
    sshString(Buffer.from('none')),
    sshString(Buffer.alloc(0)),
    u32(1),
    sshString(publicBlob),
    sshString(privateSection),
  ]);
  const lines = file.toString('base64').match(/.{1,70}/g) ?? [];
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${publicBlob.toString('base64')} ${comment}`,
    fingerprint: sha256Fingerprint(publicBlob),
  };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function sshString(data: Buffer): Buffer {
  return Buffer.concat([u32(data.length), data]);
}
