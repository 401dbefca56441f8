import { expect, it } from 'vitest';
import { runReadmeUsage } from '../../../test-support/readme-usage.js';

it('the README usage example runs and prints what it says', async () => {
  expect(await runReadmeUsage(import.meta.url, 'core-usage')).toEqual([
    { type: 'pong', seq: 1 },
    { type: 'error', code: 'ERR_SOCK_VALIDATION_FAILED', issues: 1 },
  ]);
});

it('the README "Testing plug-ins" example runs and prints what it says', async () => {
  expect(await runReadmeUsage(import.meta.url, 'core-testing')).toEqual([
    12,
    'too-fast',
    ['one-per-second: too-fast 203.0.113.7'],
  ]);
});
