/**
 * A framing cuts a byte stream into frames and back. Decoders enforce `maxFrameBytes` from the header or
 * from the first bytes past the limit, so no oversized frame is ever buffered whole.
 */
export interface Framing {
  /** `length-u16`, `length-u32`, `delimited` or `raw`: for logs and errors. */
  readonly name: string;
  /** The largest payload a frame may carry, inbound and outbound. */
  readonly maxFrameBytes: number;
  /** A new decoder: one per connection, it holds that connection's partial frame. */
  createDecoder(): FrameDecoder;
  /** The bytes to write for one payload. Throws ERR_SOCK_FRAME_TOO_LARGE / ERR_SOCK_INVALID_FRAME. */
  encode(payload: Uint8Array): Buffer;
}

/** Receives one frame; returning `true` asks the decoder to stop after it (the reader is full). */
// biome-ignore lint/suspicious/noConfusingVoidType: a sink that never stops may return nothing
export type FrameSink = (frame: Buffer) => boolean | void;

export interface FrameDecoder {
  /**
   * Feed bytes; `onFrame` is called synchronously for every complete frame, in order. Frames may share
   * memory with the chunk: copy one if you keep it and mutate the chunk. Throws ERR_SOCK_FRAME_TOO_LARGE
   * (the decoder is then unusable: close the connection).
   *
   * When `onFrame` returns `true` (the reader is full), the decoder stops right after that frame and
   * returns how many bytes of `chunk` it consumed; the caller pushes the rest later. Otherwise it
   * consumes the whole chunk. The built-in framings stop; a decoder that ignores the stop (returning
   * nothing) makes the connection hold the frames it cuts beyond its inbox bound.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a decoder that never stops returns nothing
  push(chunk: Buffer, onFrame: FrameSink): number | void;
  /** Bytes held for a frame not yet complete; never more than the frame limit plus framing overhead. */
  readonly bufferedBytes: number;
  /**
   * Optional: the peer ended its stream. Returns a last frame made of the held bytes when the framing
   * delivers an unterminated tail (`delimited({ flushOnEnd: true })`), else nothing. Throws
   * ERR_SOCK_FRAME_TOO_LARGE for a tail over the limit. The decoder is not fed after this.
   */
  end?(): Buffer | undefined;
}

/** 64 KiB: the default for every framing. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;
