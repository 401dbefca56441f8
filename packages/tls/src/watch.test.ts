import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Watching, watchDirectories } from './watch.js';

let dir: string | undefined;
let watching: Watching | undefined;
afterEach(async () => {
  watching?.close();
  watching = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watchDirectories', () => {
  it('collapses a burst of changes into one trigger after the quiet time', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sock-watch-'));
    const triggers: string[] = [];
    watching = watchDirectories({
      dirs: [dir],
      debounceMs: 100,
      pollMs: 0,
      onTrigger: (t) => triggers.push(t),
      onWatchError: () => {},
    });
    for (let i = 0; i < 5; i++) {
      await writeFile(join(dir, 'tls.crt'), `v${i}`);
      await sleep(10);
    }
    await sleep(400);
    expect(triggers).toEqual(['watch']);
    await writeFile(join(dir, 'tls.key'), 'again');
    await sleep(400);
    expect(triggers).toEqual(['watch', 'watch']);
  });

  it('polls, reports directories it cannot watch, and stops on close', async () => {
    const triggers: string[] = [];
    const errors: string[] = [];
    watching = watchDirectories({
      dirs: [join(tmpdir(), 'sock-no-such-dir-for-watch')],
      debounceMs: 10,
      pollMs: 30,
      onTrigger: (t) => triggers.push(t),
      onWatchError: (d) => errors.push(d),
    });
    expect(errors.length).toBe(1);
    await sleep(150);
    expect(triggers.length).toBeGreaterThanOrEqual(2);
    expect(new Set(triggers)).toEqual(new Set(['poll']));
    watching.close();
    const count = triggers.length;
    await sleep(100);
    expect(triggers.length).toBe(count);
  });
});
