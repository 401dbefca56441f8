import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
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

/** A new state written to a temp file beside the state file, not yet in place. */
export interface StagedState {
  /** Rename the temp file over the state file (atomic) and fsync the directory. */
  commit(): Promise<void>;
  /** Remove the temp file; the old state file stays as it was. */
  discard(): Promise<void>;
}

/**
 * First half of an atomic write: create the state file's directory (0700) when missing, then write the
 * new state to a 0600 temp file in it and fsync it. Nothing the old file says has changed yet, so a
 * caller can still give up (`discard`); `commit` puts it in place with one rename.
 */
export async function stageState(path: string, state: StateFile): Promise<StagedState> {
  const dir = dirname(path);
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.sockfw.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(JSON.stringify(state));
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (cause) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw stateError(path, 'could not be written', cause);
  }
  return {
    async commit() {
      try {
        await rename(tmp, path);
      } catch (cause) {
        await rm(tmp, { force: true }).catch(() => undefined);
        throw stateError(path, 'could not be written', cause);
      }
      try {
        const handle = await open(dir, 'r');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      } catch {
        // Directory fsync is not supported everywhere; the rename itself already happened.
      }
    },
    discard: () => rm(tmp, { force: true }).catch(() => undefined),
  };
}
