import type { Connection } from '@sock/core';

/**
 * Send a chunk read from a stream (an SSH channel, stdin) over raw framing, in pieces no larger than the
 * framing's limit: a Readable hands out whatever it has buffered (an SSH channel, 89 KB and more at once),
 * and one `send()` over the limit is refused as too large, which broke a tunnel on its first burst.
 * Each piece is awaited, so the peer's pace still holds.
 */
export async function sendInPieces(
  conn: Connection<Buffer, Uint8Array>,
  chunk: Buffer,
  maxFrameBytes: number,
): Promise<void> {
  for (let at = 0; at < chunk.length; at += maxFrameBytes) {
    await conn.send(chunk.subarray(at, Math.min(at + maxFrameBytes, chunk.length)));
  }
}
