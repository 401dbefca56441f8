import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { SockError, SockErrorCode } from '@sock/core';
import type { Guards } from './guards.js';
import { type GuardsPolicy, loadPolicyFile } from './policy.js';
import { GuardReason } from './reasons.js';
import { readSettledFile } from './settled-file.js';

/** Options of {@link watchPolicyFile}. */
export interface PolicyWatchOptions {
  /**
   * How to turn the file into a policy (default `loadPolicyFile(path)`): the CLI reads its `--config`
   * format and lays its flags over it. Called after the file has settled.
   */
  load?: (path: string) => Promise<GuardsPolicy>;
  /** Also reload on SIGHUP. Default false (a library does not take a process's signals unasked). */
  sighup?: boolean;
  /** Quiet time the file must stay unchanged before it is read. Default 200 ms. */
  debounceMs?: number;
  /** A new policy is in force. */
  onReload?: () => void;
  /** A reload failed; the policy in force stays. */
  onError?: (error: SockError) => void;
}

/** A running watch on a policy file, returned by {@link watchPolicyFile}. */
export interface PolicyWatch {
  /** Reload now (what a change or SIGHUP does); rejects, keeping the policy in force, on any error. */
  reload(): Promise<void>;
  /** Stop watching (and stop listening for SIGHUP); the policy in force stays. Idempotent. */
  close(): void;
}

/**
 * Reload the whole policy from `path` when the file changes (and on SIGHUP if asked), through
 * `guards.update`: validated and its IP lists read before anything is swapped, so on any error the old
 * policy stays in force (and `onError` says why). The directory is watched, so an atomic replace (write a
 * temporary file, then rename it over the policy) is seen; an in-place writer is read only once the file
 * has stayed unchanged for `debounceMs`.
 */
export function watchPolicyFile(guards: Guards, path: string, options: PolicyWatchOptions = {}): PolicyWatch {
  const file = resolve(path);
  const debounceMs = options.debounceMs ?? 200;
  const load = options.load ?? ((p: string) => loadPolicyFile(p));
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;

  const reload = async (): Promise<void> => {
    // The settle check first: a half-written file is never parsed (a parse error would be reported
    // for nothing, a truncated list could validate).
    await readSettledFile(file, debounceMs);
    await guards.update(await load(file));
    options.onReload?.();
  };
  const quietly = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = reload().catch((err: unknown) => {
      const error = SockError.isInstance(err)
        ? err
        : new SockError(SockErrorCode.INVALID_OPTION, `${file}: ${(err as Error)?.message ?? String(err)}`, {
            cause: err,
            reason: GuardReason.POLICY_FILE_INVALID,
          });
      if (options.onError) options.onError(error);
      else process.emitWarning(`${error.message}; the policy in force stays`);
    });
    await running;
    running = undefined;
    if (again && !closed) {
      again = false;
      await quietly();
    }
  };
  const schedule = () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    // Real time, not the guards' clock: it waits on the filesystem (changes settling), not on the protocol.
    timer = setTimeout(() => void quietly(), debounceMs);
    timer.unref();
  };
  const watcher: FSWatcher = watch(dirname(file), { persistent: false }, (_event, name) => {
    if (name === null || name === basename(file)) schedule();
  });
  watcher.on('error', (err) =>
    options.onError?.(
      new SockError(SockErrorCode.SOCKET_ERROR, `watching ${file}: ${err.message}`, { cause: err }),
    ),
  );
  const onHup = () => void quietly();
  if (options.sighup) process.on('SIGHUP', onHup);
  return {
    reload,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      watcher.close();
      if (options.sighup) process.off('SIGHUP', onHup);
    },
  };
}
