import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
// The built package, resolved by its own name (self-reference through its exports map), as users get it.
const cwd = fileURLToPath(new URL('..', import.meta.url));

async function probe(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, args, { cwd, timeout: 20_000 });
  return stdout.trim();
}

describe('import cost', () => {
  it('importing @sock/tls (ESM and CJS) patches no global Reflect and loads no X.509 library', async () => {
    const script = `console.log(typeof Reflect.getMetadata, Object.keys(require.cache ?? {}).some((p) => p.includes('@peculiar')))`;
    expect(
      await probe([
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module'; const require = createRequire(process.cwd() + '/'); await import('@sock/tls'); ${script}`,
      ]),
    ).toBe('undefined false');
    expect(await probe(['-e', `require('@sock/tls'); ${script}`])).toBe('undefined false');
  });

  it('the X.509 stack loads when a certificate is parsed, and with @sock/tls/pki', async () => {
    expect(
      await probe([
        '--input-type=module',
        '-e',
        `const { createCA } = await import('@sock/tls/pki'); const { identityFromCertificate } = await import('@sock/tls');
         const { X509Certificate } = await import('node:crypto');
         const ca = await createCA();
         console.log(typeof Reflect.getMetadata, identityFromCertificate(new X509Certificate(ca.cert).raw).commonName);`,
      ]),
    ).toBe('function sock development CA');
  });
});
