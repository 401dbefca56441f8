import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The sibling packages from source, as vitest resolves them (vitest.shared.ts). */
const sockAliases: Record<string, string> = {
  ...Object.fromEntries(
    ['core', 'guards'].map((n) => [
      `@sock/${n}`,
      fileURLToPath(new URL(`../../${n}/src/index.ts`, import.meta.url)),
    ]),
  ),
  '@sock/core/internal': fileURLToPath(new URL('../../core/src/internal.ts', import.meta.url)),
};

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const built = new Map<string, Promise<string>>();

/**
 * Child processes cannot load TypeScript: bundle a fixture (and the package sources it imports, as the
 * tests see them) with esbuild, tsup's own, into node_modules/.cache. ioredis and yaml stay external.
 */
export function bundleFixture(name: string): Promise<string> {
  let p = built.get(name);
  if (!p) {
    p = (async () => {
      const require = createRequire(createRequire(import.meta.url).resolve('tsup'));
      const esbuild = (await import(require.resolve('esbuild'))) as {
        build(options: Record<string, unknown>): Promise<unknown>;
      };
      const outDir = here('../node_modules/.cache/guards-fixtures');
      mkdirSync(outDir, { recursive: true });
      const outfile = `${outDir}/${name}-${process.pid}.mjs`;
      await esbuild.build({
        entryPoints: [here(`./fixtures/${name}.ts`)],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        outfile,
        // A plug-in, not `alias`: esbuild's alias also rewrites subpaths by prefix (`@sock/core/internal`
        // would become `…/core/src/index.ts/internal`); an exact lookup gives each entry point its file.
        plugins: [
          {
            name: 'sock-sources',
            setup(b: { onResolve(o: { filter: RegExp }, f: (a: { path: string }) => unknown): void }) {
              b.onResolve({ filter: /^@sock\// }, (a) =>
                a.path in sockAliases ? { path: sockAliases[a.path] } : undefined,
              );
            },
          },
        ],
        external: ['ioredis', 'yaml'],
        logLevel: 'error',
      });
      return outfile;
    })();
    built.set(name, p);
  }
  return p;
}

export interface Child {
  readonly process: ChildProcess;
  readonly messages: Array<Record<string, unknown>>;
  /** The next message of `type` (or one already received and not yet taken). */
  next(type: string, ms?: number, key?: string): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export async function startChild(file: string, args: string[]): Promise<Child> {
  const proc = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  proc.on('message', (m) => {
    messages.push(m as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  const child: Child = {
    process: proc,
    messages,
    async next(type, ms = 10_000, key) {
      const end = Date.now() + ms;
      for (;;) {
        const i = messages.findIndex((m) => m.type === type && (key === undefined || m.key === key));
        if (i >= 0) return messages.splice(i, 1)[0]!;
        if (proc.exitCode !== null) throw new Error(`child exited with ${proc.exitCode} before '${type}'`);
        const left = end - Date.now();
        if (left <= 0) throw new Error(`no '${type}' message from the child within ${ms}ms`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill('SIGKILL');
      await exited;
    },
  };
  return child;
}
