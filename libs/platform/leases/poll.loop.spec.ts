import { hostname } from 'node:os';
import { leaseOwnerId, PollLoop } from './poll.loop';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('PollLoop', () => {
  const warnings: string[] = [];
  const logger = { warn: (m: string) => void warnings.push(m) };
  let loop: PollLoop | undefined;
  beforeEach(() => {
    warnings.length = 0;
    jest.useFakeTimers();
  });
  afterEach(async () => {
    jest.useRealTimers();
    await loop?.stop();
    loop = undefined;
  });

  it('runs a round now when scheduled at 0, and the next one an interval after it ended', async () => {
    let rounds = 0;
    loop = new PollLoop({ name: 'test executor', intervalMs: 500, logger, round: async () => void rounds++ });
    loop.schedule(0);
    await jest.advanceTimersByTimeAsync(0);
    expect(rounds).toBe(1);
    await jest.advanceTimersByTimeAsync(499);
    expect(rounds).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(rounds).toBe(2);
  });

  it('logs a round that throws under its name and keeps polling', async () => {
    let rounds = 0;
    loop = new PollLoop({
      name: 'test executor',
      intervalMs: 100,
      logger,
      round: async () => {
        rounds++;
        throw new Error('control plane unreachable');
      },
    });
    loop.schedule(0);
    await jest.advanceTimersByTimeAsync(250);
    expect(rounds).toBe(3);
    expect(warnings[0]).toBe('test executor: control plane unreachable');
  });

  it('never runs two rounds at once: a nudge during a round is covered by the poll after it', async () => {
    const gate = deferred();
    let started = 0;
    loop = new PollLoop({ name: 'test executor', intervalMs: 100, logger, round: () => (started++, started === 1 ? gate.promise : Promise.resolve()) });
    loop.schedule(0);
    await jest.advanceTimersByTimeAsync(0);
    loop.schedule(0);
    await jest.advanceTimersByTimeAsync(50);
    expect(started).toBe(1);
    gate.resolve();
    await jest.advanceTimersByTimeAsync(100);
    expect(started).toBe(2);
  });

  it('on stop waits for the running round and starts no other', async () => {
    const gate = deferred();
    let started = 0;
    let ended = false;
    loop = new PollLoop({
      name: 'test executor',
      intervalMs: 100,
      logger,
      round: async () => {
        started++;
        await gate.promise;
        ended = true;
      },
    });
    loop.schedule(0);
    await jest.advanceTimersByTimeAsync(0);
    const stopping = loop.stop();
    expect(loop.stopped).toBe(true);
    gate.resolve();
    await stopping;
    expect(ended).toBe(true);
    loop.schedule(0);
    await jest.advanceTimersByTimeAsync(1000);
    expect(started).toBe(1);
  });

  it('drains claim after claim until none is claimable, and says it ran out', async () => {
    loop = new PollLoop({ name: 'test executor', intervalMs: 100, logger, round: async () => undefined });
    const rows = ['a', 'b', 'c'];
    const done: string[] = [];
    const exhausted = await loop.drain(async () => rows.shift() ?? null, async (r) => void done.push(r));
    expect(done).toEqual(['a', 'b', 'c']);
    expect(exhausted).toBe(true);
  });

  it('stops draining between two claims once stopped, and says it did not run out', async () => {
    loop = new PollLoop({ name: 'test executor', intervalMs: 100, logger, round: async () => undefined });
    const rows = ['a', 'b', 'c'];
    const done: string[] = [];
    const exhausted = await loop.drain(
      async () => rows.shift() ?? null,
      async (r) => {
        done.push(r);
        await loop!.stop();
      },
    );
    expect(done).toEqual(['a']);
    expect(exhausted).toBe(false);
    expect(rows).toEqual(['b', 'c']);
  });
});

describe('leaseOwnerId', () => {
  it('names this host and process, and differs between two executors of one process', () => {
    const a = leaseOwnerId();
    const b = leaseOwnerId();
    expect(a).toMatch(new RegExp(`^${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${process.pid}:[0-9a-f]{8}$`));
    expect(a).not.toBe(b);
  });
});
