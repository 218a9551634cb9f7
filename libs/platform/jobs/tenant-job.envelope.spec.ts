import { UnrecoverableError } from 'bullmq';
import { envelopeFromScope, parseTenantEnvelope, parseTraceCarrier } from './tenant-job.envelope';
import { SYSTEM_TENANT, SYSTEM_TENANT_ID } from './system-tenant.scope';

const A = '3f2c1a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b';
const tenant = { id: A, slug: 'acme', tier: 'pool' as const, poolId: 'main', schemaName: 'shared', databaseName: null, status: 'active' as const, schemaVersion: '0001', placementEpoch: 1 };
const parse = (data: unknown) => parseTenantEnvelope(data, SYSTEM_TENANT_ID, 'job x#1 on queue q');

describe('tenant job envelope', () => {
  it('round-trips a tenant scope, including the impersonating admin', () => {
    const env = envelopeFromScope({ tenant, requestId: 'req-12345678', userId: 'u-1', role: 'owner', impersonatedBy: 'admin-1' });
    expect(env).toEqual({ tenantId: A, tier: 'pool', requestId: 'req-12345678', userId: 'u-1', impersonatedBy: 'admin-1' });
    expect(parse({ envelope: env, payload: {} })).toEqual(env);
  });

  it('marks system work as the system tenant', () => {
    const env = envelopeFromScope({ tenant: SYSTEM_TENANT, requestId: 'sweep-1', system: true });
    expect(env).toEqual({ tenantId: SYSTEM_TENANT_ID, tier: 'system', requestId: 'sweep-1', system: true });
    expect(parse({ envelope: env })).toEqual(env);
  });

  it.each([
    ['no data', undefined, /not an object/],
    ['no envelope', { payload: 1 }, /has no tenant envelope/],
    ['a bad tenant id', { envelope: { tenantId: 'acme', tier: 'pool', requestId: 'r-123' } }, /no valid tenantId/],
    ['no request id', { envelope: { tenantId: A, tier: 'pool' } }, /no valid requestId/],
    ['an unknown tier', { envelope: { tenantId: A, tier: 'gold', requestId: 'r-123' } }, /no valid tier/],
    ['a system flag on a real tenant', { envelope: { tenantId: A, tier: 'pool', requestId: 'r-123', system: true } }, /mixes the system tenant/],
    ['the system id without the flag', { envelope: { tenantId: SYSTEM_TENANT_ID, tier: 'pool', requestId: 'r-123' } }, /mixes the system tenant/],
    ['a malformed userId', { envelope: { tenantId: A, tier: 'pool', requestId: 'r-123', userId: 'a b' } }, /malformed userId/],
  ])('refuses %s with an UnrecoverableError', (_, data, message) => {
    let err: unknown;
    try {
      parse(data);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toMatch(/TenantJobProducer\.add\(\)/);
  });

  describe('trace carrier', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const base = { tenantId: A, tier: 'pool', requestId: 'r-123' };

    it('round-trips traceparent, tracestate and baggage, and nothing else', () => {
      const trace = { traceparent, tracestate: 'vendor=1', baggage: `tenant.id=${A}` };
      const env = envelopeFromScope({ tenant, requestId: 'r-123' }, trace);
      expect(env.trace).toEqual(trace);
      expect(parse({ envelope: env }).trace).toEqual(trace);
      expect(parse({ envelope: { ...base, trace: { traceparent, cookie: 'x' } } }).trace).toEqual({ traceparent });
      // Tracing off: the producer passes nothing and the envelope has no trace field at all.
      expect(envelopeFromScope({ tenant, requestId: 'r-123' }, {})).not.toHaveProperty('trace');
    });

    it.each([
      ['not an object', 'traceparent'],
      ['an array', [traceparent]],
      ['a non-string value', { traceparent: 42 }],
      ['an oversized traceparent', { traceparent: traceparent + 'x'.repeat(100) }],
      ['oversized baggage', { traceparent, baggage: `k=${'v'.repeat(8200)}` }],
      ['a control character', { traceparent, baggage: 'a=1\r\nx-injected: 1' }],
      ['no known key', { foo: 'bar' }],
    ])('drops a carrier that is %s, and still runs the job as its tenant', (_, trace) => {
      expect(parseTraceCarrier(trace)).toBeUndefined();
      expect(parse({ envelope: { ...base, trace } })).toEqual(base);
    });
  });
});
