import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { readmeExample } from '../../../test-support/readme-example.js';
import { FirewallErrorCode } from '../src/index.js';

const readme = () => readFile(new URL('../README.md', import.meta.url), 'utf8');

afterEach(() => {
  vi.restoreAllMocks();
});

it('the README usage example runs as written against the plan backend', async () => {
  const block = readmeExample(new URL('../README.md', import.meta.url), 'firewall-usage');
  expect(block).toBeDefined();
  expect(block).toContain("backend: 'auto'");
  const file = join(tmpdir(), `sockfw-readme-${process.pid}-${Date.now()}.ts`);
  await writeFile(file, block!.replace("backend: 'auto'", "backend: 'plan'"));
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    await import(/* @vite-ignore */ file);
  } finally {
    await rm(file, { force: true });
  }
  const lines = log.mock.calls.map((c) => c.join(' '));
  expect(lines[0]).toBe('ERR_SOCK_FW_INVALID_ADDRESS');
  expect(lines.some((l) => /^203\.0\.113\.7 ssh brute force (59\d{4}|600000) 1$/.test(l))).toBe(true);
  expect(lines.some((l) => l.startsWith('198.51.100.0/24 scanner'))).toBe(true);
  expect(lines.some((l) => l.startsWith('2001:db8:bad::/64 abuse'))).toBe(true);
});

it('the README errors table lists every code', async () => {
  const text = await readme();
  for (const code of Object.values(FirewallErrorCode)) expect(text).toContain(`| \`${code}\``);
});
