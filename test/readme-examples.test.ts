import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

/**
 * The rule for README code (CONTRIBUTING.md, "README examples"): every ```ts/```js block carries a marker
 * on the line before its fence, either `<!-- example: <name> -->` (a complete program that a test runs
 * through `readmeExample(readme, '<name>')`) or `<!-- snippet -->` (a fragment, not run). An unmarked
 * block, a marked block no test reads, or a package README whose Usage does not start with an example
 * fails here, so a new example cannot be forgotten.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const tracked = (pattern: string[]) =>
  execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', ...pattern], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\n')
    .filter(Boolean);

const readmes = tracked(['README.md', '*/README.md']).filter((f) => !f.includes('node_modules'));
const testSources = tracked(['*.test.ts', '*.test.mjs', 'test/*.mjs', '*/test/*.ts', '*/test/*.mjs'])
  .filter((f) => !f.includes('node_modules'))
  .map((f) => readFileSync(join(root, f), 'utf8'));

interface Block {
  readme: string;
  line: number;
  lang: string;
  marker: string | undefined;
}

function blocks(readme: string): Block[] {
  const lines = readFileSync(join(root, readme), 'utf8').split('\n');
  const out: Block[] = [];
  let open = false;
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```([\w-]*)/.exec(lines[i]!);
    if (!fence) continue;
    if (open) {
      open = false;
      continue;
    }
    open = true;
    const before = i > 0 ? lines[i - 1]!.trim() : '';
    const marker = /^<!-- (example: [\w-]+|snippet(?:: .*)?) -->$/.exec(before)?.[1];
    out.push({ readme, line: i + 1, lang: fence[1]!, marker });
  }
  return out;
}

const all = readmes.flatMap(blocks);
const code = (b: Block) => ['ts', 'js', 'mjs', 'cjs', 'typescript', 'javascript'].includes(b.lang);

it('finds the READMEs', () => {
  expect(readmes).toContain('packages/core/README.md');
  expect(readmes).toContain('apps/cli/README.md');
});

it('every ts/js block in a README is marked as an example or a snippet', () => {
  const unmarked = all.filter((b) => code(b) && b.marker === undefined).map((b) => `${b.readme}:${b.line}`);
  expect(unmarked, 'add <!-- example: <name> --> or <!-- snippet --> on the line before').toEqual([]);
});

it('every marked example is read by a test, and names are unique', () => {
  const names = all.filter((b) => b.marker?.startsWith('example: ')).map((b) => b.marker!.slice(9));
  expect(new Set(names).size, 'example names must be unique').toBe(names.length);
  const unread = names.filter(
    (name) =>
      !testSources.some((src) =>
        new RegExp(`(readmeExample|runReadmeUsage)\\([^;]*['"]${name}['"]`).test(src),
      ),
  );
  expect(unread, "run each with readmeExample(readme, '<name>') in a test").toEqual([]);
});

it('the Usage section of every package README starts with a marked example', () => {
  const missing: string[] = [];
  for (const readme of readmes.filter((r) => /^(packages|apps)\/[^/]+\/README\.md$/.test(r))) {
    const text = readFileSync(join(root, readme), 'utf8');
    const at = text.indexOf('\n## Usage');
    if (at < 0) {
      if (readme.startsWith('packages/')) missing.push(`${readme}: no ## Usage section`);
      continue;
    }
    const first = all.find((b) => b.readme === readme && b.line > text.slice(0, at).split('\n').length);
    if (!first?.marker?.startsWith('example: ')) missing.push(`${readme}: the first block of ## Usage`);
  }
  expect(missing).toEqual([]);
});
