/**
 * A bounded FIFO between the socket and an async iterator. UDP has no backpressure: when the consumer
 * lags and the queue is full, `push` refuses the item and the caller drops (and counts) it.
 *
 * Hand-offs are coalesced per event-loop turn. Node runs the microtask queue after every datagram's
 * callback; resolving a waiting reader in each one made every datagram pay a microtask checkpoint with
 * work in it (entering the microtask runner from C++, a pending promise and its resolving functions): 6%
 * of a receiver's CPU, more than the guards. So the first item of a turn goes to a waiting reader at
 * once (no added latency for a lone datagram) and the rest of the turn's items are queued and handed
 * over together in one `setImmediate` (after this turn's I/O callbacks), where a reader's next `next()`
 * finds them queued and each costs one already-resolved promise.
 */
export class BoundedQueue<T> {
  private readonly ring: (T | undefined)[];
  private head = 0;
  private count = 0;
  private readonly waiters: ((result: IteratorResult<T>) => void)[] = [];
  private ended = false;
  /** An item was handed to a reader this turn; the flush that ends the turn is scheduled. */
  private turn = false;

  constructor(
    readonly capacity: number,
    private readonly schedule: (flush: () => void) => void = setImmediate,
  ) {
    this.ring = new Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  /** Hand `item` to a waiting reader or queue it; false when the queue is full or ended. */
  push(item: T): boolean {
    if (this.ended) return false;
    if (!this.turn && this.count === 0) {
      const waiter = this.waiters.shift();
      if (waiter) {
        this.turn = true;
        this.schedule(this.flush);
        waiter({ value: item, done: false });
        return true;
      }
    }
    if (this.count === this.capacity) {
      // Full while a reader waits for the flush: the oldest goes to it now, so room stays for this one.
      if (this.waiters.length === 0) return false;
      this.handOne();
    }
    this.ring[(this.head + this.count) % this.capacity] = item;
    this.count++;
    return true;
  }

  /**
   * The next item; once ended and drained, `done`. When `signal` aborts first, the wait is withdrawn
   * (no item is handed to it) and the promise rejects with the signal's reason.
   */
  next(signal?: AbortSignal): Promise<IteratorResult<T>> {
    // Readers already waiting (for this turn's flush) come first: items go to readers in order.
    if (this.count > 0 && this.waiters.length === 0) return Promise.resolve(this.take());
    if (this.ended && this.count === 0) return Promise.resolve({ value: undefined, done: true });
    if (signal === undefined) return new Promise((resolve) => this.waiters.push(resolve));
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter = (result: IteratorResult<T>) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      };
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** No more items: readers drain what is queued, then see `done`. */
  end(): void {
    this.ended = true;
    this.flush();
    for (const waiter of this.waiters.splice(0)) waiter({ value: undefined, done: true });
  }

  /** Drop everything queued and end. */
  clear(): void {
    this.ring.fill(undefined);
    this.head = 0;
    this.count = 0;
    this.end();
  }

  /** End of the turn: queued items go to the readers waiting for them. */
  private readonly flush = (): void => {
    this.turn = false;
    while (this.count > 0 && this.waiters.length > 0) this.handOne();
  };

  private handOne(): void {
    const waiter = this.waiters.shift()!;
    waiter(this.take());
  }

  private take(): IteratorResult<T> {
    const value = this.ring[this.head] as T;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return { value, done: false };
  }
}
