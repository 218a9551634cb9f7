import { HomeCircuits } from './home.circuit';
import { TenantUnavailableError } from './tenancy.errors';

const HOME = '127.0.0.1:6543/strata_t_acme';

function rejection(fn: () => unknown): TenantUnavailableError {
  try {
    fn();
  } catch (err) {
    return err as TenantUnavailableError;
  }
  throw new Error('expected a rejection');
}

describe('HomeCircuits', () => {
  let circuits: HomeCircuits;
  beforeEach(() => (circuits = new HomeCircuits()));

  it('lets every unit through while no home has failed, and says so in one property', () => {
    expect(circuits.anyOpen).toBe(false);
    expect(circuits.admit(HOME)).toBe('closed');
    expect(circuits.degraded()).toEqual([]);
  });

  it('answers 503 tenant_unavailable with Retry-After without dialling once a home could not be reached', () => {
    circuits.failed(HOME, 'ECONNREFUSED', 'closed', 1000);
    const err = rejection(() => circuits.admit(HOME, 1100));
    expect(err).toBeInstanceOf(TenantUnavailableError);
    expect(err.getStatus()).toBe(503);
    expect(err.headers['Retry-After']).toBe('1');
    expect(circuits.admit('127.0.0.1:5432/other', 1100)).toBe('closed');
  });

  it('lets exactly one trial through after the backoff, and keeps failing the others fast while it runs', () => {
    circuits.failed(HOME, 'ECONNREFUSED', 'closed', 1000);
    expect(circuits.admit(HOME, 1250)).toBe('trial');
    expect(() => circuits.admit(HOME, 1251)).toThrow(TenantUnavailableError);
  });

  it('doubles the wait after each failed trial up to two seconds', () => {
    let now = 0;
    circuits.failed(HOME, 'ECONNREFUSED', 'closed', now);
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      now += circuits.degraded(now)[0].retryInMs;
      expect(circuits.admit(HOME, now)).toBe('trial');
      circuits.failed(HOME, 'ECONNREFUSED', 'trial', now);
      waits.push(circuits.degraded(now)[0].retryInMs);
    }
    expect(waits).toEqual([500, 1000, 2000, 2000, 2000, 2000, 2000, 2000]);
    expect(circuits.degraded(now)[0]).toMatchObject({ home: HOME, failures: 9, attempts: 9, reason: 'ECONNREFUSED' });
  });

  it('does not back off further for units that were already on their way when the circuit opened', () => {
    circuits.failed(HOME, 'ECONNREFUSED', 'closed', 0);
    for (let i = 0; i < 10; i++) circuits.failed(HOME, 'ECONNRESET', 'closed', 1);
    expect(circuits.degraded(1)[0]).toMatchObject({ failures: 1, retryInMs: 249, reason: 'ECONNRESET' });
  });

  it('closes on a trial that reached the server', () => {
    circuits.failed(HOME, 'ECONNREFUSED', 'closed', 0);
    circuits.admit(HOME, 300);
    circuits.succeeded(HOME, 310);
    expect(circuits.anyOpen).toBe(false);
    expect(circuits.admit(HOME, 311)).toBe('closed');
  });

  it('lets the next unit try when a trial ended before it reached the server', () => {
    circuits.failed(HOME, 'ECONNREFUSED', 'closed', 0);
    expect(circuits.admit(HOME, 300)).toBe('trial');
    circuits.abandoned(HOME);
    expect(circuits.admit(HOME, 301)).toBe('trial');
  });
});
