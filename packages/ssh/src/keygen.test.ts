import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalizeFingerprint } from './fingerprint.js';
import { generateSshKey } from './keygen.js';

describe('generateSshKey', () => {
  it('writes an OpenSSH Ed25519 key that ssh-keygen reads, with the fingerprint ssh-keygen prints', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sock-keygen-'));
    try {
      const pair = generateSshKey('host1');
      const file = join(dir, 'key');
      writeFileSync(file, pair.privateKey, { mode: 0o600 });
      const pub = execFileSync('ssh-keygen', ['-y', '-f', file]).toString().trim();
      expect(pub).toBe(pair.publicKey);
      const listed = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file]).toString().split(' ')[1];
      expect(listed).toBe(pair.fingerprint);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('normalizes fingerprints and refuses malformed ones', () => {
    const { fingerprint } = generateSshKey();
    expect(normalizeFingerprint(`${fingerprint}=`)).toBe(fingerprint);
    expect(normalizeFingerprint('MD5:aa:bb')).toBeUndefined();
    expect(normalizeFingerprint('SHA256:short')).toBeUndefined();
  });
});
