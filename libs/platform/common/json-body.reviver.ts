/**
 * The JSON body parser's reviver (app.factory): the checks that must run before any DTO code sees a
 * body. Hand-written because they need the parser's bottom-up walk: body-parser has no depth limit,
 * and class-transformer recurses through whatever depth arrives (a few KB of nested arrays was a
 * stack-overflow 500 on every DTO route).
 */
export const MAX_JSON_DEPTH = 32;

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

const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
const depths = new WeakMap<object, number>();

export function strictJsonReviver(key: string, value: unknown): unknown {
  if (!wellFormed(key)) throw new InvalidUnicodeError();
  if (typeof value === 'string') {
    if (!wellFormed(value)) throw new InvalidUnicodeError();
  } else if (value !== null && typeof value === 'object') {
    // Bottom-up: every child's depth is known when its parent is revived.
    let depth = 1;
    for (const child of Object.values(value)) {
      if (child !== null && typeof child === 'object') depth = Math.max(depth, (depths.get(child) ?? 1) + 1);
    }
    if (depth > MAX_JSON_DEPTH) throw new JsonTooDeepError();
    depths.set(value, depth);
  }
  return value;
}
