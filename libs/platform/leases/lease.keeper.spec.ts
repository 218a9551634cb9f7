import { LEASE_MARGIN_MS, LeaseKeeper, LeaseLost } from './lease.keeper';

/** A renew of the repository's shape whose answers the test decides, counting its calls. */
function renewal(answer: () => Promise<boolean> = async () => true) {
  const calls: number[] = [];
  return {
    calls,
    renew: () => {
      calls.push(Date.now());
      return answer();
    },
  };
}

describe('LeaseKeeper', () => {
  let keeper: LeaseKeeper | undefined;
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => {
    keeper?.stop();
    keeper = undefined;
    jest.useRealTimers();
  });

  it('renews every third of the lease while the work runs', async () => {
    const r = renewal();
    keeper = LeaseKeeper.start({ leaseMs: 3000, renew: r.renew });
    await jest.advanceTimersByTimeAsync(999);
    expect(r.calls).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(r.calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(2000);
    expect(r.calls).toHaveLength(3);
    expect(keeper.held).toBe(true);
  });

  it('renews a very short lease no more often than every 200 ms', async () => {
    const r = renewal();
    keeper = LeaseKeeper.start({ leaseMs: 300, renew: r.renew, marginMs: 0 });
    await jest.advanceTimersByTimeAsync(1000);
    expect(r.calls).toHaveLength(5);
  });

  it('stops renewing once the work has ended', async () => {
    const r = renewal();
    keeper = LeaseKeeper.start({ leaseMs: 1500, renew: r.renew });
    await jest.advanceTimersByTimeAsync(500);
    keeper.stop();
    await jest.advanceTimersByTimeAsync(5000);
    expect(r.calls).toHaveLength(1);
  });

  it('reports a lease another process took over: assert throws, confirm refuses, the signal aborts', async () => {
    let ours = true;
    const r = renewal(async () => ours);
    keeper = LeaseKeeper.start({ leaseMs: 3000, renew: r.renew });
    expect(() => keeper!.assert()).not.toThrow();
    ours = false;
    await jest.advanceTimersByTimeAsync(1000);
    expect(keeper.held).toBe(false);
    expect(() => keeper!.assert()).toThrow(LeaseLost);
    expect(keeper.signal.aborted).toBe(true);
    expect(keeper.signal.reason).toBeInstanceOf(LeaseLost);
    // Lost for good: a later renewal that answers yes does not bring it back.
    ours = true;
    await jest.advanceTimersByTimeAsync(1000);
    expect(keeper.held).toBe(false);
    await expect(keeper.confirm()).rejects.toBeInstanceOf(LeaseLost);
  });

  it('gives the claim up before the lease runs out when no renewal is confirmed (control plane unreachable)', async () => {
    const r = renewal(async () => {
      throw new Error('connection refused');
    });
    keeper = LeaseKeeper.start({ leaseMs: 3000, renew: r.renew });
    await jest.advanceTimersByTimeAsync(3000 - LEASE_MARGIN_MS);
    expect(r.calls.length).toBeGreaterThan(0);
    expect(() => keeper!.assert()).not.toThrow();
    await jest.advanceTimersByTimeAsync(1);
    expect(() => keeper!.assert()).toThrow(LeaseLost);
    // Not lost in the database's word: only no longer sure, so the signal stays quiet.
    expect(keeper.signal.aborted).toBe(false);
  });

  it('counts a renewal from when it was asked, not from when its answer came', async () => {
    const r = renewal(() => new Promise((resolve) => setTimeout(() => resolve(true), 800)));
    keeper = LeaseKeeper.start({ leaseMs: 3000, renew: r.renew, marginMs: 0 });
    // Asked at 1000, answered at 1800: held until 1000 + 3000, not 1800 + 3000.
    await jest.advanceTimersByTimeAsync(1800);
    keeper.stop();
    await jest.advanceTimersByTimeAsync(2200);
    expect(keeper.held).toBe(true);
    await jest.advanceTimersByTimeAsync(1);
    expect(keeper.held).toBe(false);
  });

  it('confirms the claim in the database before a destructive step, extending it', async () => {
    const r = renewal();
    keeper = LeaseKeeper.start({ leaseMs: 3000, renew: r.renew });
    keeper.stop();
    await jest.advanceTimersByTimeAsync(2000);
    await keeper.confirm();
    expect(r.calls).toEqual([1_002_000]);
    await jest.advanceTimersByTimeAsync(2000);
    expect(keeper.held).toBe(true);
  });

  it('refuses a destructive step without asking the database once the local deadline has passed', async () => {
    const r = renewal();
    keeper = LeaseKeeper.start({ leaseMs: 3000, renew: r.renew });
    keeper.stop();
    await jest.advanceTimersByTimeAsync(3000);
    await expect(keeper.confirm()).rejects.toBeInstanceOf(LeaseLost);
    expect(r.calls).toHaveLength(0);
  });

  it('lets a failing confirmation surface its own error (the executor backs off rather than abandons)', async () => {
    keeper = LeaseKeeper.start({ leaseMs: 3000, renew: async () => Promise.reject(new Error('connection refused')) });
    await expect(keeper.confirm()).rejects.toThrow('connection refused');
    expect(keeper.held).toBe(true);
  });
});
