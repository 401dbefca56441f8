// Count the exports of every published entry point from the built declarations (dist/<entry>.d.ts; run
// `pnpm build` first): `node scripts/count-exports.mjs`. A type and a value of one name count once.
// Shared declaration chunks (`name-HASH.d.ts`) are not entry points and are skipped.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('..', import.meta.url));
const rows = [];
for (const dir of readdirSync(join(root, 'packages'))) {
  const dist = join(root, 'packages', dir, 'dist');
  if (!existsSync(dist)) continue;
  for (const file of readdirSync(dist)) {
    if (!file.endsWith('.d.ts') || /-[\w-]{8}\.d\.ts$/.test(file)) continue;
    const path = join(dist, file);
    const program = ts.createProgram([path], { skipLibCheck: true, noEmit: true });
    const checker = program.getTypeChecker();
    const module = checker.getSymbolAtLocation(program.getSourceFile(path));
    rows.push([
      `${dir}/${file.slice(0, -'.d.ts'.length)}`,
      module ? checker.getExportsOfModule(module).length : 0,
    ]);
  }
}
for (const [entry, n] of rows) console.log(`${entry.padEnd(24)} ${n}`);
const main = rows.filter(([entry]) => entry.endsWith('/index'));
console.log(`${'main entries total'.padEnd(24)} ${main.reduce((sum, [, n]) => sum + n, 0)}`);
