import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readmeExample } from '../test-support/readme-example.js';

/**
 * What a new user does: pack each package, install it alone with npm in an empty project outside the
 * workspace (its sibling packages from their tarballs, everything else from the registry), and run its
 * README example as pasted, once as ESM (.mjs) and once as CommonJS (.cjs).
 */
const exec = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

interface Case {
  dir: string;
  name: string;
  /** The @sock packages it needs beside itself (dependencies and peers). */
  siblings: string[];
  /** Third-party packages the README says to install for the example. */
  extra: string[];
  example?: string;
  /** A line the example prints when it worked. */
  prints?: string;
  /** Turn the pasted example into one that may run here (no root firewall changes). */
  adapt?: (code: string, dir: string) => string;
}

const CASES: Case[] = [
  {
    dir: 'packages/core',
    name: '@sock/core',
    siblings: [],
    extra: ['zod@^4'],
    example: 'core-usage',
    prints: "type: 'pong'",
  },
  {
    dir: 'packages/guards',
    name: '@sock/guards',
    siblings: ['@sock/core'],
    extra: [],
    example: 'guards-usage',
    prints: 'ban 127.0.0.1',
  },
  {
    dir: 'packages/tls',
    name: '@sock/tls',
    siblings: ['@sock/core'],
    extra: [],
    example: 'tls-usage',
    prints: 'spiffe://example.org/worker',
  },
  {
    dir: 'packages/udp',
    name: '@sock/udp',
    siblings: ['@sock/core', '@sock/guards'],
    extra: [],
    example: 'udp-usage',
    prints: "echo: { hello: 'world' }",
  },
  {
    dir: 'packages/firewall',
    name: '@sock/firewall',
    siblings: ['@sock/core'],
    extra: [],
    example: 'firewall-usage',
    prints: 'ERR_SOCK_FW_INVALID_ADDRESS',
    // The plan backend prints the change instead of applying it to this machine's firewall.
    adapt: (code, dir) =>
      code
        .replace("backend: 'auto'", "backend: 'plan'")
        .replace("'/var/lib/sock/firewall.json'", JSON.stringify(join(dir, 'firewall.json'))),
  },
  {
    dir: 'packages/ssh',
    name: '@sock/ssh',
    siblings: ['@sock/core'],
    extra: [],
    example: 'ssh-usage',
    prints: 'alice (ssh-ed25519): hello',
  },
  {
    // Its Usage example drives a running charon (the tunnel suite runs it between two namespaces).
    dir: 'packages/ipsec',
    name: '@sock/ipsec',
    siblings: ['@sock/core', '@sock/firewall'],
    extra: [],
  },
  {
    dir: 'packages/observe',
    name: '@sock/observe',
    siblings: ['@sock/core', '@sock/guards'],
    extra: ['pino@^10', 'prom-client@^15'],
    example: 'observe-usage',
    prints: 'sock_rejections_total',
  },
  {
    dir: 'apps/cli',
    name: '@sock/cli',
    siblings: [
      '@sock/core',
      '@sock/guards',
      '@sock/tls',
      '@sock/udp',
      '@sock/firewall',
      '@sock/ssh',
      '@sock/ipsec',
      '@sock/observe',
    ],
    extra: [],
  },
];

let work: string;
const tarballs = new Map<string, string>();

