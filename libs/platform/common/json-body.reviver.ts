import { CommonErrorCode } from './common.errors';

/**
 * The JSON body parser's reviver (app.factory): the checks that must run before any DTO code sees a
 * body. Hand-written because they need the parser's bottom-up walk: body-parser has no depth limit,
 * and class-transformer recurses through whatever depth arrives (a few KB of nested arrays was a
 * stack-overflow 500 on every DTO route).
 */
export const MAX_JSON_DEPTH = 32;
/**
 * Width limits, far above any DTO (a handful of fields, arrays of a few items) and far below what
 * 256 KB can hold: class-transformer deduplicates an object's keys in quadratic time, so a body of
 * 23,000 keys or 120,000 array items cost ~0.7 s of event loop before validation refused it.
 */
export const MAX_JSON_MEMBERS = 1000;
export const MAX_JSON_VALUES = 10_000;

/** A body that parsed as JSON but is refused; `code` is the stable error code (a prototype getter survives body-parser). */
export abstract class JsonBodyShapeError extends Error {
  abstract get code(): string;
}

export class JsonTooDeepError extends JsonBodyShapeError {
  constructor() {
    super(`request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  get code(): string {
    return 'json_too_deep';
  }
}

/**
 * A lone UTF-16 surrogate (`"\ud800"`) cannot be stored as UTF-8: PostgreSQL would keep U+FFFD while
 * the API echoed the original, and two different values could collide on a unique key.
 */
export class InvalidUnicodeError extends JsonBodyShapeError {
  constructor() {
    super('request body holds a string that is not well-formed Unicode (a lone surrogate); send valid UTF-8 text');
  }
  get code(): string {
    return 'invalid_unicode';
  }
}

export class JsonTooWideError extends JsonBodyShapeError {
  constructor() {
    super(`request body has an object or array of more than ${MAX_JSON_MEMBERS} members`);
  }
  get code(): string {
    return CommonErrorCode.jsonTooWide;
  }
}

export class JsonTooManyValuesError extends JsonBodyShapeError {
  constructor() {
    super(`request body holds more than ${MAX_JSON_VALUES} values`);
  }
  get code(): string {
    return CommonErrorCode.jsonTooManyValues;
  }
}

const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
/** Per object or array already revived: its depth and how many values it holds, itself included. */
const shapes = new WeakMap<object, { depth: number; values: number }>();

export function strictJsonReviver(key: string, value: unknown): unknown {
  if (!wellFormed(key)) throw new InvalidUnicodeError();
  if (typeof value === 'string') {
    if (!wellFormed(value)) throw new InvalidUnicodeError();
  } else if (value !== null && typeof value === 'object') {
    // Bottom-up: every child's shape is known when its parent is revived.
    const children = Object.values(value);
    if (children.length > MAX_JSON_MEMBERS) throw new JsonTooWideError();
    let depth = 1;
    let values = 1;
    for (const child of children) {
      const shape = child !== null && typeof child === 'object' ? shapes.get(child) : undefined;
      depth = Math.max(depth, (shape?.depth ?? 0) + 1);
      values += shape?.values ?? 1;
    }
    if (depth > MAX_JSON_DEPTH) throw new JsonTooDeepError();
    if (values > MAX_JSON_VALUES) throw new JsonTooManyValuesError();
    shapes.set(value, { depth, values });
  }
  return value;
}
