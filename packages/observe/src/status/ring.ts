/** A fixed-size ring: the newest `capacity` items, oldest first. Memory never grows past `capacity`. */
export interface Ring<T> {
  push(item: T): void;
  toArray(): T[];
  readonly size: number;
}

export function createRing<T>(capacity: number): Ring<T> {
  const items: T[] = new Array(capacity);
  let start = 0;
  let size = 0;
  return {
    push(item) {
      if (capacity === 0) return;
      items[(start + size) % capacity] = item;
      if (size < capacity) size++;
      else start = (start + 1) % capacity;
    },
    toArray() {
      const out: T[] = [];
      for (let i = 0; i < size; i++) out.push(items[(start + i) % capacity] as T);
      return out;
    },
    get size() {
      return size;
    },
  };
}
