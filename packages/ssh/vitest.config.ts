import { defineProject } from 'vitest/config';
import { sockAliases } from '../../vitest.shared.ts';

export default defineProject({
  resolve: { alias: sockAliases },
  test: {
    name: 'ssh',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Integration tests start sshd, ssh, ssh-keygen and ssh-audit processes: slow on a busy 2-core machine.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
