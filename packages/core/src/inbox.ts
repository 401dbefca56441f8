import type { SockError } from './errors.js';

/** A decode still running (an async schema): it holds its place so messages stay in order. */
export class PendingDecode<In> {
  settled = false;
  value: In | undefined;
  error: unknown;
  /** Set when the decode failed under `reply`: the error reply owed in this place. */
  reply: SockError | undefined;
}

/** An error reply owed to the peer, sent when the reader reaches it (answers keep the order of asks). */
export class PendingReply {
  constructor(readonly error: SockError) {}
}

/** A slot whose frame was refused under `drop` (or whose decode failed so): skipped when reached. */
export const SKIP: unique symbol = Symbol('skip');

export type InboxEntry<In> = In | PendingDecode<In> | PendingReply | typeof SKIP;

export interface InboxLimits {
  /** Entries: messages not yet taken, decodes pending, error replies owed. */
  readonly maxMessages: number;
  /** Frame bytes of those entries. */
  readonly maxBytes: number;
}

/**
 * Everything a connection has read but not yet handed over, under one bound. Every entry counts, whatever
 * it is: a decoded message the reader has not taken, a decode in flight, an error reply owed. The
 * connection stops decoding (mid-read) and pauses the socket once `full`, and reads again once the inbox
 * is down to half of both limits, so entries ≤ maxMessages and bytes < maxBytes + one frame always hold.
 *
 * Written by hand (two arrays, no per-entry wrapper): the common message is a plain value, and the hot
 * path pays one push and one shift for it.
 */
export class Inbox<In> {
  private readonly entries: Array<InboxEntry<In>> = [];
  private readonly sizes: number[] = [];
  private held = 0;
  /** Largest entry count and byte count ever held: what the bound tests and benchmarks read. */
  peakEntries = 0;
  peakBytes = 0;

  private readonly maxMessages: number;
  private readonly maxBytes: number;

  constructor(limits: InboxLimits) {
    this.maxMessages = limits.maxMessages;
    this.maxBytes = limits.maxBytes;
  }

  get size(): number {
    return this.entries.length;
  }

  get bytes(): number {
    return this.held;
  }

  get full(): boolean {
    return this.entries.length >= this.maxMessages || this.held >= this.maxBytes;
  }

  /** Down to half of both limits: reading may resume (hysteresis, so a busy reader is not paused per frame). */
  get lowEnough(): boolean {
    return this.entries.length <= this.maxMessages / 2 && this.held <= this.maxBytes / 2;
  }

  push(entry: InboxEntry<In>, bytes: number): void {
    this.entries.push(entry);
    this.sizes.push(bytes);
    this.held += bytes;
    if (this.entries.length > this.peakEntries) this.peakEntries = this.entries.length;
    if (this.held > this.peakBytes) this.peakBytes = this.held;
  }

  /** The oldest entry, without taking it; undefined when empty. */
  peek(): InboxEntry<In> | undefined {
    return this.entries[0];
  }

  shift(): InboxEntry<In> | undefined {
    if (this.entries.length === 0) return undefined;
    this.held -= this.sizes.shift()!;
    return this.entries.shift();
  }

  /** Forget every entry after `entry` (the peer broke the protocol there; what came after is not read). */
  dropAfter(entry: InboxEntry<In>): void {
    const i = this.entries.indexOf(entry);
    if (i === -1) return;
    for (const bytes of this.sizes.splice(i + 1)) this.held -= bytes;
    this.entries.length = i + 1;
  }

  clear(): void {
    this.entries.length = 0;
    this.sizes.length = 0;
    this.held = 0;
  }
}
