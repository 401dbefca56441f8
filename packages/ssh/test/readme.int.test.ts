import { expect, it } from 'vitest';
import { runReadmeUsage } from '../../../test-support/readme-usage.js';

it('the README usage example runs and prints what it says', async () => {
  expect(await runReadmeUsage(import.meta.url)).toEqual([
    'alice (ssh-ed25519): hello',
    { handshakes: 1, authFailures: 0, channelsOpen: 0, channelsTotal: 1 },
  ]);
});
