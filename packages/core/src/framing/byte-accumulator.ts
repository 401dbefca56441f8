/**
 * Holds the bytes of an incomplete frame. Written by hand because the obvious `Buffer.concat(pending,
 * chunk)` per read is quadratic when a peer trickles a frame one byte at a time, and a list of chunks
 * costs one object per read (64k objects for a trickled 64 KiB frame).
 *
 * Appends copy into one buffer that grows by doubling (linear total copying). Bytes are never
 * overwritten once written: frames handed out are views of this memory, so when the buffer is full a new
 * one is allocated instead of compacting in place.
 */
/** Shared by every idle accumulator: zero bytes cannot be written into, so sharing it is safe. */
const NOTHING = Buffer.alloc(0);

export class ByteAccumulator {
  // Most connections never hold a partial frame: no buffer of their own until they do.
  private buf: Buffer = NOTHING;
  private start = 0;
  private end = 0;

  get length(): number {
    return this.end - this.start;
  }

  append(chunk: Buffer): void {
    const live = this.end - this.start;
    if (this.end + chunk.length > this.buf.length) {
      let capacity = Math.max(256, this.buf.length);
      while (capacity < live + chunk.length) capacity *= 2;
      const next = Buffer.allocUnsafe(capacity);
      this.buf.copy(next, 0, this.start, this.end);
      this.buf = next;
      this.start = 0;
      this.end = live;
    }
    chunk.copy(this.buf, this.end);
    this.end += chunk.length;
  }

  /** Byte at offset `i` from the start of the held data. */
  at(i: number): number {
    return this.buf[this.start + i]!;
  }

  /** Index of `needle` at or after `from`, relative to the held data; -1 when absent. */
  indexOf(needle: Buffer | number, from: number): number {
    const i = this.buf.subarray(this.start, this.end).indexOf(needle, from);
    return i;
  }

  /** A view of `n` held bytes after skipping `skip`; then drops `skip + n + drop` bytes. */
  take(skip: number, n: number, drop = 0): Buffer {
    const view = this.buf.subarray(this.start + skip, this.start + skip + n);
    this.start += skip + n + drop;
    if (this.start === this.end && this.end === this.buf.length) {
      this.buf = NOTHING;
      this.start = this.end = 0;
    }
    return view;
  }

  /** A copy of the last `n` held bytes. */
  tail(n: number): Buffer {
    return Buffer.from(this.buf.subarray(this.end - n, this.end));
  }

  /** Forget everything held (after a fatal decode error). */
  clear(): void {
    this.buf = NOTHING;
    this.start = this.end = 0;
  }
}
