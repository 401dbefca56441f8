import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

// Issue 20 item 3: `yaml` is loaded only when a YAML file is read. Checked on the built package (what
// users install; `pnpm test` builds first), in a fresh process, through require's module cache.
const dist = fileURLToPath(new URL('../dist/index.cjs', import.meta.url));
const json = fileURLToPath(new URL('./fixtures/policy.json', import.meta.url));
const yaml = fileURLToPath(new URL('./fixtures/policy.yaml', import.meta.url));

it('loads yaml only when a YAML policy file is read', () => {
  expect(existsSync(dist), `${dist} is missing: run pnpm build`).toBe(true);
  const script = `
    const guards = require(${JSON.stringify(dist)});
    const loaded = () => Object.keys(require.cache).some((k) => /[\\\\/]yaml[\\\\/]/.test(k));
    (async () => {
      const out = [loaded()];
      await guards.loadPolicyFile(${JSON.stringify(json)});
      out.push(loaded());
      await guards.loadPolicyFile(${JSON.stringify(yaml)});
      out.push(loaded());
      console.log(JSON.stringify(out));
    })();`;
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual([false, false, true]);
});
