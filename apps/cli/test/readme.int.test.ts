import { expect, it } from 'vitest';
import { readmeExample } from '../../../test-support/readme-example.js';
import { type Listener, listen, run, tempDir } from './helpers.js';

/** The README's example block, run as written: port 7000 becomes a free port, paths live in a temp dir. */
it('README examples run and succeed', async () => {
  const block = readmeExample(new URL('../README.md', import.meta.url), 'cli-examples');
  expect(block).toBeDefined();
  const dir = tempDir();
  const servers = new Map<string, Listener>();
  const lines = block!.trim().split('\n');
  expect(lines.length).toBeGreaterThanOrEqual(8);
  for (const line of lines) {
    const abs = (args: string[]) => args.map((a) => a.replace(/^pki/, `${dir}/pki`));
    let input: string | undefined;
    let text = line;
    const pipe = /^echo (\S+) \| (.*)$/.exec(text);
    if (pipe) {
      input = `${pipe[1]}\n`;
      text = pipe[2]!;
    }
    const argv = text.replace(/ &$/, '').split(' ');
    expect(argv[0]).toBe('sock');
    if (argv[1] === 'listen') {
      const server = await listen(abs(argv.slice(2)).map((a) => (/^70\d\d$/.test(a) ? '0' : a)));
      expect(server.line).toMatch(/^listening on 127\.0\.0\.1:\d+ \(tls intermediate, /);
      servers.set(argv[3]!, server);
      continue;
    }
    const args = abs(argv.slice(1)).map((a) => (servers.has(a) ? String(servers.get(a)!.port) : a));
    const r = await run(args, { ...(input !== undefined ? { input } : {}), timeoutMs: 30_000 });
    expect(r.code, `${line}\n${r.stderr}`).toBe(0);
    if (pipe) expect(r.stdout).toBe(input);
  }
  expect(servers.get('7000')!.line).toContain(
    'guards: max-conns-per-ip 4, conn-rate 20/s, max-conns 100 (default))',
  );
  for (const server of servers.values()) expect((await server.stop()).code).toBe(0);
});
