import ts from 'typescript';
import { readdirSync, existsSync } from 'node:fs';
const root = process.argv[2];
let total = 0;
const out = {};
for (const d of readdirSync(`${root}/packages`)) {
  const files = readdirSync(`${root}/packages/${d}/dist`).filter((f) => f.endsWith('.d.ts'));
  for (const f of files) {
    const file = `${root}/packages/${d}/dist/${f}`;
    const program = ts.createProgram([file], { skipLibCheck: true, noEmit: true });
    const checker = program.getTypeChecker();
    const sf = program.getSourceFile(file);
    const sym = checker.getSymbolAtLocation(sf);
    const n = sym ? checker.getExportsOfModule(sym).length : 0;
    out[`${d}/${f.replace('.d.ts', '')}`] = n;
    if (f === 'index.d.ts') total += n;
  }
}
console.log(JSON.stringify(out, null, 1), '\nindex total', total);
