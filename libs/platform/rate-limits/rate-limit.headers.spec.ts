import { rateLimitHeaders, refusalHeaders, type ScopedBucket } from './rate-limit.headers';

const scoped = (scope: 'tenant' | 'user', tokens: number, rate: number, capacity: number): ScopedBucket => ({ scope, bucket: { tokens, at: 0, rate, capacity } });

describe('RateLimit-* header values (draft-ietf-httpapi-ratelimit-headers-06)', () => {
  it('name the bucket closest to running out, and list every policy with its window', () => {
    const tenant = scoped('tenant', 80.4, 50, 100);
    const user = scoped('user', 12.9, 20, 40);
    expect(rateLimitHeaders([user, tenant])).toEqual({
      'RateLimit-Limit': '40',
      'RateLimit-Remaining': '12',
      // (40 - 12.9) / 20 per second = 1.355 s, rounded up.
      'RateLimit-Reset': '2',
      'RateLimit-Policy': '40;w=2;comment="user", 100;w=2;comment="tenant"',
    });
  });

  it('a full bucket resets in 0 seconds and a debt shows as 0 remaining', () => {
    expect(rateLimitHeaders([scoped('tenant', 10, 5, 10)])).toMatchObject({ 'RateLimit-Remaining': '10', 'RateLimit-Reset': '0' });
    expect(rateLimitHeaders([scoped('tenant', -3, 5, 10)])).toMatchObject({ 'RateLimit-Remaining': '0', 'RateLimit-Reset': '3' });
  });

  it('a refusal speaks for the bucket that refused, with Retry-After in whole seconds, at least 1', () => {
    const tenant = scoped('tenant', 0.2, 1, 10);
    const user = scoped('user', 0, 20, 40);
    expect(refusalHeaders([user, tenant], tenant)).toEqual({
      'RateLimit-Limit': '10',
      'RateLimit-Remaining': '0',
      'RateLimit-Reset': '10',
      'RateLimit-Policy': '40;w=2;comment="user", 10;w=10;comment="tenant"',
      'Retry-After': '1',
    });
    expect(refusalHeaders([scoped('tenant', -2, 1, 10)], scoped('tenant', -2, 1, 10))['Retry-After']).toBe('3');
    expect(refusalHeaders([user], user)['Retry-After']).toBe('1');
  });
});
