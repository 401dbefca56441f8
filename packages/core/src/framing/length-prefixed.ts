import { ByteAccumulator } from './byte-accumulator.js';
import { DEFAULT_MAX_FRAME_BYTES, type FrameDecoder, type FrameSink, type Framing } from './framing.js';
import { checkMaxFrameBytes, frameTooLarge } from './limits.js';

export interface LengthPrefixedOptions {
  /** Big-endian length header: `u16` (frames up to 65,535 bytes) or `u32` (default). */
  header?: 'u16' | 'u32';
  /** Largest payload accepted or sent. Default 64 KiB (65,535 with a u16 header). */
  maxFrameBytes?: number;
}

/** Frames as `[length][payload]`; an oversized length is refused as soon as its header is read. */
export function lengthPrefixed(options: LengthPrefixedOptions = {}): Framing {
  const header = options.header ?? 'u32';
  const headerBytes = header === 'u16' ? 2 : 4;
  const ceiling = header === 'u16' ? 0xffff : 0xffffffff;
  const name = `length-${header}`;
  const max = checkMaxFrameBytes(
    name,
    options.maxFrameBytes ?? Math.min(DEFAULT_MAX_FRAME_BYTES, ceiling),
    ceiling,
  );
  const readLength =
    headerBytes === 2
      ? (b: Buffer, at: number) => b.readUInt16BE(at)
      : (b: Buffer, at: number) => b.readUInt32BE(at);

  return {
    name,
    maxFrameBytes: max,
    createDecoder: () => new LengthPrefixedDecoder(headerBytes, max, readLength),
    encode(payload) {
      if (payload.length > max) throw frameTooLarge('outbound', payload.length, max);
      const out = Buffer.allocUnsafe(headerBytes + payload.length);
      if (headerBytes === 2) out.writeUInt16BE(payload.length, 0);
      else out.writeUInt32BE(payload.length, 0);
      out.set(payload, headerBytes);
      return out;
    },
  };
}

/**
 * Where a header split across reads is put together before its length is read: one for every decoder,
 * since `readLength` runs synchronously and nothing else can run in between (saves a Buffer per idle
 * connection).
 */
const headerScratch = Buffer.alloc(8);

class LengthPrefixedDecoder implements FrameDecoder {
  private readonly pending = new ByteAccumulator();
  /** Total bytes (header + payload) of the frame being assembled in `pending`; -1 until its header is in. */
  private need = -1;

  constructor(
    private readonly headerBytes: number,
    private readonly max: number,
    private readonly readLength: (b: Buffer, at: number) => number,
  ) {}

  get bufferedBytes(): number {
    return this.pending.length;
  }

  push(chunk: Buffer, onFrame: FrameSink): number {
    const h = this.headerBytes;
    let off = 0;
    while (off < chunk.length) {
      if (this.pending.length === 0) {
        // Fast path: whole frames straight from the chunk, zero-copy.
        while (chunk.length - off >= h) {
          const len = this.readLength(chunk, off);
          if (len > this.max) this.fail(len);
          if (chunk.length - off - h < len) break;
          const start = off + h;
          off = start + len;
          if (onFrame(chunk.subarray(start, off)) === true) return off;
        }
        if (off === chunk.length) return off;
        if (chunk.length - off >= h) this.need = h + this.readLength(chunk, off);
        this.pending.append(chunk.subarray(off));
        return chunk.length;
      }
      if (this.need === -1) {
        const n = Math.min(h - this.pending.length, chunk.length - off);
        this.pending.append(chunk.subarray(off, off + n));
        off += n;
        if (this.pending.length < h) return off;
        for (let i = 0; i < h; i++) headerScratch[i] = this.pending.at(i);
        const len = this.readLength(headerScratch, 0);
        if (len > this.max) this.fail(len);
        this.need = h + len;
      }
      const n = Math.min(this.need - this.pending.length, chunk.length - off);
      if (n > 0) this.pending.append(chunk.subarray(off, off + n));
      off += n;
      if (this.pending.length === this.need) {
        const frame = this.pending.take(h, this.need - h);
        this.need = -1;
        if (onFrame(frame) === true) return off;
      }
    }
    return off;
  }

  private fail(len: number): never {
    this.pending.clear();
    throw frameTooLarge('inbound', len, this.max);
  }
}
