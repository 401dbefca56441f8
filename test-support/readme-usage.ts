import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';

/**
 * Run the first ```ts block of a README's "## Usage" section (or of the `section` heading given) as
 * written and return what it printed with console.log, so a package's test can assert the README's claims
 * (examples that cannot rot). `testDir` is the test's `import.meta.url`; the README is the package's, one
 * folder up.
 */
export async function runReadmeUsage(testUrl: string, section = '## Usage'): Promise<unknown[]> {
  const readme = readFileSync(fileURLToPath(new URL('../README.md', testUrl)), 'utf8');
  const at = readme.indexOf(`${section}\n`);
  if (at < 0) throw new Error(`the README has no ${section} section`);
  const usage = readme.slice(at);
  const code = /```ts\n([\s\S]*?)```/.exec(usage)?.[1];
  if (!code) throw new Error(`the README has no \`\`\`ts block under ${section}`);
  // One file per section: a module imported once is cached, so a second example needs its own name.
  const slug = section
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
  const file = fileURLToPath(new URL(`./.readme-example-${slug}.ts`, testUrl));
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
