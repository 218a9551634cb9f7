import { KeyedSlots, SlotWaitError } from './keyed.slots';

const settled = async (p: Promise<unknown>): Promise<'resolved' | SlotWaitError | 'pending'> => {
  let state: 'resolved' | SlotWaitError | 'pending' = 'pending';
  p.then(
    () => (state = 'resolved'),
    (e: SlotWaitError) => (state = e),
  );
  await new Promise((r) => setImmediate(r));
  return state;
};

function cancellation() {
  const listeners = new Set<() => void>();
  let cancelled = false;
  return {
    get cancelled() {
      return cancelled;
    },
    onCancel(l: () => void) {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
    leave() {
      cancelled = true;
      for (const l of [...listeners]) l();
    },
  };
}

describe('KeyedSlots', () => {
  it('hands out up to the limit at once, then queues, per key', () => {
    const slots = new KeyedSlots({ queueMax: 10, waitMs: 1000 });
    expect([slots.take('a', 2), slots.take('a', 2)]).toEqual([true, true]);
    const third = slots.take('a', 2);
    expect(third).toBeInstanceOf(Promise);
    // Another key is not affected by a's being full.
    expect(slots.take('b', 2)).toBe(true);
    expect([slots.held('a'), slots.waiting('a'), slots.held('b')]).toEqual([2, 1, 1]);
    slots.give('a');
    return expect(third).resolves.toBeUndefined();
  });

  it('gives a freed slot to the oldest waiter, never to a newcomer', async () => {
    const slots = new KeyedSlots({ queueMax: 10, waitMs: 1000 });
    slots.take('a', 1);
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) => (slots.take('a', 1) as Promise<void>).then(() => order.push(n)));
    slots.give('a');
    // A newcomer after the give still queues behind the two older waiters.
    const late = slots.take('a', 1);
    expect(late).toBeInstanceOf(Promise);
    (late as Promise<void>).then(() => order.push(4));
    slots.give('a');
    slots.give('a');
    slots.give('a');
    await Promise.all(waits);
    await late;
    expect(order).toEqual([1, 2, 3, 4]);
    // Every handed-over slot stayed counted: one holder left (4), nobody waiting.
    expect([slots.held('a'), slots.waiting('a')]).toEqual([1, 0]);
  });

  it('refuses at once when the queue is full, and after the wait when no slot came', async () => {
    const slots = new KeyedSlots({ queueMax: 1, waitMs: 30 });
    slots.take('a', 1);
    const queued = slots.take('a', 1) as Promise<void>;
    const refused = await settled(slots.take('a', 1) as Promise<void>);
    expect(refused).toBeInstanceOf(SlotWaitError);
    expect((refused as SlotWaitError).reason).toBe('queue_full');
    await expect(queued).rejects.toMatchObject({ reason: 'timed_out' });
    expect(slots.waiting('a')).toBe(0);
  });

  it('drops a waiter whose client left, without taking a slot for it', async () => {
    const slots = new KeyedSlots({ queueMax: 5, waitMs: 1000 });
    slots.take('a', 1);
    const client = cancellation();
    const waiting = slots.take('a', 1, client) as Promise<void>;
    client.leave();
    await expect(waiting).rejects.toMatchObject({ reason: 'cancelled' });
    slots.give('a');
    expect(slots.size).toBe(0);
  });

  it('keeps no record of a key once nothing is held or waited for, so memory follows busy keys only', () => {
    const slots = new KeyedSlots({ queueMax: 5, waitMs: 1000 });
    for (let i = 0; i < 10_000; i++) {
      expect(slots.take(`tenant-${i}`, 4)).toBe(true);
      slots.give(`tenant-${i}`);
    }
    expect(slots.size).toBe(0);
    slots.take('busy', 4);
    expect(slots.size).toBe(1);
  });
});
