// Baseline: a hand-written length-prefixed (u32) echo server on node:net, as a careful user would write
// it without sock: TCP_NODELAY, partial frames kept, whole frames echoed straight from the read buffer.
import { createServer } from 'node:net';

const MAX = 64 * 1024;
const server = createServer({ noDelay: true }, (socket) => {
  let pending = null;
  socket.on('error', () => {});
  socket.on('data', (chunk) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len > MAX) {
        socket.destroy();
        return;
      }
      if (buf.length - off - 4 < len) break;
      socket.write(buf.subarray(off, off + 4 + len));
      off += 4 + len;
    }
    if (off < buf.length) pending = buf.subarray(off);
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('message', (m) => {
  if (m === 'stop') server.close(() => process.exit(0));
});
process.on('SIGTERM', () => process.exit(0));
