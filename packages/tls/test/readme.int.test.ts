import { readFile } from 'node:fs/promises';
import { describe, expect, it, vi } from 'vitest';
import { readmeExample } from '../../../test-support/readme-example.js';

describe('README', () => {
  it('shows test/readme-example.ts verbatim, and it runs', async () => {
    const example = await readFile(new URL('./readme-example.ts', import.meta.url), 'utf8');
    const block = readmeExample(new URL('../README.md', import.meta.url), 'tls-usage');
    // The example imports this package from source; the README names it as users do.
    expect(block?.trim()).toBe(
      example
        .replace("from '../src/index.js'", "from '@sock/tls'")
        .replace("from '../src/pki.js'", "from '@sock/tls/pki'")
        .trim(),
    );
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      await import('./readme-example.js');
      expect(log).toHaveBeenCalledWith({ from: 'spiffe://example.org/worker', echo: { hello: 'world' } });
      expect(log).not.toHaveBeenCalledWith('refused:', expect.anything());
    } finally {
      log.mockRestore();
    }
  });
});
