import { ApiException } from '#strata/common';
import { mergeFeatureOverrides, mergeSettings } from './tenant-settings.schema';
import { counterOf, usagePeriod } from './usage.counters';

const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiException);
    return (err as ApiException).getResponse() as { statusCode: number; error: string; details: Array<{ field: string; code: string }> };
  }
  throw new Error('expected a refusal');
};

describe('mergeSettings (JSON merge patch, then the closed schema)', () => {
  it('merges objects, replaces values and removes keys set to null', () => {
    const current = { timezone: 'UTC', notifications: { weeklyDigest: true }, currency: 'EUR' };
    expect(mergeSettings(current, { timezone: null, notifications: { invoiceOverdue: false }, locale: 'fr-FR' })).toEqual({
      currency: 'EUR',
      locale: 'fr-FR',
      notifications: { weeklyDigest: true, invoiceOverdue: false },
    });
    expect(current).toEqual({ timezone: 'UTC', notifications: { weeklyDigest: true }, currency: 'EUR' });
  });

  it('refuses an unknown key with 400 validation_failed naming it, nested keys by their dotted path', () => {
    expect(refusal(() => mergeSettings({}, { colour: 'red', notifications: { sms: true } }))).toMatchObject({
      statusCode: 400,
      error: 'validation_failed',
      details: [
        { field: 'colour', code: 'unknown_field' },
        { field: 'notifications.sms', code: 'unknown_field' },
      ],
    });
  });

  it('prefixes fields with the body member they came in (the operators\' `settings`)', () => {
    expect(refusal(() => mergeSettings({}, { weekStartsOn: 'friday' }, 'settings')).details).toEqual([
      expect.objectContaining({ field: 'settings.weekStartsOn', code: 'enum' }),
    ]);
  });

  it('refuses a body that is not an object, and a __proto__ key as an unknown field without touching any prototype', () => {
    expect(refusal(() => mergeSettings({}, ['timezone'])).error).toBe('validation_failed');
    expect(refusal(() => mergeSettings({}, null)).error).toBe('validation_failed');
    const hostile = JSON.parse('{"__proto__": {"polluted": true}}') as unknown;
    expect(refusal(() => mergeSettings({}, hostile)).details).toEqual([expect.objectContaining({ field: '__proto__', code: 'unknown_field' })]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('mergeFeatureOverrides', () => {
  it('sets flags to true or false and drops an override given null', () => {
    expect(mergeFeatureOverrides({ webhooks: false, beta: true }, { beta: null, auditLog: true })).toEqual({ webhooks: false, auditLog: true });
  });

  it('refuses values that are not booleans and names that are not flag names', () => {
    expect(refusal(() => mergeFeatureOverrides({}, { beta: 'yes' })).details[0]).toMatchObject({ field: 'features.beta' });
    expect(refusal(() => mergeFeatureOverrides({}, { 'has space': true })).error).toBe('validation_failed');
  });
});

describe('usage counters', () => {
  it('count invoices per UTC month and everything else in one row per metric', () => {
    expect(usagePeriod(new Date('2026-01-31T23:59:59.999Z'))).toBe('2026-01');
    expect(usagePeriod(new Date('2026-02-01T00:00:00.000Z'))).toBe('2026-02');
    expect(counterOf('invoicesPerMonth', '2026-02')).toBe('invoices:2026-02');
    expect([counterOf('projects'), counterOf('storageBytes'), counterOf('webhookEndpoints')]).toEqual(['projects', 'storage_bytes', 'webhook_endpoints']);
  });
});
