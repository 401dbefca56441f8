import { readFile, stat } from 'node:fs/promises';
import { SockError, SockErrorCode } from '@sock/core';
import { GuardReason } from './reasons.js';

/** Checks before giving up on a file that never stops changing. */
const MAX_CHECKS = 100;

function sleep(ms: number): Promise<void> {
  // Real time, not the guards' clock: it waits on the filesystem (a file that stops changing).
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Read a file once it has settled: unchanged (size, mtime, inode) for `quietMs`, and unchanged while it
 * was read. A writer rewriting a list in place, line by line, is never read half-way; one that pauses
 * longer than `quietMs` mid-write can still be, which is why the docs ask for an atomic replace (write a
 * temporary file, then rename it over the old one). Rejects after 100 checks of a file still changing.
 */
export async function readSettledFile(path: string, quietMs: number): Promise<string> {
  let before = await stat(path);
  for (let i = 0; i < MAX_CHECKS; i++) {
    await sleep(quietMs);
    const now = await stat(path);
    if (same(before, now)) {
      const text = await readFile(path, 'utf8');
      const read = await stat(path);
      if (same(now, read)) return text;
      before = read;
    } else before = now;
  }
  throw new SockError(
    SockErrorCode.INVALID_OPTION,
    `${path} kept changing for ${MAX_CHECKS} checks ${quietMs}ms apart; replace it atomically (write a temporary file, then rename it)`,
    { reason: GuardReason.POLICY_FILE_INVALID },
  );
}

function same(a: { size: number; mtimeMs: number; ino: number }, b: typeof a): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}
