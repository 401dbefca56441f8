import { SockError, SockErrorCode } from '../errors.js';
import { ByteAccumulator } from './byte-accumulator.js';
import { DEFAULT_MAX_FRAME_BYTES, type FrameDecoder, type FrameSink, type Framing } from './framing.js';
import { checkMaxFrameBytes, frameTooLarge } from './limits.js';

export interface DelimitedOptions {
  /** The bytes that end a frame. Default `'\n'`. */
  delimiter?: string | Uint8Array;
  /** Largest payload (delimiter excluded) accepted or sent. Default 64 KiB. */
  maxFrameBytes?: number;
  /** Drop one `\r` before the delimiter, so `\r\n` lines decode like `\n` lines. Default false. */
  stripCarriageReturn?: boolean;
  /**
   * At end of stream, deliver the bytes after the last delimiter as one last frame (a last line without a
   * newline), if they are within `maxFrameBytes`; a longer tail is refused with ERR_SOCK_FRAME_TOO_LARGE
   * as any oversized frame. Default false: an unterminated tail is dropped.
   */
  flushOnEnd?: boolean;
}

/**
 * Frames ended by a delimiter (newline by default). A peer that sends more than `maxFrameBytes` without
 * a delimiter is refused at the first byte past the limit.
 */
export function delimited(options: DelimitedOptions = {}): Framing {
  const delimiter = Buffer.from(options.delimiter ?? '\n');
  if (delimiter.length === 0 || delimiter.length > 16) {
    throw new SockError(SockErrorCode.INVALID_OPTION, 'delimited: delimiter must be 1 to 16 bytes');
  }
  const max = checkMaxFrameBytes('delimited', options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, 0x7fffffff);
  const strip = options.stripCarriageReturn ?? false;
  const flushOnEnd = options.flushOnEnd ?? false;
  // indexOf with a number is faster than with a one-byte Buffer.
  const needle: Buffer | number = delimiter.length === 1 ? delimiter[0]! : delimiter;

  return {
    name: 'delimited',
    maxFrameBytes: max,
    createDecoder: () => new DelimitedDecoder(needle, delimiter.length, max, strip, flushOnEnd),
    encode(payload) {
      if (payload.length > max) throw frameTooLarge('outbound', payload.length, max);
      if (Buffer.from(payload.buffer, payload.byteOffset, payload.length).indexOf(needle) !== -1) {
        throw new SockError(
          SockErrorCode.INVALID_FRAME,
          'outbound payload contains the frame delimiter; escape it or use length-prefixed framing',
        );
      }
      const out = Buffer.allocUnsafe(payload.length + delimiter.length);
      out.set(payload, 0);
      delimiter.copy(out, payload.length);
      return out;
    },
  };
}

class DelimitedDecoder implements FrameDecoder {
  private readonly pending = new ByteAccumulator();
  /** Held bytes already searched without finding a delimiter start. */
  private scanned = 0;

  constructor(
    private readonly needle: Buffer | number,
    private readonly d: number,
    private readonly max: number,
    private readonly strip: boolean,
    private readonly flushOnEnd: boolean,
  ) {}

  get bufferedBytes(): number {
    return this.pending.length;
  }

  push(chunk: Buffer, onFrame: FrameSink): number {
    const { needle, d, max } = this;
    let off = 0;
    for (;;) {
      if (this.pending.length === 0) {
        // Fast path: frames straight from the chunk, zero-copy.
        for (let j = chunk.indexOf(needle, off); j !== -1; j = chunk.indexOf(needle, off)) {
          if (j - off > max) this.fail(j - off);
          const frame = chunk.subarray(off, j);
          off = j + d;
          if (onFrame(this.trim(frame)) === true) return off;
        }
        const rest = chunk.length - off;
        if (rest > max + d - 1) this.fail(rest);
        if (rest > 0) this.pending.append(chunk.subarray(off));
        this.scanned = Math.max(0, rest - (d - 1));
        return chunk.length;
      }
      const i = this.pending.indexOf(needle, this.scanned);
      if (i !== -1) {
        if (i > max) this.fail(i);
        const frame = this.pending.take(0, i, d);
        this.scanned = 0;
        if (onFrame(this.trim(frame)) === true) return off;
        continue;
      }
      this.scanned = Math.max(0, this.pending.length - (d - 1));
      if (off >= chunk.length) return off;
      if (d > 1) {
        // A delimiter may start in the held bytes and end in this chunk: probe the seam first.
        const tail = this.pending.tail(Math.min(d - 1, this.pending.length));
        const probe = Buffer.concat([tail, chunk.subarray(off, off + d - 1)]);
        const p = probe.indexOf(needle);
        if (p !== -1 && p < tail.length) {
          const end = off + p + d - tail.length;
          if (this.pending.length - tail.length + p > max) this.fail(this.pending.length - tail.length + p);
          this.pending.append(chunk.subarray(off, end));
          off = end;
          continue;
        }
      }
      // Feed the chunk up to the end of its first delimiter, refusing before buffering past the limit.
      const j = chunk.indexOf(needle, off);
      const upto = j === -1 ? chunk.length : j + d;
      const total = this.pending.length + (upto - off);
      if (j === -1 ? total > max + d - 1 : total - d > max) this.fail(total);
      this.pending.append(chunk.subarray(off, upto));
      off = upto;
    }
  }

  end(): Buffer | undefined {
    const held = this.pending.length;
    if (!this.flushOnEnd || held === 0) return undefined;
    // push() holds up to max + d - 1 bytes (a delimiter may be arriving); a tail is a frame only within max.
    if (held > this.max) this.fail(held);
    const frame = this.pending.take(0, held, 0);
    this.scanned = 0;
    return this.trim(frame);
  }

  private trim(frame: Buffer): Buffer {
    return this.strip && frame.length > 0 && frame[frame.length - 1] === 0x0d ? frame.subarray(0, -1) : frame;
  }

  private fail(size: number): never {
    this.pending.clear();
    this.scanned = 0;
    throw frameTooLarge('inbound', size, this.max);
  }
}
