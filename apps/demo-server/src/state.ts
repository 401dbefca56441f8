import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where the demo keeps its PKI and logs: SOCK_DEMO_STATE, or `.sock-demo/` beside the package (gitignored). */
export function stateDir(): string {
  const dir = process.env.SOCK_DEMO_STATE ?? fileURLToPath(new URL('../.sock-demo', import.meta.url));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}
