import { Duplex } from 'node:stream';

/**
 * The server's end of an in-memory connection, and what the test's end sees of it. Bytes the test writes
 * arrive as the server's reads, in exactly the chunks written; what the server writes is collected. No
 * socket and no kernel: nothing here waits on the wall clock.
 */
export class MemoryStream {
  readonly stream: Duplex;
  private readonly received: Buffer[] = [];
  private readUpTo = 0;
  /** Write callbacks held while the test's end "does not read": the server's write buffer fills. */
  private held: Array<() => void> | undefined;
  /** The server ended its side (sent its FIN). */
  serverEnded = false;
  /** The test's end sent its FIN. */
  peerEnded = false;

  constructor(halfOpen: boolean) {
    this.stream = new Duplex({
      allowHalfOpen: true,
      read() {},
      write: (chunk: Buffer, _encoding, callback) => {
        const done = () => {
          this.received.push(chunk);
          callback();
        };
        if (this.held) this.held.push(done);
        else done();
      },
      final: (callback) => {
        this.serverEnded = true;
        callback();
        // Like a net client (allowHalfOpen false): answer the server's FIN with ours.
        if (!halfOpen) process.nextTick(() => this.end());
      },
      destroy: (err, callback) => {
        this.held = undefined;
        callback(err);
      },
    });
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  write(data: Uint8Array | string): void {
    if (this.peerEnded || this.stream.destroyed) return;
    this.stream.push(typeof data === 'string' ? Buffer.from(data) : Buffer.from(data));
  }

  end(): void {
    if (this.peerEnded || this.stream.destroyed) return;
    this.peerEnded = true;
    this.stream.push(null);
  }

  reset(): void {
    if (this.stream.destroyed) return;
    const error = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    this.stream.destroy(error);
  }

  stopReading(): void {
    this.held ??= [];
  }

  startReading(): void {
    const held = this.held;
    this.held = undefined;
    for (const done of held ?? []) done();
  }

  /** Everything the server wrote and the test's end took in, from the start. */
  all(): Buffer {
    return Buffer.concat(this.received);
  }

  /** What the server wrote since the last call. */
  read(): Buffer {
    const fresh = Buffer.concat(this.received.slice(this.readUpTo));
    this.readUpTo = this.received.length;
    return fresh;
  }
}
