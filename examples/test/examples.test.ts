import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

/** Every example runs with `node main.mjs` in its folder (against the built packages) and prints this. */
const exec = promisify(execFile);
const here = fileURLToPath(new URL('..', import.meta.url));
const EXPECT: Record<string, RegExp[]> = {
  'core-echo': [/^\{"echo":\{"hello":"core"\}\}$/m],
  'guards-limits': [/^banned 127\.0\.0\.1 after conn-limit-ip$/m, /^127\.0\.0\.1 banned: true$/m],
  'tls-mtls': [/^\{"from":"spiffe:\/\/example\.org\/worker","message":"hello over mTLS"\}$/m],
  'udp-request': [/^\{"sum":5\}$/m],
  'firewall-plan': [/"val":"203\.0\.113\.7"/, /^refused: ERR_SOCK_FW_INVALID_ADDRESS$/m],
  'tls-chat': [
    /^bob got: <alice> hi bob$/m,
    /^banned 203\.0\.113\.66 \(frame-too-large\)/m,
    /add sockfw-ban4 203\.0\.113\.66 timeout 600/,
    /^203\.0\.113\.66 banned: true$/m,
  ],
};

// Folders with a program; a plug-in example (message-quota) has tests of its own instead.
const examples = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(`${here}${d.name}/main.mjs`))
  .map((d) => d.name);

it('every example folder has a test expectation', () => {
  expect(examples.sort()).toEqual(Object.keys(EXPECT).sort());
});

it.each(examples)('%s runs and prints what it says', async (name) => {
  const dir = fileURLToPath(new URL(`../${name}/`, import.meta.url));
  const pkg = JSON.parse(readFileSync(`${dir}package.json`, 'utf8')) as { scripts: { start: string } };
  expect(pkg.scripts.start).toBe('node main.mjs');
  const { stdout } = await exec(process.execPath, ['main.mjs'], { cwd: dir, timeout: 30_000 });
  for (const re of EXPECT[name] ?? []) expect(stdout).toMatch(re);
});
