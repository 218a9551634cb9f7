import { LeasedExecutor } from './leased.executor';

/** An executor whose rounds the test counts; `polling` plays its executor flag. */
class CountingExecutor extends LeasedExecutor {
  rounds = 0;
  constructor(private readonly polling: boolean) {
    super('counting executor', 'CountingExecutor', 500);
  }
  protected polls(): boolean {
    return this.polling;
  }
  async drain(): Promise<void> {
    this.rounds++;
  }
}

describe('LeasedExecutor', () => {
  let executor: CountingExecutor | undefined;
  beforeEach(() => jest.useFakeTimers());
  afterEach(async () => {
    jest.useRealTimers();
    await executor?.onApplicationShutdown();
    executor = undefined;
  });

  it('polls from bootstrap on, every interval, when its process runs this executor', async () => {
    executor = new CountingExecutor(true);
    executor.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(0);
    expect(executor.rounds).toBe(1);
    await jest.advanceTimersByTimeAsync(1000);
    expect(executor.rounds).toBe(3);
  });

  it('neither polls nor answers a nudge when its process does not run it; drain still works when called', async () => {
    executor = new CountingExecutor(false);
    executor.onApplicationBootstrap();
    executor.nudge();
    await jest.advanceTimersByTimeAsync(5000);
    expect(executor.rounds).toBe(0);
    await executor.drain();
    expect(executor.rounds).toBe(1);
  });

  it('looks when nudged, after the delay asked for, rather than at the next poll', async () => {
    executor = new CountingExecutor(true);
    executor.nudge(300);
    await jest.advanceTimersByTimeAsync(299);
    expect(executor.rounds).toBe(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(executor.rounds).toBe(1);
  });

  it('starts no round after shutdown', async () => {
    executor = new CountingExecutor(true);
    executor.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(0);
    await executor.onApplicationShutdown();
    executor.nudge();
    await jest.advanceTimersByTimeAsync(5000);
    expect(executor.rounds).toBe(1);
  });

  it('holds its leases under an owner id of its own', () => {
    expect(new CountingExecutor(false).owner).not.toBe(new CountingExecutor(false).owner);
  });
});
