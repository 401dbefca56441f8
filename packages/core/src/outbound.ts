import type { Duplex } from 'node:stream';

/**
 * The promise `send()` returns when the message is queued below the high-water mark: shared, so the hot
 * path allocates no promise and no callback per message. A listener (`onMessage`) that returns it is not
 * waited on: `callListener` compares against this very object.
 */
export const SENT: Promise<void> = Promise.resolve();

/** Turns a failed write into the error the sender sees (the connection knows why it closed). */
export interface WriteFailure {
  writeFailed(err: Error): Error;
}

/**
 * The outbound half of one connection: it batches what we send and says when the sender should wait.
 *
 * Batching: the first write after each socket read goes straight to the kernel, as an unbatched one
 * would, so a lone reply costs nothing extra (scheduling a flush for it cost ~2 µs, 7 % of a
 * one-in-flight echo). A second write before the next read corks the socket, and every socket corked in
 * a turn is uncorked when the turn ends, on the tick queue after the microtask queue has drained (one
 * microtask schedules one `nextTick` for all of them, and Node runs ticks only once `runMicrotasks()`
 * has emptied the queue, including microtasks queued meanwhile). The replies a handler or listener sends
 * for the frames of one read, however many `await`s apart, so leave in two writes (the second a
 * `writev`: one syscall, one TLS record) instead of one per frame: per-frame writes were 64–72 % of a
 * busy echo server's time (bench/results/profile-guarded-echo.md). Writes not caused by a read (a
 * broadcast, a timer) batch the same way after their first. Nothing waits on a timer, so no reply waits
 * a loop turn; the batch list is shared, not a closure per connection.
 *
 * Pacing: `write()` says "sent" while the socket's buffer is below its high-water mark, as Node's own
 * `write()` does; above it the caller gets a promise for the moment its bytes reach the kernel. The hard
 * cap (`maxWriteBufferBytes`) is checked by the connection before writing, against `queued`; so that a
 * sender who awaits every send can never meet it, "sent" also needs room for one more largest frame
 * under the cap (`roomBelowCap`). That matters for streams with a high mark far above a socket's 16 KiB: an
 * SSH channel's is its 2 MiB window, above the 1 MiB cap.
 */
export class Outbound {
  private batching = false;
  /** Socket reads so far (the connection counts them): a second write after the same read batches. */
  reads = 0;
  private wroteAfter = -1;

  /**
   * @param roomBelowCap queued bytes below which a send is "sent": the write cap minus one largest frame
   *   (0 or less: every send waits for the kernel).
   */
  constructor(
    private socket: Duplex,
    private readonly owner: WriteFailure,
    private readonly roomBelowCap: number,
  ) {}

  /** Bytes accepted and not yet handed to the kernel (corked ones included). */
  get queued(): number {
    return this.socket.writableLength;
  }

  /** The transport replaced the socket (a TLS upgrade) before anything was sent on the new one. */
  setSocket(socket: Duplex): void {
    this.flush();
    this.socket = socket;
  }

  /**
   * Queue `data`. Returns `SENT` while the buffer is below the high-water mark, else a promise that
   * settles when these bytes are handed to the kernel (rejecting with the owner's error if the socket
   * breaks first).
   */
  write(data: Uint8Array): Promise<void> {
    const socket = this.socket;
    if (!this.batching) {
      if (this.wroteAfter === this.reads) {
        this.batching = true;
        socket.cork();
        corked.push(this);
        endTurnSoon();
      } else this.wroteAfter = this.reads;
    }
    const after = socket.writableLength + data.length;
    socket.write(data);
    if (after < socket.writableHighWaterMark && after < this.roomBelowCap) return SENT;
    // Above the mark, but the kernel took every byte at once (a large reply on an idle socket, a TLS
    // record): nothing to wait for.
    if (socket.writableLength === 0) return SENT;
    return this.whenFlushed();
  }

  /** Settles when everything queued so far is handed to the kernel: an empty write's callback runs then. */
  private whenFlushed(): Promise<void> {
    const owner = this.owner;
    const p = new Promise<void>((resolve, reject) => {
      this.socket.write(EMPTY, (err) => (err ? reject(owner.writeFailed(err)) : resolve()));
    });
    // The socket's own error closes the connection and is reported there, once.
    p.catch(noop);
    return p;
  }

  /**
   * Hand the batch to the kernel now: before the socket is destroyed, so a reply sent just before a
   * `destroy()` (or a rejection) still leaves, as it did when every send was written at once.
   */
  flush(): void {
    if (!this.batching) return;
    this.batching = false;
    this.socket.uncork();
  }
}

let turnEnding = false;
/** Outbounds corked in this turn, in the order of their second write. */
let corked: Outbound[] = [];

function endTurnSoon(): void {
  if (turnEnding) return;
  turnEnding = true;
  queueMicrotask(scheduleEndOfTurn);
}

function scheduleEndOfTurn(): void {
  process.nextTick(endOfTurn);
}

function endOfTurn(): void {
  turnEnding = false;
  const batch = corked;
  corked = [];
  // One that was flushed early (destroyed, upgraded) is no longer batching: flush() does nothing then.
  for (const out of batch) out.flush();
}

const EMPTY = Buffer.alloc(0);

function noop(): void {}