beforeAll(async () => {
  for (const c of CASES) {
    expect(existsSync(join(root, c.dir, 'dist')), `build first: ${c.dir}/dist is missing (pnpm build)`).toBe(
      true,
    );
  }
  work = mkdtempSync(join(tmpdir(), 'sock-packaging-'));
  const packs = join(work, 'tarballs');
  mkdirSync(packs);
  for (const c of CASES) {
    await exec('pnpm', ['pack', '--pack-destination', packs], { cwd: join(root, c.dir) });
  }
  for (const file of readdirSync(packs)) {
    const c = CASES.find((x) => file.startsWith(`${x.name.slice(1).replace('/', '-')}-`));
    if (c) tarballs.set(c.name, join(packs, file));
  }
  expect([...tarballs.keys()].sort()).toEqual(CASES.map((c) => c.name).sort());
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

it('covers every published package (a new one must be added to CASES)', () => {
  const published = ['packages', 'apps']
    .flatMap((top) => readdirSync(join(root, top)).map((d) => `${top}/${d}`))
    .filter((d) => existsSync(join(root, d, 'package.json')))
    .filter(
      (d) =>
        !(JSON.parse(readFileSync(join(root, d, 'package.json'), 'utf8')) as { private?: boolean }).private,
    );
  expect(published.sort()).toEqual(CASES.map((c) => c.dir).sort());
});

/** A pasted TS/JS example as JavaScript: types stripped, as a user would paste it into a .mjs. */
function asEsm(code: string): string {
  return ts.transpileModule(code, {
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      verbatimModuleSyntax: false,
    },
  }).outputText;
}

/** The same program for a .cjs file: imports become require() and top-level await runs in an async function. */
function asCjs(esm: string): string {
  const requires: string[] = [];
  const body = esm.replace(
    /^import\s+(?:(\w+)|\{([^}]*)\})\s+from\s+'([^']+)';\s*$/gm,
    (_, def, named, mod) => {
      if (def) requires.push(`const ${def} = require('${mod}');`);
      else {
        const names = (named as string)
          .split(',')
          .map((n) => n.trim())
          .filter(Boolean)
          .map((n) => n.replace(/^(\w+)\s+as\s+(\w+)$/, '$1: $2'));
        requires.push(`const { ${names.join(', ')} } = require('${mod}');`);
      }
      return '';
    },
  );
  expect(body, 'every import was turned into require()').not.toMatch(/^import /m);
  return `'use strict';\n${requires.join('\n')}\n(async () => {\n${body}\n})().catch((err) => {\n  console.error(err);\n  process.exitCode = 1;\n});\n`;
}

async function install(c: Case): Promise<string> {
  const dir = join(work, c.name.replace('/', '+'));
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'try-sock', version: '1.0.0', private: true }),
  );
  const specs = [tarballs.get(c.name)!, ...c.siblings.map((s) => tarballs.get(s)!), ...c.extra];
  await exec(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...specs],
    {
      cwd: dir,
      timeout: 120_000,
    },
  );
  return dir;
}

describe.each(CASES)('$name packed and installed alone with npm', (c) => {
  let dir: string;
  beforeAll(async () => {
    dir = await install(c);
  }, 150_000);

  it('ships LICENSE, README and CHANGELOG, and no workspace: ranges', () => {
    const installed = join(dir, 'node_modules', ...c.name.split('/'));
    for (const f of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json']) {
      expect(existsSync(join(installed, f)), f).toBe(true);
    }
    const manifest = readFileSync(join(installed, 'package.json'), 'utf8');
    expect(manifest).not.toContain('workspace:');
    const pkg = JSON.parse(manifest) as Record<string, unknown>;
    expect(pkg.repository).toMatchObject({
      url: 'git+https://github.com/sock-dev/sock.git',
      directory: c.dir,
    });
    expect(pkg.publishConfig).not.toHaveProperty('provenance');
  });

  it.runIf(c.example !== undefined)('runs its README example as ESM and as CommonJS', async () => {
    let code = readmeExample(join(root, c.dir, 'README.md'), c.example!);
    if (c.adapt) code = c.adapt(code, dir);
    const esm = asEsm(code);
    writeFileSync(join(dir, 'example.mjs'), esm);
    writeFileSync(join(dir, 'example.cjs'), asCjs(esm));
    for (const file of ['example.mjs', 'example.cjs']) {
      const { stdout } = await exec(process.execPath, [file], { cwd: dir, timeout: 60_000 });
      expect(stdout, file).toContain(c.prints!);
    }
  });

  it.runIf(c.name === '@sock/cli')('installs a working sock bin', async () => {
    const bin = join(dir, 'node_modules', '.bin', 'sock');
    const { version } = JSON.parse(readFileSync(join(root, c.dir, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect((await exec(bin, ['--version'])).stdout.trim()).toBe(version);
    const { stdout } = await exec(bin, [
      'fw',
      'ban',
      '192.0.2.1',
      '--backend',
      'plan',
      '--state',
      join(dir, 'fw.json'),
    ]);
    expect(stdout).toContain('banned 192.0.2.1: plan');
  });
});
