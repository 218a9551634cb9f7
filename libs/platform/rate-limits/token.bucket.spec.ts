import { hasToken, msUntilFull, msUntilToken, refill, retarget, type BucketState } from './token.bucket';

const bucket = (over: Partial<BucketState> = {}): BucketState => ({ tokens: 10, at: 0, rate: 5, capacity: 10, ...over });

describe('token bucket math', () => {
  it('refills at its rate per second and never above its capacity', () => {
    const b = bucket({ tokens: 0 });
    refill(b, 200);
    expect(b.tokens).toBeCloseTo(1);
    refill(b, 1200);
    expect(b.tokens).toBeCloseTo(6);
    refill(b, 60_000);
    expect(b.tokens).toBe(10);
  });

  it('a clock that goes backwards refills nothing and takes nothing', () => {
    const b = bucket({ tokens: 3, at: 1000 });
    refill(b, 500);
    expect(b).toMatchObject({ tokens: 3, at: 1000 });
  });

  it('has a token only when a whole one is there, and says how long until one and until full', () => {
    const b = bucket({ tokens: 0.5 });
    expect(hasToken(b, 0)).toBe(false);
    expect(msUntilToken(b)).toBe(100);
    expect(msUntilFull(b)).toBe(1900);
    expect(hasToken(b, 100)).toBe(true);
    expect(msUntilToken(b)).toBe(0);
  });

  it('a debt left by other instances is repaid before the next token', () => {
    const b = bucket({ tokens: -4 });
    expect(msUntilToken(b)).toBe(1000);
    expect(hasToken(b, 999)).toBe(false);
    expect(hasToken(b, 1000)).toBe(true);
  });

  it('a lower plan caps the tokens held at once; a higher one does not hand out an unearned burst', () => {
    const b = bucket({ tokens: 10 });
    retarget(b, { rate: 1, capacity: 2 }, 0);
    expect(b).toMatchObject({ tokens: 2, rate: 1, capacity: 2 });
    retarget(b, { rate: 50, capacity: 100 }, 0);
    expect(b.tokens).toBe(2);
    refill(b, 1000);
    expect(b.tokens).toBe(52);
  });
});
