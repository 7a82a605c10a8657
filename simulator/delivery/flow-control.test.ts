import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';
import { RateLimiter } from './rate-limiter.js';
import { Slots, Wakeup } from './slots.js';

describe('Backoff', () => {
  it('doubles up to the cap with equal jitter, and starts over after a success', () => {
    const lowest = new Backoff({ initialMs: 100, maxMs: 1_000, factor: 2 }, () => 0);
    expect([1, 2, 3, 4, 5, 6].map(() => lowest.next())).toEqual([50, 100, 200, 400, 500, 500]);
    const highest = new Backoff({ initialMs: 100, maxMs: 1_000, factor: 2 }, () => 0.999_999);
    expect([1, 2, 3].map(() => highest.next())).toEqual([100, 200, 400]);
    highest.reset();
    expect(highest.next()).toBe(100);
  });
});

describe('RateLimiter', () => {
  it('spaces messages evenly at the given rate, without burst credit after an idle time', async () => {
    const limiter = new RateLimiter(20);
    const start = performance.now();
    for (let i = 0; i < 5; i++) await limiter.take();
    const elapsed = performance.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(190); // slots at 0, 50, 100, 150, 200 ms
    expect(elapsed).toBeLessThan(400);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const afterIdle = performance.now();
    await limiter.take();
    await limiter.take();
    expect(performance.now() - afterIdle).toBeGreaterThanOrEqual(45);
  });
});

describe('Slots', () => {
  it('queues callers beyond the limit, first come first served', async () => {
    const slots = new Slots(2);
    const order: string[] = [];
    await slots.acquire();
    await slots.acquire();
    const third = slots.acquire().then(() => order.push('third'));
    const fourth = slots.acquire().then(() => order.push('fourth'));
    expect(slots.waiting).toBe(2);
    slots.release();
    slots.release();
    await Promise.all([third, fourth]);
    expect(order).toEqual(['third', 'fourth']);
    expect(slots.inUse).toBe(2);
  });

  it('lets an aborted waiter leave the queue', async () => {
    const slots = new Slots(1);
    await slots.acquire();
    const controller = new AbortController();
    const waiting = slots.acquire(controller.signal);
    controller.abort(new Error('stopped'));
    await expect(waiting).rejects.toThrow('stopped');
    expect(slots.waiting).toBe(0);
    slots.release();
    expect(slots.inUse).toBe(0);
  });

  it('wakes a waiter, and remembers a notification that came first', async () => {
    const wakeup = new Wakeup();
    wakeup.notify();
    await wakeup.wait();
    const waiting = wakeup.wait();
    setTimeout(() => wakeup.notify(), 5);
    await waiting;
  });
});
