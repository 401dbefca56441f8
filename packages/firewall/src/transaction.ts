import { FirewallError, FirewallErrorCode } from './errors.js';
import type { Command } from './runner.js';
import { type StagedState, type StateFile, stageState } from './state.js';

/** One all-or-nothing operation: a kernel change and the state file that describes the result. */
export interface TransactionSteps {
  /** Apply the change to the kernel; returns the commands it ran. */
  apply(): Promise<Command[]>;
  /** Put the kernel back as it was before `apply` (the full previous state, re-rendered). */
  rollback(): Promise<unknown>;
  /** The backend applies a change in one kernel transaction (nftables): a failed apply left nothing. */
  readonly atomic: boolean;
  /** Where the new state goes; undefined when there is no state file (or nothing to persist). */
  readonly state?: { readonly path: string; readonly content: StateFile } | undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The one transaction every mutating operation runs, so the kernel and the state file always agree:
 *
 * 1. write the new state to a temp file beside the state file (its directory created 0700 if missing);
 *    if that fails, nothing has been touched;
 * 2. apply the kernel change; if that fails, drop the temp file (the old state stays) and, on a backend
 *    that runs several commands (iptables), roll the kernel back to the old state;
 * 3. rename the temp file over the state file; if that fails, roll the kernel back to the old state.
 *
 * A rollback that fails too is reported in the error (`details.rolledBack: false`): run `restore()`.
 */
export async function runTransaction(steps: TransactionSteps): Promise<Command[]> {
  const staged: StagedState | undefined = steps.state
    ? await stageState(steps.state.path, steps.state.content)
    : undefined;
  let commands: Command[];
  try {
    commands = await steps.apply();
  } catch (error) {
    await staged?.discard();
    if (!steps.atomic) await rollBack(steps, error, 'the kernel change failed');
    throw error;
  }
  if (staged) {
    try {
      await staged.commit();
    } catch (error) {
      await rollBack(steps, error, 'the state file could not be written');
      const path = steps.state!.path;
      throw new FirewallError(
        FirewallErrorCode.STATE_FILE,
        `${describe(error)}; the kernel change was rolled back, so nothing changed`,
        { cause: error, details: { path, rolledBack: true } },
      );
    }
  }
  return commands;
}

async function rollBack(steps: TransactionSteps, cause: unknown, why: string): Promise<void> {
  try {
    await steps.rollback();
  } catch (rollbackError) {
    throw new FirewallError(
      FirewallErrorCode.ROLLBACK_FAILED,
      `${why} (${describe(cause)}) and putting the kernel back failed too (${describe(rollbackError)}); the kernel may hold part of the change: run restore() (sock fw restore) to re-apply the state file`,
      { cause, details: { rolledBack: false, rollbackError } },
    );
  }
}
