import { expect, it } from 'vitest';
import { runReadmeUsage } from '../../../test-support/readme-usage.js';

it('the README usage example runs and prints what it says', async () => {
  expect(await runReadmeUsage(import.meta.url)).toEqual([
    'conn-limit-ip 127.0.0.1',
    'banned 127.0.0.1',
    'ban 127.0.0.1 for 10 min after conn-limit-ip',
    'conn-limit-ip 127.0.0.1',
    'banned 127.0.0.1',
    true,
  ]);
});
