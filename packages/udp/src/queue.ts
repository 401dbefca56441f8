/**
 * A bounded FIFO between the socket and an async iterator. UDP has no backpressure: when the consumer
 * lags and the queue is full, `push` refuses the item and the caller drops (and counts) it.
 */
export class BoundedQueue<T> {
  private readonly ring: (T | undefined)[];
  private head = 0;
  private count = 0;
  private readonly waiters: ((result: IteratorResult<T>) => void)[] = [];
  private ended = false;

  constructor(readonly capacity: number) {
    this.ring = new Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  /** Hand `item` to a waiting reader or queue it; false when the queue is full or ended. */
  push(item: T): boolean {
    if (this.ended) return false;
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter({ value: item, done: false });
      return true;
    }
    if (this.count === this.capacity) return false;
    this.ring[(this.head + this.count) % this.capacity] = item;
    this.count++;
    return true;
  }

  /**
   * The next item; once ended and drained, `done`. When `signal` aborts first, the wait is withdrawn
   * (no item is handed to it) and the promise rejects with the signal's reason.
   */
  next(signal?: AbortSignal): Promise<IteratorResult<T>> {
    if (this.count > 0) {
      const value = this.ring[this.head] as T;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
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
    for (const waiter of this.waiters.splice(0)) waiter({ value: undefined, done: true });
  }

  /** Drop everything queued and end. */
  clear(): void {
    this.ring.fill(undefined);
    this.head = 0;
    this.count = 0;
    this.end();
  }
}
