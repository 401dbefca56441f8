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

export interface FrameDecoder {
  /**
   * Feed bytes; `onFrame` is called synchronously for every complete frame, in order. Frames may share
   * memory with the chunk: copy one if you keep it and mutate the chunk. Throws ERR_SOCK_FRAME_TOO_LARGE
   * (the decoder is then unusable: close the connection).
   */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): void;
  /** Bytes held for a frame not yet complete; never more than the frame limit plus framing overhead. */
  readonly bufferedBytes: number;
}

/** 64 KiB: the default for every framing. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;
