import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FirewallError, FirewallErrorCode } from './errors.js';
import type { PortRule } from './model.js';

/** A ban as remembered by us. */
export interface BanRecord {
  /** Canonical address or CIDR. */
  target: string;
  reason: string;
  /** Epoch ms when the ban ends; null = permanent. */
  expiresAt: number | null;
  /** Epoch ms of the first ban within the offence memory. */
  firstBannedAt: number;
  /** Epoch ms of the latest ban. */
  lastBannedAt: number;
  /** How many times this target was banned within the offence memory. */
  offences: number;
  /** False once unbanned; kept for its offence count until the memory runs out. */
  active: boolean;
}

/** The state file's content. */
export interface StateFile {
  version: 1;
  table: string;
  savedAt: number;
  bans: BanRecord[];
  allows: string[];
  ports: PortRule[];
}

function stateError(path: string, what: string, cause: unknown): FirewallError {
  return new FirewallError(
    FirewallErrorCode.STATE_FILE,
    `state file ${JSON.stringify(path)} ${what}; check its permissions and content, or move it away to start empty`,
    { cause, details: { path } },
  );
}

/** Read a state file; a missing file is an empty state (undefined). */
export async function readState(path: string): Promise<StateFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw stateError(path, 'could not be read', cause);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw stateError(path, 'is not valid JSON', cause);
  }
  const s = data as Partial<StateFile>;
  if (s.version !== 1 || !Array.isArray(s.bans) || !Array.isArray(s.allows) || !Array.isArray(s.ports)) {
    throw stateError(
      path,
      'has an unknown format (expected version 1 with bans, allows and ports)',
      undefined,
    );
  }
  return s as StateFile;
}

/**
 * Write the state atomically: a 0600 temp file in the same directory, fsync, rename over the old
 * file, fsync the directory. A crash leaves either the old or the new file, never half of one.
 */
export async function writeState(path: string, state: StateFile): Promise<void> {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.sockfw.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(JSON.stringify(state));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw stateError(path, 'could not be written', cause);
  }
  try {
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // Directory fsync is not supported everywhere; the rename itself already happened.
  }
}
