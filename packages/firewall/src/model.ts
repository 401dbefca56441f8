import type { IpTarget } from './address.js';
import type { Protocol } from './port.js';

/** A ban ready for a backend: validated target, timeout in whole seconds (null = permanent), comment. */
export interface BanElement {
  readonly target: IpTarget;
  readonly timeoutSec: number | null;
  /** Sanitised reason for the kernel comment (safe characters only). */
  readonly comment: string;
  /** The element may already exist: replace it so its timeout is refreshed. */
  readonly refresh: boolean;
}

/** A port rule: accept (`allow`) or drop (`deny`) traffic to a port, optionally only from a source. */
export interface PortRule {
  readonly action: 'allow' | 'deny';
  readonly port: number;
  readonly protocol: Protocol;
  /** Canonical source address or CIDR; undefined = any source. */
  readonly from?: string;
}

/** One step of a transaction, rendered by a backend into kernel commands. */
export type Change =
  | { readonly type: 'ban'; readonly elements: readonly BanElement[] }
  | { readonly type: 'unban'; readonly targets: readonly IpTarget[] }
  /** Empty every ban set, then add these (restore). */
  | { readonly type: 'replace-bans'; readonly elements: readonly BanElement[] }
  /** Replace the whole allow set (admin CIDRs and allow entries, already collapsed). */
  | { readonly type: 'set-allow'; readonly targets: readonly IpTarget[] }
  /** Replace every port rule. */
  | { readonly type: 'set-ports'; readonly rules: readonly PortRule[] };

/** Which kernel set an element belongs to. */
export type SetKind = 'ban4' | 'ban6' | 'net4' | 'net6' | 'net6p64' | 'allow4' | 'allow6';

/** Where a ban lives: single addresses in hash sets, IPv6 /64 in a masked hash set, other CIDRs in small interval sets. */
export function banSetOf(target: IpTarget): SetKind {
  if (target.kind === 'address') return target.family === 4 ? 'ban4' : 'ban6';
  if (target.family === 6 && target.prefix === 64) return 'net6p64';
  return target.family === 4 ? 'net4' : 'net6';
}

/** Characters allowed in a kernel comment; everything else becomes `_`. */
export function sanitizeComment(reason: string): string {
  return reason.replace(/[^A-Za-z0-9 _.,:/@=+-]/g, '_').slice(0, 64);
}

/** A ban as read back from the kernel. */
export interface KernelBan {
  readonly target: IpTarget;
  /** Remaining seconds, or null for a permanent element. */
  readonly expiresSec: number | null;
  readonly comment?: string;
}
