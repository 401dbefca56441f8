import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SockError } from '@sock/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createGuards, type GuardsSnapshot } from '../src/index.js';
import { attempt, guardedServer, until } from './helpers.js';

let dir = '';
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = '';
});

describe('IP list files', () => {
  it('reload on change without dropping connections; a bad line keeps the old list and names file and line', async () => {
    dir = await mkdtemp(join(tmpdir(), 'guards-lists-'));
    const file = join(dir, 'deny.txt');
    await writeFile(file, '# nobody yet\n');
    const errors: SockError[] = [];
    const guards = createGuards(
      { ip: { denyFiles: [file], debounce: '30ms' }, rates: { connections: false } },
      { onError: (e) => errors.push(e) },
    );
    const snap = () => guards.snapshot() as GuardsSnapshot;
    const { port } = await guardedServer(guards);
    const held = await attempt(port, '127.0.0.1', '127.0.0.90');
    expect(held.admitted).toBe(true);

    await writeFile(file, '127.0.0.90 # now denied\n');
    await until(() => snap().ip.reloads === 1);
    expect((await attempt(port, '127.0.0.1', '127.0.0.90')).admitted).toBe(false);
    expect(held.socket.closed).toBe(false);
    expect(snap().ip.rules).toBe(1);

    await writeFile(file, '127.0.0.90\n127.0.0.999\n');
    await until(() => snap().ip.reloadErrors === 1);
    expect(errors[0]?.message).toContain(`${file}:2: not an IP address or CIDR: "127.0.0.999"`);
    expect(snap().ip.lastError).toContain(`${file}:2`);
    // The old list stays in force.
    expect((await attempt(port, '127.0.0.1', '127.0.0.90')).admitted).toBe(false);

    // Replaced atomically (a new inode, as editors and Kubernetes do): still picked up.
    const tmp = join(dir, '.deny.tmp');
    await writeFile(tmp, '127.0.0.91\n');
    await rename(tmp, file);
    await until(() => snap().ip.reloads === 2);
    expect(snap().ip.lastError).toBeUndefined();
    expect((await attempt(port, '127.0.0.1', '127.0.0.90')).admitted).toBe(true);
    expect((await attempt(port, '127.0.0.1', '127.0.0.91')).admitted).toBe(false);
    expect(held.socket.closed).toBe(false);
  });

  it('refuses to start on a bad list file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'guards-lists-'));
    const file = join(dir, 'allow.txt');
    await writeFile(file, '10.0.0.0/8\nbogus\n');
    expect(() => createGuards({ ip: { allowFiles: [file] } })).toThrow(
      `${file}:2: not an IP address or CIDR: "bogus"`,
    );
  });
});
