import { DEFAULT_MAX_FRAME_BYTES, type FrameDecoder, type Framing } from './framing.js';
import { checkMaxFrameBytes, frameTooLarge } from './limits.js';

export interface RawOptions {
  /** Largest piece handed to the application at once; bigger reads are split. Default 64 KiB. */
  maxFrameBytes?: number;
}

/** No framing: the byte stream as it arrives, in pieces of at most `maxFrameBytes`. */
export function raw(options: RawOptions = {}): Framing {
  const max = checkMaxFrameBytes('raw', options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, 0x7fffffff);
  const decoder: FrameDecoder = {
    bufferedBytes: 0,
    push(chunk, onFrame) {
      // The common read fits in one piece: handed over as it is, no view made of it.
      if (chunk.length > 0 && chunk.length <= max) {
        onFrame(chunk);
        return chunk.length;
      }
      for (let off = 0; off < chunk.length; ) {
        const end = Math.min(off + max, chunk.length);
        if (onFrame(chunk.subarray(off, end)) === true) return end;
        off = end;
      }
      return chunk.length;
    },
  };
  return {
    name: 'raw',
    maxFrameBytes: max,
    createDecoder: () => decoder,
    encode(payload) {
      if (payload.length > max) throw frameTooLarge('outbound', payload.length, max);
      return Buffer.isBuffer(payload)
        ? payload
        : Buffer.from(payload.buffer, payload.byteOffset, payload.length);
    },
  };
}
