import { readFile } from 'node:fs/promises';
import { describe, expect, it, vi } from 'vitest';

describe('README', () => {
  it('shows test/readme-example.ts verbatim, and it runs', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const example = await readFile(new URL('./readme-example.ts', import.meta.url), 'utf8');
    const usage = readme.slice(readme.indexOf('## Usage'));
    const block = /```ts\n([\s\S]*?)```/.exec(usage)?.[1];
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
