import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SockError, SockErrorCode, toSockError } from '@sock/core';
import { type CidrMatcher, type CidrRule, createCidrMatcher } from './cidr-matcher.js';
import { parseCidr } from './ip.js';
import type { ResolvedPolicy } from './policy.js';
import { GuardReason } from './reasons.js';
import { readSettledFile } from './settled-file.js';

export type IpAction = 'allow' | 'deny';

/**
 * Parse a list file: one address or CIDR per line; `#` starts a comment; blank lines are skipped. A bad
 * line throws a SockError (`ERR_SOCK_INVALID_OPTION`, reason `policy-file-invalid`) naming the file and
 * line, with `issues[0].path` = `[file, line]`.
 */
export function parseIpList(text: string, file = '<list>'): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const hash = lines[i]!.indexOf('#');
    const entry = (hash >= 0 ? lines[i]!.slice(0, hash) : lines[i]!).trim();
    if (entry === '') continue;
    if (!parseCidr(entry)) {
      const message = `${file}:${i + 1}: not an IP address or CIDR: ${JSON.stringify(entry.slice(0, 80))}`;
      throw new SockError(SockErrorCode.INVALID_OPTION, `${message}; the previous list stays in force`, {
        reason: GuardReason.POLICY_FILE_INVALID,
        issues: [{ message, path: [file, i + 1] }],
      });
    }
    out.push(entry);
  }
  return out;
}

export interface IpPolicyStats {
  readonly rules: number;
  readonly reloads: number;
  readonly reloadErrors: number;
  readonly lastError: string | undefined;
}

/** @internal Allow/deny lists from code and files, swapped atomically on reload. */
export class IpPolicy {
  private matcher: CidrMatcher<IpAction>;
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private reloads = 0;
  private reloadErrors = 0;
  private lastError: string | undefined;
  private reloading: Promise<void> | undefined;
  private again = false;
  readonly hasRules: boolean;

  constructor(
    private readonly options: ResolvedPolicy['ip'],
    private readonly onError: (error: SockError) => void,
    private readonly onReload: () => void = () => {},
  ) {
    const files = [...options.allowFiles, ...options.denyFiles];
    const read = (f: string) => readFileSync(f, 'utf8');
    this.matcher = this.build(read, read);
    this.hasRules = this.matcher.size > 0 || files.length > 0;
    if (options.watch && files.length > 0) {
      for (const dir of new Set(files.map((f) => dirname(f)))) {
        // The directory, not the file: editors and Kubernetes replace files (new inode), which a file
        // watch does not survive.
        const watcher = watch(dir, { persistent: false }, () => this.schedule());
        watcher.on('error', (err) =>
          this.onError(
            new SockError(SockErrorCode.SOCKET_ERROR, `watching ${dir}: ${err.message}`, { cause: err }),
          ),
        );
        this.watchers.push(watcher);
      }
    }
  }

  private build(readAllow: (f: string) => string, readDeny: (f: string) => string): CidrMatcher<IpAction> {
    const rules: Array<CidrRule<IpAction>> = [];
    const add = (list: readonly string[], value: IpAction) => {
      for (const cidr of list) rules.push({ cidr, value });
    };
    add(this.options.allow, 'allow');
    for (const f of this.options.allowFiles) add(parseIpList(readAllow(f), f), 'allow');
    // Denies after allows: on an identical prefix, deny wins.
    add(this.options.deny, 'deny');
    for (const f of this.options.denyFiles) add(parseIpList(readDeny(f), f), 'deny');
    return createCidrMatcher(rules);
  }

  /** The action for `address` (canonical), after the default. */
  check(address: string): IpAction {
    return this.matcher.lookup(address) ?? this.options.default;
  }

  /** `check` for an IPv4 address given as its number (`parseIPv4`'s result). */
  checkIPv4(value: number): IpAction {
    return this.matcher.lookupIPv4(value) ?? this.options.default;
  }

  /**
   * Re-read the files now (`settled`: once each has stopped changing); on any error the current lists
   * stay and the error is thrown.
   */
  async reload(settled = false): Promise<void> {
    const files = [...this.options.allowFiles, ...this.options.denyFiles];
    const texts = new Map<string, string>();
    const read = (f: string) => (settled ? readSettledFile(f, this.options.debounceMs) : readFile(f, 'utf8'));
    await Promise.all(files.map(async (f) => texts.set(f, await read(f))));
    const get = (f: string) => texts.get(f)!;
    this.matcher = this.build(get, get);
    this.reloads++;
    this.onReload();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    // Real time, not the guards' clock: it waits on the filesystem (changes settling), not on the protocol.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reloadQuietly();
    }, this.options.debounceMs);
    this.timer.unref();
  }

  private async reloadQuietly(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return;
    }
    // A change seen by the watcher may be a writer half-way: wait for the files to settle.
    this.reloading = this.reload(true).then(
      () => {
        this.lastError = undefined;
      },
      (err: unknown) => {
        this.reloadErrors++;
        const error = toSockError(err, 'reloading IP lists (the previous list stays in force)', {
          code: SockErrorCode.INVALID_OPTION,
          reason: GuardReason.POLICY_FILE_INVALID,
        });
        this.lastError = error.message;
        this.onError(error);
      },
    );
    await this.reloading;
    this.reloading = undefined;
    if (this.again) {
      this.again = false;
      await this.reloadQuietly();
    }
  }

  stats(): IpPolicyStats {
    return {
      rules: this.matcher.size,
      reloads: this.reloads,
      reloadErrors: this.reloadErrors,
      lastError: this.lastError,
    };
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
  }
}
