import { DutyCycle, FULL_SPEED } from './duty.cycle';

const piece = (ms: number) => () => new Promise<string>((r) => setTimeout(() => r('done'), ms));

/** Whether `p` has settled, on the fake clock. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await jest.advanceTimersByTimeAsync(0);
  return done;
}

describe('duty cycle', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('rests after a piece of work ratio times as long as the piece took, and answers what the work answered', async () => {
    const run = new DutyCycle(2).run(piece(30));
    await jest.advanceTimersByTimeAsync(30);
    await jest.advanceTimersByTimeAsync(59);
    expect(await settled(run)).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(await settled(run)).toBe(true);
    expect(await run).toBe('done');
  });

  it('does not rest at full speed', async () => {
    const run = FULL_SPEED.run(piece(30));
    await jest.advanceTimersByTimeAsync(30);
    expect(await settled(run)).toBe(true);
  });

  it('rests not at all when the work fails, and lets the error through', async () => {
    await expect(new DutyCycle(100).run(() => Promise.reject(new Error('broke')))).rejects.toThrow('broke');
  });
});
