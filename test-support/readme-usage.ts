import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';
import { readmeExample } from './readme-example.js';

/**
 * Run the README block marked `<!-- example: <name> -->` as written and return what it printed with
 * console.log, so a package's test can assert the README's claims (examples that cannot rot).
 * `testDir` is the test's `import.meta.url`; the README is the package's, one folder up.
 */
export async function runReadmeUsage(testUrl: string, name: string): Promise<unknown[]> {
  const code = readmeExample(new URL('../README.md', testUrl), name);
  // One file per example: a module imported once is cached, so a second example needs its own name.
  const file = fileURLToPath(new URL(`./.readme-example-${name}.ts`, testUrl));
  writeFileSync(file, code);
  const logs: unknown[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((v: unknown) => logs.push(v));
  try {
    await import(file);
  } finally {
    spy.mockRestore();
    rmSync(file, { force: true });
  }
  return logs;
}
