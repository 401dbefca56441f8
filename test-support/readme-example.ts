import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The code of the README block marked `<!-- example: <name> -->` (the line right before its fence).
 * Marked blocks are complete programs that a test runs; `test/readme-examples.test.ts` fails when a
 * marked block is not read by any test through this function, so an example cannot be forgotten.
 */
export function readmeExample(readme: string | URL, name: string): string {
  const path = typeof readme === 'string' ? readme : fileURLToPath(readme);
  const text = readFileSync(path, 'utf8');
  const re = new RegExp(
    `<!-- example: ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} -->\\s*\`\`\`[\\w-]*\\n([\\s\\S]*?)\`\`\``,
  );
  const code = re.exec(text)?.[1];
  if (code === undefined) throw new Error(`${path} has no block marked <!-- example: ${name} -->`);
  return code;
}
