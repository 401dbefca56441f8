import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it, vi } from 'vitest';

// The README's Usage example, run as written: it must print what the README says.
const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
const usage = readme.slice(readme.indexOf('## Usage'));
const code = /```ts\n([\s\S]*?)```/.exec(usage)?.[1];
const file = fileURLToPath(new URL('./.readme-example.ts', import.meta.url));

afterAll(() => rmSync(file, { force: true }));

it('the README usage example runs and prints what it says', async () => {
  expect(code).toBeDefined();
  writeFileSync(file, code!);
  const logs: unknown[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((v: unknown) => logs.push(v));
  try {
    await import(file);
  } finally {
    spy.mockRestore();
  }
  expect(logs).toEqual([
    'conn-limit-ip 127.0.0.1',
    'ban 127.0.0.1 for 10 min after conn-limit-ip',
    'conn-limit-ip 127.0.0.1',
    'banned 127.0.0.1',
    true,
  ]);
});
