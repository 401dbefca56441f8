// The server side of bench/inbox-bound.mjs, in its own process so its heap is measured alone (run with
// --expose-gc). Every connection's reader is stalled (the handler waits before it reads) and, with
// `--async`, every valid message's schema validation is still running: what a peer pushes in can only
// pile up in the inbox. On 'measure' it collects garbage and reports memory and the inboxes' accounting.
import { bytes, createServer, json, lengthPrefixed } from '../dist/index.js';
import { serveForBench } from './serve.mjs';

const codecName = process.argv[2] ?? 'json';
let release;
const stalled = new Promise((resolve) => {
  release = resolve;
});
// A Standard Schema whose validation waits as long as the reader does: every decode stays pending.
const slowSchema = {
  '~standard': {
    version: 1,
    vendor: 'bench',
    validate: async (value) => {
      await stalled;
      return { value };
    },
  },
};
const limits = JSON.parse(process.env.INBOX_LIMITS);
const server = createServer({
  framing: lengthPrefixed({ maxFrameBytes: limits.maxFrameBytes }),
  codec: codecName === 'bytes' ? bytes() : json({ schema: slowSchema }),
  maxQueuedMessages: limits.maxQueuedMessages,
  maxQueuedBytes: limits.maxQueuedBytes,
  onInvalidMessage: 'reply',
  errorReply: (error) => ({ error: error.reason }),
  async handler(conn) {
    await stalled;
    for await (const _ of conn);
  },
});
process.on('message', (m) => {
  if (m === 'measure') {
    globalThis.gc?.();
    globalThis.gc?.();
    const memory = process.memoryUsage();
    let entries = 0;
    let bytesHeld = 0;
    let peakEntries = 0;
    let peakBytes = 0;
    let bytesIn = 0;
    let framesIn = 0;
    for (const conn of server.connections) {
      entries += conn.inbox.size;
      bytesHeld += conn.inbox.bytes;
      peakEntries = Math.max(peakEntries, conn.inbox.peakEntries);
      peakBytes = Math.max(peakBytes, conn.inbox.peakBytes);
      bytesIn += conn.stats.bytesIn;
      framesIn += conn.stats.framesIn;
    }
    process.send({
      memory,
      conns: server.connections.size,
      entries,
      bytesHeld,
      peakEntries,
      peakBytes,
      bytesIn,
      framesIn,
    });
  }
  if (m === 'release') release();
});
await serveForBench(server);
