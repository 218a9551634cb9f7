// ajv is a devDependency today (the OpenAPI test's); this runtime use needs it under `dependencies`.
import { Ajv, type ErrorObject } from 'ajv';
import { ApiException, type ApiErrorDetail } from '#strata/common';
import { PlansErrorCode } from './plans.errors';

/**
 * What a tenant may keep in its settings (`tenants.settings`). Closed: an unknown key is a typo or a
 * client of a newer API, and either way better refused than stored and ignored.
 */
export const TENANT_SETTINGS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    timezone: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$' },
    locale: { type: 'string', pattern: '^[a-z]{2,3}(-[A-Z]{2})?$' },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
    invoicePrefix: { type: 'string', minLength: 1, maxLength: 12, pattern: '^[A-Za-z0-9-]+$' },
    weekStartsOn: { enum: ['monday', 'sunday'] },
    notifications: {
      type: 'object',
      additionalProperties: false,
      properties: { invoiceOverdue: { type: 'boolean' }, weeklyDigest: { type: 'boolean' } },
    },
  },
} as const;

/** Flag names operators may override; the value true/false sets it, null drops the override. */
const FEATURES_PATCH_SCHEMA = {
  type: 'object',
  maxProperties: 64,
  propertyNames: { pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,63}$' },
  additionalProperties: { type: ['boolean', 'null'] },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true });
const settingsValid = ajv.compile(TENANT_SETTINGS_SCHEMA);
const featuresPatchValid = ajv.compile(FEATURES_PATCH_SCHEMA);

const MAX_DETAILS = 10;

function failed(prefix: string, errors: ErrorObject[] | null | undefined): ApiException {
  const details: ApiErrorDetail[] = (errors ?? []).slice(0, MAX_DETAILS).map((e) => {
    const path = e.instancePath.split('/').filter(Boolean);
    const extra = e.keyword === 'additionalProperties' ? [(e.params as { additionalProperty: string }).additionalProperty] : [];
    const field = [prefix, ...path, ...extra].filter(Boolean).join('.') || prefix || 'body';
    return { field, code: e.keyword === 'additionalProperties' ? 'unknown_field' : e.keyword, message: `${field} ${e.message ?? 'is invalid'}` };
  });
  return new ApiException(400, PlansErrorCode.validationFailed, details.map((d) => d.message).join('; ') || 'invalid settings', {}, details);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Applies a JSON merge patch (RFC 7396: objects merge, null removes a key) to `current` and returns
 * the result if it satisfies the schema, else throws 400 validation_failed naming each field.
 */
export function mergeSettings(current: Record<string, unknown>, patch: unknown, prefix = ''): Record<string, unknown> {
  if (!isObject(patch)) throw new ApiException(400, PlansErrorCode.validationFailed, `${prefix || 'body'} must be a JSON object`, {}, [
    { field: prefix || 'body', code: 'type', message: `${prefix || 'body'} must be a JSON object` },
  ]);
  const merged = mergePatch(current, patch);
  if (!settingsValid(merged)) throw failed(prefix, settingsValid.errors);
  return merged;
}

/** The operators' flag overrides after `patch` (true/false set one, null drops it). */
export function mergeFeatureOverrides(current: Record<string, boolean>, patch: unknown): Record<string, boolean> {
  if (!featuresPatchValid(patch)) throw failed('features', featuresPatchValid.errors);
  const next = { ...current };
  for (const [flag, on] of Object.entries(patch as Record<string, boolean | null>)) {
    if (on === null) delete next[flag];
    else next[flag] = on;
  }
  return next;
}

function mergePatch(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    // defineProperty, not assignment: a `__proto__` key stays an own (unknown, refused) field.
    else Object.defineProperty(out, key, { value: isObject(value) ? mergePatch(isObject(out[key]) ? out[key] : {}, value) : value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
