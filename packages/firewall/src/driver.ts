import type { Change, KernelBan } from './model.js';
import type { Command, CommandRunner } from './runner.js';

/** Backends that talk to the kernel. */
export type KernelBackend = 'nftables' | 'iptables';

/** What a driver needs: our names, a runner, and whether to only plan. */
export interface DriverContext {
  /** Our table (nftables) or name prefix of chains and sets (iptables). */
  readonly table: string;
  readonly runner: CommandRunner;
  /** Plan only: run no command at all, assume a system where nothing of ours exists yet. */
  readonly dry: boolean;
  /** Hook priority of our base chains (nftables). */
  readonly priority: number;
  /** Capacity of each ban set. */
  readonly maxElements: number;
}

/** A kernel backend. Every method returns the mutating commands it ran (or would run, when dry). */
export interface Driver {
  readonly name: KernelBackend;
  /** Create our table/sets/chains if missing (idempotent) and apply `changes` with them. */
  init(changes: readonly Change[], signal?: AbortSignal): Promise<Command[]>;
  /** Apply changes as one transaction. */
  apply(changes: readonly Change[], signal?: AbortSignal): Promise<Command[]>;
  /** Remove everything of ours (idempotent). */
  destroy(signal?: AbortSignal): Promise<Command[]>;
  /** Read our bans back from the kernel. */
  list(signal?: AbortSignal): Promise<KernelBan[]>;
  /**
   * Base chains of other tables on the input hook that drop by default (nftables): an accept in our
   * table cannot override them. Absent where our allow is final (iptables).
   */
  inputDrops?(signal?: AbortSignal): Promise<ForeignChain[]>;
}

/** A base chain that is not ours. */
export interface ForeignChain {
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly hook: string;
  readonly priority: number;
}
