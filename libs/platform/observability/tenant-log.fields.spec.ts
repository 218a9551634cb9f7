import { Writable } from 'node:stream';
import pino from 'pino';
import { ClsServiceManager, CLS_ID } from 'nestjs-cls';
import { SYSTEM_TENANT, type TenantPlacement, type TenantScope } from '#strata/tenancy/platform';
import { REDACTED_PATHS, tenantMixin } from './log.config';
import { REQUEST_CLS_STORE } from './http-observation.keys';
import { logLevelFrom } from './observability.options';
import { tenantLogFields, tierLabel } from './tenant-log.fields';

const placement = (id: string, slug: string, tier: 'pool' | 'bridge' | 'silo' = 'pool') =>
  ({ id, slug, tier, poolId: 'p', schemaName: 'shared', databaseName: null, status: 'active', schemaVersion: '1', placementEpoch: 1 }) as TenantPlacement;

const cls = ClsServiceManager.getClsService();
function inScope<T>(scope: TenantScope | undefined, fn: () => T, id = 'req-12345678'): T {
  return cls.run(() => {
    cls.set(CLS_ID, id);
    if (scope) cls.set('scope', scope);
    return fn();
  });
}

describe('tenantLogFields', () => {
  it('adds nothing outside any context', () => {
    expect(tenantLogFields()).toEqual({});
    expect(tenantMixin({})).toEqual({});
  });

  it('gives only the request id before the guard bound a tenant', () => {
    expect(inScope(undefined, () => tenantLogFields())).toEqual({ requestId: 'req-12345678' });
  });

  it('gives the tenant id, slug, tier and request id of the scope', () => {
    const scope: TenantScope = { tenant: placement('t-a', 'acme', 'silo'), requestId: 'req-a', userId: 'u1', role: 'owner' };
    expect(inScope(scope, () => tenantLogFields())).toEqual({ tenantId: 't-a', tenantSlug: 'acme', tenantTier: 'silo', requestId: 'req-a' });
  });

  it('labels system work `system` and keeps the system tenant\'s own id', () => {
    const scope: TenantScope = { tenant: SYSTEM_TENANT, requestId: 'job-1', system: true };
    expect(inScope(scope, () => tenantLogFields())).toEqual({
      tenantId: SYSTEM_TENANT.id,
      tenantSlug: 'system',
      tenantTier: 'system',
      requestId: 'job-1',
    });
    expect(tierLabel(scope)).toBe('system');
    expect(tierLabel(undefined)).toBe('none');
  });

  it('carries impersonatedBy when the scope has it', () => {
    const scope = { tenant: placement('t-a', 'acme'), requestId: 'r', impersonatedBy: 'admin-uuid' } as TenantScope;
    expect(inScope(scope, () => tenantLogFields()).impersonatedBy).toBe('admin-uuid');
  });

  it('names both identities and the impersonation on every line of an impersonated request', () => {
    const scope: TenantScope = { tenant: placement('t-a', 'acme'), requestId: 'r', userId: 'user-1', role: 'member', impersonatedBy: 'op-1', impersonationId: 'imp-1' };
    expect(inScope(scope, () => tenantLogFields())).toEqual({
      tenantId: 't-a',
      tenantSlug: 'acme',
      tenantTier: 'pool',
      requestId: 'r',
      userId: 'user-1',
      impersonatedBy: 'op-1',
      impersonationId: 'imp-1',
    });
  });

  it('prefers the store pinned on a response over the context the log is written from', () => {
    const pinned = { scope: { tenant: placement('t-a', 'acme'), requestId: 'req-a' } };
    const res = { [REQUEST_CLS_STORE]: pinned };
    const other: TenantScope = { tenant: placement('t-b', 'beta'), requestId: 'req-b' };
    expect(inScope(other, () => tenantMixin({ res }))).toMatchObject({ tenantId: 't-a', requestId: 'req-a' });
  });
});

describe('the pino configuration', () => {
  function capture() {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    });
    const log = pino({ mixin: tenantMixin, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, sink);
    return { log, lines };
  }

  it('writes the tenant of the context a line is logged from (jobs, cron)', () => {
    const { log, lines } = capture();
    inScope({ tenant: placement('t-a', 'acme', 'bridge'), requestId: 'job-7' }, () => log.info('sweep'));
    log.info('outside');
    expect(lines[0]).toMatchObject({ tenantId: 't-a', tenantSlug: 'acme', tenantTier: 'bridge', requestId: 'job-7', msg: 'sweep' });
    expect(lines[1].tenantId).toBeUndefined();
  });

  it('redacts credentials and emails wherever they are logged', () => {
    const { log, lines } = capture();
    log.info({ email: 'a@b.test', user: { email: 'c@d.test', password: 'pw' }, req: { headers: { authorization: 'Bearer x', cookie: 's=1' } } });
    const text = JSON.stringify(lines[0]);
    for (const secret of ['a@b.test', 'c@d.test', 'pw"', 'Bearer x', 's=1']) expect(text).not.toContain(secret);
  });
});

describe('logLevelFrom', () => {
  it('defaults to info and rejects unknown levels by name', () => {
    expect(logLevelFrom({})).toBe('info');
    expect(logLevelFrom({ LOG_LEVEL: 'SILENT' })).toBe('silent');
    expect(() => logLevelFrom({ LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL/);
  });
});
