import { ApiException, loadStrataConfig } from '#strata/common';
import { SignupRateLimiter } from './signup.rate-limiter';

const config = (env: Record<string, string> = {}) =>
  loadStrataConfig({ DATABASE_URL: 'postgres://owner@127.0.0.1:5432/strata_unit', AUTH_JWT_SECRET: 'x'.repeat(40), SIGNUP_RATE_LIMIT: '2', ...env });

async function outcome(limiter: SignupRateLimiter, address: string): Promise<string> {
  try {
    await limiter.consume(address);
    return 'ok';
  } catch (err) {
    if (err instanceof ApiException) return `${err.getStatus()} ${err.code} retry-after=${err.headers['Retry-After']}`;
    throw err;
  }
}

describe('SignupRateLimiter without Redis (npm start on the embedded default)', () => {
  it('lets SIGNUP_RATE_LIMIT signups of one address through, then answers 429 with Retry-After within the window', async () => {
    const limiter = new SignupRateLimiter(config({ SIGNUP_RATE_WINDOW_SECONDS: '60' }), null);
    expect([await outcome(limiter, '10.0.0.1'), await outcome(limiter, '10.0.0.1')]).toEqual(['ok', 'ok']);
    expect(await outcome(limiter, '10.0.0.1')).toMatch(/^429 signup_rate_limited retry-after=(60|59)$/);
  });

  it('counts each client address apart', async () => {
    const limiter = new SignupRateLimiter(config(), null);
    await outcome(limiter, '10.0.0.1');
    await outcome(limiter, '10.0.0.1');
    expect(await outcome(limiter, '10.0.0.2')).toBe('ok');
  });
});
