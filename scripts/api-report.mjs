// API reports: one api-extractor report per public entry point of every published package, committed
// under packages/<name>/etc/<entry>.api.md, so a change to the public surface is a visible diff in review.
//
//   node scripts/api-report.mjs           check: fails when a report differs from the built types
//   node scripts/api-report.mjs --update  rewrite the reports (after an intended surface change)
//
// Reads the built declarations (dist/*.d.ts): run `pnpm build` first. `@sock/core/internal` is left
// out: it is not for users and may change in any release.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const root = fileURLToPath(new URL('..', import.meta.url));
const update = process.argv.includes('--update');
const NOT_PUBLIC = new Set(['./internal', './package.json']);

/** Messages become part of the report (a forgotten export shows in the diff) instead of failing the run. */
const quiet = { logLevel: 'none', addToApiReportFile: true };
const silent = { logLevel: 'none' };

const failures = [];
let checked = 0;
for (const dir of readdirSync(join(root, 'packages'))) {
  const pkgDir = join(root, 'packages', dir);
  const pkgFile = join(pkgDir, 'package.json');
  if (!existsSync(pkgFile)) continue;
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
  if (pkg.private) continue;
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    if (NOT_PUBLIC.has(subpath)) continue;
    const types = target?.import?.types;
    if (typeof types !== 'string') continue;
    const entry = subpath === '.' ? 'index' : subpath.slice(2).replaceAll('/', '-');
    const reportFolder = join(pkgDir, 'etc');
    mkdirSync(reportFolder, { recursive: true });
    const config = ExtractorConfig.prepare({
      configObject: {
        projectFolder: pkgDir,
        mainEntryPointFilePath: join(pkgDir, types),
        compiler: {
          overrideTsconfig: { compilerOptions: { skipLibCheck: true, lib: ['ES2023'], types: ['node'] } },
        },
        apiReport: {
          enabled: true,
          reportFolder,
          reportTempFolder: join(pkgDir, 'node_modules/.cache/api-extractor'),
          reportFileName: `${entry}.api.md`,
        },
        docModel: { enabled: false },
        dtsRollup: { enabled: false },
        tsdocMetadata: { enabled: false },
        messages: {
          compilerMessageReporting: { default: silent },
          extractorMessageReporting: {
            default: quiet,
            'ae-missing-release-tag': silent,
            'ae-internal-missing-underscore': silent,
            // Documentation is `pnpm docs:check`'s job; here these lines carry dist line numbers, so
            // any edit above an export would show as a change of the public surface.
            'ae-undocumented': silent,
          },
          tsdocMessageReporting: { default: silent },
        },
      },
      configObjectFullPath: undefined,
      packageJsonFullPath: pkgFile,
    });
    const result = Extractor.invoke(config, {
      localBuild: update,
      // The workspace's TypeScript, the one `pnpm typecheck` uses (and no banner about a bundled one).
      typescriptCompilerFolder: join(root, 'node_modules/typescript'),
      messageCallback: (message) => {
        // Written into the report, or irrelevant here: not for the console.
        message.handled = true;
      },
    });
    checked++;
    if (!result.succeeded || (!update && result.apiReportChanged))
      failures.push(
        `${pkg.name}${subpath === '.' ? '' : subpath.slice(1)} (packages/${dir}/etc/${entry}.api.md)`,
      );
  }
}
if (failures.length > 0) {
  console.error(
    `api-report: the public surface changed for:\n  ${failures.join('\n  ')}\n` +
      'Review the change; if it is intended, run `pnpm api:update` and commit the reports.',
  );
  process.exit(1);
}
console.log(`api-report: ${checked} entry points ${update ? 'written' : 'match their reports'}`);
