import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSshKey } from './keygen.js';
import { checkHostKey, hostFieldMatches, parseKnownHosts } from './known-hosts.js';

const dir = mkdtempSync(join(tmpdir(), 'sock-kh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const a = generateSshKey('a').publicKey.split(' ');
const b = generateSshKey('b').publicKey.split(' ');
const keyA = Buffer.from(a[1]!, 'base64');
const keyB = Buffer.from(b[1]!, 'base64');

describe('known_hosts', () => {
  it('matches hashed entries exactly as ssh-keygen -H writes them', () => {
    const file = join(dir, 'known_hosts');
    writeFileSync(file, `bastion.example ${a[0]} ${a[1]}\n[10.0.0.5]:2222 ${b[0]} ${b[1]}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('bastion.example');
    const entries = parseKnownHosts(text);
    expect(entries).toHaveLength(2);
    expect(checkHostKey(entries, 'bastion.example', 22, keyA).status).toBe('match');
    expect(checkHostKey(entries, 'BASTION.example', 22, keyA).status).toBe('match');
    expect(checkHostKey(entries, '10.0.0.5', 2222, keyB).status).toBe('match');
    expect(checkHostKey(entries, '10.0.0.5', 22, keyB).status).toBe('unknown');
    expect(checkHostKey(entries, 'bastion.example', 22, keyB).status).toBe('mismatch');
    expect(checkHostKey(entries, 'other.example', 22, keyA).status).toBe('unknown');
  });

  it('honours patterns, negation, ports and @revoked', () => {
    const entries = parseKnownHosts(
      [
        `# comment`,
        `*.corp.example,!evil.corp.example ${a[0]} ${a[1]}`,
        `[gw.example]:2200 ${b[0]} ${b[1]}`,
        `@revoked * ${b[0]} ${b[1]}`,
        `garbage-line-without-key`,
        `host ssh-rsa ${a[1]}`,
      ].join('\n'),
    );
    expect(entries).toHaveLength(3); // the garbage line and the type/key mismatch are skipped
    expect(checkHostKey(entries, 'db.corp.example', 22, keyA).status).toBe('match');
    expect(checkHostKey(entries, 'evil.corp.example', 22, keyA).status).toBe('unknown');
    expect(checkHostKey(entries, 'gw.example', 2200, keyB).status).toBe('revoked');
    expect(hostFieldMatches('[gw.example]:2200', 'gw.example', 2200)).toBe(true);
    expect(hostFieldMatches('gw.example', 'gw.example', 2200)).toBe(false);
    expect(hostFieldMatches('h?st', 'host', 22)).toBe(true);
    expect(hostFieldMatches('|1|AAAA|BBBB', 'host', 22)).toBe(false);
  });
});
