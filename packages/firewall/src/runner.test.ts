import { stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { FirewallError } from './errors.js';
import { createCommandRunner, INPUT_FILE, resolveBinary, validateNetns } from './runner.js';

// Node stands in for nft: it proves how arguments and input files arrive, without a shell.
const node = process.execPath;

describe('createCommandRunner', () => {
  it('passes argv untouched (no shell) and input as a 0600 temp file that is removed', async () => {
    const runner = createCommandRunner({ binaries: { nft: node } });
    const hostile = '1.2.3.4; touch /tmp/sockfw-pwned $(id) `id` | cat';
    const script =
      "const fs=require('fs');const f=process.argv[2];console.log(JSON.stringify({arg:process.argv[1],mode:fs.statSync(f).mode&0o777,body:fs.readFileSync(f,'utf8'),path:f,env:Object.keys(process.env).sort()}))";
    const r = await runner.run({
      bin: 'nft',
      args: ['-e', script, hostile, INPUT_FILE],
      input: '{"nftables":[]}',
    });
    const out = JSON.parse(r.stdout);
    expect(out.arg).toBe(hostile);
    expect(out.mode).toBe(0o600);
    expect(out.body).toBe('{"nftables":[]}');
    expect(out.env).toEqual(['LC_ALL', 'PATH']);
    await expect(stat(out.path)).rejects.toThrow();
    await expect(stat('/tmp/sockfw-pwned')).rejects.toThrow();
  });

  it('reports non-zero exits instead of throwing', async () => {
    const runner = createCommandRunner({ binaries: { nft: node } });
    const r = await runner.run({ bin: 'nft', args: ['-e', 'process.stderr.write("nope");process.exit(3)'] });
    expect(r).toEqual({ exitCode: 3, stdout: '', stderr: 'nope' });
  });

  it('times out and aborts with typed errors', async () => {
    const runner = createCommandRunner({ binaries: { nft: node }, timeoutMs: 200 });
    const slow = { bin: 'nft' as const, args: ['-e', 'setTimeout(()=>{},5000)'] };
    await expect(runner.run(slow)).rejects.toMatchObject({ code: 'ERR_SOCK_FW_COMMAND_FAILED' });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await expect(
      createCommandRunner({ binaries: { nft: node } }).run(slow, { signal: ac.signal }),
    ).rejects.toMatchObject({ code: 'ERR_SOCK_FW_ABORTED' });
  });

  it('validates netns names and binary paths', () => {
    for (const bad of ['', '.', '..', 'a b', 'a;b', '-x', 'a/b', 'x'.repeat(65), 'ns\n']) {
      expect(() => validateNetns(bad)).toThrow(FirewallError);
    }
    expect(validateNetns('sfw-s-1a2b3c')).toBe('sfw-s-1a2b3c');
    expect(() => resolveBinary('nft', 'nft')).toThrow(/absolute path/);
    expect(() => resolveBinary('nft', '/nonexistent/nft')).toThrow(
      expect.objectContaining({ code: 'ERR_SOCK_FW_BINARY_MISSING' }),
    );
    expect(resolveBinary('nft', process.execPath)).toBe(process.execPath);
    expect(() => createCommandRunner({ timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});
