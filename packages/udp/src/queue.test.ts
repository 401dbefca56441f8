import { describe, expect, it } from 'vitest';
import { BoundedQueue } from './queue.js';

describe('BoundedQueue', () => {
  it('refuses items beyond its capacity and keeps order', async () => {
    const q = new BoundedQueue<number>(2);
    expect([q.push(1), q.push(2), q.push(3)]).toEqual([true, true, false]);
    expect(await q.next()).toEqual({ value: 1, done: false });
    expect(q.push(4)).toBe(true);
    expect((await q.next()).value).toBe(2);
    expect((await q.next()).value).toBe(4);
    expect(q.length).toBe(0);
  });

  it('hands items straight to a waiting reader, and drains before ending', async () => {
    const q = new BoundedQueue<string>(1);
    const waiting = q.next();
    expect(q.push('x')).toBe(true);
    expect(await waiting).toEqual({ value: 'x', done: false });
    q.push('y');
    q.end();
    expect(q.push('z')).toBe(false);
    expect((await q.next()).value).toBe('y');
    expect((await q.next()).done).toBe(true);
    const blocked = new BoundedQueue<string>(1);
    const pending = blocked.next();
    blocked.clear();
    expect((await pending).done).toBe(true);
  });

  it('withdraws a wait when its signal aborts, so no item is lost to it', async () => {
    const q = new BoundedQueue<number>(4);
    const ac = new AbortController();
    const waiting = q.next(ac.signal);
    ac.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    expect(q.push(1)).toBe(true);
    expect(q.length).toBe(1);
    expect((await q.next()).value).toBe(1);
    await expect(q.next(AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });

  it('hands the first item of a turn over at once and the rest together at the end of the turn, in order', async () => {
    const ends: Array<() => void> = [];
    const q = new BoundedQueue<number>(2, (flush) => ends.push(flush));
    const first = q.next();
    expect(q.push(1)).toBe(true);
    expect(await first).toEqual({ value: 1, done: false });
    // The reader is waiting again; this turn's later items wait for its end.
    const second = q.next();
    const third = q.next();
    expect([q.push(2), q.push(3)]).toEqual([true, true]);
    expect(q.length).toBe(2);
    // Full while readers wait: the oldest goes to a reader, so nothing is dropped for want of room.
    expect(q.push(4)).toBe(true);
    expect(await second).toEqual({ value: 2, done: false });
    expect(q.length).toBe(2);
    expect(ends).toHaveLength(1);
    ends.shift()!();
    expect(await third).toEqual({ value: 3, done: false });
    expect(q.length).toBe(1);
    // No reader waiting: the bound holds as before.
    expect([q.push(5), q.push(6)]).toEqual([true, false]);
    expect((await q.next()).value).toBe(4);
    expect((await q.next()).value).toBe(5);
    // A new turn starts with a straight hand-off again.
    const next = q.next();
    expect(q.push(7)).toBe(true);
    expect(await next).toEqual({ value: 7, done: false });
  });

  it('on end, gives readers waiting for the end of the turn their items before done', async () => {
    const ends: Array<() => void> = [];
    const q = new BoundedQueue<string>(4, (flush) => ends.push(flush));
    const a = q.next();
    q.push('a');
    await a;
    const b = q.next();
    const c = q.next();
    q.push('b');
    q.end();
    expect(await b).toEqual({ value: 'b', done: false });
    expect((await c).done).toBe(true);
    for (const flush of ends) flush();
    expect((await q.next()).done).toBe(true);
  });
});
