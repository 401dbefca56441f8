import { expect, it } from 'vitest';
import { runReadmeUsage } from '../../../test-support/readme-usage.js';

it('the README usage example runs and prints what it says', { timeout: 30_000 }, async () => {
  expect(await runReadmeUsage(import.meta.url)).toEqual([
    'sock_rejections_total{listener="default",reason="ip-denied",stage="accept",plugin="guards",closed="true"} 1',
    '127.0.0.66',
  ]);
});
