import { X509Certificate } from 'node:crypto';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCA, issueClientCert, issueServerCert, sanFor, writeCA, writeCertificate } from './dev-pki.js';
import { identityFromCertificate } from './identity.js';

describe('dev PKI', () => {
  it('creates a P-256 CA valid ten years with pathLen 0', async () => {
    const ca = await createCA({ commonName: 'Test CA' });
    const cert = new X509Certificate(ca.cert);
    expect(cert.ca).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const years = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / (365.25 * 86_400_000);
    expect(years).toBeGreaterThan(9.9);
    expect(years).toBeLessThan(10.1);
    expect(cert.toLegacyObject().subject).toMatchObject({ CN: 'Test CA' });
    expect(cert.checkIssued(cert)).toBe(true);
    // pathLen 0 is in the DER: basicConstraints with cA TRUE and pathLenConstraint 0.
    const text = cert.raw.toString('hex');
    expect(text).toContain('0101ff020100');
  });

  it('issues server certificates with auto-typed SANs and serverAuth', async () => {
    const ca = await createCA();
    const leaf = await issueServerCert(ca, {
      names: ['localhost', '127.0.0.1', '::1', 'spiffe://example.org/web'],
    });
    const cert = new X509Certificate(leaf.cert);
    expect(cert.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    expect(cert.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(leaf.key)))).toBe(
      true,
    );
    const id = identityFromCertificate(cert.raw);
    expect(id.dnsNames).toEqual(['localhost']);
    expect(id.ipAddresses).toEqual(expect.arrayContaining(['127.0.0.1']));
    expect(id.ipAddresses.length).toBe(2);
    expect(id.uris).toEqual(['spiffe://example.org/web']);
    expect(id.extendedKeyUsages).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(id.isCA).toBe(false);
    expect(id.commonName).toBe('localhost');
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it('issues client certificates as X509-SVIDs', async () => {
    const ca = await createCA();
    const leaf = await issueClientCert(ca, {
      commonName: 'worker',
      spiffeId: 'spiffe://example.org/ns/a/sa/worker',
    });
    const id = identityFromCertificate(new X509Certificate(leaf.cert).raw);
    expect(id.spiffeId).toBe('spiffe://example.org/ns/a/sa/worker');
    expect(id.trustDomain).toBe('example.org');
    expect(id.extendedKeyUsages).toEqual(['1.3.6.1.5.5.7.3.2']);
    await expect(
      issueClientCert(ca, { commonName: 'x', spiffeId: 'spiffe://a/b', names: ['spiffe://a/c'] }),
    ).rejects.toThrow(/exactly one URI SAN/);
    await expect(issueClientCert(ca, { commonName: 'x', spiffeId: 'spiffe://A/b' })).rejects.toThrow(
      /SPIFFE/,
    );
  });

  it('supports Ed25519; leaves default to 90 days, refuse more than 366 unless insecureAllowLongValidity (then under 825)', async () => {
    const ca = await createCA({ keyType: 'ed25519' });
    expect(new X509Certificate(ca.cert).publicKey.asymmetricKeyType).toBe('ed25519');
    const leaf = await issueServerCert(ca, { names: ['a.test'], keyType: 'ed25519' });
    const cert = new X509Certificate(leaf.cert);
    expect(cert.publicKey.asymmetricKeyType).toBe('ed25519');
    expect(cert.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    const days = (pem: string) => {
      const c = new X509Certificate(pem);
      return Math.round((Date.parse(c.validTo) - Date.parse(c.validFrom)) / 86_400_000);
    };
    expect(days(leaf.cert)).toBe(90);
    expect(days((await issueClientCert(ca, { commonName: 'c' })).cert)).toBe(90);
    expect(days((await issueServerCert(ca, { names: ['a.test'], validityDays: 366 })).cert)).toBe(366);
    await expect(issueServerCert(ca, { names: ['a.test'], validityDays: 367 })).rejects.toThrow(
      /at most 366 days.*insecureAllowLongValidity/,
    );
    await expect(
      issueServerCert(ca, { names: ['a.test'], notAfter: new Date(Date.now() + 400 * 86_400_000) }),
    ).rejects.toThrow(/at most 366 days/);
    const long = { names: ['a.test'], insecureAllowLongValidity: true };
    await expect(issueServerCert(ca, { ...long, validityDays: 825 })).rejects.toThrow(/less than 825 days/);
    expect(days((await issueServerCert(ca, { ...long, validityDays: 824 })).cert)).toBe(824);
    await expect(issueServerCert(ca, { names: [] })).rejects.toThrow(/at least one name/);
  });

  it('gives past validity for expired test certificates', async () => {
    const ca = await createCA();
    const leaf = await issueClientCert(ca, {
      commonName: 'old',
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    expect(Date.parse(new X509Certificate(leaf.cert).validTo)).toBeLessThan(Date.now());
  });

  it('types names and refuses junk', () => {
    expect(sanFor('10.0.0.1')).toEqual({ type: 'ip', value: '10.0.0.1' });
    expect(sanFor('*.Example.org')).toEqual({ type: 'dns', value: '*.example.org' });
    expect(sanFor('https://x.test/a')).toEqual({ type: 'url', value: 'https://x.test/a' });
    expect(() => sanFor('a b')).toThrow(/DNS name/);
    expect(() => sanFor('a.*.b')).toThrow(/DNS name/);
    expect(() => sanFor('spiffe://Bad/x')).toThrow(/SPIFFE/);
  });

  it('writes keys with mode 0600', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sock-pki-'));
    try {
      const ca = await createCA();
      const files = await writeCA(join(dir, 'ca'), ca);
      expect((await stat(files.keyPath)).mode & 0o777).toBe(0o600);
      expect(files.certPath.endsWith('ca.crt')).toBe(true);
      const leaf = await issueServerCert(ca, { names: ['localhost'] });
      const written = await writeCertificate(join(dir, 'srv'), leaf);
      expect((await stat(written.keyPath)).mode & 0o777).toBe(0o600);
      expect((await stat(join(dir, 'srv'))).mode & 0o777).toBe(0o700);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('dev PKI key files against another local user', () => {
  const NOBODY = 65534;
  async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'sock-pki-attack-'));
    try {
      await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('replaces a key file another user pre-created: theirs keeps nothing of the new key', async () => {
    await withDir(async (dir) => {
      const keyPath = join(dir, 'tls.key');
      await writeFile(keyPath, 'planted\n', { mode: 0o644 });
      await chown(keyPath, NOBODY, NOBODY);
      const theirs = await open(keyPath, 'r'); // the other user keeps a descriptor on their file
      try {
        const leaf = await issueServerCert(await createCA(), { names: ['localhost'] });
        await writeCertificate(dir, leaf);
        const info = await stat(keyPath);
        expect(info.uid).toBe(process.getuid?.());
        expect(info.mode & 0o777).toBe(0o600);
        expect(await readFile(keyPath, 'utf8')).toBe(leaf.key);
        expect((await theirs.readFile('utf8')).includes('PRIVATE KEY')).toBe(false);
      } finally {
        await theirs.close();
      }
    });
  });

  it('never writes through a planted symlink', async () => {
    await withDir(async (dir) => {
      const victim = join(dir, 'victim');
      await writeFile(victim, 'precious\n');
      const target = join(dir, 'out');
      await mkdir(target, { mode: 0o700 });
      await symlink(victim, join(target, 'tls.key'));
      await symlink(victim, join(target, 'tls.crt'));
      await writeCertificate(target, await issueServerCert(await createCA(), { names: ['localhost'] }));
      expect(await readFile(victim, 'utf8')).toBe('precious\n');
      expect((await lstat(join(target, 'tls.key'))).isFile()).toBe(true);
      expect((await lstat(join(target, 'tls.crt'))).isFile()).toBe(true);
      expect((await readdir(target)).sort()).toEqual(['tls.crt', 'tls.key']); // no temp file left
    });
  });

  it('refuses a directory others can write to unless insecureAllowSharedDirectory', async () => {
    await withDir(async (dir) => {
      const leaf = await issueServerCert(await createCA(), { names: ['localhost'] });
      for (const mode of [0o777, 0o770, 0o1777]) {
        await chmod(dir, mode);
        await expect(writeCertificate(dir, leaf)).rejects.toMatchObject({
          code: 'ERR_SOCK_INVALID_OPTION',
          message: expect.stringMatching(/writable by other users.*insecureAllowSharedDirectory/) as string,
        });
        expect(await readdir(dir)).toEqual([]);
      }
      const files = await writeCertificate(dir, leaf, { insecureAllowSharedDirectory: true });
      expect((await stat(files.keyPath)).mode & 0o777).toBe(0o600);
    });
  });

  it('refuses file names that are paths', async () => {
    await withDir(async (dir) => {
      const leaf = await issueServerCert(await createCA(), { names: ['localhost'] });
      await expect(writeCertificate(dir, leaf, { keyFile: '../escape.key' })).rejects.toThrow(
        /plain file name/,
      );
    });
  });
});

describe('dev PKI RSA', () => {
  it('issues RSA 2048 leaves for suites that need one', async () => {
    const ca = await createCA();
    const leaf = await issueServerCert(ca, { names: ['localhost'], keyType: 'rsa2048' });
    const cert = new X509Certificate(leaf.cert);
    expect(cert.publicKey.asymmetricKeyType).toBe('rsa');
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(cert.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
  });
});
