import { readFile, stat } from 'node:fs/promises';
import { type AuthorizedKey, parseAuthorizedKeys } from './authorized-keys.js';

/** Where the server reads the keys it accepts; asked on every authentication attempt. */
export interface AuthorizedKeysSource {
  keys(): Promise<readonly AuthorizedKey[]>;
}

export interface AuthorizedKeysFileOptions {
  /** Told about refused lines and unreadable files (the refused keys are simply not authorized). */
  onError?: (message: string) => void;
}

/**
 * An authorized_keys file, re-read whenever it changed. Each lookup costs one `stat`: a change (size,
 * mtime, ctime or inode, so an atomic rename counts) is seen by the very next authentication, without a
 * watcher that could miss a swapped inode. An unreadable or missing file authorizes nobody (a deleted
 * file revokes), and is reported.
 */
export function authorizedKeysFile(
  path: string,
  options: AuthorizedKeysFileOptions = {},
): AuthorizedKeysSource {
  let signature = '';
  let cached: readonly AuthorizedKey[] = [];
  let loading: Promise<readonly AuthorizedKey[]> | undefined;
  const load = async (): Promise<readonly AuthorizedKey[]> => {
    let current: string;
    try {
      const s = await stat(path, { bigint: true });
      current = `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    } catch (err) {
      if (signature !== 'missing') options.onError?.(`authorized keys ${path}: ${(err as Error).message}`);
      signature = 'missing';
      cached = [];
      return cached;
    }
    if (current === signature) return cached;
    try {
      const parsed = parseAuthorizedKeys(await readFile(path, 'utf8'));
      for (const e of parsed.errors) options.onError?.(`authorized keys ${path}:${e.line}: ${e.message}`);
      cached = parsed.keys;
    } catch (err) {
      options.onError?.(`authorized keys ${path}: ${(err as Error).message}`);
      cached = [];
    }
    signature = current;
    return cached;
  };
  return {
    keys() {
      // Concurrent authentications share one stat (and one read after a change).
      loading ??= load().finally(() => {
        loading = undefined;
      });
      return loading;
    },
  };
}

/** A fixed list of keys (tests, keys held in memory), parsed once from authorized_keys text. */
export function authorizedKeysText(text: string): AuthorizedKeysSource {
  const parsed = parseAuthorizedKeys(text);
  if (parsed.errors.length > 0) {
    const e = parsed.errors[0]!;
    throw new Error(`authorized keys line ${e.line}: ${e.message}`);
  }
  return { keys: async () => parsed.keys };
}
