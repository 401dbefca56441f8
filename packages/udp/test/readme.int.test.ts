import { rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect, it, vi } from 'vitest';
import { readmeExample } from '../../../test-support/readme-example.js';

const readme = fileURLToPath(new URL('../README.md', import.meta.url));
const source = fileURLToPath(new URL('../src/index.ts', import.meta.url));

it("runs the README's Usage example as written", async () => {
  const block = readmeExample(readme, 'udp-usage');
  expect(block).toContain("from '@sock/udp'");
  // The package imports itself from its sources; everything else runs as written.
  const code = block!.replace("from '@sock/udp'", `from ${JSON.stringify(source)}`);
  const file = fileURLToPath(new URL(`./.readme-example-${process.pid}.ts`, import.meta.url));
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    await writeFile(file, code);
    await import(/* @vite-ignore */ file);
    expect(log).toHaveBeenCalledWith({ echo: { hello: 'world' } });
  } finally {
    log.mockRestore();
    await rm(file, { force: true });
  }
});
