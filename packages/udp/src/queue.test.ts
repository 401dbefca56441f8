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
});
