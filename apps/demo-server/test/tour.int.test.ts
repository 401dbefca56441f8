import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const tour = fileURLToPath(new URL('../dist/tour.js', import.meta.url));

it('the guided tour passes every scenario (pnpm demo)', async () => {
  expect(existsSync(tour), 'build the demo first: pnpm build').toBe(true);
  const { stdout } = await promisify(execFile)(process.execPath, [tour], { timeout: 60_000 });
  expect(stdout).toContain('every defence behaved as expected');
  expect(stdout).not.toMatch(/\| FAIL /);
}, 70_000);
