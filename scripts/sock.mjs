// `pnpm sock …`: builds the CLI and what it depends on first (turbo's cache makes this a no-op when
// nothing changed), so the command works on a fresh clone. Build output goes to stderr: stdout stays the
// command's own.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const build = spawnSync(
  'pnpm',
  ['exec', 'turbo', 'run', 'build', '--filter=@sock/cli...', '--output-logs=errors-only'],
  { cwd: root, stdio: ['ignore', 2, 2] },
);
if (build.status !== 0) process.exit(build.status ?? 1);
const cli = spawnSync(
  process.execPath,
  [fileURLToPath(new URL('../apps/cli/dist/index.js', import.meta.url)), ...process.argv.slice(2)],
  {
    stdio: 'inherit',
  },
);
if (cli.signal) process.kill(process.pid, cli.signal);
process.exit(cli.status ?? 1);
