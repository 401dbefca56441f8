import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sockAliases } from '../vitest.shared.js';

/** What every published package needs, checked for each one (a new package fails here until it has it). */
const root = fileURLToPath(new URL('..', import.meta.url));
const read = (f: string) => readFileSync(join(root, f), 'utf8');
const dirs = ['packages', 'apps']
  .flatMap((top) => readdirSync(join(root, top)).map((d) => `${top}/${d}`))
  .filter((d) => existsSync(join(root, d, 'package.json')));
const published = dirs.filter(
  (d) => !(JSON.parse(read(`${d}/package.json`)) as { private?: boolean }).private,
);
const paths = (
  JSON.parse(read('tsconfig.base.json')) as { compilerOptions: { paths: Record<string, string[]> } }
).compilerOptions.paths;
const license = read('LICENSE');

describe.each(published)('%s', (dir) => {
  const pkg = JSON.parse(read(`${dir}/package.json`)) as {
    name: string;
    license?: string;
    repository?: unknown;
    homepage?: string;
    bugs?: unknown;
    files?: string[];
    publishConfig?: unknown;
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };

  it('has the metadata, LICENSE and CHANGELOG, and ships them', () => {
    expect(pkg.license).toBe('MIT');
    expect(pkg.repository).toEqual({
      type: 'git',
      url: 'git+https://github.com/sock-dev/sock.git',
      directory: dir,
    });
    expect(pkg.homepage).toBe(`https://github.com/sock-dev/sock/tree/main/${dir}#readme`);
    expect(pkg.bugs).toEqual({ url: 'https://github.com/sock-dev/sock/issues' });
    expect(read(`${dir}/LICENSE`)).toBe(license);
    expect(existsSync(join(root, dir, 'CHANGELOG.md'))).toBe(true);
    expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'LICENSE', 'README.md', 'CHANGELOG.md']));
    // Provenance is added by scripts/release.mjs in CI only.
    expect(pkg.publishConfig).toEqual({ access: 'public' });
  });

  it.runIf(dir.startsWith('packages/'))(
    'typechecks and tests against sibling sources, before any build',
    () => {
      expect(paths[pkg.name], 'tsconfig.base.json paths').toEqual([`./${dir}/src/index.ts`]);
      expect(sockAliases[pkg.name], 'vitest.shared.ts aliases').toBeDefined();
    },
  );

  it.runIf(dir.startsWith('packages/'))(
    'wires every subpath export for sources too (tsconfig paths, vitest aliases)',
    () => {
      const exportsMap = (JSON.parse(read(`${dir}/package.json`)) as { exports?: Record<string, unknown> })
        .exports;
      for (const sub of Object.keys(exportsMap ?? {})) {
        if (sub === '.' || sub === './package.json') continue;
        const name = `${pkg.name}${sub.slice(1)}`;
        expect(paths[name], `tsconfig.base.json paths for ${name}`).toHaveLength(1);
        expect(existsSync(join(root, paths[name]![0]!)), `${name} source file`).toBe(true);
        expect(sockAliases[name], `vitest.shared.ts alias for ${name}`).toBe(join(root, paths[name]![0]!));
      }
    },
  );

  it.runIf(dir.startsWith('packages/') && pkg.name !== '@sock/core')(
    'takes @sock/core as a peer, if it uses it',
    () => {
      expect(pkg.dependencies?.['@sock/core'], '@sock/core is a peer, not a dependency').toBeUndefined();
      if (pkg.peerDependencies?.['@sock/core'])
        expect(pkg.devDependencies?.['@sock/core']).toBe('workspace:^');
    },
  );
});

it('the changeset config ignores only private apps and examples', () => {
  const config = JSON.parse(read('.changeset/config.json')) as { ignore: string[] };
  expect(config.ignore).not.toContain('@sock/cli');
});
