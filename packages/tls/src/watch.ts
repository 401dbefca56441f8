import { type FSWatcher, watch } from 'node:fs';

export interface WatchOptions {
  /** Directories to watch (not files: a Kubernetes `..data` swap replaces the files' inodes). */
  readonly dirs: readonly string[];
  /** Quiet time after the last event before reloading. */
  readonly debounceMs: number;
  /** Poll interval as a fallback for lost events and file systems without notifications; 0 = off. */
  readonly pollMs: number;
  readonly onTrigger: (trigger: 'watch' | 'poll') => void;
  /** A watch could not be set up (reported; polling still runs). */
  readonly onWatchError: (dir: string, error: Error) => void;
}

export interface Watching {
  close(): void;
}

/**
 * Watch directories for certificate changes. Directory watches survive atomic swaps (rename of `..data`,
 * replaced files) that file watches lose after the first. Nothing here keeps the process alive.
 */
export function watchDirectories(options: WatchOptions): Watching {
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const fire = () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) options.onTrigger('watch');
    }, options.debounceMs);
    timer.unref();
  };
  for (const dir of options.dirs) {
    try {
      const w = watch(dir, { persistent: false }, fire);
      w.on('error', (err) => options.onWatchError(dir, err));
      watchers.push(w);
    } catch (err) {
      options.onWatchError(dir, err as Error);
    }
  }
  const poll =
    options.pollMs > 0
      ? setInterval(() => {
          if (!closed) options.onTrigger('poll');
        }, options.pollMs)
      : undefined;
  poll?.unref();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      if (poll) clearInterval(poll);
      for (const w of watchers) w.close();
    },
  };
}
