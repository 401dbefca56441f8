import type { Duplex } from 'node:stream';
import type { CloseInfo, Connection } from '@sock/core';

/**
 * Bytes both ways between a local connection (raw framing, the listener's guards already passed) and the
 * SSH channel it was forwarded to, with backpressure on each side and no per-chunk promise chain:
 *
 * - down (channel → local): each chunk as the channel hands it over (one SSH packet, ≤ 32 KiB), written
 *   to the socket; when the socket's buffer is over its mark the channel pauses until `'drain'`, so ssh2
 *   stops widening the SSH window and a local client that never reads holds the far side still instead
 *   of growing a buffer.
 * - up (local → channel): each read as core delivers it; a full channel buffer waits for `'drain'`.
 *
 * Ends: the far side's EOF ends our side after what was sent is flushed; a channel closed without EOF,
 * or a local connection closed for anything but the peer's FIN (a reset, a guard), closes the other side
 * at once. Resolves once the channel is closed.
 */
export async function pipeTunnel(conn: Connection<Buffer, Uint8Array>, channel: Duplex): Promise<void> {
  // Down goes straight to the socket: core's send() would add a flush promise (an empty write and its
  // callback) for every chunk above the socket's 16 KiB mark, which all of these are.
  const socket = conn.socket;
  const resume = () => {
    if (!conn.closing) channel.resume();
  };
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  channel.on('data', (chunk: Buffer) => {
    // The chunks of one SSH read (two packets or more) leave in one writev.
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    if (socket.write(chunk)) return;
    channel.pause();
    socket.once('drain', resume);
  });
  let ended = false;
  channel.once('end', () => {
    ended = true;
    // The far side is done sending: ours ends once everything queued is out.
    void conn.close();
  });
  const channelClosed = new Promise<void>((resolve) => channel.once('close', resolve));
  void channelClosed.then(() => {
    if (!ended && !conn.closing) conn.destroy();
  });
  void conn.closed.then((info: CloseInfo) => {
    // A FIN is passed on by the loop below (EOF after the last byte); anything else drops the channel.
    if (info.reason !== 'peer-closed') channel.destroy();
  });
  try {
    for await (const chunk of conn) {
      if (!channel.write(chunk)) {
        await Promise.race([new Promise<void>((resolve) => channel.once('drain', resolve)), channelClosed]);
      }
    }
  } finally {
    channel.end();
  }
  await channelClosed;
}
